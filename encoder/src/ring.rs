//! One CPU's ring: initialisation, ownership, and the lock-free writer.
//!
//! # Writing a record
//!
//! Writers on the ring's CPU nest (thread, interrupt, nested interrupt) and each runs to
//! completion before the one it interrupted resumes. A writer:
//!
//! 1. *enters*: bumps `nest` with a plain load and store (a nested writer restores the
//!    value before the interrupted one resumes, so no read-modify-write is needed);
//! 2. *sizes* the record (it is encoded straight into the ring later). Its time is a delta from `last_ts` when
//!    `last_pos == write_pos` proves that `last_ts` belongs to the record just before the
//!    reservation; otherwise (an interrupt wrote in between, a new block, a clock step) it
//!    is an absolute timestamp marker;
//! 3. *reserves* with one compare-and-swap on `write_pos`; if an interrupt moved it, the
//!    writer starts again from 2 with a fresh clock reading. A record that does not fit
//!    opens the next block (below);
//! 4. *writes* its bytes into the space it owns, bumps the block's record count, and
//!    stores `last_ts` then `last_pos`;
//! 5. *commits*: only the outermost writer (`nest` was 0) moves `commit_pos` up to
//!    `write_pos`, so a reader on another core never sees a reservation whose bytes are
//!    still being written; it re-checks `write_pos` after dropping `nest` so that a record
//!    reserved by an interrupt in that window is committed too.
//!
//! # The fast path
//!
//! Steps 2 to 4 have an inlined, straight-line form for the common record (a delta below
//! 2^28, a payload that is one `u32` varint plus raw bytes): it sizes the record with a
//! branch-free varint length, maps `write_pos` to memory through the one-word lap cache
//! ([`Ring`]'s `lap`, a pure function of the position's lap, so it can be read at any
//! time and a stale or concurrently replaced value only costs a miss), and does the
//! reservation's CAS once. Anything else (a timestamp marker, a large value, a cache miss,
//! no room, a failed CAS) falls to the general path, out of line, which starts over from
//! step 2 with a fresh clock reading. Both write the bytes `record::encode_with` writes.
//!
//! # Opening a block
//!
//! The writer that finds no room CASes `write_pos` to the first record of the next block
//! and then owns both the old block's tail, where it writes the [`END_MARKER`], and the
//! new block's header. Before the CAS it checks the block can be reclaimed (drop mode: the
//! ring is not full; overwrite mode: the commit position has left the old block, so no
//! interrupted writer still owns bytes there) and reads the old block's record count,
//! which it adds to `overwritten`. Writers nested after the CAS only add to the new
//! block's record count, so the opener sets that count by adding, never by storing.
//!
//! [`END_MARKER`]: tracemark_format::record::END_MARKER

use tracemark_format::record::{self, Kind, Time, END_MARKER, MAX_DELTA};
use tracemark_format::ring::{
    self, offsets, Geometry, Mode, BLOCK_HEADER_LEN, BLOCK_MAGIC, RING_HEADER_LEN,
};
use tracemark_format::varint;
use tracemark_format::{Event, SyscallAbi};

use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, IntoBytes};

use crate::mem::Mem;
use crate::pos::{self, SlotDivisor};
use crate::sync::{compiler_fence, fence, local_add, local_cas, AtomicU32, Ordering};

/// How to lay out and run a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Bytes per block: a power of two from 256 to 65536. Overwrite and resynchronisation
    /// work a block at a time; 4096 suits most uses.
    pub block_size: u32,
    /// Overwrite (flight recorder) or drop (stop when full).
    pub mode: Mode,
    /// Clock frequency in Hz, written into the header for the host (0 if unknown).
    pub clock_hz: u64,
    /// The CPU this ring records.
    pub cpu_id: u32,
    /// A producer or build id the host shows and can check.
    pub producer_id: u64,
    /// Which seL4 numbering the kernel-entry syscall numbers use.
    pub syscall_abi: SyscallAbi,
}

