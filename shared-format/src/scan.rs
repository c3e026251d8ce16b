//! A fast path over a block's records for summaries: the records are handed to a
//! [`Visitor`] field by field, without building [`crate::Event`]s.
//!
//! [`scan_block`] accepts exactly what [`crate::record::BlockRecords`] accepts, stops
//! where it stops, and reports the same [`DecodeError`] at the same offset; the unit
//! tests check this against the iterator. It exists because a summary of a large dump
//! touches every record, and an `Event` (with its inline user payload) costs more to
//! build and move than the few fields a summary reads.

use crate::record::{split_user_head, DecodeError, DecodeErrorReason, Kind};
use crate::varint::{self, VarintError};

/// Receives the records of a block, in order. Every method has a default that ignores
/// the record; `ts` is the record's absolute time.
pub trait Visitor {
    /// A kernel entry with its packed [`crate::KernelEntry`] word.
    #[inline(always)]
    fn kernel_entry(&mut self, ts: u64, word: u32) {
        let _ = (ts, word);
    }
    /// A kernel exit with its duration as on the wire: 0 no entry, 1 nesting overflow,
    /// otherwise `ticks + 2` (see [`crate::ExitDuration`]).
    #[inline(always)]
    fn kernel_exit(&mut self, ts: u64, wire: u64) {
        let _ = (ts, wire);
    }
    /// An interrupt.
    #[inline(always)]
    fn interrupt(&mut self, ts: u64, irq: u32) {
        let _ = (ts, irq);
    }
    /// A function entry.
    #[inline(always)]
    fn function_entry(&mut self, ts: u64, func: u64) {
        let _ = (ts, func);
    }
    /// A function exit.
    #[inline(always)]
    fn function_exit(&mut self, ts: u64, func: u64) {
        let _ = (ts, func);
    }
    /// A user event.
    #[inline(always)]
    fn user(&mut self, ts: u64, id: u32, payload: &[u8]) {
        let _ = (ts, id, payload);
    }
    /// An image record.
    #[inline(always)]
    fn image(&mut self, ts: u64, base: u64, size: u64, id: u64) {
        let _ = (ts, base, size, id);
    }
    /// A `Lost` record.
    #[inline(always)]
    fn lost(&mut self, ts: u64, count: u64, since: u64) {
        let _ = (ts, count, since);
    }
    /// A thread switch (format version 2): `thread` runs next.
    #[inline(always)]
    fn thread_switch(&mut self, ts: u64, thread: u64) {
        let _ = (ts, thread);
    }
    /// A `ClockBack` record: the clock read `back` ticks less than at the previous record.
    #[inline(always)]
    fn clock_back(&mut self, ts: u64, back: u64) {
        let _ = (ts, back);
    }
    /// A record of one of the kinds whose payload is one varint `value`: codes 0 to 4
    /// (kernel entry, kernel exit, interrupt, function entry, function exit), with the
    /// value already checked to fit 32 bits for codes 0 and 2. The fast path calls this
    /// instead of the methods above so that a visitor can handle these kinds without
    /// branching on the kind; the default dispatches to them.
    #[inline(always)]
    fn simple(&mut self, ts: u64, code: u8, value: u64) {
        match code {
            0 => self.kernel_entry(ts, value as u32),
            1 => self.kernel_exit(ts, value),
            2 => self.interrupt(ts, value as u32),
            3 => self.function_entry(ts, value),
            _ => self.function_exit(ts, value),
        }
    }
}

/// A visitor that handles every record by its kind code: [`KindVisitor::simple`] for
/// codes 0 to 4 (with their one value, as [`Visitor::simple`] gets them) and
/// [`KindVisitor::other`] for the rest. Summaries that count records and follow kernel
/// entries and exits need no more; [`ByKind`] makes one a [`Visitor`].
pub trait KindVisitor {
    /// A record of code 0 to 4 with its value (see [`Visitor::simple`]).
    fn simple(&mut self, ts: u64, code: u8, value: u64);
    /// A user, image, `Lost`, thread-switch or clock-back record.
    #[inline(always)]
    fn other(&mut self, ts: u64, kind: crate::Kind) {
        let _ = (ts, kind);
    }
}

