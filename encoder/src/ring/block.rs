//! Opening and closing blocks: reclaiming the next slot (overwrite) or refusing (drop),
//! the overwritten and dropped counters, and the `Lost` records that report drops.

use tracemark_format::record::{Fields, END_MARKER};
use tracemark_format::ring::{offsets, Mode, BLOCK_HEADER_LEN, BLOCK_MAGIC};

use crate::pos::{self};
use crate::sync::{fence, local_add, local_cas, Ordering};

use super::{Outcome, Ring};

/// A block the general path opens: where, and what the slot held before.
pub(super) struct Opening {
    /// The new block's sequence number.
    pub(super) target: u32,
    /// Whether a block was open at the position (its END marker is due).
    opened: bool,
    /// The old block's record count, read before the reservation.
    stale_count: u32,
    /// Records of the old block that the new one overwrites (0 if it was not valid).
    reclaimed: u32,
}

impl<'a> Ring<'a> {
    /// Closing the block at `pos` and opening the next, before the reservation: the
    /// target sequence number, or `None` if the ring is full (drop mode, or overwrite
    /// mode with an interrupted writer still in the target slot), having counted the
    /// drop if `count_drop`.
    #[inline(always)]
    pub(super) fn next_block(&self, pos: u32, ts: u64, count_drop: bool) -> Option<u32> {
        let g = self.geometry;
        let p = g.split(pos);
        let opened = p.offset >= BLOCK_HEADER_LEN as u32;
        let target = if opened { g.next_seq(p.seq) } else { p.seq };
        let full = match self.mode {
            // Drop mode never wraps: sequence numbers run 0..block_count.
            Mode::Drop => opened && target >= g.block_count,
            Mode::Overwrite => {
                let commit = g.split(self.hdr(offsets::COMMIT_POS).load(Ordering::Acquire));
                opened && g.distance(commit.seq, target) >= g.block_count
            }
        };
        if full {
            if count_drop {
                self.count_drop(ts);
            }
            return None;
        }
        Some(target)
    }

    /// What the slot of `target` (at `block`) holds, read before the reservation: the
    /// old block there is fully committed ([`Ring::next_block`] checked), so its header
    /// is stable until our CAS.
    #[inline(always)]
    pub(super) fn opening(&self, pos: u32, target: u32, block: usize) -> Opening {
        let g = self.geometry;
        let mem = self.mem.local();
        // The sequence number that used the target slot one lap ago.
        let previous = pos::previous_lap(&g, target);
        // SAFETY: (the three header words) `block` is a slot's offset (`slot <
        // block_count`, the caller's), inside the ring.
        let [records, magic, seq] = [
            offsets::BLOCK_RECORDS,
            offsets::BLOCK_MAGIC,
            offsets::BLOCK_SEQ,
        ]
        .map(|field| {
            // SAFETY: as said above.
            unsafe { mem.word(block + field) }.load(Ordering::Relaxed)
        });
        let stale_count = records;
        let old_valid = magic == BLOCK_MAGIC && seq == previous;
        Opening {
            target,
            opened: g.split(pos).offset >= BLOCK_HEADER_LEN as u32,
            stale_count,
            reclaimed: if old_valid { stale_count } else { 0 },
        }
    }

    /// After the reservation (`pos` to the first record of `o.target`, in `slot` at
    /// `block`): the old block's END marker, the overwritten count, the new block's
    /// header and its record count (`counted`: whether the first record counts).
    #[inline(always)]
    pub(super) fn open_block(
        &self,
        pos: u32,
        o: &Opening,
        slot: u32,
        block: usize,
        ts: u64,
        counted: bool,
    ) {
        let g = self.geometry;
        let mem = self.mem.local();
        // Readers that see our writes into the reclaimed slot must also see the CAS.
        fence(Ordering::Release);
        if o.opened {
            // `target` is the sequence number after the old block's, so the old block's
            // slot is the one before (no second reciprocal multiplication).
            let end = g.block_offset(pos::slot_before(&g, slot)) + g.split(pos).offset as usize;
            // SAFETY: a position's offset is below `block_size`, in the old block's slot
            // (`slot_before` gives a slot below `block_count`), inside the ring.
            unsafe { mem.store_byte(end, END_MARKER) };
        }
        if o.reclaimed != 0 {
            self.add_u64(offsets::OVERWRITTEN, u64::from(o.reclaimed));
        }
        let lost_before = mem.hdr_u64(offsets::OVERWRITTEN) + mem.hdr_u64(offsets::DROPPED);
        // SAFETY: (the new block's header) `block` is the offset of `slot`, below
        // `block_count` (the caller's), inside the ring.
        unsafe {
            mem.word(block + offsets::BLOCK_SEQ)
                .store(o.target, Ordering::Relaxed);
            mem.store_u64(block + offsets::BLOCK_BASE_TS, ts);
            mem.store_u64(block + offsets::BLOCK_LOST_BEFORE, lost_before);
            mem.word(block + offsets::BLOCK_MAGIC)
                .store(BLOCK_MAGIC, Ordering::Relaxed);
            // Nested writers may already have counted their records: adjust, don't store.
            local_add(
                mem.word(block + offsets::BLOCK_RECORDS),
                u32::from(counted).wrapping_sub(o.stale_count),
            );
        }
    }

    /// Adds `v` to the 64-bit counter at `off` (two words, carry by hand). Out of line:
    /// the block opener and the drop counter share it.
    #[cold]
    #[inline(never)]
    pub(super) fn add_u64(&self, off: usize, v: u64) {
        let lo = local_add(self.hdr(off), v as u32);
        let carry = u32::from(lo.checked_add(v as u32).is_none());
        local_add(self.hdr(off + 4), (v >> 32) as u32 + carry);
    }

    #[cold]
    pub(super) fn count_drop(&self, ts: u64) {
        let dropped = self.hdr(offsets::DROPPED).load(Ordering::Relaxed);
        if dropped == self.hdr(offsets::REPORTED_DROPS).load(Ordering::Relaxed) {
            self.mem.set_hdr_u64(offsets::FIRST_DROP_TS, ts);
        }
        self.add_u64(offsets::DROPPED, 1);
    }

    pub(super) fn has_unreported_drops(&self) -> bool {
        self.hdr(offsets::DROPPED).load(Ordering::Relaxed)
            != self.hdr(offsets::REPORTED_DROPS).load(Ordering::Relaxed)
    }

    /// Writes a `Lost` record for drops not yet reported, if there is room now.
    #[cold]
    #[inline(never)]
    pub(super) fn report_drops(&self, now: &dyn Fn() -> u64) {
        let reported = self.hdr(offsets::REPORTED_DROPS);
        let r = reported.load(Ordering::Relaxed);
        let d = self.hdr(offsets::DROPPED).load(Ordering::Relaxed);
        // Claim the drops first, so a nested writer does not report them twice.
        if r == d || !local_cas(reported, r, d) {
            return;
        }
        let since = self.mem.hdr_u64(offsets::FIRST_DROP_TS);
        let count = u64::from(d.wrapping_sub(r));
        let (outcome, _, _) =
            self.write_general_loop(None, now, &Fields::lost(count, since), false);
        if outcome == Outcome::Dropped {
            // Still full: give the claim back so a later writer reports them.
            local_cas(reported, d, r);
        }
    }
}
