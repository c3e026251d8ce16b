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

use super::fast::exit;
use super::{Outcome, Ring, Step, Wrote};

impl<'a> Ring<'a> {
    /// The rest of a write the fast path declined: the general writer, then the exit
    /// (here, so that the inlined fast path returns straight from registers). Out of
    /// line and not generic: one copy for every caller.
    #[inline(never)]
    pub(super) fn write_slow(
        &self,
        nest: u32,
        now: &dyn Fn() -> u64,
        fields: &Fields<'_>,
    ) -> Wrote {
        let result = self.write_general_loop(now, fields, true);
        exit(&self.mem, nest);
        result
    }

    /// The general writer: any record, retried with a fresh clock reading until it is
    /// written or dropped. One shared copy (the slow path and the drop reporter).
    #[inline(never)]
    pub(super) fn write_general_loop(
        &self,
        now: &dyn Fn() -> u64,
        fields: &Fields<'_>,
        count_drop: bool,
    ) -> Wrote {
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
            let ts = now();
            // `last_ts` was read before the clock, and every writer nested since stored a
            // later reading (or made our reservation fail), so a reading below it means
            // the clock itself went back: say so first (once per write; a record that
            // does not fit is not counted as dropped), then write from a fresh reading.
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
