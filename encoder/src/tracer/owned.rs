//! The single-owner writer (issue 15): the recording calls of a kernel that records with
//! interrupts masked and keeps its own per-CPU state (seL4's kernel), timestamped by the
//! caller.
//!
//! [`Masked`](super::Masked) already skips what nesting safety costs. This writer goes
//! further, for a caller that owns its CPU's state:
//!
//! - the caller reads its clock itself (a compile-time choice, inlined into its hooks:
//!   `rdtsc`, `mrs cntvct_el0`) and passes the time, so no clock is called through a
//!   function pointer, and every record reads the clock once;
//! - the caller keeps a kernel entry's time in its own per-CPU data and writes nothing at
//!   the entry. At the exit, [`Owned::kernel_pair`] writes the entry (with its word) and
//!   the exit as one reservation when nothing was recorded in between. Anything recorded
//!   inside the entry (an interrupt, a function record) must first write the entry with
//!   [`Owned::kernel_entry`], on the caller's cold path; its word is then patched in by
//!   [`Owned::kernel_exit`], as for any deferred entry (FORMAT.md 9.5);
//! - no entry-stack push or pop, no ring-held entry (`pending_pos`) for the common case.
//!
//! The bytes written are those of the nesting-safe calls made at the same times (a test
//! below checks it over random call sequences), so nothing changes for readers.

use tracemark_format::record::{ExitDuration, Fields, Kind};
use tracemark_format::ring::offsets;
use tracemark_format::KernelEntry;

use crate::clock::Clock;
use crate::ring::held::DROPPED_ENTRY;
use crate::ring::{Outcome, Small};
use crate::sync::Ordering;

use super::{EntryInfo, Tracer};

impl<'a, C: Clock> Tracer<'a, C> {
    /// The single-owner recording calls (see [`Owned`]), for a caller that records with
    /// interrupts masked and passes the times itself.
    ///
    /// # Safety
    ///
    /// The contract of [`Tracer::masked`] for every call made through the returned value:
    /// no other write to this ring runs or starts until it returns. In addition, while the
    /// caller holds an entry (between its entry time and [`Owned::kernel_pair`]), nothing
    /// may be recorded into this ring, through any API, before [`Owned::kernel_entry`]
    /// has written that entry. Breaking this can lose, garble or misorder records, not
    /// memory: every access stays an atomic inside the ring.
    #[inline(always)]
    pub unsafe fn owned(&self) -> Owned<'_, 'a, C> {
        Owned { tracer: self }
    }
}

/// The single-owner recording calls of a [`Tracer`] (see [`Tracer::owned`], whose
/// contract every call through this value relies on). Times are the caller's, in the
/// ticks of the tracer's clock (the same clock: the general API and the ring's
/// timestamp markers read it).
pub struct Owned<'t, 'a, C: Clock> {
    tracer: &'t Tracer<'a, C>,
}

impl<C: Clock> Owned<'_, '_, C> {
    /// A kernel entry held by the caller since `entry_ts`, with nothing recorded in this
    /// ring since, ends at `exit_ts`: writes its KENTRY (`entry`'s minimal varint, at
    /// `entry_ts`), a switch to `next_thread` unless it is 0, and the KEXIT (`exit_ts -
    /// entry_ts` ticks), at `exit_ts`. Without a switch, and where both records take the
    /// common path, they are written as one reservation and one commit.
    #[inline(always)]
    pub fn kernel_pair(
        &self,
        entry_ts: u64,
        entry: KernelEntry,
        next_thread: u64,
        exit_ts: u64,
    ) -> Outcome {
        let t = self.tracer;
        if next_thread == 0 {
            let exit = ExitDuration::Ticks(exit_ts.wrapping_sub(entry_ts)).to_wire();
            // A step back (`exit_ts < entry_ts`) wraps to a huge duration: general path.
            if let Ok(exit) = u32::try_from(exit) {
                // SAFETY: the contract of `Tracer::owned`, which made `self`.
                let fused = unsafe {
                    t.ring
                        .try_short_pair_owned(entry.0, entry_ts, exit, exit_ts)
                        || t.ring.try_fast_pair_masked(
                            Small::varint(Kind::KernelEntry, entry.0),
                            entry_ts,
                            Small::varint(Kind::KernelExit, exit),
                            exit_ts,
                        )
                };
                if fused {
                    return Outcome::Written;
                }
            }
        }
        self.kernel_pair_slow(entry_ts, entry, next_thread, exit_ts)
    }

