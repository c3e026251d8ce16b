//! The single-owner writer's common case (issue 15): a kernel entry and its exit written
//! as one reservation with branch-free 1- and 2-byte varints.
//!
//! seL4's Yield, and most syscalls, give four values below 2^14: the entry's header (a
//! delta below 2^10 ticks since the last record), its word, the exit's header (a
//! duration below 2^10) and the duration's payload. Each then takes one or two bytes,
//! stored without a loop and without computing lengths ahead (the record's end is
//! where the last store ended). Anything else takes [`Ring::try_fast_pair_masked`], then
//! the general path.

use tracemark_format::record::{self, Kind};
use tracemark_format::ring::{offsets, BLOCK_HEADER_LEN, RING_HEADER_LEN};

use crate::mem::Mem;
use crate::sync::Ordering;

use super::fast::{FAST_DELTA_LIMIT, SMALL_VARINTS_MAX};
use super::Ring;

/// Values below this take one or two varint bytes.
const TWO_BYTES: u32 = 1 << 14;

/// Stores the 1- or 2-byte LEB128 varint of `v` (below [`TWO_BYTES`]) at `at`; returns
/// the position after it. One compare, one or two stores: no length computed ahead, no
/// loop (a measured alternative, both stores always made with the second at the
/// varint's last byte, took 10 instructions more per seL4 Yield under QEMU `-icount`).
///
/// # Safety
///
/// `at + 2 <= mem.len()`, and the bytes from `at` are the caller's to write.
#[inline(always)]
unsafe fn put_short(mem: &Mem<'_>, at: usize, v: u32) -> usize {
    // SAFETY: `at` and `at + 1` are below `at + 2`, the caller's bound.
    unsafe {
        if v < 0x80 {
            mem.store_byte(at, v as u8);
            at + 1
        } else {
            mem.store_byte(at, v as u8 | 0x80);
            mem.store_byte(at + 1, (v >> 7) as u8);
            at + 2
        }
    }
}

impl Ring<'_> {
    /// A KENTRY with word `word` at `t1` and a KEXIT with wire payload `exit` at `t2`, as
    /// one reservation, when all four varints take at most two bytes; returns `false`,
    /// having written nothing, otherwise (or where the common path would not write: a
    /// timestamp marker, no room, a stale lap cache). The bytes are those of the two
    /// records written one after the other.
    ///
    /// # Safety
    ///
    /// The single-context contract ([`Ring::write_small_masked`]).
    #[inline(always)]
    pub(crate) unsafe fn try_short_pair_owned(
        &self,
        word: u32,
        t1: u64,
        exit: u32,
        t2: u64,
    ) -> bool {
        let mem = self.mem.local();
        let write = mem.hdr(offsets::WRITE_POS);
        let pos = write.load(Ordering::Relaxed);
        let last_pos = mem.hdr(offsets::LAST_POS).load(Ordering::Relaxed);
        let d1 = t1.wrapping_sub(mem.load_last_ts());
        let d2 = t2.wrapping_sub(t1);
        // Both deltas below 2^10 (a step back wraps far above), so both headers are
        // below 2^14; `FAST_DELTA_LIMIT` bounds them as the common path does.
        const SHORT_DELTA: u64 = 1 << (14 - record::KIND_BITS);
        const _: () = assert!(SHORT_DELTA <= FAST_DELTA_LIMIT);
        if last_pos != pos || (d1 | d2) >= SHORT_DELTA || (word | exit) >= TWO_BYTES {
            return false;
        }
        let h1 = record::record_header(d1, Kind::KernelEntry as u8) as u32;
        let h2 = record::record_header(d2, Kind::KernelExit as u8) as u32;
        // The common path's placement check: `rel < area`, and the longest `Small` record
        // (`SMALL_VARINTS_MAX`) plus as many bytes again fits from `offset`: more than
        // the 8 bytes written here.
        let rel = pos.wrapping_add(self.lap.load(Ordering::Relaxed));
        let offset = rel & self.mask;
        if !(rel < self.area
            && offset.wrapping_sub(BLOCK_HEADER_LEN as u32) < self.room - SMALL_VARINTS_MAX)
        {
            return false;
        }
        let start = RING_HEADER_LEN + rel as usize;
        // SAFETY: `rel < area` and `offset + 2 * SMALL_VARINTS_MAX < block_size`: the
        // (at most 8) bytes from `start` lie in the block at `rel - offset`, inside the
        // ring, past `write_pos`; no other writer runs (the caller's contract), so they
        // are ours.
        let end = unsafe {
            let at = put_short(&mem, start, h1);
            let at = put_short(&mem, at, word);
            let at = put_short(&mem, at, h2);
            put_short(&mem, at, exit)
        };
        let end = pos + (end - start) as u32;
        let block = RING_HEADER_LEN + (rel - offset) as usize;
        // SAFETY: as above (the block's header).
        let records = unsafe { mem.word(block + offsets::BLOCK_RECORDS) };
        write.store(end, Ordering::Relaxed);
        records.store(
            records.load(Ordering::Relaxed).wrapping_add(2),
            Ordering::Relaxed,
        );
        self.publish_last(&mem, t2, end);
        mem.hdr(offsets::COMMIT_POS).store(end, Ordering::Release);
        true
    }
}

