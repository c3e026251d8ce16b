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
                let w = unsafe { self.mem().load_word_for_reader(word_at) };
                // `from < 4` and `i < out.len()`: at least one byte is copied. (`get_mut`
                // rather than slicing: no panic path in the C library's dump; bytes
                // shifted out of the word rather than copied from an array, which LLVM
                // compiles to a `memcpy` call, 744 B on thumbv7m.)
                let from = at - word_at;
                for k in from..4 {
                    let Some(o) = out.get_mut(i) else { break };
                    *o = (w >> (8 * k)) as u8;
                    i += 1;
                }
            } else {
                // SAFETY: `at < self.len()`, inside the memory.
                out[i] = unsafe { self.mem().load_byte(at) };
                i += 1;
            }
        }
    }

    /// How many bytes from the start of the ring memory a dump sends: up to the write
    /// position ([`Geometry::end_of`](tracemark_format::ring::Geometry::end_of)) while
    /// the block slot after it was never opened (a ring not yet round its slots: its
    /// header zeroed at initialisation, and blocks open in slot order), else the whole
    /// ring. Nothing past it was ever written (FORMAT.md 7.3): a 4 MiB ring holding
    /// 900 KB sends 900 KB.
    pub fn used_len(&self) -> usize {
        let g = self.geometry();
        // `Geometry::end_of`, with the ring's division-free slot (no panic path).
        let p = g.split(self.mem().hdr(offsets::WRITE_POS).load(Ordering::Relaxed));
        let end = self.block_of(p.seq) + p.offset as usize;
        // The rule itself is the format crate's, shared with `RingView::dump_len`.
        g.dump_len(end, |at| {
            // SAFETY: `Geometry::dump_len` asks only for a block slot's magic (4-aligned)
            // that lies below the ring's length, inside the memory.
            unsafe { self.mem().load_word_for_reader(at) }
        })
    }

    /// Streams the used part of the ring ([`Ring::used_len`]) to `sink` in chunks of at
    /// most 256 bytes, as it is now. Meant for a stopped or quiet ring (a final dump over
    /// a UART); a reader racing a busy writer should use [`Ring::snapshot`].
    pub fn dump<E>(&self, mut sink: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        let mut chunk = [0u8; 256];
        let mut at = 0;
        let len = self.used_len();
        while at < len {
            let n = chunk.len().min(len - at);
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

/// A dump sends the used part of a ring not yet round its blocks (FORMAT.md 7.3), and the
/// reader gets from it exactly what the whole ring holds.
#[cfg(all(test, not(loom)))]
mod used_prefix {
    use std::cell::Cell;
    use std::vec::Vec;

    use tracemark_format::ring::{BlockState, Mode, RingView, RING_HEADER_LEN};
    use tracemark_format::{Event, Record};

    use crate::{Config, Tracer};

    const BLOCK: u32 = 512;
    const BLOCKS: usize = 8;

    fn dumped<C: crate::Clock>(t: &Tracer<'_, C>) -> Vec<u8> {
        let mut bytes = Vec::new();
        t.ring()
            .dump(|c| {
                bytes.extend_from_slice(c);
                Ok::<(), ()>(())
            })
            .unwrap();
        bytes
    }

    fn whole<C: crate::Clock>(t: &Tracer<'_, C>) -> Vec<u8> {
        let mut out = std::vec![0u8; t.ring().len()];
        t.ring().read_at(0, &mut out);
        out
    }

    /// Records and block states, in order; panics on a damaged or missing block.
    fn decode(image: &[u8]) -> (Vec<Record>, Vec<BlockState>) {
        let view = RingView::parse(image).unwrap();
        let mut records = Vec::new();
        let mut states = Vec::new();
        for b in view.blocks() {
            states.push(b.state);
            assert!(
                matches!(b.state, BlockState::Valid | BlockState::Empty),
                "{b:?}"
            );
            records.extend(b.decode().map(|r| r.unwrap()));
        }
        (records, states)
    }

    /// `read_at` at any offset and length gives the bytes of the whole image (which
    /// parses, CRC-checked): the header and block-header words are cut at every byte.
    #[test]
    fn read_at_any_offset_matches_the_whole_image() {
        let mut words = std::vec![0u64; (RING_HEADER_LEN + 2 * BLOCK as usize) / 8];
        let len = words.len() * 8;
        // SAFETY: `len` initialised bytes of `words`, 8-aligned, used only through this
        // view while `words` lives.
        let mem = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) };
        let now = Cell::new(1000u64);
        let config = Config {
            block_size: BLOCK,
            mode: Mode::Overwrite,
            ..Config::new()
        };
        let t = Tracer::new(mem, &config, || {
            now.set(now.get() + 3);
            now.get()
        })
        .unwrap();
        for n in 0..40 {
            t.interrupt(n);
        }
        let all = whole(&t);
        assert_eq!(decode(&all).0.len(), 40);
        for off in 0..RING_HEADER_LEN + 40 {
            for n in 1..=9 {
                let mut out = [0xaau8; 9];
                t.ring().read_at(off, &mut out[..n]);
                assert_eq!(out[..n], all[off..off + n], "offset {off}, {n} bytes");
                assert!(
                    out[n..].iter().all(|&b| b == 0xaa),
                    "nothing past {n} bytes"
                );
            }
        }
        // Past the ring: zeros.
        let mut out = [0xaau8; 6];
        t.ring().read_at(len - 2, &mut out);
        assert_eq!(out, [all[len - 2], all[len - 1], 0, 0, 0, 0]);
    }

    #[test]
    #[cfg_attr(miri, ignore = "a few thousand dumps: slow under miri")]
    fn a_partly_used_ring_dumps_its_used_bytes_only() {
        let mut words = std::vec![0u64; (RING_HEADER_LEN + BLOCKS * BLOCK as usize) / 8];
        let len = words.len() * 8;
        // SAFETY: `len` initialised bytes of `words`, 8-aligned, used only through this
        // view while `words` lives.
        let mem = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) };
        let now = Cell::new(100u64);
        let config = Config {
            block_size: BLOCK,
            mode: Mode::Overwrite,
            ..Config::new()
        };
        let t = Tracer::new(mem, &config, || {
            now.set(now.get() + 7);
            now.get()
        })
        .unwrap();
        // Nothing written: the header alone.
        assert_eq!(dumped(&t).len(), RING_HEADER_LEN);
        let mut n = 0u32;
        let mut laps = 0;
        while laps < 2 {
            t.interrupt(n % 300);
            if n % 5 == 0 {
                t.user(n, &[n as u8; 9]);
            }
            n += 1;
            if n % 23 != 0 {
                continue;
            }
            let image = dumped(&t);
            let all = whole(&t);
            let used = t.ring().used_len();
            assert_eq!(image.len(), used);
            // One rule (Geometry::dump_len): the live ring's used part is what a dump of
            // its image copied whole (a snapshot, seL4's tm_frame_uart) sends.
            assert_eq!(RingView::parse(&all).unwrap().dump_len(), used);
            assert_eq!(image[..], all[..used], "a prefix of the ring's bytes");
            let (records, states) = decode(&image);
            assert_eq!((records.clone(), states.clone()), decode(&all));
            if image.len() < all.len() {
                // Every record is there, none past the image was ever written.
                let irqs = records
                    .iter()
                    .filter(|r| matches!(r.event, Event::Interrupt { .. }))
                    .count();
                assert_eq!(irqs, n as usize);
                assert!(all[used..].iter().all(|&b| b == 0));
                // One byte short of the used part is a truncated dump: its last block
                // is reported missing, not read as complete.
                let short = RingView::parse(&image[..used - 1]).unwrap();
                assert!(short.blocks().any(|b| b.state == BlockState::Missing));
            } else if states.iter().all(|s| *s == BlockState::Valid) {
                // Round the blocks once: the whole ring is sent from then on.
                laps += 1;
            }
            assert!(n < 100_000);
        }
    }
}