    /// Where the next pair goes, for a copy of [`Owned::kernel_pair`]'s common case: the
    /// C inline writer (`tracemark_inline.h`) that writes the pair without a call, and
    /// falls back to [`Owned::kernel_pair`] where it cannot. See [`ShortPairCursor`].
    ///
    /// [`ShortPairCursor`]: crate::ShortPairCursor
    pub fn short_pair_cursor(&self) -> crate::ShortPairCursor {
        self.tracer.ring.short_pair_cursor()
    }

    /// [`Owned::kernel_pair`], one record at a time.
    #[cold]
    #[inline(never)]
    fn kernel_pair_slow(
        &self,
        entry_ts: u64,
        entry: KernelEntry,
        next_thread: u64,
        exit_ts: u64,
    ) -> Outcome {
        let t = self.tracer;
        // SAFETY: the contract of `Tracer::owned`, which made `self`.
        unsafe { t.write_entry::<true>(|| entry_ts, entry) };
        if next_thread != 0 {
            self.thread_switch(next_thread, exit_ts);
        }
        self.exit_at(Some(entry_ts), exit_ts)
    }

    /// Writes the entry the caller has held since `entry_ts`, before anything else is
    /// recorded inside it: a KENTRY with the placeholder word (FORMAT.md 9.5), made the
    /// ring's pending deferred entry, its time pushed for the exit's duration. End it
    /// with [`Owned::kernel_exit`]. Returns what the write did (a drop is counted).
    #[inline(never)]
    #[cold]
    pub fn kernel_entry(&self, entry_ts: u64) -> Outcome {
        let t = self.tracer;
        // SAFETY: the contract of `Tracer::owned`, which made `self`.
        let (outcome, _, end) = unsafe { t.write_entry::<true>(|| entry_ts, KernelEntry::PENDING) };
        let pending = match outcome {
            Outcome::Written => end,
            Outcome::Dropped => DROPPED_ENTRY,
        };
        t.ring
            .mem()
            .hdr(offsets::PENDING_POS)
            .store(pending, Ordering::Relaxed);
        t.push_entry(entry_ts);
        outcome
    }

    /// Writes a kernel entry whose word the caller knows at its start (`entry`, minimal
    /// varint, at `entry_ts`), before anything is recorded inside it, its time pushed for
    /// the exit's duration; end it with [`Owned::kernel_exit`] (which has no word to fill
    /// in then). For a caller that knows why it was entered, unlike seL4.
    #[inline(always)]
    pub fn kernel_entry_with(&self, entry_ts: u64, entry: KernelEntry) -> Outcome {
        let t = self.tracer;
        // SAFETY: the contract of `Tracer::owned`, which made `self`.
        let (outcome, _, _) = unsafe { t.write_entry::<true>(|| entry_ts, entry) };
        t.push_entry(entry_ts);
        outcome
    }

    /// The exit of an entry written by [`Owned::kernel_entry`] or
    /// [`Owned::kernel_entry_with`], at `exit_ts`: fills in its word if it is the pending
    /// deferred entry (patched in place, or rewritten minimal when it is still the
    /// ring's last record; `entry` is unused otherwise), records a switch to
    /// `next_thread` unless it is 0, then the KEXIT with the duration since the entry's
    /// time. Returns the exit's outcome.
    #[inline]
    pub fn kernel_exit(&self, entry: KernelEntry, next_thread: u64, exit_ts: u64) -> Outcome {
        let t = self.tracer;
        let _: EntryInfo = t.kernel_entry_info_in::<true>(entry);
        if next_thread != 0 {
            self.thread_switch(next_thread, exit_ts);
        }
        let start = t.pop_entry();
        match start {
            Some(start) => self.exit_at(start, exit_ts),
            None => self.exit_record(exit_ts, ExitDuration::NoEntry.to_wire(), u64::MAX),
        }
    }

