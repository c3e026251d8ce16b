//! The common path, inlined into every recording call: enter, one straight-line attempt
//! at a `Small` record (size, reserve, write, publish), exit.

use tracemark_format::record::Fields;
use tracemark_format::record::{self, Kind};
use tracemark_format::ring::{offsets, BLOCK_HEADER_LEN, RING_HEADER_LEN};
use tracemark_format::varint;
use tracemark_format::Event;

use crate::mem::Mem;
use crate::sync::{compiler_fence, local_add, local_cas, Ordering};

use super::{Outcome, Ring, Wrote};

/// The common shape of a record the inlined fast path encodes itself: the header varint,
/// then one varint `head`, then `data` bytes (a user event's payload).
#[derive(Clone, Copy)]
pub(crate) struct Small<'d> {
    /// The kind code.
    pub(crate) kind: u32,
    /// The first payload varint.
    pub(crate) head: u32,
    /// Raw bytes after it (at most [`record::MAX_USER_PAYLOAD`]).
    pub(crate) data: &'d [u8],
}

impl<'d> Small<'d> {
    /// A record whose payload is one varint.
    #[inline(always)]
    pub(crate) fn varint(kind: Kind, head: u32) -> Small<'d> {
        Small {
            kind: kind as u32,
            head,
            data: &[],
        }
    }

    /// The fast-path form of `fields`, if it has one (one payload varint that fits a
    /// `u32` and does not depend on the record's time).
    #[inline(always)]
    pub(crate) fn of(fields: &Fields<'d>) -> Option<Small<'d>> {
        Self::from_parts(fields, fields.as_small()?)
    }

    /// The fast-path form of `fields` written at `ts` ([`Fields::small_at`]: a
    /// measured varint included), if it has one.
    #[cfg(feature = "compact")]
    #[inline(always)]
    pub(crate) fn at(fields: &Fields<'d>, ts: u64) -> Option<Small<'d>> {
        Self::from_parts(fields, fields.small_at(ts)?)
    }

    /// `fields`' kind with one payload varint `head` (if it fits a `u32`) and `data`.
    #[inline(always)]
    fn from_parts(fields: &Fields<'d>, (head, data): (u64, &'d [u8])) -> Option<Small<'d>> {
        Some(Small {
            kind: fields.kind() as u32,
            head: u32::try_from(head).ok()?,
            data,
        })
    }
}

/// A writer starts: bumps `nest` (see the module doc); returns the value it found.
#[inline(always)]
pub(super) fn enter(mem: &Mem<'_>) -> u32 {
    let nest = mem.hdr(offsets::NEST);
    let n = nest.load(Ordering::Relaxed);
    nest.store(n + 1, Ordering::Relaxed);
    compiler_fence();
    n
}

/// A writer ends: restores `nest`, and the outermost one commits.
#[inline(always)]
pub(super) fn exit(mem: &Mem<'_>, entered_at: u32) {
    compiler_fence();
    let nest = mem.hdr(offsets::NEST);
    if entered_at != 0 {
        nest.store(entered_at, Ordering::Relaxed);
        return;
    }
    let write = mem.hdr(offsets::WRITE_POS);
    let commit = mem.hdr(offsets::COMMIT_POS);
    loop {
        let w = write.load(Ordering::Relaxed);
        commit.store(w, Ordering::Release);
        compiler_fence();
        nest.store(0, Ordering::Relaxed);
        compiler_fence();
        // NOTE: an interrupt that reserved after the load above saw `nest > 0` and left
        // its record uncommitted; catch it here. One that comes after this check sees
        // `nest == 0` and commits itself.
        if write.load(Ordering::Relaxed) == w {
            return;
        }
        nest.store(1, Ordering::Relaxed);
        compiler_fence();
    }
}

/// A clock reading and the `write_pos` loaded just before it was taken: the general
/// path may write at the reading only while `write_pos` still has that value (see
/// [`Ring::write_general_loop`]).
pub(super) type Reading = (u64, u32);

/// Header deltas below this take the fast path: `delta << 4 | kind` fits a `u32`.
pub(super) const FAST_DELTA_LIMIT: u64 = 1 << (32 - record::KIND_BITS);

/// The longest two `u32` varints of a `Small` record (its header and head).
pub(super) const SMALL_VARINTS_MAX: u32 = 10;