impl Config {
    /// 4 KiB blocks, overwrite mode, CPU 0, seL4 numbering, clock frequency unknown.
    pub const fn new() -> Self {
        Config {
            block_size: 4096,
            mode: Mode::Overwrite,
            clock_hz: 0,
            cpu_id: 0,
            producer_id: 0,
            syscall_abi: SyscallAbi::Sel4,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

/// Why a ring could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitError {
    /// The memory is not 8-byte aligned.
    Misaligned,
    /// The memory holds fewer than two blocks after the header.
    TooSmall {
        /// Bytes needed at least.
        needed: usize,
    },
    /// The block size is not a power of two from 256 to 65536.
    BadBlockSize,
    /// The memory already holds a ring that an owner has claimed, or overlaps the memory
    /// of a ring in use.
    InUse,
    /// The memory holds a ring that a session claimed and no ring of this program uses:
    /// an earlier boot's, kept across a reset. [`Ring::recover`] reads it and starts a
    /// new session.
    PreviousSession,
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitError::Misaligned => write!(f, "ring memory is not 8-byte aligned"),
            InitError::TooSmall { needed } => {
                write!(f, "ring memory needs at least {needed} bytes")
            }
            InitError::BadBlockSize => {
                write!(f, "block size must be a power of two from 256 to 65536")
            }
            InitError::InUse => write!(f, "ring memory is already owned by a tracing session"),
            InitError::PreviousSession => write!(
                f,
                "ring memory holds an earlier session's ring; recover it to start a new one"
            ),
        }
    }
}

/// The owner token a claimed ring carries.
const OWNED: u32 = ring::OWNER_TOKEN;

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The record is in the ring.
    Written,
    /// The ring had no room; the record was counted as dropped.
    Dropped,
}

/// One CPU's ring in caller-provided memory.
pub struct Ring<'a> {
    mem: Mem<'a>,
    geometry: Geometry,
    mode: Mode,
    /// `geometry.block_size() - 1`, kept at hand for the fast path.
    mask: u32,
    /// `mask - (BLOCK_HEADER_LEN - 1) - SMALL_VARINTS_MAX`: a `Small` record whose
    /// offset minus the header length is below this minus its raw data length fits the
    /// block whatever its varints' lengths (see [`Ring::try_fast`]).
    room: u32,
    /// `seq % block_count` without a division (the recording path never divides).
    div: SlotDivisor,
    /// Bytes of all blocks: `block_count * block_size` (at most 2^31).
    area: u32,
    /// A cache of the position-to-memory mapping, one word so that it can never be seen
    /// torn: `rel = pos + lap` (wrapping) is the byte offset from the first block for
    /// every position of one *lap* (`block_count` consecutive sequence numbers that map
    /// to slots `0..block_count`), and `rel >= area` for every position of any other lap
    /// (see [`Ring::lap_of`]). Any writer may store the value for any lap at any time:
    /// it is a pure function of the lap, so a stale value costs the slow path, never a
    /// wrong address.
    lap: AtomicU32,
    /// This ring's entry in the table of live ring memory (`crate::live`).
    #[cfg(not(loom))]
    live: crate::live::Registered,
}

/// What one attempt of the general (out-of-line) path did.
enum Step {
    /// An interrupt moved `write_pos`: start again from a fresh clock reading.
    Retry,
    /// Finished.
    Done(Outcome),
    /// Written in a newly opened block, and there are drops to report.
    Report,
}

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

    /// The fast-path form of `event`, if it has one (its payload fits a `u32` varint).
    #[inline(always)]
    fn of(event: &Event) -> Option<Small<'d>> {
        let head = match *event {
            Event::KernelEntry(entry) => entry.0,
            Event::Interrupt { irq } => irq,
            Event::KernelExit(d) => u32::try_from(d.to_wire()).ok()?,
            Event::FunctionEntry { func }
            | Event::FunctionExit { func }
            | Event::ThreadSwitch { thread: func } => u32::try_from(func).ok()?,
            Event::User { .. }
            | Event::Image { .. }
            | Event::Lost { .. }
            | Event::ClockBack { .. } => return None,
        };
        Some(Small {
            kind: event.kind() as u32,
            head,
            data: &[],
        })
    }
}

