//! The stored block payload: a CBOR map `{"dependencies": <LZ4 frame>, "objects": <LZ4 frame>}`.

use anyhow::{anyhow, bail, Context, Result};
use ciborium::value::Value as Cbor;
use std::io::Read;

/// The two decompressed transit buffers of one block.
pub struct BlockBuffers {
    pub dependencies: Vec<u8>,
    pub objects: Vec<u8>,
}

/// Decodes the CBOR envelope and decompresses both LZ4 frames.
pub fn try_decode_payload(payload: &[u8]) -> Result<BlockBuffers> {
    let v: Cbor = ciborium::de::from_reader(payload)
        .map_err(|e| anyhow!("invalid CBOR in block payload ({} bytes): {e}", payload.len()))?;
    let map = v.as_map().ok_or_else(|| anyhow!("block payload is not a CBOR map"))?;
    let field = |key: &str| -> Result<Vec<u8>> {
        let value = map
            .iter()
            .find(|(k, _)| k.as_text() == Some(key))
            .map(|(_, v)| v)
            .ok_or_else(|| anyhow!("block payload has no `{key}` entry"))?;
        let compressed = cbor_bytes(value).with_context(|| format!("payload `{key}`"))?;
        try_lz4_frame_decompress(&compressed).with_context(|| format!("decompressing payload `{key}`"))
    };
    Ok(BlockBuffers { dependencies: field("dependencies")?, objects: field("objects")? })
}

/// Byte string (current producers) or array of small integers (Rust ≤ 0.28): both are accepted forever.
fn cbor_bytes(v: &Cbor) -> Result<Vec<u8>> {
    match v {
        Cbor::Bytes(b) => Ok(b.clone()),
        Cbor::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, it)| {
                it.as_integer()
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or_else(|| anyhow!("legacy byte array item #{i} is not an integer in 0..=255"))
            })
            .collect(),
        _ => bail!("expected a byte string or an array of bytes"),
    }
}

/// Decompresses a whole LZ4 frame (magic 04 22 4D 18); any block size, mode and checksum option.
pub fn try_lz4_frame_decompress(frame: &[u8]) -> Result<Vec<u8>> {
    if frame.len() < 4 || frame[..4] != [0x04, 0x22, 0x4d, 0x18] {
        bail!(
            "not an LZ4 frame: need magic 04 22 4d 18, have {:02x?} ({} bytes)",
            &frame[..frame.len().min(4)],
            frame.len()
        );
    }
    let mut out = Vec::with_capacity(frame.len() * 4);
    lz4_flex::frame::FrameDecoder::new(frame)
        .read_to_end(&mut out)
        .map_err(|e| anyhow!("corrupt LZ4 frame ({} bytes): {e}", frame.len()))?;
    Ok(out)
}