/// Stores the LEB128 bytes of `v` from `at`; returns the position after them.
///
/// # Safety
///
/// `at + varint::encoded_len_u32(v) <= len` (the space the caller reserved).
#[inline(always)]
pub(super) unsafe fn put_varint32(mem: &Mem<'_>, at: usize, v: u32) -> usize {
    // SAFETY: every byte stored is below `at + encoded_len_u32(v)` (the caller's contract).
    varint::write_u32_at(at, v, |at, b| unsafe { mem.store_byte(at, b) })
}

impl<'a> Ring<'a> {
    /// Writes `event` at the clock's current time; returns what happened and the time
    /// used.
    #[inline(always)]
    pub fn write_event(&self, now: impl Fn() -> u64, event: &Event) -> (Outcome, u64) {
        let fields = event.fields();
        let (outcome, ts, _) = self.write_small(&now, |_| Small::of(&fields), || fields);
        (outcome, ts)
    }

    /// Writes a record: `fast(ts)` describes it for the inlined fast path (`None`: use
    /// the general path), `fields()` is the same record for the general path (whose
    /// time-dependent field, a kernel exit's duration, is measured to the time it is
    /// written at: [`Fields::elapsed`]).
    ///
    /// `now` and `fields` are taken by value (closures over references and small
    /// values) and passed by value to the out-of-line call of the general path, which
    /// builds the [`Fields`]: the fast path then builds no description on the stack for
    /// a call it does not make. The general path itself is one copy for every call.
    ///
    /// Returns what happened, the time used and the position just after the record
    /// (0 if it was dropped): the record's own end, which a nested writer that ran after
    /// the reservation does not change (issue 20, point 18). Callers that do not need it
    /// ignore it, and the inlined fast path then computes nothing more.
    #[inline(always)]
    pub(crate) fn write_small<'d, 'f>(
        &self,
        now: impl Fn() -> u64 + Copy,
        fast: impl Fn(u64) -> Option<Small<'d>>,
        fields: impl FnOnce() -> Fields<'f>,
    ) -> Wrote {
        self.write_small_in::<false>(now, fast, fields)
    }

    /// [`Ring::write_small`] for a writer that no other writer of this ring can
    /// interrupt: the fast path skips what nesting safety costs (the `nest` counter, the
    /// reservation's compare-and-swap, the read-modify-write of the block's record count,
    /// the commit's re-check); the bytes written are the same. The general path it falls
    /// back to is the nesting-safe one, unchanged.
    ///
    /// # Safety
    ///
    /// From the call until it returns, no other write to this ring may run or start: not
    /// an interrupt or exception on the ring's CPU (the caller runs with them masked, as
    /// seL4's kernel does), not another CPU, and the call is not made from inside another
    /// write to this ring (`nest` is 0). A writer that breaks this can lose or corrupt
    /// records; memory safety does not depend on it (every access is still an atomic
    /// inside the ring).
    #[inline(always)]
    pub(crate) unsafe fn write_small_masked<'d, 'f>(
        &self,
        now: impl Fn() -> u64 + Copy,
        fast: impl Fn(u64) -> Option<Small<'d>>,
        fields: impl FnOnce() -> Fields<'f>,
    ) -> Wrote {
        self.write_small_in::<true>(now, fast, fields)
    }

    /// The common path, nesting-safe (`MASKED == false`) or single-context (`MASKED`:
    /// see [`Ring::write_small_masked`] for when that is allowed).
    #[inline(always)]
    fn write_small_in<'d, 'f, const MASKED: bool>(
        &self,
        now: impl Fn() -> u64 + Copy,
        fast: impl Fn(u64) -> Option<Small<'d>>,
        fields: impl FnOnce() -> Fields<'f>,
    ) -> Wrote {
        // A local copy, so the base address stays in a register across atomic stores
        // (through `&self` the compiler must reload it after each: for all it knows, the
        // store might have changed the `Ring`).
        let mem = self.mem.local();
        if MASKED {
            // No writer runs besides this one (the caller's contract), so `nest` is 0
            // and stays 0: there is nothing to enter, and the commit is one store.
            return match self.try_fast::<MASKED>(&mem, &now, fast) {
                Ok((ts, end)) => {
                    mem.hdr(offsets::COMMIT_POS).store(end, Ordering::Release);
                    (Outcome::Written, ts, end)
                }
                Err((ts, _)) => self.write_slow_masked_from(ts, now, fields),
            };
        }
        // Flash first: the record as data, to the one shared copy of the common path.
        #[cfg(feature = "compact")]
        {
            let _ = fast;
            self.write_fields(now, &fields())
        }
        #[cfg(not(feature = "compact"))]
        {
            let nest = enter(&mem);
            match self.try_fast::<MASKED>(&mem, &now, fast) {
                Ok((ts, end)) => {
                    exit(&mem, nest);
                    (Outcome::Written, ts, end)
                }
                Err(reading) => self.write_slow_from(nest, reading, now, fields),
            }
        }
    }

