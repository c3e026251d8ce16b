//! A fast path over a block's records for summaries: the records are handed to a
//! [`Visitor`] field by field, without building [`crate::Event`]s.
//!
//! [`scan_block`] accepts exactly what [`crate::record::BlockRecords`] accepts, stops
//! where it stops, and reports the same [`DecodeError`] at the same offset; the unit
//! tests check this against the iterator. It exists because a summary of a large dump
//! touches every record, and an `Event` (with its inline user payload) costs more to
//! build and move than the few fields a summary reads.

use crate::record::{split_thread_head, split_user_head, DecodeError, DecodeErrorReason, Kind};
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
    /// A thread name (format version 3): `thread` is called `name`, priority `prio`.
    #[inline(always)]
    fn thread_name(&mut self, ts: u64, thread: u64, prio: u32, name: &[u8]) {
        let _ = (ts, thread, prio, name);
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
    /// A user, image, `Lost`, thread-switch, thread-name or clock-back record.
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
    fn thread_name(&mut self, ts: u64, _thread: u64, _prio: u32, _name: &[u8]) {
        self.0.other(ts, crate::Kind::ThreadName);
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
    /// Of those, `Lost` records: `records - lost` is the block's event records, the
    /// count its header's `records` field holds (FORMAT.md 7.1).
    pub lost: u64,
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
///
/// On x86-64 processors with a fast BMI2 (see [`gather::Bmi2::detect`]) the fast path
/// gathers varint bits with `pext`; elsewhere with shifts and masks. Both give the
/// same results (the tests run both).
#[inline]
pub fn scan_block<V: Visitor>(bytes: &[u8], base_ts: u64, v: &mut V) -> ScanEnd {
    #[cfg(target_arch = "x86_64")]
    if let Some(bmi2) = gather::Bmi2::detect() {
        return scan_block_bmi2(bytes, base_ts, v, bmi2);
    }
    scan_with(bytes, base_ts, v, gather::Portable)
}

/// [`scan_block`] with the BMI2 gatherer, compiled with BMI1 and BMI2 enabled (the
/// token proves the processor has them).
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn scan_block_bmi2<V: Visitor>(
    bytes: &[u8],
    base_ts: u64,
    v: &mut V,
    bmi2: gather::Bmi2,
) -> ScanEnd {
    #[target_feature(enable = "bmi1,bmi2")]
    fn inner<V: Visitor>(bytes: &[u8], base_ts: u64, v: &mut V, bmi2: gather::Bmi2) -> ScanEnd {
        scan_with(bytes, base_ts, v, bmi2)
    }
    // SAFETY: a `Bmi2` token exists only if the processor supports BMI1 and BMI2
    // (`Bmi2::detect` checked CPUID, or the caller of `Bmi2::new_unchecked` promised).
    unsafe { inner(bytes, base_ts, v, bmi2) }
}

/// [`scan_block`] with the portable gatherer, whatever the processor.
#[inline]
pub fn scan_block_portable<V: Visitor>(bytes: &[u8], base_ts: u64, v: &mut V) -> ScanEnd {
    scan_with(bytes, base_ts, v, gather::Portable)
}

/// [`scan_block`] with the varint gatherer `g`, inlined into the caller: for a caller
/// that compiles its own loop over blocks with the gatherer's target features (a
/// `#[target_feature(enable = "bmi1,bmi2")]` function holding a [`gather::Bmi2`]), so
/// that its visitor's state can stay in registers across records.
#[inline(always)]
pub fn scan_with<V: Visitor, G: gather::Gather>(
    bytes: &[u8],
    base_ts: u64,
    v: &mut V,
    g: G,
) -> ScanEnd {
    let mut at = 0usize;
    let mut prev = base_ts;
    let mut records = 0u64;
    let mut lost = 0u64;
    loop {
        // Fast path, at least `FAST_WINDOW` bytes from the end: a record of kind 0 to 4
        // whose header varint is at most 4 bytes and payload varint at most 8 (kernel
        // entry words and 32-bit code addresses take 5), decoded from one 16-byte window
        // without a branch per byte or per kind. Anything else (markers, other kinds,
        // long varints, errors) takes the general path.
        // The last position with a whole window after it (none: the block is shorter).
        let fast_end = bytes.len().checked_sub(FAST_WINDOW);
        while fast_end.is_some_and(|e| at <= e) {
            let Some(chunk) = bytes.get(at..).and_then(<[u8]>::first_chunk::<FAST_WINDOW>) else {
                break;
            };
            // Most records fit the first eight bytes: their length comes from the first
            // two stop bits, so the next record's position depends on one load and a
            // few instructions (the loop is bound by that chain, not by the decoding).
            let Some((h, value, len)) = g.record(le64(chunk, 0)).or_else(|| {
                let (h, hl) = g.varint32(le32(chunk))?;
                let (value, vl) = g.varint64(le64(chunk, hl))?;
                Some((h, value, hl + vl))
            }) else {
                break;
            };
            let code = (h & 0xf) as u8;
            let Some(ts) = prev.checked_add(h >> 4) else {
                break;
            };
            // Kinds 0 to 4 only, and kernel entry words and IRQ numbers (codes 0 and
            // 2) within 32 bits: one compare with the bound of the code.
            if value >= FAST_BOUND[usize::from(code & 0xf)] {
                break;
            }
            v.simple(ts, code, value);
            prev = ts;
            at += len;
            records += 1;
        }
        let start = at;
        match step(bytes, &mut at, &mut prev, v, &mut lost) {
            Ok(true) => records += 1,
            Ok(false) => {
                return ScanEnd {
                    offset: at,
                    records,
                    lost,
                    error: None,
                }
            }
            Err(reason) => {
                return ScanEnd {
                    offset: start,
                    records,
                    lost,
                    error: Some(DecodeError {
                        offset: start,
                        reason,
                    }),
                }
            }
        }
    }
}

/// Bytes the fast path reads at once: a header of up to 4 bytes and the 8 after it.
const FAST_WINDOW: usize = 16;

/// Per kind code, the values the fast path takes are those below this bound: 2^32
/// for kernel entries and interrupts (32-bit fields), any value its 8-byte varints
/// hold (below 2^56) for kernel exits and function entries and exits, and none for the
/// other codes (they have other payloads).
const FAST_BOUND: [u64; 16] = {
    let mut b = [0u64; 16];
    b[Kind::KernelEntry as usize] = 1 << 32;
    b[Kind::KernelExit as usize] = u64::MAX;
    b[Kind::Interrupt as usize] = 1 << 32;
    b[Kind::FunctionEntry as usize] = u64::MAX;
    b[Kind::FunctionExit as usize] = u64::MAX;
    b
};

/// The first four bytes of `chunk`, little-endian.
#[inline(always)]
fn le32(chunk: &[u8; FAST_WINDOW]) -> u32 {
    u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])
}

