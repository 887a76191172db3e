//! The stored block payload: a CBOR map `{"dependencies": <LZ4 frame>, "objects": <LZ4 frame>}`.

use anyhow::{anyhow, bail, Context, Result};
use ciborium::value::Value as Cbor;
use std::cell::RefCell;

/// The two decompressed transit buffers of one block.
pub struct BlockBuffers {
    pub dependencies: Decompressed,
    pub objects: Decompressed,
}

/// Decompressed bytes in a buffer that goes back to its thread's spares when dropped, for the next
/// block: a fresh buffer per block was zero-filled, then paged in, for every block.
pub struct Decompressed {
    /// Initialized up to its length, which may run past the content (`len`).
    buf: Vec<u8>,
    len: usize,
}

/// Spare buffers per thread, and the largest one kept (bigger ones are freed).
const SPARES: usize = 4;
const SPARE_MAX: usize = 16 << 20;

thread_local! {
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

impl Decompressed {
    /// The spare that fits `wanted` bytes best (the smallest initialized for as many, else the
    /// largest): a block's small dependencies buffer must not take its objects' big one.
    fn spare(wanted: usize) -> Vec<u8> {
        SPARE.with(|s| {
            let mut s = s.borrow_mut();
            let fit = (0..s.len())
                .filter(|&i| s[i].len() >= wanted)
                .min_by_key(|&i| s[i].len())
                .or_else(|| (0..s.len()).max_by_key(|&i| s[i].len()))?;
            Some(s.swap_remove(fit))
        })
        .unwrap_or_default()
    }
}

impl std::fmt::Debug for Decompressed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Decompressed({} bytes)", self.len)
    }
}

impl std::ops::Deref for Decompressed {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Decompressed {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if buf.capacity() <= SPARE_MAX {
            // `try_with`: a thread being torn down drops its buffers instead.
            let _ = SPARE.try_with(|s| {
                let mut s = s.borrow_mut();
                if s.len() < SPARES {
                    s.push(buf);
                }
            });
        }
    }
}