/// A [`Visitor`] that forwards every record to a [`KindVisitor`].
pub struct ByKind<'a, V>(pub &'a mut V);

impl<V: KindVisitor> Visitor for ByKind<'_, V> {
    #[inline(always)]
    fn simple(&mut self, ts: u64, code: u8, value: u64) {
        self.0.simple(ts, code, value);
    }
    #[inline(always)]
    fn kernel_entry(&mut self, ts: u64, word: u32) {
        self.0
            .simple(ts, crate::Kind::KernelEntry as u8, u64::from(word));
    }
    #[inline(always)]
    fn kernel_exit(&mut self, ts: u64, wire: u64) {
        self.0.simple(ts, crate::Kind::KernelExit as u8, wire);
    }
    #[inline(always)]
    fn interrupt(&mut self, ts: u64, irq: u32) {
        self.0
            .simple(ts, crate::Kind::Interrupt as u8, u64::from(irq));
    }
    #[inline(always)]
    fn function_entry(&mut self, ts: u64, func: u64) {
        self.0.simple(ts, crate::Kind::FunctionEntry as u8, func);
    }
    #[inline(always)]
    fn function_exit(&mut self, ts: u64, func: u64) {
        self.0.simple(ts, crate::Kind::FunctionExit as u8, func);
    }
    #[inline(always)]
    fn user(&mut self, ts: u64, _id: u32, _payload: &[u8]) {
        self.0.other(ts, crate::Kind::User);
    }
    #[inline(always)]
    fn image(&mut self, ts: u64, _base: u64, _size: u64, _id: u64) {
        self.0.other(ts, crate::Kind::Image);
    }
    #[inline(always)]
    fn lost(&mut self, ts: u64, _count: u64, _since: u64) {
        self.0.other(ts, crate::Kind::Lost);
    }
    #[inline(always)]
    fn thread_switch(&mut self, ts: u64, _thread: u64) {
        self.0.other(ts, crate::Kind::ThreadSwitch);
    }
    #[inline(always)]
    fn clock_back(&mut self, ts: u64, _back: u64) {
        self.0.other(ts, crate::Kind::ClockBack);
    }
}

/// Where a scan stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanEnd {
    /// Byte offset after the last record decoded (past an END marker, if one stopped
    /// the scan: then the block's length).
    pub offset: usize,
    /// Records handed to the visitor (`Lost` included).
    pub records: u64,
    /// The error that stopped the scan, if any.
    pub error: Option<DecodeError>,
}

#[inline(always)]
fn read(bytes: &[u8], at: usize) -> Result<(u64, usize), DecodeErrorReason> {
    varint::read(bytes, at).map_err(|e| match e {
        VarintError::Truncated => DecodeErrorReason::Truncated,
        VarintError::Overflow => DecodeErrorReason::VarintOverflow,
    })
}

/// Decodes the records in `bytes` (a block after its header, times counted from
/// `base_ts`) into `v`. Never panics.
#[inline]
pub fn scan_block<V: Visitor>(bytes: &[u8], base_ts: u64, v: &mut V) -> ScanEnd {
    let mut at = 0usize;
    let mut prev = base_ts;
    let mut records = 0u64;
    loop {
        // Fast path, far from the end of the bytes: a record of kind 0 to 4 whose header
        // varint is at most 4 bytes and payload varint at most 8 (kernel entry words
        // and 32-bit code addresses take 5), decoded without a branch per byte. Anything
        // else (markers, other kinds, long varints, errors) takes the general path.
        if at + FAST_WINDOW + 8 <= bytes.len() {
            if let Some((h, hl)) = fast_varint(load(bytes, at)) {
                let code = (h & 0xf) as u8;
                if code <= Kind::FunctionExit as u8 {
                    if let Some((value, vl)) = fast_varint64(load64(bytes, at + hl)) {
                        let narrow =
                            code == Kind::KernelEntry as u8 || code == Kind::Interrupt as u8;
                        if let Some(ts) = prev.checked_add(h >> 4) {
                            if !narrow || value <= u64::from(u32::MAX) {
                                v.simple(ts, code, value);
                                prev = ts;
                                at += hl + vl;
                                records += 1;
                                continue;
                            }
                        }
                    }
                }
            }
        }
        let start = at;
        match step(bytes, &mut at, &mut prev, v) {
            Ok(true) => records += 1,
            Ok(false) => {
                return ScanEnd {
                    offset: at,
                    records,
                    error: None,
                }
            }
            Err(reason) => {
                return ScanEnd {
                    offset: start,
                    records,
                    error: Some(DecodeError {
                        offset: start,
                        reason,
                    }),
                }
            }
        }
    }
}