/// Eight bytes of `chunk` at `at` (at most 4: after a header of at most 4 bytes),
/// little-endian.
#[inline(always)]
fn le64(chunk: &[u8; FAST_WINDOW], at: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(b) = chunk.get(at..at + 8) {
        w.copy_from_slice(b);
    }
    u64::from_le_bytes(w)
}

pub mod gather {
    //! How the fast path of [`super::scan_block`] turns the bytes of a varint, loaded
    //! as one little-endian word, into its value: [`Portable`] with shifts and masks,
    //! `Bmi2` with one `pext` (x86-64 processors with BMI2, where `pext` is fast).

    /// Decodes a varint from the start of a little-endian word, without a branch per
    /// byte.
    pub trait Gather: Copy {
        /// The varint at the start of `w` and its length, if it ends within the word's
        /// four bytes (values below 2^28).
        fn varint32(self, w: u32) -> Option<(u64, usize)>;
        /// The varint at the start of `w` and its length, if it ends within the word's
        /// eight bytes (values below 2^56).
        fn varint64(self, w: u64) -> Option<(u64, usize)>;
        /// The two varints at the start of `w` (a record's header and its one payload
        /// value) and their total length, if both end within the word's eight bytes.
        fn record(self, w: u64) -> Option<(u64, u64, usize)>;
    }

