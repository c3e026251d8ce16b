//! Opening and closing blocks: reclaiming the next slot (overwrite) or refusing (drop),
//! the overwritten and dropped counters, and the `Lost` records that report drops.

use tracemark_format::record::{Fields, Time, END_MARKER};
use tracemark_format::ring::{offsets, Mode, BLOCK_HEADER_LEN, BLOCK_MAGIC};

use crate::pos::{self};
use crate::sync::{fence, local_add, local_cas, Ordering};

use super::{Outcome, Ring, Step};

impl<'a> Ring<'a> {
    /// The slow path: close the current block and open the next one.
    #[cold]
    #[inline(never)]
    pub(super) fn open_block(
        &self,
        pos: u32,
        ts: u64,
        fields: &Fields<'_>,
        count_drop: bool,
    ) -> Step {
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
            return Step::Done(Outcome::Dropped);
        }
        // A local copy of the memory view keeps its base in a register (see
        // `Mem::local`), and the target's slot is computed once (the block, the lap
        // cache and the old block all follow from it).
        let mem = self.mem.local();
        let slot = self.slot(target);
        // The sequence number that used the target slot one lap ago.
        let previous = pos::previous_lap(&g, target);
        let block = g.block_offset(slot);
        // The old block in the target slot is fully committed (checked above), so its
        // header is stable until our CAS.
        let records = mem.word(block + offsets::BLOCK_RECORDS);
        let stale_count = records.load(Ordering::Relaxed);
        let old_valid = mem
            .word(block + offsets::BLOCK_MAGIC)
            .load(Ordering::Relaxed)
            == BLOCK_MAGIC
            && mem.word(block + offsets::BLOCK_SEQ).load(Ordering::Relaxed) == previous;
        let reclaimed = if old_valid { stale_count } else { 0 };
        let len = self.put_record(None, Time::Delta(0), ts, fields);
        let new_pos = g.join(target, BLOCK_HEADER_LEN as u32 + len);
        if !local_cas(mem.word(offsets::WRITE_POS), pos, new_pos) {
            return Step::Retry;
        }
        // Readers that see our writes into the reclaimed slot must also see the CAS.
        fence(Ordering::Release);
        if opened {
            // `target` is the sequence number after `p.seq`, so `p.seq`'s slot is the
            // one before (no second reciprocal multiplication).
            let end = g.block_offset(pos::slot_before(&g, slot)) + p.offset as usize;
            mem.store_byte(end, END_MARKER);
        }
        if reclaimed != 0 {
            self.add_u64(offsets::OVERWRITTEN, u64::from(reclaimed));
        }
        let lost_before = mem.load_u64(offsets::OVERWRITTEN) + mem.load_u64(offsets::DROPPED);
        mem.word(block + offsets::BLOCK_SEQ)
            .store(target, Ordering::Relaxed);
        mem.store_u64(block + offsets::BLOCK_BASE_TS, ts);
        mem.store_u64(block + offsets::BLOCK_LOST_BEFORE, lost_before);
        mem.word(block + offsets::BLOCK_MAGIC)
            .store(BLOCK_MAGIC, Ordering::Relaxed);
        // Nested writers may already have counted their records: adjust, don't store.
        local_add(
            records,
            u32::from(fields.is_counted()).wrapping_sub(stale_count),
        );
        self.put_record(Some(block + BLOCK_HEADER_LEN), Time::Delta(0), ts, fields);
        self.publish_last(&mem, ts, new_pos);
        // The fast path's cache: the new block's lap.
        self.lap
            .store(pos::lap_of(&g, target, slot), Ordering::Relaxed);
        Step::Done(Outcome::Written)
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
            self.mem.store_u64(offsets::FIRST_DROP_TS, ts);
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
        let since = self.mem.load_u64(offsets::FIRST_DROP_TS);
        let count = u64::from(d.wrapping_sub(r));
        let (outcome, _) = self.write_general_loop(now, &Fields::lost(count, since), false);
        if outcome == Outcome::Dropped {
            // Still full: give the claim back so a later writer reports them.
            local_cas(reported, d, r);
        }
    }
}
