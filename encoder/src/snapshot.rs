//! Reading a ring while its CPU writes it: consistent snapshots, streaming dumps, and
//! the memory span for a debugger.

use tracemark_format::ring::{offsets, RingHeader, BLOCK_HEADER_LEN, RING_HEADER_LEN};
use zerocopy::FromBytes;

use crate::ring::Ring;
use crate::sync::{fence, Ordering};

/// Why a snapshot could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotError {
    /// The output buffer is smaller than the ring.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// The writer opened new blocks during every attempt; try again later.
    Busy,
}

impl Ring<'_> {
    /// Bytes of ring memory in use: header and blocks.
    pub fn len(&self) -> usize {
        self.geometry().ring_len()
    }

    /// Always false: a ring holds at least a header and two blocks.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The ring memory's address and length, for a debugger or a crash-dump routine.
    pub fn memory_span(&self) -> (*const u8, usize) {
        (self.mem().as_ptr(), self.len())
    }

    /// Copies ring bytes `offset..offset + out.len()` into `out`, through atomics (the
    /// header and block headers as words, records as bytes). Bytes past the ring are 0.
    pub fn read_at(&self, offset: usize, out: &mut [u8]) {
        let g = self.geometry();
        let bs = g.block_size() as usize;
        let mut i = 0;
        while i < out.len() {
            let at = offset + i;
            let in_words = at < RING_HEADER_LEN
                || (at < self.len() && (at - RING_HEADER_LEN) % bs < BLOCK_HEADER_LEN);
            if at >= self.len() {
                out[i] = 0;
                i += 1;
            } else if in_words {
                let word_at = at & !3;
                // SAFETY: `word_at` is 4-aligned and `at < self.len()`, the ring's length
                // (a multiple of 8 within the memory), so the word is inside it.
                let w = unsafe { self.mem().load_word_for_reader(word_at) }.to_le_bytes();
                // `from < 4` and `i < out.len()`: at least one byte is copied. (`zip`
                // rather than slicing: no panic path in the C library's dump.)
                let from = at - word_at;
                let rest = out.get_mut(i..).unwrap_or_default();
                for (o, b) in rest.iter_mut().zip(w.iter().skip(from)) {
                    *o = *b;
                    i += 1;
                }
            } else {
                // SAFETY: `at < self.len()`, inside the memory.
                out[i] = unsafe { self.mem().load_byte(at) };
                i += 1;
            }
        }
    }

    /// Streams the whole ring to `sink` in chunks of at most 256 bytes, as it is now.
    /// Meant for a stopped or quiet ring (a final dump over a UART); a reader racing a
    /// busy writer should use [`Ring::snapshot`].
    pub fn dump<E>(&self, mut sink: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        let mut chunk = [0u8; 256];
        let mut at = 0;
        while at < self.len() {
            let n = chunk.len().min(self.len() - at);
            self.read_at(at, &mut chunk[..n]);
            sink(&chunk[..n])?;
            at += n;
        }
        Ok(())
    }

    /// Copies a consistent image of the ring into `out` while the writer may be running
    /// (on another core, or in interrupts of this one): every block in the image whose
    /// sequence number the header's commit position covers is complete and was not
    /// reclaimed during the copy. Retries up to `attempts` times if the writer opened a
    /// block meanwhile. Returns the image length.
    pub fn snapshot(&self, out: &mut [u8], attempts: u32) -> Result<usize, SnapshotError> {
        let len = self.len();
        if out.len() < len {
            return Err(SnapshotError::BufferTooSmall { needed: len });
        }
        let g = self.geometry();
        for _ in 0..attempts {
            // The header first: its commit position decides what the image promises.
            self.read_at(0, &mut out[..RING_HEADER_LEN]);
            let commit =
                RingHeader::ref_from_prefix(&out[..]).map_or(0, |(h, _)| h.commit_pos.get());
            self.read_at(RING_HEADER_LEN, &mut out[RING_HEADER_LEN..len]);
            fence(Ordering::Acquire);
            let write = self.mem().hdr(offsets::WRITE_POS).load(Ordering::Relaxed);
            // NOTE: any block opened after the header was read may have reclaimed a slot
            // we copied; the image is good only if none was.
            if g.split(write).seq == g.split(commit).seq {
                return Ok(len);
            }
        }
        Err(SnapshotError::Busy)
    }

    /// Records lost so far: overwritten with their blocks, and dropped.
    pub fn lost(&self) -> (u64, u64) {
        (
            self.mem().load_u64_remote(offsets::OVERWRITTEN),
            self.mem().load_u64_remote(offsets::DROPPED),
        )
    }
}