    /// The top bit of every byte of a word: the continuation bits.
    const STOPS: u64 = 0x8080_8080_8080_8080;
    /// The low seven bits of every byte of a word: the value bits (BMI2's gather masks).
    #[cfg(target_arch = "x86_64")]
    const GROUPS: u64 = !STOPS;

    /// The bit position (7, 15, 23, 31) of the first stop bit (a byte below 0x80) of
    /// `w`: where its first varint ends.
    #[inline(always)]
    fn first_stop32(w: u32) -> Option<u32> {
        let stops = !w & STOPS as u32;
        (stops != 0).then(|| stops.trailing_zeros())
    }

    /// [`first_stop32`] over eight bytes (7, 15, ..., 63).
    #[inline(always)]
    fn first_stop64(w: u64) -> Option<u32> {
        let stops = !w & STOPS;
        (stops != 0).then(|| stops.trailing_zeros())
    }

    /// The bit positions of the first two stop bits of `w`: where its first and second
    /// varints end.
    #[inline(always)]
    fn two_stops(w: u64) -> Option<(u32, u32)> {
        let stops = !w & STOPS;
        let rest = stops & stops.wrapping_sub(1);
        (rest != 0).then(|| (stops.trailing_zeros(), rest.trailing_zeros()))
    }

    /// Shifts and masks: any processor.
    #[derive(Debug, Clone, Copy)]
    pub struct Portable;

    impl Gather for Portable {
        #[inline(always)]
        fn varint32(self, w: u32) -> Option<(u64, usize)> {
            let n = (first_stop32(w)? / 8 + 1) as usize;
            let m = w & (u32::MAX >> (32 - 8 * n));
            let v =
                (m & 0x7f) | (m >> 1 & 0x7f << 7) | (m >> 2 & 0x7f << 14) | (m >> 3 & 0x7f << 21);
            Some((u64::from(v), n))
        }

        #[inline(always)]
        fn varint64(self, w: u64) -> Option<(u64, usize)> {
            let n = (first_stop64(w)? / 8 + 1) as usize;
            Some((compact(w & (u64::MAX >> (64 - 8 * n))), n))
        }

        #[inline(always)]
        fn record(self, w: u64) -> Option<(u64, u64, usize)> {
            let (first, end) = two_stops(w)?;
            let head = w & (u64::MAX >> (63 - first));
            let value = (w & (u64::MAX >> (63 - end))) >> (first + 1);
            Some((compact(head), compact(value), (end / 8 + 1) as usize))
        }
    }

    /// The 7-bit groups of the bytes of `m` side by side (the continuation bits
    /// dropped): pairs, then quads, then the two halves.
    #[inline(always)]
    fn compact(m: u64) -> u64 {
        let m = (m & 0x007f_007f_007f_007f) | ((m & 0x7f00_7f00_7f00_7f00) >> 1);
        let m = (m & 0x0000_3fff_0000_3fff) | ((m & 0x3fff_0000_3fff_0000) >> 2);
        (m & 0x0000_0000_0fff_ffff) | ((m & 0x0fff_ffff_0000_0000) >> 4)
    }

    /// `pext`: a token that the processor has BMI1 and BMI2 with a fast `pext`.
    #[cfg(target_arch = "x86_64")]
    #[derive(Debug, Clone, Copy)]
    pub struct Bmi2(());

