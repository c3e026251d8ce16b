//! The general path, out of line: any record at any time (timestamp markers, large
//! values, user and image records), retried with a fresh clock reading when an interrupt
//! wrote in between; it opens the next block when the record does not fit.
//!
//! It writes a record described as data, [`Fields`] (kind, payload varints, raw bytes),
//! not as an [`Event`](tracemark_format::Event): one encode loop for every kind (which
//! also sizes the record, in `Ring::put_record`), and no per-kind code or closure, so
//! there is one copy of this path whatever the recording calls a firmware uses. (A
//! separate branch-free length loop was measured: 180 B more on thumbv7em for 0.1 to
//! 0.3 fewer instructions per record, amortised.)

use tracemark_format::record::{Fields, Kind, Time, MAX_DELTA};
use tracemark_format::ring::{offsets, BLOCK_HEADER_LEN};

use crate::pos;
use crate::sync::{compiler_fence, local_add, local_cas, Ordering};

use super::fast::{exit, Reading};
use super::{Outcome, Ring, Step, Wrote};

impl<'a> Ring<'a> {
    /// The rest of a write the fast path declined: the general writer, then the exit
    /// (here, so that the inlined fast path returns straight from registers). Out of
    /// line and not generic: one copy for every caller.
    #[inline(never)]
    pub(super) fn write_slow(
        &self,
        nest: u32,
        reading: Reading,
        now: &dyn Fn() -> u64,
        fields: &Fields<'_>,
    ) -> Wrote {
        let result = self.write_general_loop(Some(reading), now, fields, true);
        exit(&self.mem, nest);
        result
    }

    /// The general writer: any record, retried with a fresh clock reading until it is
    /// written or dropped. One shared copy (the slow path and the drop reporter).
    ///
    /// `first` is a clock reading the caller already took (the fast path's) with the
    /// `write_pos` it loaded before taking it: the record is written at that reading,
    /// without reading the clock again, while `write_pos` still has that value; otherwise
    /// the clock is read afresh. So a record reads the clock once, whichever path writes
    /// it (issue 15), and its time is never below a record before it in the ring: every
    /// record reserved before that `write_pos` load was timed before it (a writer reads
    /// the clock before it reserves, and the writers this one interrupted read it before
    /// this one started), and one that reserves after it moves `write_pos` (so the
    /// reading is not kept, or this write's reservation fails and it reads again).
    /// Comparing the reading with the published `last_ts` instead is not enough: a
    /// writer interrupted between its reservation and its publication (this write's own
    /// held entry, or a CLOCKBACK) publishes its older time over a nested writer's later
    /// one (`preempt_tests::a_kept_clock_reading_never_goes_back_past_a_nested_record`;
    /// the false CLOCKBACK of commit 935f9b5).
    #[inline(never)]
    pub(super) fn write_general_loop(
        &self,
        first: Option<Reading>,
        now: &dyn Fn() -> u64,
        fields: &Fields<'_>,
        count_drop: bool,
    ) -> Wrote {
        let mut first = first;
        // A held deferred entry goes first (its `last_pos` sent this write here).
        if super::held::is_held(self.hdr(offsets::PENDING_POS).load(Ordering::Relaxed)) {
            self.write_held_entry();
        }
        let write = self.hdr(offsets::WRITE_POS);
        let mut stepped_back = false;
        loop {
            let pos = write.load(Ordering::Relaxed);
            let last_pos = self.hdr(offsets::LAST_POS).load(Ordering::Relaxed);
            let last_ts = self.mem.load_last_ts();
            compiler_fence();
            // The kept reading (only while nothing was reserved since it was taken), or a
            // reading taken after `last_ts` was loaded.
            let ts = match first.take() {
                Some((ts, at)) if at == pos => ts,
                _ => now(),
            };
            // Every record before `pos` was timed before `ts` was read (above), so a
            // reading below `last_ts` means the clock itself went back: say so first
            // (once per write; a record that does not fit is not counted as dropped),
            // then write the record at the same reading (the CLOCKBACK record published
            // it as the last time).
            // One call of the one-attempt writer for both records: it is inlined here.
            let back;
            let (record, is_back) = if ts < last_ts && !stepped_back {
                back = Fields::varint(Kind::ClockBack, last_ts - ts);
                (&back, true)
            } else {
                (fields, false)
            };
            let step =
                self.write_general(pos, last_pos, last_ts, ts, record, count_drop && !is_back);
            let (outcome, end) = match step {
                Step::Retry => continue,
                Step::Done(outcome, end) => (outcome, end),
                // The LOST record goes after this one; `end` stays this record's.
                Step::Report(end) => {
                    self.report_drops(now);
                    (Outcome::Written, end)
                }
            };
            if is_back {
                stepped_back = true;
                // The reading is kept while nothing else was reserved after the
                // CLOCKBACK (`end`; 0 if it was dropped, and then the reading is kept
                // only if nothing was reserved at all, which is as safe).
                first = Some((ts, end));
                continue;
            }
            return (outcome, ts, end);
        }
    }