    /// The nesting-safe common path of the `compact` feature, out of line: one copy for
    /// every recording call (per clock type), which gets the record as data, its
    /// [`Fields`], instead of an inlined fast path of its own. The same attempt
    /// ([`Ring::try_fast`], with the record's [`Fields::small_at`] form) and the same
    /// general path after it, so the same bytes; what changes is flash (one copy of the
    /// fast path instead of one per call) against a call, the `Fields` built on the stack
    /// for every record and the fast path's reading of them (BENCHMARKS.md, "Target
    /// cost (issue 15): the `compact` build").
    #[cfg(feature = "compact")]
    #[inline(never)]
    fn write_fields(&self, now: impl Fn() -> u64 + Copy, fields: &Fields<'_>) -> Wrote {
        let mem = self.mem.local();
        let nest = enter(&mem);
        match self.try_fast::<false>(&mem, &now, |ts| Small::at(fields, ts)) {
            Ok((ts, end)) => {
                exit(&mem, nest);
                (Outcome::Written, ts, end)
            }
            Err(reading) => self.write_slow(nest, reading, &now, fields),
        }
    }

    /// The call of the general path, out of line and cold, so that the inlined fast
    /// path neither builds the record's [`Fields`] nor keeps registers for them. One
    /// small copy per recording call (it builds that call's `Fields`); the general path
    /// it calls is one copy for all. `reading` is the clock reading the fast path took
    /// and the `write_pos` it loaded before taking it: the general path writes at that
    /// reading while no writer has reserved since (one clock read per record, issue 15).
    #[cfg(not(feature = "compact"))]
    #[cold]
    #[inline(never)]
    pub(super) fn write_slow_from<'f>(
        &self,
        nest: u32,
        reading: Reading,
        now: impl Fn() -> u64,
        fields: impl FnOnce() -> Fields<'f>,
    ) -> Wrote {
        self.write_slow(nest, reading, &now, &fields())
    }

    /// [`Ring::write_slow_from`] for a single-context writer, out of line and cold (the
    /// inlined fast path only calls it): enters as any writer does, writes a held entry
    /// first (as the general path would), and, as nothing else writes during the call,
    /// hands the general path the reading `ts` with `write_pos` as it is after that entry:
    /// one clock read for this record too (issue 15).
    #[cold]
    #[inline(never)]
    fn write_slow_masked_from<'f>(
        &self,
        ts: u64,
        now: impl Fn() -> u64,
        fields: impl FnOnce() -> Fields<'f>,
    ) -> Wrote {
        let mem = self.mem.local();
        let nest = enter(&mem);
        self.write_held_entry();
        let at = mem.hdr(offsets::WRITE_POS).load(Ordering::Relaxed);
        self.write_slow(nest, (ts, at), &now, &fields())
    }

    /// One attempt at the fast path: a `Small` record with a delta header that fits a
    /// `u32`, in the block the cached lap maps `write_pos` to, with room there, and no
    /// interrupt moving `write_pos` in between. Straight-line code; anything else returns
    /// `None` having written nothing, and the caller starts over on the general path.
    /// The bytes are those of `record::encode_with` with `Time::Delta(delta)`.
    ///
    /// `MASKED`: no other writer can run (see [`Ring::write_small_masked`]), so the
    /// reservation and the record count are plain stores.
    ///
    /// Returns the record's time and the position just after it, or (`Err`) the clock
    /// reading it took, with the `write_pos` loaded before it, for the general path.
    #[inline(always)]
    pub(super) fn try_fast<'d, const MASKED: bool>(
        &self,
        mem: &Mem<'_>,
        now: &impl Fn() -> u64,
        fast: impl Fn(u64) -> Option<Small<'d>>,
    ) -> Result<(u64, u32), Reading> {
        let write = mem.hdr(offsets::WRITE_POS);
        let pos = write.load(Ordering::Relaxed);
        let last_pos = mem.hdr(offsets::LAST_POS).load(Ordering::Relaxed);
        let last_ts = mem.load_last_ts();
        compiler_fence();
        let ts = now();
        let s = fast(ts).ok_or((ts, pos))?;
        // One bound check sends both a large delta and a step back to the general path:
        // a step back wraps `delta` to `2^64 - (last_ts - ts)`, which is below the bound
        // only if `last_ts` is within 2^28 of 2^64. It never is here: the general path
        // publishes a time at or above 2^63 with a `last_pos` that matches no position
        // ([`Ring::publish_last_general`]), every block's first record is the general
        // path's, and the fast records after it in one block (fewer than 2^15) add less
        // than 2^28 each.
        let delta = ts.wrapping_sub(last_ts);
        if last_pos != pos || delta >= FAST_DELTA_LIMIT {
            return Err((ts, pos));
        }
        // `delta < 2^28`, so the header fits a `u32`.
        let header = record::record_header(delta, s.kind as u8) as u32;
        // At most 5 + 5 + 32 bytes, far below `block_size - BLOCK_HEADER_LEN`.
        let len =
            varint::encoded_len_u32(header) + varint::encoded_len_u32(s.head) + s.data.len() as u32;
        let (rel, offset) = self.fast_place(pos, s.data.len() as u32).ok_or((ts, pos))?;
        if !(MASKED || local_cas(write, pos, pos + len)) {
            return Err((ts, pos));
        }
        // SAFETY: (the record's bytes and its block's header) `rel < area`, so `rel - offset`
        // is the start of a block inside the ring's memory and `at` is `offset` bytes into
        // it; `offset + len < block_size` (checked above), so the `len` bytes written stay
        // in the block we reserved them in.
        let at = RING_HEADER_LEN + rel as usize;
        // SAFETY: as above (the header's bytes).
        let at = unsafe { put_varint32(mem, at, header) };
        // SAFETY: as above (the head's bytes, after the header's).
        let at = unsafe { put_varint32(mem, at, s.head) };
        for (i, &b) in s.data.iter().enumerate() {
            // SAFETY: as above.
            unsafe { mem.store_byte(at + i, b) };
        }
        let block = RING_HEADER_LEN + (rel - offset) as usize;
        // `Small` records are never `Lost`, so they all count.
        // SAFETY: as above.
        let records = unsafe { mem.word(block + offsets::BLOCK_RECORDS) };
        if MASKED {
            write.store(pos + len, Ordering::Relaxed);
            records.store(
                records.load(Ordering::Relaxed).wrapping_add(1),
                Ordering::Relaxed,
            );
        } else {
            local_add(records, 1);
        }
        self.publish_last(mem, ts, pos + len);
        Ok((ts, pos + len))
    }

    /// Where the common path writes at `pos`: `(rel, offset)`, the byte offset from the
    /// first block and the offset in the block, if the lap cache maps `pos` and the
    /// longest `Small` record plus `extra` bytes fits there; `None` sends the write to the
    /// general path.
    ///
    /// The cache may be loaded at any time: it is a pure function of the lap, checked
    /// against `pos` here. `rel < area`: `pos` is in the cached lap, so `rel` is its
    /// offset from the first block. Then `BLOCK_HEADER_LEN <= offset` and `offset +
    /// SMALL_VARINTS_MAX + extra < block_size` in one compare against a constant of the
    /// ring (an `offset` below the header wraps to a huge value). The bound is the
    /// longest record of the shape, not the record's length: the check does not wait for
    /// the lengths, and the records it sends to the general path (the last few bytes of a
    /// block) are rare. NOTE: `<` not `<=`: a block never fills to its last byte, so the
    /// offset never carries into the sequence number and there is always room for
    /// END_MARKER.
    #[inline(always)]
    fn fast_place(&self, pos: u32, extra: u32) -> Option<(u32, u32)> {
        let rel = pos.wrapping_add(self.lap.load(Ordering::Relaxed));
        let offset = rel & self.mask;
        (rel < self.area && offset.wrapping_sub(BLOCK_HEADER_LEN as u32) < self.room - extra)
            .then_some((rel, offset))
    }

    /// Two `Small` records written as one, single-context: `first` at `t1`, `second` at
    /// `t2`, with one reservation, one record-count update and one commit (seL4's
    /// entry and exit of a syscall with nothing recorded in between). Returns `false`,
    /// having written nothing, where either would leave the common path (a timestamp
    /// marker, no room in the block, a stale lap cache); the caller then writes them one
    /// at a time. The bytes are those of the two records written one after the other.
    ///
    /// # Safety
    ///
    /// The single-context contract ([`Ring::write_small_masked`]).
    #[inline(always)]
    pub(crate) unsafe fn try_fast_pair_masked(
        &self,
        first: Small<'_>,
        t1: u64,
        second: Small<'_>,
        t2: u64,
    ) -> bool {
        let mem = self.mem.local();
        let write = mem.hdr(offsets::WRITE_POS);
        let pos = write.load(Ordering::Relaxed);
        let last_pos = mem.hdr(offsets::LAST_POS).load(Ordering::Relaxed);
        let d1 = t1.wrapping_sub(mem.load_last_ts());
        let d2 = t2.wrapping_sub(t1);
        // As in `try_fast`: one bound per delta sends steps back there too.
        if last_pos != pos || d1 >= FAST_DELTA_LIMIT || d2 >= FAST_DELTA_LIMIT {
            return false;
        }
        let h1 = record::record_header(d1, first.kind as u8) as u32;
        let h2 = record::record_header(d2, second.kind as u8) as u32;
        let len = varint::encoded_len_u32(h1)
            + varint::encoded_len_u32(first.head)
            + varint::encoded_len_u32(h2)
            + varint::encoded_len_u32(second.head);
        // Room for one record of the longest `Small` shape plus `SMALL_VARINTS_MAX` more
        // bytes: the second record (neither carries data).
        let Some((rel, offset)) = self.fast_place(pos, SMALL_VARINTS_MAX) else {
            return false;
        };
        let at = RING_HEADER_LEN + rel as usize;
        // SAFETY: `rel < area` and `offset + len < block_size` (checked above, as in
        // `try_fast`): the bytes stay in the block at `rel - offset`, inside the ring;
        // no other writer runs (the caller's contract), so they are ours.
        unsafe {
            let at = put_varint32(&mem, at, h1);
            let at = put_varint32(&mem, at, first.head);
            let at = put_varint32(&mem, at, h2);
            put_varint32(&mem, at, second.head);
        }
        let block = RING_HEADER_LEN + (rel - offset) as usize;
        // SAFETY: as above (the block's header).
        let records = unsafe { mem.word(block + offsets::BLOCK_RECORDS) };
        let end = pos + len;
        write.store(end, Ordering::Relaxed);
        records.store(
            records.load(Ordering::Relaxed).wrapping_add(2),
            Ordering::Relaxed,
        );
        self.publish_last(&mem, t2, end);
        mem.hdr(offsets::COMMIT_POS).store(end, Ordering::Release);
        true
    }

    /// [`Ring::publish_last`] for the general path and the block opener: a time at or
    /// above 2^63 ticks is published with a `last_pos` of `end ^ 1`, which no writer's
    /// position equals next, so the records after it take the general path and its
    /// 64-bit comparison (each then carries an absolute timestamp). This bounds the
    /// times the fast path's one-compare delta check sees (see [`Ring::try_fast`]).
    #[inline(always)]
    pub(super) fn publish_last_general(&self, mem: &Mem<'_>, ts: u64, end: u32) {
        let end = if ts >> 63 != 0 { end ^ 1 } else { end };
        self.publish_last(mem, ts, end);
    }

    #[inline(always)]
    pub(super) fn publish_last(&self, mem: &Mem<'_>, ts: u64, end: u32) {
        compiler_fence();
        mem.store_last_ts(ts);
        compiler_fence();
        mem.hdr(offsets::LAST_POS).store(end, Ordering::Relaxed);
    }
}