/// Bytes the fast path reads at once.
const FAST_WINDOW: usize = 4;

/// Four bytes at `at`, little-endian; the caller checked `at + 4 <= bytes.len()`.
#[inline(always)]
fn load(bytes: &[u8], at: usize) -> u32 {
    let mut w = [0u8; FAST_WINDOW];
    if let Some(b) = bytes.get(at..at + FAST_WINDOW) {
        w.copy_from_slice(b);
    }
    u32::from_le_bytes(w)
}

/// Eight bytes at `at`, little-endian; the caller checked `at + 8 <= bytes.len()`.
#[inline(always)]
fn load64(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(b) = bytes.get(at..at + 8) {
        w.copy_from_slice(b);
    }
    u64::from_le_bytes(w)
}

/// The varint at the start of the little-endian word `w` and its length, if it ends
/// within the word's eight bytes (values below 2^56); branch-free.
#[inline(always)]
fn fast_varint64(w: u64) -> Option<(u64, usize)> {
    let stops = !w & 0x8080_8080_8080_8080;
    if stops == 0 {
        return None;
    }
    let n = (stops.trailing_zeros() / 8 + 1) as usize;
    let m = w & (u64::MAX >> (64 - 8 * n));
    // Gather the 7-bit groups: pairs, then quads, then the two halves.
    let m = (m & 0x007f_007f_007f_007f) | ((m & 0x7f00_7f00_7f00_7f00) >> 1);
    let m = (m & 0x0000_3fff_0000_3fff) | ((m & 0x3fff_0000_3fff_0000) >> 2);
    let m = (m & 0x0000_0000_0fff_ffff) | ((m & 0x0fff_ffff_0000_0000) >> 4);
    Some((m, n))
}

/// The varint at the start of the little-endian word `w` and its length, if it ends
/// within the word's four bytes (values below 2^28); branch-free.
#[inline(always)]
fn fast_varint(w: u32) -> Option<(u64, usize)> {
    let stops = !w & 0x8080_8080;
    if stops == 0 {
        return None;
    }
    let n = (stops.trailing_zeros() / 8 + 1) as usize;
    let m = w & (u32::MAX >> (32 - 8 * n));
    let v = (m & 0x7f) | (m >> 1 & 0x7f << 7) | (m >> 2 & 0x7f << 14) | (m >> 3 & 0x7f << 21);
    Some((u64::from(v), n))
}