    #[cfg(target_arch = "x86_64")]
    impl Bmi2 {
        /// The token, if this processor has BMI1 and BMI2 and its `pext` is fast: not
        /// on AMD processors before Zen 3 (family 19h), where `pext` is microcoded and
        /// takes up to hundreds of cycles. The answer is computed once and cached.
        #[inline]
        pub fn detect() -> Option<Bmi2> {
            use core::sync::atomic::{AtomicU8, Ordering};
            // 0: not yet known, 1: no, 2: yes.
            static KNOWN: AtomicU8 = AtomicU8::new(0);
            let k = match KNOWN.load(Ordering::Relaxed) {
                0 => {
                    let k = if fast_bmi2() { 2 } else { 1 };
                    KNOWN.store(k, Ordering::Relaxed);
                    k
                }
                k => k,
            };
            (k == 2).then_some(Bmi2(()))
        }

        /// The token without checking.
        ///
        /// # Safety
        ///
        /// The processor must support BMI1 and BMI2 (code using the token executes
        /// their instructions).
        #[inline]
        pub unsafe fn new_unchecked() -> Bmi2 {
            Bmi2(())
        }
    }

    /// Whether the processor has BMI1 and BMI2 and a fast `pext` (CPUID).
    ///
    /// Hand-written rather than `std::is_x86_feature_detected!` (this crate is
    /// `no_std`) or the `cpufeatures` crate (which cannot tell a slow `pext`): CPUID
    /// leaf 7 for the features, leaves 0 and 1 for the vendor and family.
    #[cfg(target_arch = "x86_64")]
    fn fast_bmi2() -> bool {
        use core::arch::x86_64::__cpuid;
        // Miri runs neither CPUID nor `pext`: the portable path there.
        if cfg!(miri) {
            return false;
        }
        let max_leaf = __cpuid(0);
        if max_leaf.eax < 7 {
            return false;
        }
        let features = __cpuid(7).ebx;
        let has = features & (1 << 3) != 0 && features & (1 << 8) != 0;
        let amd = (max_leaf.ebx, max_leaf.edx, max_leaf.ecx)
            == (
                u32::from_le_bytes(*b"Auth"),
                u32::from_le_bytes(*b"enti"),
                u32::from_le_bytes(*b"cAMD"),
            );
        let sig = __cpuid(1).eax;
        let base = (sig >> 8) & 0xf;
        let family = if base == 0xf {
            base + ((sig >> 20) & 0xff)
        } else {
            base
        };
        has && !(amd && family < 0x19)
    }

    #[cfg(target_arch = "x86_64")]
    impl Gather for Bmi2 {
        #[inline(always)]
        fn varint32(self, w: u32) -> Option<(u64, usize)> {
            use core::arch::x86_64::{_bzhi_u32, _pext_u32};
            let end = first_stop32(w)? + 1;
            // SAFETY: the token proves BMI1 and BMI2 (see `Bmi2`).
            let v = unsafe { _pext_u32(w, _bzhi_u32(0x7f7f_7f7f, end)) };
            Some((u64::from(v), (end / 8) as usize))
        }

        #[inline(always)]
        fn varint64(self, w: u64) -> Option<(u64, usize)> {
            use core::arch::x86_64::{_bzhi_u64, _pext_u64};
            let end = first_stop64(w)? + 1;
            // SAFETY: the token proves BMI1 and BMI2 (see `Bmi2`).
            let v = unsafe { _pext_u64(w, _bzhi_u64(GROUPS, end)) };
            Some((v, (end / 8) as usize))
        }

        #[inline(always)]
        fn record(self, w: u64) -> Option<(u64, u64, usize)> {
            use core::arch::x86_64::{_bzhi_u64, _pext_u64};
            // The value bits below a stop bit are those below the next bit, so no `+ 1`
            // before `bzhi`.
            let (first, end) = two_stops(w)?;
            // SAFETY: the token proves BMI1 and BMI2 (see `Bmi2`).
            let (head, value) = unsafe {
                let head = _bzhi_u64(GROUPS, first);
                let record = _bzhi_u64(GROUPS, end);
                (_pext_u64(w, head), _pext_u64(w, record & !head))
            };
            Some((head, value, (end / 8) as usize + 1))
        }
    }
}