/// The fast path must write exactly the bytes of `record::encode` (the wire format).
#[cfg(all(test, not(loom)))]
mod fast_path_bytes {
    use std::cell::Cell;
    use std::vec::Vec;

    use tracemark_format::record::{self, Time, UserPayload, MAX_DELTA};
    use tracemark_format::ring::{BLOCK_HEADER_LEN, RING_HEADER_LEN};
    use tracemark_format::{Event, ExitDuration, KernelEntry};

    use crate::{Config, Tracer};

    #[test]
    pub(super) fn same_bytes_as_record_encode() {
        let mut words = std::vec![0u64; (RING_HEADER_LEN + 4 * 65536) / 8];
        let len = words.len() * 8;
        // SAFETY: `len` initialised bytes of `words`, 8-aligned, used only through this view
        // while `words` lives.
        let mem = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) };
        let now = Cell::new(1_000u64);
        let config = Config {
            block_size: 65536,
            ..Config::new()
        };
        let t = Tracer::new(mem, &config, || now.get()).unwrap();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut expected = Vec::new();
        let (mut last_ts, mut first) = (0u64, true);
        let mut entries: Vec<u64> = Vec::new();
        // Fewer under miri (2,000 took two minutes of CI's miri step).
        let calls = if cfg!(miri) { 400 } else { 2000 };
        for _ in 0..calls {
            let r = next();
            // Deltas around every varint length boundary and the 2^28 fast-path limit,
            // and steps backwards (timestamp markers).
            let delta = match r % 8 {
                0 => 0,
                1 => r >> 60,
                2 => (1 << (r >> 59)) - 1,
                3 => 1 << (r >> 59),
                4 => (1 << 28) - 1 + (r >> 62),
                5 => r >> 24,
                _ => r >> 40,
            };
            let ts = if r % 97 == 0 {
                now.get() - (r >> 50)
            } else {
                now.get() + delta
            };
            now.set(ts);
            let v = next();
            let small = (v >> (v % 64)) as u32;
            let event = match (v >> 8) % 7 {
                0 => {
                    t.interrupt(small);
                    Event::Interrupt { irq: small }
                }
                1 => {
                    let func = v >> (v % 64);
                    t.function_entry(func);
                    Event::FunctionEntry { func }
                }
                2 => {
                    t.function_exit(u64::from(small));
                    Event::FunctionExit {
                        func: u64::from(small),
                    }
                }
                3 => {
                    t.kernel_entry(KernelEntry(small));
                    entries.push(ts);
                    Event::KernelEntry(KernelEntry(small))
                }
                4 => {
                    t.kernel_exit();
                    Event::KernelExit(match entries.pop() {
                        Some(start) if entries.len() < 8 => {
                            ExitDuration::Ticks(ts.saturating_sub(start))
                        }
                        Some(_) => ExitDuration::NestingOverflow,
                        None => ExitDuration::NoEntry,
                    })
                }
                5 => {
                    let data: Vec<u8> = (0..(v % 40) as u8).collect();
                    let id = (v >> 20) as u32 >> (v % 32);
                    t.user(id, &data);
                    let data = &data[..data.len().min(32)];
                    Event::User {
                        id,
                        payload: UserPayload::new(data).unwrap(),
                    }
                }
                _ => {
                    let event = Event::Image {
                        base: v,
                        size: v >> 20,
                        id: 7,
                    };
                    t.record(event);
                    event
                }
            };
            let mut buf = [0u8; record::MAX_RECORD_LEN];
            if !first && ts < last_ts {
                // A step back: a CLOCKBACK record first, then the event 0 ticks later.
                let back = Event::ClockBack { back: last_ts - ts };
                let n = record::encode(&mut buf, Time::Absolute(ts), ts, &back);
                expected.extend_from_slice(&buf[..n]);
                last_ts = ts;
            }
            let time = match ts.checked_sub(last_ts) {
                _ if first => Time::Delta(0),
                Some(d) if d <= MAX_DELTA => Time::Delta(d),
                _ => Time::Absolute(ts),
            };
            first = false;
            last_ts = ts;
            let n = record::encode(&mut buf, time, ts, &event);
            expected.extend_from_slice(&buf[..n]);
        }
        assert!(expected.len() < 65536 - BLOCK_HEADER_LEN, "one block");
        let mut got = std::vec![0u8; expected.len()];
        t.ring()
            .read_at(RING_HEADER_LEN + BLOCK_HEADER_LEN, &mut got);
        assert_eq!(got, expected);
    }
}