    /// The general path, one attempt: any record, any time; opens the next block if the
    /// record does not fit. Only timestamp markers, large values, block switches and
    /// writers that an interrupt raced come here. Writing into the current block and
    /// into a new one share the reservation, the encoder call, the publication and the
    /// lap cache update (one copy of each).
    #[inline(always)]
    pub(super) fn write_general(
        &self,
        pos: u32,
        last_pos: u32,
        last_ts: u64,
        ts: u64,
        fields: &Fields<'_>,
        count_drop: bool,
    ) -> Step {
        let g = self.geometry;
        let mem = self.mem.local();
        let p = g.split(pos);
        let time = match ts.checked_sub(last_ts) {
            Some(delta) if last_pos == pos && delta <= MAX_DELTA => Time::Delta(delta),
            _ => Time::Absolute(ts),
        };
        let mut rec = Rec { time, ts, fields };
        // SAFETY: `None` only sizes the record.
        let mut len = unsafe { self.put_record(None, &rec) };
        // NOTE: `<` not `<=`, as in the fast path.
        let fits = p.offset >= BLOCK_HEADER_LEN as u32 && p.offset + len <= self.mask;
        let target = if fits {
            p.seq
        } else {
            match self.next_block(pos, ts, count_drop) {
                Some(target) => target,
                None => return Step::Done(Outcome::Dropped, 0),
            }
        };
        let slot = self.slot(target);
        let block = g.block_offset(slot);
        let (opening, end) = if fits {
            (None, pos + len)
        } else {
            // The first record of a block has a delta from the block's base time.
            rec.time = Time::Delta(0);
            // SAFETY: `None` only sizes the record.
            len = unsafe { self.put_record(None, &rec) };
            let end = g.join(target, BLOCK_HEADER_LEN as u32 + len);
            (Some(self.opening(pos, target, block)), end)
        };
        if !local_cas(mem.hdr(offsets::WRITE_POS), pos, end) {
            return Step::Retry;
        }
        let at = match &opening {
            None => block + p.offset as usize,
            Some(o) => {
                self.open_block(pos, o, slot, block, ts, fields.is_counted());
                block + BLOCK_HEADER_LEN
            }
        };
        // SAFETY: the CAS reserved `len` bytes at `at`: `p.offset + len <= mask` in the
        // current block, or the first `len` bytes after a new block's header; `block`
        // is a slot's offset (`slot < block_count`), inside the ring.
        unsafe { self.put_record(Some(at), &rec) };
        if opening.is_none() && fields.is_counted() {
            // SAFETY: as above (the block's header).
            local_add(unsafe { mem.word(block + offsets::BLOCK_RECORDS) }, 1);
        }
        self.publish_last_general(&mem, ts, end);
        // Refresh the fast path's cache for this lap (any lap's value is correct).
        self.lap
            .store(pos::lap_of(&g, target, slot), Ordering::Relaxed);
        // Records are only ever dropped when a block cannot be opened, so a successful
        // open is where unreported drops are reported.
        if opening.is_some() && count_drop && self.has_unreported_drops() {
            return Step::Report(end);
        }
        Step::Done(Outcome::Written, end)
    }

    /// Writes the record's bytes at `at` (`Some`), in space this writer has reserved,
    /// or only counts them (`None`); returns their number. Out of line: the general path
    /// sizes and writes records with this one copy of the encoder, and its arguments
    /// fit in registers.
    ///
    /// # Safety
    ///
    /// With `Some(at)`: the caller reserved the record's length at `at`, inside one block
    /// of the ring (`None` touches no memory).
    #[inline(never)]
    pub(super) unsafe fn put_record(&self, at: Option<usize>, rec: &Rec<'_, '_>) -> u32 {
        let mem = self.mem.local();
        let mut n = 0u32;
        rec.fields.encode_with(rec.time, rec.ts, &mut |b| {
            if let Some(at) = at {
                // SAFETY: `at + n` is below `at + len`, reserved (the caller's contract).
                unsafe { mem.store_byte(at + n as usize, b) };
            }
            n += 1;
        });
        n
    }
}

/// A record as the general path writes it: its fields at a time.
pub(super) struct Rec<'r, 'd> {
    time: Time,
    ts: u64,
    fields: &'r Fields<'d>,
}