    /// A KEXIT at `exit_ts` for an entry at `start` (`None`: it overflowed the entry
    /// stack).
    #[inline(always)]
    fn exit_at(&self, start: Option<u64>, exit_ts: u64) -> Outcome {
        match start {
            Some(start) => {
                // The common path when the duration's payload fits a `u32`: the time is
                // the caller's, so the duration is known before the write.
                let wire = ExitDuration::Ticks(exit_ts.saturating_sub(start)).to_wire();
                let fields =
                    Fields::elapsed(Kind::KernelExit, ExitDuration::Ticks(0).to_wire(), start);
                // SAFETY: the contract of `Tracer::owned`, which made `self`.
                unsafe {
                    self.tracer.write_at::<true>(
                        || exit_ts,
                        |_| {
                            u32::try_from(wire)
                                .ok()
                                .map(|head| Small::varint(Kind::KernelExit, head))
                        },
                        move || fields,
                    )
                }
                .0
            }
            None => self.exit_record(exit_ts, ExitDuration::NestingOverflow.to_wire(), u64::MAX),
        }
    }

    /// A KEXIT at `ts` whose payload is `base` plus the ticks since `since` (none from
    /// `u64::MAX`), as `Fields::elapsed` measures it.
    #[inline(always)]
    fn exit_record(&self, ts: u64, base: u64, since: u64) -> Outcome {
        let fields = Fields::elapsed(Kind::KernelExit, base, since);
        // SAFETY: the contract of `Tracer::owned`, which made `self`.
        unsafe {
            self.tracer
                .write_at::<true>(|| ts, |_| None, move || fields)
        }
        .0
    }

    /// Records a thread switch to `thread` at `ts`.
    #[inline(always)]
    pub fn thread_switch(&self, thread: u64, ts: u64) -> Outcome {
        // SAFETY: the contract of `Tracer::owned`, which made `self`.
        unsafe {
            self.tracer.write_at::<true>(
                || ts,
                |_| {
                    u32::try_from(thread)
                        .ok()
                        .map(|t| Small::varint(Kind::ThreadSwitch, t))
                },
                move || Fields::varint(Kind::ThreadSwitch, thread),
            )
        }
        .0
    }

    /// Records an interrupt at `ts`. Inside a held entry, [`Owned::kernel_entry`] first.
    #[inline(always)]
    pub fn interrupt(&self, irq: u32, ts: u64) -> Outcome {
        // SAFETY: the contract of `Tracer::owned`, which made `self`.
        unsafe {
            self.tracer.write_at::<true>(
                || ts,
                |_| Some(Small::varint(Kind::Interrupt, irq)),
                move || Fields::varint(Kind::Interrupt, u64::from(irq)),
            )
        }
        .0
    }
}

/// The single-owner calls record exactly what the nesting-safe calls record at the same
/// times.
#[cfg(all(test, not(loom)))]
mod tests {
    use std::cell::Cell;
    use std::vec::Vec;

    use tracemark_format::ring::{offsets, Mode, RING_HEADER_LEN};
    use tracemark_format::{Event, ExitDuration, KernelEntry};

    use crate::sync::Ordering;
    use crate::tracer::masked_tests::{bytes, records};
    use crate::{Config, Outcome, Tracer};

    /// Calls per run, and how often the two rings are compared. Under miri a call with
    /// its share of the comparisons costs about two seconds of a loaded 2-core machine
    /// (400 calls took 14 minutes), so the miri run makes 100 calls, compared every 25
    /// (each comparison still holds at least 48 records, above the 40 asserted); the
    /// native run checks the full sequences.
    const CALLS: u32 = if cfg!(miri) { 100 } else { 20_000 };
    const COMPARE_EVERY: u32 = if cfg!(miri) { 25 } else { CALLS / 20 };