/// One record (after any timestamp markers): `Ok(true)` if one was visited, `Ok(false)`
/// at the end of the block.
#[inline(always)]
fn step<V: Visitor>(
    bytes: &[u8],
    at: &mut usize,
    prev: &mut u64,
    v: &mut V,
) -> Result<bool, DecodeErrorReason> {
    loop {
        if *at >= bytes.len() {
            return Ok(false);
        }
        let (header, mut p) = read(bytes, *at)?;
        let code = (header & 0xf) as u8;
        let delta = header >> 4;
        if code == Kind::Timestamp as u8 {
            let (abs, next) = read(bytes, p)?;
            *prev = abs;
            *at = next;
            continue;
        }
        if code == Kind::End as u8 {
            *at = bytes.len();
            return Ok(false);
        }
        if code > Kind::ThreadSwitch as u8 && code != Kind::ClockBack as u8 {
            return Err(DecodeErrorReason::UnknownKind(code));
        }
        let ts = prev
            .checked_add(delta)
            .ok_or(DecodeErrorReason::TimeOverflow)?;
        match code {
            0 => {
                let (w, n) = read(bytes, p)?;
                let w = u32::try_from(w)
                    .map_err(|_| DecodeErrorReason::BadField("kernel entry word"))?;
                p = n;
                v.kernel_entry(ts, w);
            }
            1 => {
                let (d, n) = read(bytes, p)?;
                p = n;
                v.kernel_exit(ts, d);
            }
            2 => {
                let (irq, n) = read(bytes, p)?;
                let irq = u32::try_from(irq).map_err(|_| DecodeErrorReason::BadField("irq"))?;
                p = n;
                v.interrupt(ts, irq);
            }
            3 => {
                let (f, n) = read(bytes, p)?;
                p = n;
                v.function_entry(ts, f);
            }
            4 => {
                let (f, n) = read(bytes, p)?;
                p = n;
                v.function_exit(ts, f);
            }
            5 => {
                let (x, n) = read(bytes, p)?;
                let (id, len) = split_user_head(x)?;
                let data = bytes.get(n..n + len).ok_or(DecodeErrorReason::Truncated)?;
                p = n + len;
                v.user(ts, id, data);
            }
            6 => {
                let (base, a) = read(bytes, p)?;
                let (size, b) = read(bytes, a)?;
                let (id, c) = read(bytes, b)?;
                p = c;
                v.image(ts, base, size, id);
            }
            8 => {
                let (thread, n) = read(bytes, p)?;
                p = n;
                v.thread_switch(ts, thread);
            }
            11 => {
                let (back, n) = read(bytes, p)?;
                p = n;
                v.clock_back(ts, back);
            }
            _ => {
                let (count, a) = read(bytes, p)?;
                let (ago, b) = read(bytes, a)?;
                let since = ts
                    .checked_sub(ago)
                    .ok_or(DecodeErrorReason::BadField("lost since"))?;
                p = b;
                v.lost(ts, count, since);
            }
        }
        *prev = ts;
        *at = p;
        return Ok(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{encode, BlockRecords, Event, ExitDuration, Record, Time, UserPayload};
    use crate::KernelEntry;
    use proptest::prelude::*;

    /// Rebuilds `Record`s from the visitor calls, to compare with `BlockRecords`.
    struct Collect(Vec<Record>);

    impl Visitor for Collect {
        fn kernel_entry(&mut self, ts: u64, word: u32) {
            self.0.push(Record {
                ts,
                event: Event::KernelEntry(KernelEntry(word)),
            });
        }
        fn kernel_exit(&mut self, ts: u64, wire: u64) {
            let d = match wire {
                0 => ExitDuration::NoEntry,
                1 => ExitDuration::NestingOverflow,
                t => ExitDuration::Ticks(t - 2),
            };
            self.0.push(Record {
                ts,
                event: Event::KernelExit(d),
            });
        }
        fn interrupt(&mut self, ts: u64, irq: u32) {
            self.0.push(Record {
                ts,
                event: Event::Interrupt { irq },
            });
        }
        fn function_entry(&mut self, ts: u64, func: u64) {
            self.0.push(Record {
                ts,
                event: Event::FunctionEntry { func },
            });
        }
        fn function_exit(&mut self, ts: u64, func: u64) {
            self.0.push(Record {
                ts,
                event: Event::FunctionExit { func },
            });
        }
        fn user(&mut self, ts: u64, id: u32, payload: &[u8]) {
            let payload = UserPayload::new(payload).unwrap();
            self.0.push(Record {
                ts,
                event: Event::User { id, payload },
            });
        }
        fn image(&mut self, ts: u64, base: u64, size: u64, id: u64) {
            self.0.push(Record {
                ts,
                event: Event::Image { base, size, id },
            });
        }
        fn lost(&mut self, ts: u64, count: u64, since: u64) {
            self.0.push(Record {
                ts,
                event: Event::Lost { count, since },
            });
        }
        fn thread_switch(&mut self, ts: u64, thread: u64) {
            self.0.push(Record {
                ts,
                event: Event::ThreadSwitch { thread },
            });
        }
        fn clock_back(&mut self, ts: u64, back: u64) {
            self.0.push(Record {
                ts,
                event: Event::ClockBack { back },
            });
        }
    }

    fn check(bytes: &[u8], base: u64) {
        let mut it = BlockRecords::new(bytes, base);
        let mut want = Vec::new();
        let mut err = None;
        for r in it.by_ref() {
            match r {
                Ok(r) => want.push(r),
                Err(e) => err = Some(e),
            }
        }
        let mut c = Collect(Vec::new());
        let end = scan_block(bytes, base, &mut c);
        assert_eq!(c.0, want);
        assert_eq!(end.error, err);
        assert_eq!(end.records, want.len() as u64);
        if err.is_none() {
            assert_eq!(end.offset, it.offset());
        }
    }

    #[test]
    fn agrees_with_block_records_on_every_kind() {
        let events = [
            Event::KernelEntry(KernelEntry::syscall(1, 10, true, 42)),
            Event::KernelExit(ExitDuration::Ticks(1234)),
            Event::KernelExit(ExitDuration::NoEntry),
            Event::Interrupt { irq: 65_535 },
            Event::FunctionEntry { func: 0x0800_1234 },
            Event::FunctionExit { func: u64::MAX },
            Event::User {
                id: 9,
                payload: UserPayload::new(&[7; 5]).unwrap(),
            },
            Event::Image {
                base: 1,
                size: 2,
                id: 3,
            },
            Event::Lost {
                count: 4,
                since: 10,
            },
            Event::ThreadSwitch {
                thread: 0xffff_ff80_1ffc_9400,
            },
            Event::KernelEntry(KernelEntry::PENDING),
            Event::ClockBack { back: 77 },
        ];
        let mut bytes = Vec::new();
        let mut ts = 100;
        for (i, e) in events.iter().enumerate() {
            ts += 1 << i;
            let mut buf = [0u8; crate::record::MAX_RECORD_LEN];
            let t = if i % 3 == 0 {
                Time::Absolute(ts)
            } else {
                Time::Delta(1 << i)
            };
            let n = encode(&mut buf, t, ts, e);
            bytes.extend_from_slice(&buf[..n]);
        }
        check(&bytes, 100);
        for cut in 0..bytes.len() {
            check(&bytes[..cut], 100);
        }
        bytes.push(crate::record::END_MARKER);
        bytes.extend_from_slice(&[0xff; 8]);
        check(&bytes, 100);
    }

    #[test]
    fn fast_varint_agrees_with_varint_read() {
        for value in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            1 << 21,
            (1 << 28) - 1,
        ] {
            let mut buf = [0xffu8; 16];
            let n = crate::varint::write(&mut buf, 0, value);
            assert_eq!(fast_varint(load(&buf, 0)), Some((value, n)));
        }
        assert_eq!(fast_varint(u32::MAX), None);
        for value in [
            0u64,
            1,
            127,
            128,
            16_384,
            1 << 21,
            u64::from(u32::MAX),
            (1 << 56) - 1,
        ] {
            let mut buf = [0xffu8; 16];
            let n = crate::varint::write(&mut buf, 0, value);
            assert_eq!(fast_varint64(load64(&buf, 0)), Some((value, n)));
        }
        assert_eq!(fast_varint64(u64::MAX), None);
        // Non-canonical encodings decode as the slow reader decodes them.
        assert_eq!(
            fast_varint(u32::from_le_bytes([0x80, 0, 0, 0])),
            Some((0, 2))
        );
    }

    proptest! {
        #[test]
        fn agrees_with_block_records_on_garbage(bytes: Vec<u8>, base: u64) {
            check(&bytes, base);
        }

        #[test]
        fn agrees_with_block_records_on_plausible_bytes(
            bytes in proptest::collection::vec(
                prop_oneof![0u8..0x10, 0x10u8..0x80, 0x80u8..=0xff, Just(0x0e), Just(0x0f)],
                0..400,
            ),
            base in prop_oneof![Just(0u64), Just(u64::MAX - 1000), any::<u64>()],
        ) {
            check(&bytes, base);
        }
    }
}
