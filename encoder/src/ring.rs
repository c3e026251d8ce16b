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

use tracemark_format::record::{self, Time, END_MARKER, MAX_DELTA};
use tracemark_format::ring::{
    self, offsets, Geometry, Mode, BLOCK_HEADER_LEN, BLOCK_MAGIC, RING_HEADER_LEN,
};
use tracemark_format::{Event, SyscallAbi};

use zerocopy::IntoBytes;

use crate::mem::Mem;
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
    /// The memory already holds a ring that an owner has claimed.
    InUse,
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
        }
    }
}

/// The owner token a claimed ring carries.
const OWNED: u32 = u32::from_le_bytes(*b"OWND");

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
    /// `geometry.block_size()`, kept at hand for the fast path.
    block_size: u32,
    /// Written by the block opener: the sequence number of the newest block and the
    /// byte offset of its slot, so the fast path needs no division. NOTE: the opener
    /// stores the offset before the sequence number; a writer that reads a sequence
    /// number other than its position's recomputes the offset.
    cur_seq: AtomicU32,
    cur_block: AtomicU32,
}

enum Step {
    Retry,
    Done(Outcome),
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
        // Claim before touching anything: a ring already claimed keeps its data.
        let owner = mem.word(offsets::OWNER);
        let claimed_ring = ring::RingView::parse(&header_bytes(&mem)).is_ok()
            && owner.load(Ordering::Acquire) == OWNED;
        if claimed_ring || !local_cas(owner, owner.load(Ordering::Relaxed), OWNED) {
            return Err(InitError::InUse);
        }
        let ring = Ring {
            mem,
            geometry,
            mode: config.mode,
            block_size,
            cur_seq: AtomicU32::new(u32::MAX),
            cur_block: AtomicU32::new(0),
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
        for (i, w) in header.as_bytes().chunks_exact(4).enumerate() {
            let w = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            let off = i * 4;
            if off != offsets::OWNER {
                self.mem.word(off).store(w, Ordering::Relaxed);
            }
        }
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

    #[inline(always)]
    fn block_field(&self, seq: u32, field: usize) -> &crate::sync::AtomicU32 {
        self.mem
            .word(self.geometry.block_offset(self.geometry.slot(seq)) + field)
    }

    /// Writes the event `make(ts)` at the clock's current time `ts`; returns what
    /// happened and the time used. `make` sees the final timestamp, so a kernel exit
    /// can compute its duration from it.
    #[inline(always)]
    pub fn write_with(&self, now: impl Fn() -> u64, make: impl Fn(u64) -> Event) -> (Outcome, u64) {
        let nest = self.enter();
        let result = self.reserve_and_write(&now, &make, true);
        self.exit(nest);
        result
    }

    #[inline(always)]
    fn enter(&self) -> u32 {
        let nest = self.hdr(offsets::NEST);
        let n = nest.load(Ordering::Relaxed);
        nest.store(n + 1, Ordering::Relaxed);
        compiler_fence();
        n
    }

    #[inline(always)]
    fn exit(&self, entered_at: u32) {
        compiler_fence();
        let nest = self.hdr(offsets::NEST);
        if entered_at != 0 {
            nest.store(entered_at, Ordering::Relaxed);
            return;
        }
        let write = self.hdr(offsets::WRITE_POS);
        let commit = self.hdr(offsets::COMMIT_POS);
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

    #[inline(always)]
    fn reserve_and_write(
        &self,
        now: &impl Fn() -> u64,
        make: &impl Fn(u64) -> Event,
        count_drop: bool,
    ) -> (Outcome, u64) {
        let write = self.hdr(offsets::WRITE_POS);
        loop {
            let pos = write.load(Ordering::Relaxed);
            let last_pos = self.hdr(offsets::LAST_POS).load(Ordering::Relaxed);
            let last_ts = self.mem.load_last_ts();
            let cur_seq = self.cur_seq.load(Ordering::Relaxed);
            let cur_block = self.cur_block.load(Ordering::Relaxed) as usize;
            compiler_fence();
            let ts = now();
            let event = make(ts);
            let p = self.geometry.split(pos);
            let time = match ts.checked_sub(last_ts) {
                Some(delta) if last_pos == pos && delta <= MAX_DELTA => Time::Delta(delta),
                _ => Time::Absolute(ts),
            };
            let len = record::encoded_len(time, ts, &event) as u32;
            // NOTE: `<` not `<=`: a block never fills to its last byte, so the offset never
            // carries into the sequence number and there is always room for END_MARKER.
            if p.offset >= BLOCK_HEADER_LEN as u32 && p.offset + len < self.block_size {
                let block = if cur_seq == p.seq {
                    cur_block
                } else {
                    self.geometry.block_offset(self.geometry.slot(p.seq))
                };
                if !local_cas(write, pos, pos + len) {
                    continue;
                }
                self.store_record(block + p.offset as usize, time, ts, &event);
                if counts(&event) {
                    local_add(self.mem.word(block + offsets::BLOCK_RECORDS), 1);
                }
                self.publish_last(ts, pos + len);
                return (Outcome::Written, ts);
            }
            match self.open_block(pos, ts, &event, count_drop) {
                Step::Retry => continue,
                Step::Done(outcome) => {
                    // Records are only ever dropped when a block cannot be opened, so a
                    // successful open is where unreported drops are reported.
                    if outcome == Outcome::Written && count_drop && self.has_unreported_drops() {
                        self.report_drops(now);
                    }
                    return (outcome, ts);
                }
            }
        }
    }

    /// Writes the record's bytes at `at`, in space this writer has reserved.
    #[inline(always)]
    fn store_record(&self, mut at: usize, time: Time, ts: u64, event: &Event) {
        record::encode_with(time, ts, event, &mut |b| {
            self.mem.store_byte(at, b);
            at += 1;
        });
    }

    #[inline(always)]
    fn publish_last(&self, ts: u64, end: u32) {
        compiler_fence();
        self.mem.store_last_ts(ts);
        compiler_fence();
        self.hdr(offsets::LAST_POS).store(end, Ordering::Relaxed);
    }

    /// The slow path: close the current block and open the next one.
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
        // The old block in the target slot is fully committed (checked above), so its
        // header is stable until our CAS.
        let records = self.block_field(target, offsets::BLOCK_RECORDS);
        let stale_count = records.load(Ordering::Relaxed);
        let old_valid = self
            .block_field(target, offsets::BLOCK_MAGIC)
            .load(Ordering::Relaxed)
            == BLOCK_MAGIC
            && self
                .block_field(target, offsets::BLOCK_SEQ)
                .load(Ordering::Relaxed)
                == g.seq_back(target, g.block_count);
        let reclaimed = if old_valid { stale_count } else { 0 };
        let len = record::encoded_len(Time::Delta(0), ts, event) as u32;
        let new_pos = g.join(target, BLOCK_HEADER_LEN as u32 + len);
        if !local_cas(self.hdr(offsets::WRITE_POS), pos, new_pos) {
            return Step::Retry;
        }
        // Readers that see our writes into the reclaimed slot must also see the CAS.
        fence(Ordering::Release);
        if opened {
            let end = g.block_offset(g.slot(p.seq)) + p.offset as usize;
            self.mem.store_byte(end, END_MARKER);
        }
        if reclaimed != 0 {
            self.add_u64(offsets::OVERWRITTEN, u64::from(reclaimed));
        }
        let lost_before =
            self.mem.load_u64(offsets::OVERWRITTEN) + self.mem.load_u64(offsets::DROPPED);
        let block = g.block_offset(g.slot(target));
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
        self.publish_last(ts, new_pos);
        Step::Done(Outcome::Written)
    }

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
    fn report_drops(&self, now: &impl Fn() -> u64) {
        let reported = self.hdr(offsets::REPORTED_DROPS);
        let r = reported.load(Ordering::Relaxed);
        let d = self.hdr(offsets::DROPPED).load(Ordering::Relaxed);
        // Claim the drops first, so a nested writer does not report them twice.
        if r == d || !local_cas(reported, r, d) {
            return;
        }
        let since = self.mem.load_u64(offsets::FIRST_DROP_TS);
        let count = u64::from(d.wrapping_sub(r));
        let (outcome, _) = self.reserve_and_write(now, &|_| Event::Lost { count, since }, false);
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
    }
}

/// Whether an event counts towards a block's `records` (the `Lost` meta record does not).
#[inline(always)]
pub(crate) fn counts(event: &Event) -> bool {
    !matches!(event, Event::Lost { .. })
}

/// The ring header as bytes, read through atomics.
pub(crate) fn header_bytes(mem: &Mem<'_>) -> [u8; RING_HEADER_LEN] {
    let mut out = [0u8; RING_HEADER_LEN];
    for (i, chunk) in out.chunks_exact_mut(4).enumerate() {
        chunk.copy_from_slice(&mem.word(i * 4).load(Ordering::Acquire).to_le_bytes());
    }
    out
}