    /// seL4's hooks as the single-owner writer sees them: a kernel entry held by the
    /// caller, sometimes with interrupts and function records inside (the entry then
    /// written first), ended with a switch or not; times around every varint length and
    /// the fast path's delta limit, and steps back. The same calls on a second ring
    /// through the nesting-safe API at the same times (its deferred entry, info, switch,
    /// exit) must give the same records; the owned ring's entries are minimal where the
    /// nesting-safe ring's carry a patched 5-byte word, so the owned ring's bytes are
    /// compared by records.
    fn same_records(mode: Mode, block_size: u32, blocks: usize, seed: u64) {
        let len = RING_HEADER_LEN + blocks * block_size as usize;
        let now = Cell::new(5u64);
        let config = Config {
            block_size,
            mode,
            ..Config::new()
        };
        let (mut wa, mut wb) = (std::vec![0u64; len / 8], std::vec![0u64; len / 8]);
        let safe = Tracer::new(bytes(&mut wa), &config, || now.get()).unwrap();
        let own = Tracer::new(bytes(&mut wb), &config, || now.get()).unwrap();
        // SAFETY: one thread, no interrupts; every held entry is written before anything
        // else is recorded inside it (below).
        let o = unsafe { own.owned() };
        let mut rng = seed;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let tick = |r: u64| {
            let t = match r % 64 {
                0 => now.get() + (r >> 20),
                1 => now.get().saturating_sub(r >> 58),
                2 => now.get() + (1 << 28) - 1 + (r >> 62),
                3 => now.get() + (1 << ((r >> 8) % 40)),
                _ => now.get() + (r >> 59),
            };
            now.set(t);
            t
        };
        let mut safe_dropped = false;
        let (mut pairs, mut slow) = (0u32, 0u32);
        for i in 0..CALLS {
            let r = next();
            let entry_ts = tick(r);
            safe_dropped |= safe.kernel_entry_deferred() == Outcome::Dropped;
            // A quarter of the entries record 1 to 3 things inside (an interrupt or a
            // function record), which write the held entry first.
            let inside = if (r >> 12) % 4 == 0 {
                1 + (r >> 14) % 3
            } else {
                0
            };
            let written = inside > 0;
            let v = (next() >> (r % 40)) as u32;
            let w = KernelEntry(if r & 1 == 0 { v & 0x3fff } else { v });
            if written {
                // The word known at the entry, or filled in at the exit.
                if r & (1 << 20) == 0 {
                    o.kernel_entry(entry_ts);
                } else {
                    o.kernel_entry_with(entry_ts, w);
                }
            }
            for _ in 0..inside {
                let v = (next() >> (r % 40)) as u32;
                let ts = tick(next());
                if v & 1 == 0 {
                    safe_dropped |= safe.interrupt(v) == Outcome::Dropped;
                    o.interrupt(v, ts);
                } else {
                    safe_dropped |= safe.function_entry(u64::from(v)) == Outcome::Dropped;
                    own.function_entry(u64::from(v));
                }
            }
            let switch = if (r >> 5) % 4 == 0 {
                u64::from(v | 1)
            } else {
                0
            };
            let exit_ts = tick(next());
            safe.kernel_entry_info(w);
            if switch != 0 {
                safe_dropped |= safe.thread_switch(switch) == Outcome::Dropped;
            }
            safe_dropped |= safe.kernel_exit() == Outcome::Dropped;
            if written {
                o.kernel_exit(w, switch, exit_ts);
                slow += 1;
            } else {
                o.kernel_pair(entry_ts, w, switch, exit_ts);
                pairs += 1;
            }
            if i % COMPARE_EVERY == COMPARE_EVERY - 1 && !(mode == Mode::Drop && safe_dropped) {
                let (_, ra) = records(&safe);
                let (_, rb) = records(&own);
                let n = ra.len().min(rb.len());
                let (x, y) = match mode {
                    Mode::Overwrite => (&ra[ra.len() - n..], &rb[rb.len() - n..]),
                    Mode::Drop => (&ra[..n], &rb[..n]),
                };
                if let Some(k) = (0..n).find(|&k| x[k] != y[k]) {
                    panic!(
                        "call {i}: record {k} of {n} differs: {:?} / {:?}",
                        &x[k.saturating_sub(2)..(k + 2).min(n)],
                        &y[k.saturating_sub(2)..(k + 2).min(n)]
                    );
                }
                assert!(n > 40, "call {i}: {n} records");
            }
        }
        assert!(
            pairs > CALLS / 2 && slow > CALLS / 10,
            "{pairs} pairs, {slow} slow"
        );
        assert_eq!(own.entry_depth(), 0);
        if mode == Mode::Drop {
            assert!(safe_dropped);
        }
    }

