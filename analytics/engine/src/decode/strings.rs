//! The on-wire string forms of transit: dynamic strings with a codec byte, and the two kinds of
//! static string dependencies.

use super::reader::Reader;
use anyhow::{bail, Result};
use std::borrow::Cow;

/// Codec 0: ANSI from Unreal `char*`. Treated as UTF-8 with lossy replacement, like upstream.
pub const CODEC_ANSI: u8 = 0;
/// Codec 1: UTF-16LE from Unreal `TCHAR*`/`FString`/`FName`; `len` counts bytes.
pub const CODEC_WIDE: u8 = 1;
/// Codec 2: UTF-8, what Rust producers and our native core write.
pub const CODEC_UTF8: u8 = 2;

/// Rejects what [`decode_text`] cannot decode: an unknown codec or half a UTF-16 unit.
pub fn check_codec(codec: u8, bytes: &[u8], what: &str) -> Result<()> {
    match codec {
        CODEC_ANSI | CODEC_UTF8 => Ok(()),
        CODEC_WIDE if bytes.len() % 2 != 0 => bail!("odd byte count {} in UTF-16 string {what}", bytes.len()),
        CODEC_WIDE => Ok(()),
        other => bail!("unknown string codec {other} in {what}"),
    }
}

/// Decodes string bytes according to `codec`, borrowing them when they are valid UTF-8.
pub fn decode_text<'a>(codec: u8, bytes: &'a [u8], what: &str) -> Result<Cow<'a, str>> {
    check_codec(codec, bytes, what)?;
    if codec != CODEC_WIDE {
        return Ok(String::from_utf8_lossy(bytes));
    }
    let units = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    Ok(Cow::Owned(char::decode_utf16(units).map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)).collect()))
}

/// Reads `codec:u8 len:u32 bytes[len]` without decoding the bytes (the codec is checked).
pub fn try_read_dyn_text<'a>(r: &mut Reader<'a>, what: &str) -> Result<(u8, &'a [u8])> {
    let codec = r.try_u8(what)?;
    let len = r.try_u32(what)? as usize;
    let bytes = r.try_take(len, what)?;
    check_codec(codec, bytes, what)?;
    Ok((codec, bytes))
}

/// Reads `codec:u8 len:u32 bytes[len]`.
pub fn try_read_dyn_string(r: &mut Reader, what: &str) -> Result<String> {
    let (codec, bytes) = try_read_dyn_text(r, what)?;
    Ok(decode_text(codec, bytes, what)?.into_owned())
}
