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
//! # Modules
//!
//! - `init`: initialisation and ownership (claiming, formatting, releasing);
//! - `fast`: the common path, inlined into every recording call (enter, reserve,
//!   write, publish, exit);
//! - `general`: the general path, out of line (any record, timestamp markers, retries);
//! - `block`: opening and closing blocks, overwrite and drop accounting, drop reports;
//! - `held`: deferred kernel entries held back until their information comes.
//!
//! Position and lap arithmetic are pure functions in `crate::pos`.
//!
//! [`END_MARKER`]: tracemark_format::record::END_MARKER

mod block;
mod fast;
mod general;
pub(crate) mod held;
mod init;
mod owned;

use tracemark_format::ring::{self, Geometry, Mode};
use tracemark_format::SyscallAbi;
use zerocopy::little_endian::U32;

use crate::mem::Mem;
use crate::pos::SlotDivisor;
use crate::sync::AtomicU32;

pub(crate) use fast::Small;
pub use owned::{ShortPairCursor, ShortPairPlace};

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
pub(super) const OWNED: u32 = ring::OWNER_TOKEN;

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
    /// (see [`crate::pos::lap_of`]). Any writer may store the value for any lap at any time:
    /// it is a pure function of the lap, so a stale value costs the slow path, never a
    /// wrong address.
    lap: AtomicU32,
    /// This ring's entry in the table of live ring memory (`crate::live`).
    #[cfg(not(loom))]
    live: crate::live::Registered,
}

/// What a write did, the time it used and the position just after its record (0 if it
/// was dropped). The position is the writer's own, not `write_pos` read afterwards,
/// which a nested writer may have moved on.
pub(crate) type Wrote = (Outcome, u64, u32);

/// What one attempt of the general (out-of-line) path did.
enum Step {
    /// An interrupt moved `write_pos`: start again from a fresh clock reading.
    Retry,
    /// Finished; the position after the record (0 if dropped).
    Done(Outcome, u32),
    /// Written in a newly opened block, ending at the position given, and there are
    /// drops to report.
    Report(u32),
}

impl<'a> Ring<'a> {
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
    pub(super) fn hdr(&self, off: usize) -> &crate::sync::AtomicU32 {
        self.mem.hdr(off)
    }

    /// Byte offset in memory of the block with sequence number `seq` (no division).
    #[inline(always)]
    pub(crate) fn block_at(&self, seq: u32) -> usize {
        self.block_of(seq)
    }

    /// The slot of sequence number `seq` (no division, no panic path).
    #[inline(always)]
    pub(super) fn slot(&self, seq: u32) -> u32 {
        self.div.slot(seq)
    }

    /// Byte offset in memory of the block with sequence number `seq`.
    #[inline(always)]
    pub(crate) fn block_of(&self, seq: u32) -> usize {
        self.geometry.block_offset(self.slot(seq))
    }
}

/// The first bytes of the ring header (the part [`ring::header_is_valid`] checks), read
/// through atomics. Built word by word, with no zeroed array copied out: the C library's
/// initialisation then calls neither `memset` nor `memcpy` for it.
pub(crate) fn header_prefix(mem: &Mem<'_>) -> [u8; ring::CHECKED_HEADER_LEN] {
    let words: [U32; ring::CHECKED_HEADER_LEN / 4] = core::array::from_fn(|i| {
        // SAFETY: `i * 4 + 4 <= CHECKED_HEADER_LEN < RING_HEADER_LEN <= MIN_LEN`, the
        // shortest `Mem`.
        U32::new(unsafe { mem.load_word_for_reader(i * 4) })
    });
    zerocopy::transmute!(words)
}