    #[test]
    fn owned_records_the_same_events_overwrite() {
        same_records(Mode::Overwrite, 256, 4, 0x2545_f491_4f6c_dd1d);
        if !cfg!(miri) {
            same_records(Mode::Overwrite, 4096, 3, 0x9e37_79b9_7f4a_7c15);
        }
    }

    #[test]
    fn owned_records_the_same_events_drop() {
        let blocks = if cfg!(miri) { 3 } else { 256 };
        same_records(Mode::Drop, 256, blocks, 0x2545_f491_4f6c_dd1d);
    }

    /// The bytes of seL4's common case: a held entry and its exit, one reservation, 6
    /// bytes; an interrupt inside writes the entry first, and its word is patched.
    #[test]
    fn a_held_pair_is_six_bytes() {
        let now = Cell::new(1000u64);
        let mut words = std::vec![0u64; (RING_HEADER_LEN + 2 * 4096) / 8];
        let t = Tracer::new(bytes(&mut words), &Config::new(), || now.get()).unwrap();
        // SAFETY: one thread, no interrupts; the entry with an interrupt inside is written
        // first.
        let o = unsafe { t.owned() };
        let write = || {
            t.ring()
                .mem()
                .hdr(offsets::WRITE_POS)
                .load(Ordering::Relaxed)
        };
        assert_eq!(
            o.kernel_pair(1003, KernelEntry(62), 0, 1040),
            Outcome::Written
        );
        let before = write();
        assert_eq!(
            o.kernel_pair(1100, KernelEntry(62), 0, 1112),
            Outcome::Written
        );
        // KENTRY: header (delta 60: 2 bytes) and word (1 byte); KEXIT: header (delta 12:
        // 2 bytes) and duration (12 + 2: 1 byte).
        assert_eq!(write() - before, 6);
        o.kernel_entry(1200);
        o.interrupt(3, 1201);
        o.kernel_exit(KernelEntry(62), 0xabc, 1210);
        let (_, recs) = records(&t);
        let events: Vec<(u64, Event)> = recs.iter().map(|r| (r.ts, r.event)).collect();
        use ExitDuration::Ticks;
        assert_eq!(
            events,
            [
                (1003, Event::KernelEntry(KernelEntry(62))),
                (1040, Event::KernelExit(Ticks(37))),
                (1100, Event::KernelEntry(KernelEntry(62))),
                (1112, Event::KernelExit(Ticks(12))),
                (1200, Event::KernelEntry(KernelEntry(62))),
                (1201, Event::Interrupt { irq: 3 }),
                (1210, Event::ThreadSwitch { thread: 0xabc }),
                (1210, Event::KernelExit(Ticks(10))),
            ]
        );
        assert_eq!(t.entry_depth(), 0);
    }

    /// The documented result of breaking the contract: a record made inside a held
    /// entry before `kernel_entry` lands first, and the entry follows behind a
    /// CLOCKBACK record; the ring still decodes, nothing is lost.
    #[test]
    fn a_record_inside_a_held_entry_lands_before_it() {
        let now = Cell::new(2000u64);
        let mut words = std::vec![0u64; (RING_HEADER_LEN + 2 * 4096) / 8];
        let t = Tracer::new(bytes(&mut words), &Config::new(), || now.get()).unwrap();
        // SAFETY: one thread; the contract is broken on purpose, which the doc says can
        // misorder records, not touch memory outside the ring.
        let o = unsafe { t.owned() };
        o.kernel_pair(1990, KernelEntry(62), 0, 1995);
        // Held since 2000 by the caller; an interrupt recorded at 2005 without
        // `kernel_entry` first.
        now.set(2005);
        t.interrupt(9);
        o.kernel_pair(2000, KernelEntry(62), 0, 2010);
        let (_, recs) = records(&t);
        let events: Vec<(u64, Event)> = recs.iter().map(|r| (r.ts, r.event)).collect();
        use ExitDuration::Ticks;
        assert_eq!(
            events,
            [
                (1990, Event::KernelEntry(KernelEntry(62))),
                (1995, Event::KernelExit(Ticks(5))),
                (2005, Event::Interrupt { irq: 9 }),
                (2000, Event::ClockBack { back: 5 }),
                (2000, Event::KernelEntry(KernelEntry(62))),
                (2010, Event::KernelExit(Ticks(10))),
            ]
        );
    }
}