/// One record (after any timestamp markers): `Ok(true)` if one was visited, `Ok(false)`
/// at the end of the block.
#[inline(always)]
fn step<V: Visitor>(
    bytes: &[u8],
    at: &mut usize,
    prev: &mut u64,
    v: &mut V,
    lost: &mut u64,
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
        if code > Kind::ThreadName as u8 && code != Kind::ClockBack as u8 {
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
            9 => {
                let (thread, a) = read(bytes, p)?;
                let (x, n) = read(bytes, a)?;
                let (prio, len) = split_thread_head(x)?;
                let name = bytes.get(n..n + len).ok_or(DecodeErrorReason::Truncated)?;
                p = n + len;
                v.thread_name(ts, thread, prio, name);
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
                *lost += 1;
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
        fn thread_name(&mut self, ts: u64, thread: u64, prio: u32, name: &[u8]) {
            let name = UserPayload::new(name).unwrap();
            self.0.push(Record {
                ts,
                event: Event::ThreadName { thread, prio, name },
            });
        }
    }

    /// A scan entry point, as `check` runs it.
    type ScanFn = fn(&[u8], u64, &mut Collect) -> ScanEnd;
    /// A gatherer under test: a word to what it makes of it.
    type GatherFn = Box<dyn Fn(u64) -> GatherOut>;

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
        let mut scans: Vec<(&str, ScanFn)> = vec![
            ("scan_block", scan_block),
            ("portable", scan_block_portable),
        ];
        #[cfg(target_arch = "x86_64")]
        if gather::Bmi2::detect().is_some() {
            scans.push(("bmi2", |b, base, c| {
                scan_block_bmi2(b, base, c, gather::Bmi2::detect().unwrap())
            }));
        }
        for (name, scan) in scans {
            let mut c = Collect(Vec::new());
            let end = scan(bytes, base, &mut c);
            assert_eq!(c.0, want, "{name}");
            assert_eq!(end.error, err, "{name}");
            assert_eq!(end.records, want.len() as u64, "{name}");
            if err.is_none() {
                assert_eq!(end.offset, it.offset(), "{name}");
            }
        }
    }

    /// The gatherers this machine can run.
    fn gatherers() -> Vec<(&'static str, GatherFn)> {
        let mut v: Vec<(&'static str, GatherFn)> =
            vec![("portable", Box::new(|w| gather_all(gather::Portable, w)))];
        #[cfg(target_arch = "x86_64")]
        if let Some(b) = gather::Bmi2::detect() {
            v.push(("bmi2", Box::new(move |w| gather_all(b, w))));
        }
        v
    }

    /// What a gatherer makes of a word: `varint32` of its low half, `varint64`, `record`.
    type GatherOut = (
        Option<(u64, usize)>,
        Option<(u64, usize)>,
        Option<(u64, u64, usize)>,
    );

    fn gather_all<G: gather::Gather>(g: G, w: u64) -> GatherOut {
        (g.varint32(w as u32), g.varint64(w), g.record(w))
    }

    /// What `varint::read` makes of the word's bytes, limited as the gatherers are.
    fn reference(w: u64) -> GatherOut {
        let b = w.to_le_bytes();
        let within = |n: usize, at: usize| {
            crate::varint::read(&b[..n], at)
                .ok()
                .map(|(v, end)| (v, end - at))
        };
        let record = within(8, 0).and_then(|(h, hl)| within(8, hl).map(|(v, vl)| (h, v, hl + vl)));
        (within(4, 0), within(8, 0), record)
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
            Event::ThreadName {
                thread: 0x2000_1000,
                prio: 300,
                name: UserPayload::new(b"consumer").unwrap(),
            },
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
    fn gatherers_agree_with_varint_read() {
        let mut words = vec![0u64, u64::MAX, 0x80, 0x8080, 0x0080_8080_8080_8080];
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
            u64::from(u32::MAX),
            (1 << 49) - 1,
            (1 << 56) - 1,
        ] {
            for head in [0u64, 5, 0x3fff, 1 << 20] {
                let mut buf = [0xffu8; 24];
                let n = crate::varint::write(&mut buf, 0, head);
                crate::varint::write(&mut buf, n, value);
                words.push(u64::from_le_bytes(buf[..8].try_into().unwrap()));
                let mut buf = [0xffu8; 16];
                crate::varint::write(&mut buf, 0, value);
                words.push(u64::from_le_bytes(buf[..8].try_into().unwrap()));
            }
        }
        // Non-canonical encodings decode as the slow reader decodes them.
        words.push(u64::from_le_bytes([
            0x80, 0, 0x80, 0x80, 0, 0xff, 0xff, 0xff,
        ]));
        for (name, g) in gatherers() {
            for &w in &words {
                assert_eq!(g(w), reference(w), "{name} {w:#018x}");
            }
        }
    }

    proptest! {
        #[test]
        fn gatherers_agree_with_varint_read_on_any_word(w: u64, stops: u64) {
            // Random words, and words with few continuation bits (more varints end).
            for w in [w, w & !(stops & 0x8080_8080_8080_8080)] {
                for (name, g) in gatherers() {
                    prop_assert_eq!(g(w), reference(w), "{} {:#018x}", name, w);
                }
            }
        }

        /// Valid records as an encoder writes them: mostly the five one-value kinds
        /// with values and time deltas of every varint length, some other kinds,
        /// absolute times, then maybe an END marker and garbage after it.
        #[test]
        fn agrees_with_block_records_on_encoded_records(
            recs in proptest::collection::vec(
                (0u8..16, 0u32..64, any::<u64>(), any::<bool>()),
                0..300,
            ),
            base in prop_oneof![Just(0u64), Just(u64::MAX >> 8), any::<u64>()],
            end in any::<bool>(),
        ) {
            let mut bytes = Vec::new();
            let mut ts = base;
            for (kind, bits, raw, absolute) in recs {
                let value = raw & (u64::MAX >> (63 - bits.min(63)));
                let event = match kind {
                    0 => Event::KernelEntry(KernelEntry(value as u32)),
                    1..=3 => Event::KernelExit(ExitDuration::Ticks(value)),
                    4 => Event::Interrupt { irq: value as u32 },
                    5..=8 => Event::FunctionEntry { func: value },
                    9..=12 => Event::FunctionExit { func: value },
                    13 => Event::User {
                        id: value as u32 & 0xff,
                        payload: UserPayload::new(&[kind; 3]).unwrap(),
                    },
                    14 => Event::ThreadSwitch { thread: value },
                    15 if bits % 2 == 0 => Event::ThreadName {
                        thread: value,
                        prio: bits,
                        name: UserPayload::truncating(&raw.to_le_bytes()[..(bits as usize % 9)]),
                    },
                    _ => Event::ClockBack { back: value },
                };
                let delta = raw.rotate_left(bits).checked_shr(64 - bits.min(40)).unwrap_or(0);
                let Some(next) = ts.checked_add(delta) else { break };
                ts = next;
                let t = if absolute && kind % 4 == 0 { Time::Absolute(ts) } else { Time::Delta(delta) };
                let mut buf = [0u8; crate::record::MAX_RECORD_LEN];
                let n = encode(&mut buf, t, ts, &event);
                bytes.extend_from_slice(&buf[..n]);
            }
            if end {
                bytes.push(crate::record::END_MARKER);
                bytes.extend_from_slice(&[0x81; 20]);
            }
            check(&bytes, base);
        }

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
