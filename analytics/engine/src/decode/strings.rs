//! The on-wire string forms of transit: dynamic strings with a codec byte, and the two kinds of
//! static string dependencies.

use super::reader::Reader;
use anyhow::{bail, Result};

/// Codec 0: ANSI from Unreal `char*`. Treated as UTF-8 with lossy replacement, like upstream.
pub const CODEC_ANSI: u8 = 0;
/// Codec 1: UTF-16LE from Unreal `TCHAR*`/`FString`/`FName`; `len` counts bytes.
pub const CODEC_WIDE: u8 = 1;
/// Codec 2: UTF-8, what Rust producers and our native core write.
pub const CODEC_UTF8: u8 = 2;

/// Decodes string bytes according to `codec`.
pub fn decode_with_codec(codec: u8, bytes: &[u8], what: &str) -> Result<String> {
    match codec {
        CODEC_ANSI | CODEC_UTF8 => Ok(String::from_utf8_lossy(bytes).into_owned()),
        CODEC_WIDE => {
            if bytes.len() % 2 != 0 {
                bail!("odd byte count {} in UTF-16 string {what}", bytes.len());
            }
            let units = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
            Ok(char::decode_utf16(units)
                .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect())
        }
        other => bail!("unknown string codec {other} in {what}"),
    }
}

/// Reads `codec:u8 len:u32 bytes[len]`.
pub fn try_read_dyn_string(r: &mut Reader, what: &str) -> Result<String> {
    let codec = r.try_u8(what)?;
    let len = r.try_u32(what)? as usize;
    let bytes = r.try_take(len, what)?;
    decode_with_codec(codec, bytes, what)
}