/// Where the next short pair goes, for a copy of the single-owner writer's short pair outside
/// this crate: the C inline writer of `tracemark_inline.h`, generated by `tracemark-c`
/// from the format crate's offsets and checked against this writer byte for byte. The
/// copy keeps it, writes pairs at `start` while `write_pos` still equals `pos` (nothing
/// else wrote since) and the pair starts at or before `last`, and moves it on past each
/// pair it writes; on any miss it leaves the pair to the library and takes the cursor
/// again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortPairCursor {
    /// The ring's memory (its header's first byte).
    pub memory: *mut u8,
    /// `write_pos` when taken.
    pub pos: u32,
    /// `last_ts` when taken: the time of the record that ends at `pos`.
    pub last_ts: u64,
    /// Where a short pair may go, or `None` when none may be written at `pos` (the
    /// ring's last record does not end there, or its block has no room for one).
    pub place: Option<ShortPairPlace>,
}

/// The memory offsets a short pair at [`ShortPairCursor::pos`] works with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortPairPlace {
    /// The memory offset of position `pos`.
    pub start: usize,
    /// The last memory offset a short pair may start at in this block (its longest form,
    /// 8 bytes, and as many again then end before the block's last byte, as for the
    /// common path's placement check).
    pub last: usize,
    /// The memory offset of the block's record count (a 32-bit word).
    pub records: usize,
}

impl Ring<'_> {
    /// Where the next short pair goes (see [`ShortPairCursor`]). Computed from the
    /// ring header and the geometry, not from the lap cache.
    pub fn short_pair_cursor(&self) -> ShortPairCursor {
        let mem = self.mem.local();
        let pos = mem.hdr(offsets::WRITE_POS).load(Ordering::Relaxed);
        let last_pos = mem.hdr(offsets::LAST_POS).load(Ordering::Relaxed);
        let p = self.geometry.split(pos);
        // The placement check of `try_short_pair_owned`: the offset minus the block
        // header's length below `room`.
        let room = self.room - SMALL_VARINTS_MAX;
        let place = (last_pos == pos && p.offset.wrapping_sub(BLOCK_HEADER_LEN as u32) < room)
            .then(|| {
                let block = self.block_of(p.seq);
                ShortPairPlace {
                    start: block + p.offset as usize,
                    last: block + BLOCK_HEADER_LEN + room as usize - 1,
                    records: block + offsets::BLOCK_RECORDS,
                }
            });
        ShortPairCursor {
            memory: self.mem.as_ptr().cast_mut(),
            pos,
            last_ts: mem.load_last_ts(),
            place,
        }
    }
}
