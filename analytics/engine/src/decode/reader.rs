//! Checked reads over bytes that came from the network or the object store.
//!
//! Every read names what it was reading, how many bytes it needed and how many were left, so a
//! corrupt block produces a one-line error instead of a panic.

use anyhow::{bail, Result};

/// A cursor over untrusted bytes. Only `try_*` reads exist: payloads are never trusted.
/// It keeps the unread rest as a slice: one length compare per read, no separate bounds checks.
pub struct Reader<'a> {
    rest: &'a [u8],
    len: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf, len: buf.len() }
    }

    pub fn position(&self) -> usize {
        self.len - self.rest.len()
    }

    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Takes `n` bytes; `what` names the field for the error message.
    #[inline]
    pub fn try_take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let Some((s, rest)) = self.rest.split_at_checked(n) else {
            bail!(
                "truncated buffer: {what} at offset {} runs past the end: need {n} bytes, have {}",
                self.position(),
                self.remaining()
            );
        };
        self.rest = rest;
        Ok(s)
    }

    /// Like [`Reader::try_take`], naming the field only when the read fails (hot path).
    #[inline]
    pub fn try_take_with(&mut self, n: usize, what: impl FnOnce() -> String) -> Result<&'a [u8]> {
        match self.rest.split_at_checked(n) {
            Some((s, rest)) => {
                self.rest = rest;
                Ok(s)
            }
            None => self.try_take(n, &what()),
        }
    }

    #[inline]
    pub fn try_u8(&mut self, what: &str) -> Result<u8> {
        match self.rest.split_first() {
            Some((&b, rest)) => {
                self.rest = rest;
                Ok(b)
            }
            None => Ok(self.try_take(1, what)?[0]),
        }
    }

    #[inline]
    pub fn try_u32(&mut self, what: &str) -> Result<u32> {
        let b = self.try_take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    #[inline]
    pub fn try_u64(&mut self, what: &str) -> Result<u64> {
        let b = self.try_take(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    pub fn try_i64(&mut self, what: &str) -> Result<i64> {
        Ok(self.try_u64(what)? as i64)
    }

    /// The unread rest, left unread.
    #[inline(always)]
    pub fn peek_rest(&self) -> &'a [u8] {
        self.rest
    }

    /// The rest of the buffer.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }
}

/// The `N` bytes at `offset` inside `window`, checked. Borrowed: a `Result<[u8; N]>` is
/// assembled byte by byte and read back whole, which stalls the hot decode loop.
#[inline]
pub fn try_read_at<'a, const N: usize>(window: &'a [u8], offset: usize, what: &str) -> Result<&'a [u8; N]> {
    match offset.checked_add(N) {
        Some(end) if end <= window.len() => Ok(window[offset..end].try_into().expect("N bytes")),
        _ => bail!(
            "truncated window: {what} at offset {offset} runs past the end: need {N} bytes, have {}",
            window.len().saturating_sub(offset)
        ),
    }
}