/// [`record::encoded_len`], one shared copy for the general path and the block opener.
#[inline(never)]
fn record_len(time: Time, ts: u64, event: &Event) -> u32 {
    record::encoded_len(time, ts, event) as u32
}

/// A writer starts: bumps `nest` (see the module doc); returns the value it found.
#[inline(always)]
fn enter(mem: &Mem<'_>) -> u32 {
    let nest = mem.word(offsets::NEST);
    let n = nest.load(Ordering::Relaxed);
    nest.store(n + 1, Ordering::Relaxed);
    compiler_fence();
    n
}

/// A writer ends: restores `nest`, and the outermost one commits.
#[inline(always)]
fn exit(mem: &Mem<'_>, entered_at: u32) {
    compiler_fence();
    let nest = mem.word(offsets::NEST);
    if entered_at != 0 {
        nest.store(entered_at, Ordering::Relaxed);
        return;
    }
    let write = mem.word(offsets::WRITE_POS);
    let commit = mem.word(offsets::COMMIT_POS);
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

/// Header deltas below this take the fast path: `delta << 4 | kind` fits a `u32`.
const FAST_DELTA_LIMIT: u64 = 1 << (32 - record::KIND_BITS);

/// The longest two `u32` varints of a `Small` record (its header and head).
const SMALL_VARINTS_MAX: u32 = 10;

/// Stores the LEB128 bytes of `v` from `at`; returns the position after them.
#[inline(always)]
fn put_varint32(mem: &Mem<'_>, at: usize, v: u32) -> usize {
    varint::write_u32_at(at, v, |at, b| mem.store_byte(at, b))
}

impl<'a> Ring<'a> {
    /// Initialises a ring in `memory` and claims it.
    ///
    /// Uses as many whole blocks as fit after the header. Fails if the memory already
    /// holds a ring that is claimed (a second session on the same memory).
    #[cfg(not(loom))]
    pub fn new(memory: &'a mut [u8], config: &Config) -> Result<Self, InitError> {
        let len = memory.len();
        let mem = Mem::new(memory).ok_or(InitError::Misaligned)?;
        Self::setup(mem, len, config)
    }

    /// Like [`Ring::new`], for memory that may hold the ring of an earlier session kept
    /// across a reset (a `.noinit` section, as Linux's persistent ftrace buffer): if the
    /// memory holds a valid ring (any version this crate reads, header CRC correct) that
    /// no ring of this program uses, `previous` gets its bytes (header and blocks, as a
    /// dump has them: the host decodes them as any ring) before a new session starts in
    /// the same memory. `previous` returns `false` to keep the old ring untouched; then
    /// this returns [`InitError::PreviousSession`]. Memory of a ring in use gives
    /// [`InitError::InUse`] without being read.
    #[cfg(not(loom))]
    pub fn recover(
        memory: &'a mut [u8],
        config: &Config,
        previous: impl FnOnce(&[u8]) -> bool,
    ) -> Result<Self, InitError> {
        if memory.as_ptr() as usize % 8 != 0 {
            return Err(InitError::Misaligned);
        }
        let start = memory.as_ptr() as usize;
        if crate::live::overlaps(start, start + memory.len()) {
            return Err(InitError::InUse);
        }
        if let Ok(view) = ring::RingView::parse(memory) {
            let len = view.ring_len();
            if len <= memory.len() {
                if !previous(&memory[..len]) {
                    return Err(InitError::PreviousSession);
                }
                // Read: the new session may claim the memory.
                memory[offsets::OWNER..offsets::OWNER + 4].fill(0);
            }
        }
        Ring::new(memory, config)
    }

    /// A ring in model-checked memory of `len` bytes (loom tests).
    #[cfg(loom)]
    pub fn new_model(len: usize, config: &Config) -> Result<Self, InitError> {
        Self::setup(Mem::new_model(len), len, config)
    }

    fn setup(mem: Mem<'a>, len: usize, config: &Config) -> Result<Self, InitError> {
        let block_size = config.block_size;
        if !block_size.is_power_of_two()
            || !(ring::MIN_BLOCK_SIZE..=ring::MAX_BLOCK_SIZE).contains(&block_size)
        {
            return Err(InitError::BadBlockSize);
        }
        let needed = RING_HEADER_LEN + ring::MIN_BLOCK_COUNT as usize * block_size as usize;
        if len < needed {
            return Err(InitError::TooSmall { needed });
        }
        let fit = (len - RING_HEADER_LEN) / block_size as usize;
        let max_count = (1u64 << (32 - block_size.trailing_zeros())) / 2;
        let count = (fit as u64).min(max_count) as u32;
        let geometry = Geometry::new(block_size, count).map_err(|_| InitError::BadBlockSize)?;
        let div = SlotDivisor::new(count).ok_or(InitError::BadBlockSize)?;
        // Refuse memory that overlaps a live ring's before touching anything.
        #[cfg(not(loom))]
        let live = {
            let start = mem.as_ptr() as usize;
            crate::live::register(start, start + geometry.ring_len())
                .map_err(|()| InitError::InUse)?
        };
        // Claim before touching anything: a ring already claimed keeps its data.
        let owner = mem.word(offsets::OWNER);
        let claimed_ring = ring::RingView::parse(&header_bytes(&mem)).is_ok()
            && owner.load(Ordering::Acquire) == OWNED;
        if claimed_ring || !local_cas(owner, owner.load(Ordering::Relaxed), OWNED) {
            // No live ring of this program overlaps (checked above, when the table had
            // room): the claim is an earlier session's, left across a reset.
            #[cfg(not(loom))]
            if let crate::live::Registered::Entry(i) = live {
                crate::live::unregister(i);
                if claimed_ring {
                    return Err(InitError::PreviousSession);
                }
            }
            return Err(InitError::InUse);
        }
        let ring = Ring {
            mem,
            geometry,
            mode: config.mode,
            mask: block_size - 1,
            // `block_size >= 256`, so no underflow.
            room: block_size - BLOCK_HEADER_LEN as u32 - SMALL_VARINTS_MAX,
            div,
            // At most 2^31: `Geometry::new` keeps `block_count <= 2^(32 - shift) / 2`.
            area: count * block_size,
            // Position 0 (where writing starts) is in lap 0, whose offset is 0.
            lap: AtomicU32::new(0),
            #[cfg(not(loom))]
            live,
        };
        ring.format(config);
        Ok(ring)
    }

    /// Writes a fresh header (owner kept) and empty block headers.
    fn format(&self, config: &Config) {
        let header = ring::new_header(
            &self.geometry,
            config.mode,
            config.clock_hz,
            config.cpu_id,
            config.producer_id,
            config.syscall_abi,
        );
        // The header as little-endian words (its size is a multiple of 4, checked by the
        // format crate's layout assertions, so this never fails).
        let words = <[U32]>::ref_from_bytes(header.as_bytes()).unwrap_or(&[]);
        for (i, w) in words.iter().enumerate() {
            let w = w.get();
            let off = i * 4;
            // NOTE: `last_ts` may be a 64-bit atomic (see `Mem::store_last_ts`); every
            // location is accessed with one width only, so it is set through that.
            if off != offsets::OWNER && off & !7 != offsets::LAST_TS {
                self.mem.word(off).store(w, Ordering::Relaxed);
            }
        }
        self.mem.store_last_ts(header.last_ts.get());
        for slot in 0..self.geometry.block_count {
            let base = self.geometry.block_offset(slot);
            for off in (0..BLOCK_HEADER_LEN).step_by(4) {
                self.mem.word(base + off).store(0, Ordering::Relaxed);
            }
        }
        fence(Ordering::Release);
    }

    /// The ring's geometry.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// The ring's mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub(crate) fn mem(&self) -> &Mem<'a> {
        &self.mem
    }

    #[inline(always)]
    fn hdr(&self, off: usize) -> &crate::sync::AtomicU32 {
        self.mem.word(off)
    }

    /// The slot of sequence number `seq` (no division, no panic path).
    #[inline(always)]
    fn slot(&self, seq: u32) -> u32 {
        self.div.slot(seq)
    }

    /// Byte offset in memory of the block with sequence number `seq`.
    #[inline(always)]
    fn block_of(&self, seq: u32) -> usize {
        self.geometry.block_offset(self.slot(seq))
    }

    /// The [`Ring::lap`] value for the lap of sequence number `seq` ([`pos::lap_of`]).
    #[inline(always)]
    fn lap_of(&self, seq: u32) -> u32 {
        pos::lap_of(&self.geometry, seq, self.slot(seq))
    }

    /// Writes the event `make(ts)` at the clock's current time `ts`; returns what
    /// happened and the time used. `make` sees the final timestamp, so a kernel exit
    /// can compute its duration from it.
    #[inline(always)]
    pub fn write_with(&self, now: impl Fn() -> u64, make: impl Fn(u64) -> Event) -> (Outcome, u64) {
        let (now, make) = (&now, &make);
        self.write_small(now, |ts| Small::of(&make(ts)), make)
    }

    /// Writes a record: `fast(ts)` describes it for the inlined fast path (`None`: use
    /// the general path), `make(ts)` is the same record as an [`Event`].
    ///
    /// `now` and `make` are taken by value (closures over references and small values,
    /// so `Copy`) and passed by value to the out-of-line general path: the fast path
    /// then builds no closure objects on the stack for a call it does not make.
    #[inline(always)]
    pub(crate) fn write_small<'d>(
        &self,
        now: impl Fn() -> u64 + Copy,
        fast: impl Fn(u64) -> Option<Small<'d>>,
        make: impl Fn(u64) -> Event + Copy,
    ) -> (Outcome, u64) {
        // A local copy, so the base address stays in a register across atomic stores
        // (through `&self` the compiler must reload it after each: for all it knows, the
        // store might have changed the `Ring`).
        let mem = self.mem.local();
        let nest = enter(&mem);
        match self.try_fast(&mem, &now, fast) {
            Some(ts) => {
                exit(&mem, nest);
                (Outcome::Written, ts)
            }
            None => self.write_slow_from(nest, now, make),
        }
    }

    /// The call of the general path, out of line and cold, so that the inlined fast
    /// path neither sets up its arguments nor keeps registers for it.
    #[cold]
    #[inline(never)]
    fn write_slow_from(
        &self,
        nest: u32,
        now: impl Fn() -> u64,
        make: impl Fn(u64) -> Event,
    ) -> (Outcome, u64) {
        self.write_slow(nest, &now, &make)
    }
    /// One attempt at the fast path: a `Small` record with a delta header that fits a
    /// `u32`, in the block the cached lap maps `write_pos` to, with room there, and no
    /// interrupt moving `write_pos` in between. Straight-line code; anything else returns
    /// `None` having written nothing, and the caller starts over on the general path.
    /// The bytes are those of `record::encode_with` with `Time::Delta(delta)`.
    #[inline(always)]
    fn try_fast<'d>(
        &self,
        mem: &Mem<'_>,
        now: &impl Fn() -> u64,
        fast: impl Fn(u64) -> Option<Small<'d>>,
    ) -> Option<u64> {
        let write = mem.word(offsets::WRITE_POS);
        let pos = write.load(Ordering::Relaxed);
        let last_pos = mem.word(offsets::LAST_POS).load(Ordering::Relaxed);
        let last_ts = mem.load_last_ts();
        compiler_fence();
        let ts = now();
        let s = fast(ts)?;
        let (delta, behind) = ts.overflowing_sub(last_ts);
        if last_pos != pos || behind || delta >= FAST_DELTA_LIMIT {
            return None;
        }
        // `delta < 2^28`, so the header fits a `u32`.
        let header = record::record_header(delta, s.kind as u8) as u32;
        // At most 5 + 5 + 32 bytes, far below `block_size - BLOCK_HEADER_LEN`.
        let len =
            varint::encoded_len_u32(header) + varint::encoded_len_u32(s.head) + s.data.len() as u32;
        // The cache may be loaded at any time: it is a pure function of the lap, checked
        // against `pos` here.
        let rel = pos.wrapping_add(self.lap.load(Ordering::Relaxed));
        let mask = self.mask;
        let offset = rel & mask;
        // `rel < area`: `pos` is in the cached lap, so `rel` is its offset from the first
        // block. Then `BLOCK_HEADER_LEN <= offset` and `offset + SMALL_VARINTS_MAX +
        // data.len() < block_size` in one compare against a constant of the ring (an
        // `offset` below the header wraps to a huge value), so `offset + len <
        // block_size`. The bound is the longest record of this shape, not this one's
        // length: the check does not wait for the lengths, and the records it sends to
        // the general path (the last few bytes of a block) are rare. NOTE: `<` not `<=`:
        // a block never fills to its last byte, so the offset never carries into the
        // sequence number and there is always room for END_MARKER.
        if rel >= self.area
            || offset.wrapping_sub(BLOCK_HEADER_LEN as u32) >= self.room - s.data.len() as u32
            || !local_cas(write, pos, pos + len)
        {
            return None;
        }
        let at = RING_HEADER_LEN + rel as usize;
        let at = put_varint32(mem, at, header);
        let at = put_varint32(mem, at, s.head);
        for (i, &b) in s.data.iter().enumerate() {
            mem.store_byte(at + i, b);
        }
        let block = RING_HEADER_LEN + (rel - offset) as usize;
        // `Small` records are never `Lost`, so they all count.
        local_add(mem.word(block + offsets::BLOCK_RECORDS), 1);
        self.publish_last(mem, ts, pos + len);
        Some(ts)
    }

    /// The rest of a write the fast path declined: the general writer, then the exit
    /// (here, so that the inlined fast path returns straight from registers). Out of
    /// line and not generic: one copy for every caller.
    #[inline(never)]
    fn write_slow(
        &self,
        nest: u32,
        now: &dyn Fn() -> u64,
        make: &dyn Fn(u64) -> Event,
    ) -> (Outcome, u64) {
        let result = self.write_general_loop(now, make, true);
        exit(&self.mem, nest);
        result
    }

    /// The general writer: any record, retried with a fresh clock reading until it is
    /// written or dropped. One shared copy (the slow path and the drop reporter).
    #[inline(never)]
    fn write_general_loop(
        &self,
        now: &dyn Fn() -> u64,
        make: &dyn Fn(u64) -> Event,
        count_drop: bool,
    ) -> (Outcome, u64) {
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
            if ts < last_ts && !stepped_back {
                let back = Event::ClockBack { back: last_ts - ts };
                match self.write_general(pos, last_pos, last_ts, ts, &back, false) {
                    Step::Retry => continue,
                    Step::Done(_) => {}
                    Step::Report => self.report_drops(now),
                }
                stepped_back = true;
                continue;
            }
            match self.write_general(pos, last_pos, last_ts, ts, &make(ts), count_drop) {
                Step::Retry => continue,
                Step::Done(outcome) => return (outcome, ts),
                Step::Report => {
                    self.report_drops(now);
                    return (Outcome::Written, ts);
                }
            }
        }
    }

    /// The general path, one attempt: any record, any time; opens the next block if the
    /// record does not fit. Only timestamp markers, large values, block switches and
    /// writers that an interrupt raced come here.
    #[inline(always)]
    fn write_general(
        &self,
        pos: u32,
        last_pos: u32,
        last_ts: u64,
        ts: u64,
        event: &Event,
        count_drop: bool,
    ) -> Step {
        let p = self.geometry.split(pos);
        let time = match ts.checked_sub(last_ts) {
            Some(delta) if last_pos == pos && delta <= MAX_DELTA => Time::Delta(delta),
            _ => Time::Absolute(ts),
        };
        let len = record_len(time, ts, event);
        // NOTE: `<` not `<=`, as in the fast path.
        if p.offset >= BLOCK_HEADER_LEN as u32 && p.offset + len <= self.mask {
            // Refresh the fast path's cache for this lap (any lap's value is correct).
            self.lap.store(self.lap_of(p.seq), Ordering::Relaxed);
            let block = self.block_of(p.seq);
            if !local_cas(self.hdr(offsets::WRITE_POS), pos, pos + len) {
                return Step::Retry;
            }
            self.store_record(block + p.offset as usize, time, ts, event);
            if counts(event) {
                local_add(self.mem.word(block + offsets::BLOCK_RECORDS), 1);
            }
            self.publish_last(&self.mem.local(), ts, pos + len);
            return Step::Done(Outcome::Written);
        }
        match self.open_block(pos, ts, event, count_drop) {
            // Records are only ever dropped when a block cannot be opened, so a
            // successful open is where unreported drops are reported.
            Step::Done(Outcome::Written) if count_drop && self.has_unreported_drops() => {
                Step::Report
            }
            step => step,
        }
    }

    /// Writes the record's bytes at `at`, in space this writer has reserved. Out of line:
    /// only the general path and the block opener use it, and they share one copy.
    #[inline(never)]
    fn store_record(&self, mut at: usize, time: Time, ts: u64, event: &Event) {
        let mem = self.mem.local();
        record::encode_with(time, ts, event, &mut |b| {
            mem.store_byte(at, b);
            at += 1;
        });
    }

    #[inline(always)]
    fn publish_last(&self, mem: &Mem<'_>, ts: u64, end: u32) {
        compiler_fence();
        mem.store_last_ts(ts);
        compiler_fence();
        mem.word(offsets::LAST_POS).store(end, Ordering::Relaxed);
    }

    /// The slow path: close the current block and open the next one.
    #[cold]
    #[inline(never)]
    fn open_block(&self, pos: u32, ts: u64, event: &Event, count_drop: bool) -> Step {
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
        // The sequence number that used the target slot one lap ago.
        let previous = pos::previous_lap(&g, target);
        let block = self.block_of(target);
        // The old block in the target slot is fully committed (checked above), so its
        // header is stable until our CAS.
        let records = self.mem.word(block + offsets::BLOCK_RECORDS);
        let stale_count = records.load(Ordering::Relaxed);
        let old_valid = self
            .mem
            .word(block + offsets::BLOCK_MAGIC)
            .load(Ordering::Relaxed)
            == BLOCK_MAGIC
            && self
                .mem
                .word(block + offsets::BLOCK_SEQ)
                .load(Ordering::Relaxed)
                == previous;
        let reclaimed = if old_valid { stale_count } else { 0 };
        let len = record_len(Time::Delta(0), ts, event);
        let new_pos = g.join(target, BLOCK_HEADER_LEN as u32 + len);
        if !local_cas(self.hdr(offsets::WRITE_POS), pos, new_pos) {
            return Step::Retry;
        }
        // Readers that see our writes into the reclaimed slot must also see the CAS.
        fence(Ordering::Release);
        if opened {
            let end = self.block_of(p.seq) + p.offset as usize;
            self.mem.store_byte(end, END_MARKER);
        }
        if reclaimed != 0 {
            self.add_u64(offsets::OVERWRITTEN, u64::from(reclaimed));
        }
        let lost_before =
            self.mem.load_u64(offsets::OVERWRITTEN) + self.mem.load_u64(offsets::DROPPED);
        self.mem
            .word(block + offsets::BLOCK_SEQ)
            .store(target, Ordering::Relaxed);
        self.mem.store_u64(block + offsets::BLOCK_BASE_TS, ts);
        self.mem
            .store_u64(block + offsets::BLOCK_LOST_BEFORE, lost_before);
        self.mem
            .word(block + offsets::BLOCK_MAGIC)
            .store(BLOCK_MAGIC, Ordering::Relaxed);
        // Nested writers may already have counted their records: adjust, don't store.
        local_add(records, u32::from(counts(event)).wrapping_sub(stale_count));
        self.store_record(block + BLOCK_HEADER_LEN, Time::Delta(0), ts, event);
        self.publish_last(&self.mem.local(), ts, new_pos);
        // The fast path's cache: the new block's lap.
        self.lap.store(self.lap_of(target), Ordering::Relaxed);
        Step::Done(Outcome::Written)
    }

    #[cold]
    fn add_u64(&self, off: usize, v: u64) {
        let lo = local_add(self.hdr(off), v as u32);
        let carry = u32::from(lo.checked_add(v as u32).is_none());
        local_add(self.hdr(off + 4), (v >> 32) as u32 + carry);
    }

    #[cold]
    fn count_drop(&self, ts: u64) {
        let dropped = self.hdr(offsets::DROPPED).load(Ordering::Relaxed);
        if dropped == self.hdr(offsets::REPORTED_DROPS).load(Ordering::Relaxed) {
            self.mem.store_u64(offsets::FIRST_DROP_TS, ts);
        }
        self.add_u64(offsets::DROPPED, 1);
    }

    fn has_unreported_drops(&self) -> bool {
        self.hdr(offsets::DROPPED).load(Ordering::Relaxed)
            != self.hdr(offsets::REPORTED_DROPS).load(Ordering::Relaxed)
    }

    /// Writes a `Lost` record for drops not yet reported, if there is room now.
    #[cold]
    #[inline(never)]
    fn report_drops(&self, now: &dyn Fn() -> u64) {
        let reported = self.hdr(offsets::REPORTED_DROPS);
        let r = reported.load(Ordering::Relaxed);
        let d = self.hdr(offsets::DROPPED).load(Ordering::Relaxed);
        // Claim the drops first, so a nested writer does not report them twice.
        if r == d || !local_cas(reported, r, d) {
            return;
        }
        let since = self.mem.load_u64(offsets::FIRST_DROP_TS);
        let count = u64::from(d.wrapping_sub(r));
        let (outcome, _) = self.write_general_loop(now, &|_| Event::Lost { count, since }, false);
        if outcome == Outcome::Dropped {
            // Still full: give the claim back so a later writer reports them.
            local_cas(reported, d, r);
        }
    }

    /// Releases ownership: the memory may be initialised again.
    pub(crate) fn release(&self) {
        self.hdr(offsets::OWNER).store(0, Ordering::Release);
    }
}

impl Drop for Ring<'_> {
    fn drop(&mut self) {
        self.release();
        #[cfg(not(loom))]
        if let crate::live::Registered::Entry(i) = self.live {
            crate::live::unregister(i);
        }
    }
}

/// Whether an event counts towards a block's `records` (the format's rule).
#[inline(always)]
pub(crate) fn counts(event: &Event) -> bool {
    event.is_counted()
}

/// The ring header as bytes, read through atomics.
pub(crate) fn header_bytes(mem: &Mem<'_>) -> [u8; RING_HEADER_LEN] {
    let mut out = [0u8; RING_HEADER_LEN];
    for (i, chunk) in out.chunks_exact_mut(4).enumerate() {
        chunk.copy_from_slice(&mem.load_header_word(i * 4).to_le_bytes());
    }
    out
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
    fn same_bytes_as_record_encode() {
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
        for _ in 0..2000 {
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