/// Decodes the CBOR envelope and decompresses both LZ4 frames.
pub fn try_decode_payload(payload: &[u8]) -> Result<BlockBuffers> {
    if let Some((dependencies, objects)) = frames_in_place(payload) {
        return Ok(BlockBuffers {
            dependencies: try_lz4_frame_decompress(dependencies).context("decompressing payload `dependencies`")?,
            objects: try_lz4_frame_decompress(objects).context("decompressing payload `objects`")?,
        });
    }
    let v: Cbor = ciborium::de::from_reader(payload)
        .map_err(|e| anyhow!("invalid CBOR in block payload ({} bytes): {e}", payload.len()))?;
    let map = v.as_map().ok_or_else(|| anyhow!("block payload is not a CBOR map"))?;
    let field = |key: &str| -> Result<Decompressed> {
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

/// The two frames of the usual payload encoding (a definite map of two text keys and two definite
/// byte strings, in either order), borrowed from it; None for anything else, which the general
/// CBOR reader then handles (and explains when it is wrong). Saves two copies of every payload.
fn frames_in_place(payload: &[u8]) -> Option<(&[u8], &[u8])> {
    /// A definite text or byte string of `major` at `*pos`: its bytes, and `*pos` moved past it.
    fn string<'a>(b: &'a [u8], pos: &mut usize, major: u8) -> Option<&'a [u8]> {
        let head = *b.get(*pos)?;
        if head >> 5 != major {
            return None;
        }
        let (len, at) = match head & 31 {
            n @ 0..=23 => (n as usize, *pos + 1),
            24 => (*b.get(*pos + 1)? as usize, *pos + 2),
            25 => (u16::from_be_bytes(b.get(*pos + 1..*pos + 3)?.try_into().ok()?) as usize, *pos + 3),
            26 => (u32::from_be_bytes(b.get(*pos + 1..*pos + 5)?.try_into().ok()?) as usize, *pos + 5),
            _ => return None,
        };
        let bytes = b.get(at..at.checked_add(len)?)?;
        *pos = at + len;
        Some(bytes)
    }
    if payload.first() != Some(&0xa2) {
        return None;
    }
    let mut pos = 1;
    let (mut dependencies, mut objects) = (None, None);
    for _ in 0..2 {
        let key = string(payload, &mut pos, 3)?;
        let value = string(payload, &mut pos, 2)?;
        match key {
            b"dependencies" if dependencies.is_none() => dependencies = Some(value),
            b"objects" if objects.is_none() => objects = Some(value),
            _ => return None,
        }
    }
    if pos != payload.len() {
        return None;
    }
    Some((dependencies?, objects?))
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

/// The most one LZ4 frame of a block may inflate to, whatever it declares: a hard per-frame cap
/// on what one block can make a query hold (native producers send 1 MiB of events per block).
pub const LZ4_MAX_OUTPUT: usize = 128 << 20;
/// The most a frame may inflate past [`LZ4_MIN_LIMIT`], per byte of frame. Transit buffers
/// compress 2-10x; LZ4 itself cannot exceed about 255x, which is what a bomb does.
pub const LZ4_MAX_RATIO: usize = 64;
/// Any frame may inflate to this much: small frames of very repetitive events stay readable.
pub const LZ4_MIN_LIMIT: usize = 1 << 20;

/// How many bytes `frame` may inflate to: the ratio limit (with its floor) under the hard cap.
pub fn lz4_output_limit(frame_len: usize) -> usize {
    frame_len.saturating_mul(LZ4_MAX_RATIO).max(LZ4_MIN_LIMIT).min(LZ4_MAX_OUTPUT)
}

/// Decompresses a whole LZ4 frame (magic 04 22 4D 18): linked or independent blocks of any
/// maximum size, with their optional checksums verified. Blocks are decoded straight into one
/// growing buffer (a linked block reads the previous 64 KiB of it as its dictionary), so no byte
/// is copied twice and no buffer is sized by the frame's maximum block size.
///
/// The frame is untrusted: its output is bounded by its declared content size when it has one,
/// and always by [`lz4_output_limit`]; past that it is an error, found while decoding the block
/// that crosses it (one compare per LZ4 block), with at most that much ever allocated.
pub fn try_lz4_frame_decompress(frame: &[u8]) -> Result<Decompressed> {
    try_lz4_frame_decompress_within(frame, lz4_output_limit(frame.len()))
}

/// [`try_lz4_frame_decompress`] with an explicit output limit in bytes.
pub fn try_lz4_frame_decompress_within(frame: &[u8], limit: usize) -> Result<Decompressed> {
    if frame.len() < 4 || frame[..4] != [0x04, 0x22, 0x4d, 0x18] {
        bail!(
            "not an LZ4 frame: need magic 04 22 4d 18, have {:02x?} ({} bytes)",
            &frame[..frame.len().min(4)],
            frame.len()
        );
    }
    let corrupt = |what: &str| anyhow!("corrupt LZ4 frame ({} bytes): {what}", frame.len());
    let u32_at = |pos: usize, what: &str| -> Result<u32> {
        let b = frame.get(pos..pos + 4).ok_or_else(|| corrupt(&format!("truncated before its {what}")))?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    };
    let (&flg, &bd) = (frame.get(4).ok_or_else(|| corrupt("no frame descriptor"))?, frame.get(5).ok_or_else(|| corrupt("no frame descriptor"))?);
    if flg >> 6 != 1 {
        return Err(corrupt(&format!("unsupported frame version {}", flg >> 6)));
    }
    if flg & 0x01 != 0 {
        return Err(corrupt("frames with a dictionary id are not supported"));
    }
    let (linked, block_checksums, content_checksum) = (flg & 0x20 == 0, flg & 0x10 != 0, flg & 0x04 != 0);
    let max_block = match (bd >> 4) & 7 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        n => return Err(corrupt(&format!("invalid block maximum size code {n}"))),
    };
    let mut pos = 6;
    let content_size = if flg & 0x08 != 0 {
        let b = frame.get(6..14).ok_or_else(|| corrupt("truncated content size"))?;
        pos = 14;
        Some(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    } else {
        None
    };
    // A declared size is checked against the real output at the end; past the limit it is refused now.
    let limit = match content_size {
        Some(n) if n > limit as u64 => return Err(corrupt(&format!("declares {n} bytes of content, over the limit of {limit}"))),
        Some(n) => n as usize,
        None => limit,
    };
    let hc = *frame.get(pos).ok_or_else(|| corrupt("no header checksum"))?;
    if (twox_hash::XxHash32::oneshot(0, &frame[4..pos]) >> 8) as u8 != hc {
        return Err(corrupt("header checksum mismatch"));
    }
    pos += 1;
    // `out` is zero-filled ahead of `end` in doubling steps, so each byte is zeroed once (and a
    // spare buffer, initialized by an earlier block, not at all until this block outgrows it).
    // Transit buffers compress about 2-3x: a guess is enough to pick a spare.
    let mut out: Vec<u8> = Decompressed::spare(content_size.map_or(frame.len().saturating_mul(3), |n| n as usize).min(limit));
    let mut end = 0usize;
    loop {
        let size = u32_at(pos, "next block size")?;
        pos += 4;
        if size == 0 {
            break;
        }
        let len = (size & 0x7fff_ffff) as usize;
        if len > max_block {
            return Err(corrupt(&format!("block of {len} bytes over the frame's maximum {max_block}")));
        }
        let data = frame.get(pos..pos.saturating_add(len)).ok_or_else(|| corrupt("truncated block"))?;
        pos += len;
        if block_checksums {
            if twox_hash::XxHash32::oneshot(0, data) != u32_at(pos, "block checksum")? {
                return Err(corrupt("block checksum mismatch"));
            }
            pos += 4;
        }
        // This block may write up to `room` bytes: a block that needs more is over the limit.
        let room = max_block.min(limit - end);
        let over = || corrupt(&format!("inflates past the limit of {limit} bytes"));
        if out.len() < end + room {
            out.resize((out.len() * 2).max(end + room).min(limit.max(end + room)), 0);
        }
        let (before, after) = out.split_at_mut(end);
        let written = if size & 0x8000_0000 != 0 {
            if len > room {
                return Err(over());
            }
            after[..len].copy_from_slice(data);
            Ok(len)
        } else if linked && end > 0 {
            lz4_flex::block::decompress_into_with_dict(data, &mut after[..room], &before[end.saturating_sub(64 << 10)..])
        } else {
            lz4_flex::block::decompress_into(data, &mut after[..room])
        }
        .map_err(|e| match e {
            lz4_flex::block::DecompressError::OutputTooSmall { .. } if room < max_block => over(),
            e => corrupt(&e.to_string()),
        })?;
        end += written;
    }
    let out = Decompressed { buf: out, len: end };
    if content_checksum && twox_hash::XxHash32::oneshot(0, &out) != u32_at(pos, "content checksum")? {
        return Err(corrupt("content checksum mismatch"));
    }
    if content_size.is_some_and(|n| n != end as u64) {
        return Err(corrupt(&format!("content size says {} bytes, blocks hold {end}", content_size.unwrap_or(0))));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{frames_in_place, try_decode_payload, try_lz4_frame_decompress};
    use ciborium::value::Value as Cbor;
    use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
    use std::io::Write;

    /// Compressible but not trivial: repeats at distances that cross 64 KiB block boundaries.
    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| ((i * 7919) % 251) as u8 ^ ((i / 70_000) as u8)).collect()
    }

    fn frame(data: &[u8], info: FrameInfo) -> Vec<u8> {
        let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn every_block_size_mode_and_checksum_option_round_trips() {
        let data = sample(600_000);
        for size in [BlockSize::Max64KB, BlockSize::Max256KB, BlockSize::Max1MB, BlockSize::Max4MB] {
            for mode in [BlockMode::Linked, BlockMode::Independent] {
                for checksums in [false, true] {
                    let info = FrameInfo::new()
                        .block_size(size)
                        .block_mode(mode)
                        .block_checksums(checksums)
                        .content_checksum(checksums)
                        .content_size(checksums.then_some(data.len() as u64));
                    let f = frame(&data, info);
                    assert_eq!(&*try_lz4_frame_decompress(&f).unwrap(), &data[..], "{size:?} {mode:?} checksums {checksums}");
                }
            }
        }
        assert!(try_lz4_frame_decompress(&frame(&[], FrameInfo::new())).unwrap().is_empty());
    }

    #[test]
    fn a_reused_buffer_holds_only_the_new_frame() {
        // Each buffer goes back to the thread's spares: the next frames, different and shorter,
        // must not show what the earlier ones left in it.
        let big = sample(500_000);
        let other: Vec<u8> = big.iter().rev().map(|b| b ^ 0x5a).take(300_000).collect();
        for mode in [BlockMode::Linked, BlockMode::Independent] {
            let info = || FrameInfo::new().block_mode(mode);
            drop(try_lz4_frame_decompress(&frame(&big, info())).unwrap());
            assert_eq!(&*try_lz4_frame_decompress(&frame(&other, info())).unwrap(), &other[..]);
            assert_eq!(&*try_lz4_frame_decompress(&frame(&other[..1000], info())).unwrap(), &other[..1000]);
            assert_eq!(&*try_lz4_frame_decompress(&frame(&big, info())).unwrap(), &big[..]);
        }
    }

    #[test]
    fn corruption_and_truncation_are_errors() {
        let data = sample(200_000);
        let f = frame(&data, FrameInfo::new().block_checksums(true).content_checksum(true));
        for cut in [5, 7, 12, f.len() / 2, f.len() - 5, f.len() - 1] {
            assert!(try_lz4_frame_decompress(&f[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = f.clone();
        bad[f.len() / 2] ^= 0x40;
        assert!(try_lz4_frame_decompress(&bad).is_err(), "flipped byte in a checksummed block");
        let mut bad_header = f.clone();
        bad_header[5] ^= 0x10;
        assert!(try_lz4_frame_decompress(&bad_header).unwrap_err().to_string().contains("LZ4"));
    }

    /// An independent frame of `blocks` copies of one LZ4 block that inflates 4 MiB of zeros:
    /// about 16 KiB each, the ~255x that LZ4 allows (the shape of a decompression bomb).
    pub(crate) fn bomb(blocks: usize, content_size: Option<u64>) -> Vec<u8> {
        let block = lz4_flex::block::compress(&vec![0u8; 4 << 20]);
        let mut f = vec![0x04, 0x22, 0x4d, 0x18];
        let flg = 0x60 | if content_size.is_some() { 0x08 } else { 0 };
        let mut descriptor = vec![flg, 0x70];
        if let Some(n) = content_size {
            descriptor.extend_from_slice(&n.to_le_bytes());
        }
        let hc = (twox_hash::XxHash32::oneshot(0, &descriptor) >> 8) as u8;
        f.extend_from_slice(&descriptor);
        f.push(hc);
        for _ in 0..blocks {
            f.extend_from_slice(&(block.len() as u32).to_le_bytes());
            f.extend_from_slice(&block);
        }
        f.extend_from_slice(&0u32.to_le_bytes());
        f
    }

    #[test]
    fn a_bomb_stops_at_the_limit_without_inflating_past_it() {
        // 256 blocks: 1 GiB from ~4 MB, the probe of issue 23.
        let f = bomb(256, None);
        assert!(f.len() < 4_300_000, "{}", f.len());
        assert_eq!(super::lz4_output_limit(f.len()), super::LZ4_MAX_OUTPUT);
        let e = try_lz4_frame_decompress(&f).unwrap_err().to_string();
        assert!(e.contains("inflates past the limit of 134217728 bytes"), "{e}");
        // A small bomb is held to the ratio: 4 blocks (~64 KiB) may not make 16 MiB.
        let small = bomb(4, None);
        let e = try_lz4_frame_decompress(&small).unwrap_err().to_string();
        assert!(e.contains(&format!("limit of {}", super::lz4_output_limit(small.len()))), "{e}");
        // Under an explicit limit it inflates whole, so the bomb itself is a valid frame.
        assert_eq!(super::try_lz4_frame_decompress_within(&small, 16 << 20).unwrap().len(), 16 << 20);
    }

    #[test]
    fn a_declared_content_size_over_the_limit_is_refused_before_any_block() {
        let e = try_lz4_frame_decompress(&bomb(1, Some(1 << 40))).unwrap_err().to_string();
        assert!(e.contains("declares 1099511627776 bytes of content, over the limit"), "{e}");
        // A declared size under the limit bounds the output too: a block past it is an error.
        let e = super::try_lz4_frame_decompress_within(&bomb(2, Some(4 << 20)), 64 << 20).unwrap_err().to_string();
        assert!(e.contains("inflates past the limit of 4194304 bytes"), "{e}");
    }

    #[test]
    fn tiny_frames_keep_the_floor_and_big_ones_the_cap() {
        assert_eq!(super::lz4_output_limit(0), super::LZ4_MIN_LIMIT);
        assert_eq!(super::lz4_output_limit(100_000), 100_000 * super::LZ4_MAX_RATIO);
        assert_eq!(super::lz4_output_limit(usize::MAX), super::LZ4_MAX_OUTPUT);
        // 1 MiB of one repeated byte (~250x) still reads: it is under the floor.
        let zeros = vec![7u8; 1 << 20];
        assert_eq!(&*try_lz4_frame_decompress(&frame(&zeros, FrameInfo::new())).unwrap(), &zeros[..]);
    }

    fn cbor(v: &Cbor) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::ser::into_writer(v, &mut out).unwrap();
        out
    }

    #[test]
    fn payloads_are_read_in_place_when_usual_and_through_cbor_otherwise() {
        let (d, o) = (sample(1_000), sample(300_000));
        let (fd, fo) = (frame(&d, FrameInfo::new()), frame(&o, FrameInfo::new()));
        let entry = |k: &str, v: &[u8]| (Cbor::Text(k.into()), Cbor::Bytes(v.to_vec()));
        let usual = cbor(&Cbor::Map(vec![entry("dependencies", &fd), entry("objects", &fo)]));
        let reversed = cbor(&Cbor::Map(vec![entry("objects", &fo), entry("dependencies", &fd)]));
        for p in [&usual, &reversed] {
            assert_eq!(frames_in_place(p), Some((&fd[..], &fo[..])));
            let b = try_decode_payload(p).unwrap();
            assert_eq!((&*b.dependencies, &*b.objects), (&d[..], &o[..]));
        }
        // Not the usual shape: legacy arrays of integers, an extra key, a repeated key.
        let legacy = cbor(&Cbor::Map(vec![
            (Cbor::Text("dependencies".into()), Cbor::Array(fd.iter().map(|&x| Cbor::Integer(x.into())).collect())),
            entry("objects", &fo),
        ]));
        let extra = cbor(&Cbor::Map(vec![entry("dependencies", &fd), entry("objects", &fo), entry("x", b"")]));
        let twice = cbor(&Cbor::Map(vec![entry("objects", &fo), entry("objects", &fo)]));
        for p in [&legacy, &extra, &twice] {
            assert_eq!(frames_in_place(p), None);
        }
        let b = try_decode_payload(&legacy).unwrap();
        assert_eq!((&*b.dependencies, &*b.objects), (&d[..], &o[..]));
        assert!(try_decode_payload(&twice).is_err());
        assert!(try_decode_payload(&usual[..usual.len() - 1]).is_err());
    }
}
