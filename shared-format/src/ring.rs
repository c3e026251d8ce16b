//! The ring memory: a [`RingHeader`] followed by `block_count` blocks of `block_size`
//! bytes, each a [`BlockHeader`] followed by records.
//!
//! The target writes this memory in place; a debugger, a crash dump or a UART dump takes
//! it as it is, and [`RingView`] reads it back with no side file. All multi-byte fields
//! are little-endian (every supported target is little-endian).
//!
//! Positions: the writer's position is one `u32`, `seq << shift | offset`, where
//! `block_size = 1 << shift`, `seq` counts blocks modulo `seq_modulus` (a multiple of
//! `block_count`, so a block's slot is always `seq % block_count`) and `offset` is the
//! byte offset inside the block. [`Position`] does this arithmetic.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::record::BlockRecords;

/// The first eight bytes of a ring: `TRACEMRK`.
pub const RING_MAGIC: [u8; 8] = *b"TRACEMRK";
/// The format version this crate writes.
pub const FORMAT_VERSION: u16 = 3;
/// The format versions this crate reads.
pub const SUPPORTED_VERSIONS: &[u16] = &[1, 2, 3];
/// Size of [`RingHeader`]; blocks start right after it.
pub const RING_HEADER_LEN: usize = 192;
/// Size of [`BlockHeader`]; records start right after it.
pub const BLOCK_HEADER_LEN: usize = 32;
/// The first four bytes of a block that has been written: `TMBK`.
pub const BLOCK_MAGIC: u32 = u32::from_le_bytes(*b"TMBK");
/// Smallest block size.
pub const MIN_BLOCK_SIZE: u32 = 256;
/// Largest block size (offsets must fit 16 bits of the position word).
pub const MAX_BLOCK_SIZE: u32 = 1 << 16;
/// Fewest blocks in a ring: one being written, one being reclaimed.
pub const MIN_BLOCK_COUNT: u32 = 2;
/// The `owner` word of a ring the reference encoder has claimed: `OWND`.
pub const OWNER_TOKEN: u32 = u32::from_le_bytes(*b"OWND");
/// Depth of the kernel-entry stack the encoder keeps in the header.
pub const ENTRY_STACK_DEPTH: usize = 8;
/// `pending_pos` values `1..=HELD_ENTRY_MAX` (FORMAT.md 9.5): a deferred kernel entry is
/// *held*, not yet written; its time is in `entry_stack[pending_pos - 1]`. No record ends
/// at these positions (offsets below the block header), so they never name a record.
/// Writer scratch only: decoders ignore `pending_pos`.
pub const HELD_ENTRY_MAX: u32 = ENTRY_STACK_DEPTH as u32;
const _: () = assert!((HELD_ENTRY_MAX as usize) < BLOCK_HEADER_LEN);
/// Bytes `0..STATIC_HEADER_LEN` are fixed at initialisation and covered by `static_crc`.
pub const STATIC_HEADER_LEN: usize = 48;

/// The CRC over the static header fields: CRC-32/ISO-HDLC (zlib's CRC32).
pub const HEADER_CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// What the writer does when the ring is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Mode {
    /// Flight recorder: reclaim the oldest block, keep the newest data.
    Overwrite = 0,
    /// Stop when full: keep the oldest data, count what is dropped.
    Drop = 1,
}

impl Mode {
    /// The mode with wire value `v`.
    pub const fn from_u8(v: u8) -> Option<Mode> {
        match v {
            0 => Some(Mode::Overwrite),
            1 => Some(Mode::Drop),
            _ => None,
        }
    }

    /// `overwrite` or `drop`.
    pub const fn name(self) -> &'static str {
        match self {
            Mode::Overwrite => "overwrite",
            Mode::Drop => "drop",
        }
    }
}

/// The ring header, at offset 0 of the ring memory.
///
/// Fields up to `static_crc` are written once at initialisation. The fields after it are
/// live state, updated by the writer on the target ("written by the target"); a decoder
/// reads `commit_pos`, `overwritten` and `dropped`, and ignores the writer's private
/// scratch (`reported_drops`, and `nest` to `entry_stack`).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RingHeader {
    /// [`RING_MAGIC`].
    pub magic: [u8; 8],
    /// [`FORMAT_VERSION`] of the writer.
    pub version: U16,
    /// [`RING_HEADER_LEN`]: where block 0 starts.
    pub header_len: U16,
    /// Bytes per block, a power of two in `MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE`.
    pub block_size: U32,
    /// Number of blocks, at least [`MIN_BLOCK_COUNT`].
    pub block_count: U32,
    /// Block sequence numbers count modulo this; a multiple of `block_count`.
    pub seq_modulus: U32,
    /// Clock frequency in Hz (0 if unknown).
    pub clock_hz: U64,
    /// Producer or build id, chosen by the application.
    pub producer_id: U64,
    /// The CPU this ring belongs to.
    pub cpu_id: U32,
    /// [`Mode`].
    pub mode: u8,
    /// [`crate::sel4::SyscallAbi`] naming the syscall numbers.
    pub syscall_abi: u8,
    /// Reserved, zero.
    pub flags: U16,
    /// CRC-32 of bytes `0..STATIC_HEADER_LEN`.
    pub static_crc: U32,
    /// Live: non-zero while a session owns the ring.
    pub owner: U32,
    /// Live: the next byte to reserve, as a [`Position`].
    pub write_pos: U32,
    /// Live: every byte before this [`Position`] is committed.
    pub commit_pos: U32,
    /// Live: records lost to overwritten blocks.
    pub overwritten: U64,
    /// Live: records dropped (ring full, or a nested writer held the block to reclaim).
    pub dropped: U64,
    /// Live: timestamp of the first drop not yet reported by a `Lost` record.
    pub first_drop_ts: U64,
    /// Live: drops already reported in the stream by `Lost` records.
    pub reported_drops: U64,
    /// Writer scratch: nesting depth of writers on this CPU.
    pub nest: U32,
    /// Writer scratch: position just after the record whose time is `last_ts`.
    pub last_pos: U32,
    /// Writer scratch: time of the last record.
    pub last_ts: U64,
    /// Writer scratch: open kernel entries.
    pub entry_depth: U32,
    /// Writer scratch (format version 2; reserved and zero in version 1): position just
    /// after the kernel entry whose word is still to be filled in
    /// ([`crate::KernelEntry::PENDING`]), or 0.
    pub pending_pos: U32,
    /// Writer scratch: entry timestamps of open kernel entries.
    pub entry_stack: [U64; ENTRY_STACK_DEPTH],
    /// Reserved, zero.
    pub reserved1: [u8; 8],
}

/// The header of a block, at the start of each block.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct BlockHeader {
    /// [`BLOCK_MAGIC`] once the block has been opened; 0 in a fresh ring.
    pub magic: U32,
    /// The block's sequence number (see [`Position`]).
    pub seq: U32,
    /// Absolute time of the block's first record; deltas count from it.
    pub base_ts: U64,
    /// Records lost (overwritten or dropped) on this ring before the block was opened.
    pub lost_before: U64,
    /// Event records in the block (markers and `Lost` records not counted).
    pub records: U32,
    /// Reserved, zero.
    pub reserved: U32,
}

const _: () = assert!(core::mem::size_of::<RingHeader>() == RING_HEADER_LEN);
const _: () = assert!(core::mem::size_of::<BlockHeader>() == BLOCK_HEADER_LEN);

/// Byte offsets of the live ring-header fields, for writers that update them atomically.
pub mod offsets {
    use super::RingHeader;
    use core::mem::offset_of;

    /// [`RingHeader::version`].
    pub const VERSION: usize = offset_of!(RingHeader, version);
    /// [`RingHeader::header_len`].
    pub const HEADER_LEN: usize = offset_of!(RingHeader, header_len);
    /// [`RingHeader::block_size`].
    pub const BLOCK_SIZE: usize = offset_of!(RingHeader, block_size);
    /// [`RingHeader::block_count`].
    pub const BLOCK_COUNT: usize = offset_of!(RingHeader, block_count);
    /// [`RingHeader::seq_modulus`].
    pub const SEQ_MODULUS: usize = offset_of!(RingHeader, seq_modulus);
    /// [`RingHeader::clock_hz`].
    pub const CLOCK_HZ: usize = offset_of!(RingHeader, clock_hz);
    /// [`RingHeader::cpu_id`].
    pub const CPU_ID: usize = offset_of!(RingHeader, cpu_id);
    /// [`RingHeader::mode`].
    pub const MODE: usize = offset_of!(RingHeader, mode);
    /// [`RingHeader::static_crc`].
    pub const STATIC_CRC: usize = offset_of!(RingHeader, static_crc);
    /// [`RingHeader::owner`].
    pub const OWNER: usize = offset_of!(RingHeader, owner);
    /// [`RingHeader::write_pos`].
    pub const WRITE_POS: usize = offset_of!(RingHeader, write_pos);
    /// [`RingHeader::commit_pos`].
    pub const COMMIT_POS: usize = offset_of!(RingHeader, commit_pos);
    /// [`RingHeader::overwritten`].
    pub const OVERWRITTEN: usize = offset_of!(RingHeader, overwritten);
    /// [`RingHeader::dropped`].
    pub const DROPPED: usize = offset_of!(RingHeader, dropped);
    /// [`RingHeader::first_drop_ts`].
    pub const FIRST_DROP_TS: usize = offset_of!(RingHeader, first_drop_ts);
    /// [`RingHeader::reported_drops`].
    pub const REPORTED_DROPS: usize = offset_of!(RingHeader, reported_drops);
    /// [`RingHeader::nest`].
    pub const NEST: usize = offset_of!(RingHeader, nest);
    /// [`RingHeader::last_pos`].
    pub const LAST_POS: usize = offset_of!(RingHeader, last_pos);
    /// [`RingHeader::last_ts`].
    pub const LAST_TS: usize = offset_of!(RingHeader, last_ts);
    /// [`RingHeader::entry_depth`].
    pub const ENTRY_DEPTH: usize = offset_of!(RingHeader, entry_depth);
    /// [`RingHeader::entry_stack`].
    pub const ENTRY_STACK: usize = offset_of!(RingHeader, entry_stack);
    /// [`RingHeader::pending_pos`].
    pub const PENDING_POS: usize = offset_of!(RingHeader, pending_pos);

    /// [`super::BlockHeader::magic`].
    pub const BLOCK_MAGIC: usize = offset_of!(super::BlockHeader, magic);
    /// [`super::BlockHeader::seq`].
    pub const BLOCK_SEQ: usize = offset_of!(super::BlockHeader, seq);
    /// [`super::BlockHeader::base_ts`].
    pub const BLOCK_BASE_TS: usize = offset_of!(super::BlockHeader, base_ts);
    /// [`super::BlockHeader::lost_before`].
    pub const BLOCK_LOST_BEFORE: usize = offset_of!(super::BlockHeader, lost_before);
    /// [`super::BlockHeader::records`].
    pub const BLOCK_RECORDS: usize = offset_of!(super::BlockHeader, records);
}

/// The geometry of a ring: block size and count, and the position arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// `log2(block_size)`.
    pub shift: u32,
    /// Number of blocks.
    pub block_count: u32,
    /// Sequence numbers count modulo this.
    pub seq_modulus: u32,
}

/// A writer position split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Block sequence number, `< seq_modulus`.
    pub seq: u32,
    /// Byte offset in the block, `<= block_size`.
    pub offset: u32,
}

/// Why a ring geometry is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeometryError {
    /// Block size not a power of two in range.
    BlockSize(u32),
    /// Fewer than [`MIN_BLOCK_COUNT`] blocks, or too many for the sequence space.
    BlockCount(u32),
    /// The sequence modulus is not a multiple of the block count, or too small.
    SeqModulus(u32),
}

impl Geometry {
    /// The geometry for `block_size` bytes per block and `block_count` blocks.
    pub const fn new(block_size: u32, block_count: u32) -> Result<Geometry, GeometryError> {
        if !block_size.is_power_of_two()
            || block_size < MIN_BLOCK_SIZE
            || block_size > MAX_BLOCK_SIZE
        {
            return Err(GeometryError::BlockSize(block_size));
        }
        let shift = block_size.trailing_zeros();
        // Sequence numbers have 32 - shift bits (at least 16). Keep a window of at least
        // two rings' worth so that sequence distances are unambiguous.
        // `shift >= 8` (`MIN_BLOCK_SIZE`), so the space fits a `u32`, and the modulus is
        // computed with a 32-bit division: firmware then links no 64-bit division
        // routine for it (issue 15).
        let seq_space = 1u32 << (32 - shift);
        if block_count < MIN_BLOCK_COUNT || block_count > seq_space / 2 {
            return Err(GeometryError::BlockCount(block_count));
        }
        let seq_modulus = seq_space / block_count * block_count;
        Ok(Geometry {
            shift,
            block_count,
            seq_modulus,
        })
    }

    /// The geometry a header declares, checked.
    pub const fn from_parts(
        block_size: u32,
        block_count: u32,
        seq_modulus: u32,
    ) -> Result<Geometry, GeometryError> {
        match Geometry::new(block_size, block_count) {
            Ok(g) if g.seq_modulus == seq_modulus => Ok(g),
            Ok(_) => Err(GeometryError::SeqModulus(seq_modulus)),
            Err(e) => Err(e),
        }
    }

    /// Bytes per block.
    #[inline]
    pub const fn block_size(&self) -> u32 {
        1 << self.shift
    }

    /// Total ring memory: header and blocks.
    #[inline]
    pub const fn ring_len(&self) -> usize {
        RING_HEADER_LEN + self.block_count as usize * self.block_size() as usize
    }

    /// Splits a position word.
    #[inline(always)]
    pub const fn split(&self, pos: u32) -> Position {
        Position {
            seq: if self.shift == 32 {
                0
            } else {
                pos >> self.shift
            },
            offset: pos & (self.block_size() - 1),
        }
    }

    /// Joins a position; `offset` may equal the block size (a full block).
    #[inline(always)]
    pub const fn join(&self, seq: u32, offset: u32) -> u32 {
        (seq << self.shift).wrapping_add(offset)
    }

    /// The sequence number after `seq`.
    #[inline]
    pub const fn next_seq(&self, seq: u32) -> u32 {
        if seq + 1 == self.seq_modulus {
            0
        } else {
            seq + 1
        }
    }

    /// The end of the bytes a writer at position `pos` has reserved in its block: the
    /// offset from the start of the ring memory just after them (the header's end when
    /// `pos` is 0, nothing written; a writer's position is never at offset 0 of a later
    /// block, since records end before the block's last byte). In a ring that has not
    /// been round its slots yet, no byte from there to the end of the ring was ever
    /// written: a dump may stop there (FORMAT.md 7.3).
    #[inline]
    pub const fn end_of(&self, pos: u32) -> usize {
        let p = self.split(pos);
        self.block_offset(self.slot(p.seq)) + p.offset as usize
    }

    /// How many bytes from the start of the ring memory a dump sends (FORMAT.md 7.3),
    /// the one rule every dump follows (the encoder's `Ring::used_len` for a live ring,
    /// [`RingView::dump_len`] for an image copied whole, as seL4's `tm_frame_uart`
    /// ships): `end`, where the used bytes end ([`Geometry::end_of`] of the write
    /// position), while the block slot that starts at or after `end` was never opened
    /// (`magic_at` of that slot's block magic offset reads 0), else the whole ring.
    /// Division-free (shifts only), so that a firmware's dump links no division or panic
    /// code for it.
    #[inline]
    pub fn dump_len(&self, end: usize, magic_at: impl FnOnce(usize) -> u32) -> usize {
        let len = self.ring_len();
        let end = end.max(RING_HEADER_LEN);
        let bs = self.block_size() as usize;
        let next = RING_HEADER_LEN + ((end - RING_HEADER_LEN + bs - 1) >> self.shift << self.shift);
        if next >= len || end >= len {
            return len;
        }
        match magic_at(next + offsets::BLOCK_MAGIC) {
            0 => end,
            _ => len,
        }
    }

    /// How many blocks `to` is after `from`, modulo the sequence space.
    #[inline]
    pub const fn distance(&self, from: u32, to: u32) -> u32 {
        if to >= from {
            to - from
        } else {
            self.seq_modulus - from + to
        }
    }

    /// The sequence number `n` blocks before `seq`.
    #[inline]
    pub const fn seq_back(&self, seq: u32, n: u32) -> u32 {
        let n = n % self.seq_modulus;
        if seq >= n {
            seq - n
        } else {
            self.seq_modulus - (n - seq)
        }
    }

    /// The slot (block index in memory) holding sequence number `seq`.
    #[inline]
    pub const fn slot(&self, seq: u32) -> u32 {
        seq % self.block_count
    }

    /// Byte offset of slot `slot` from the start of the ring memory.
    #[inline]
    pub const fn block_offset(&self, slot: u32) -> usize {
        RING_HEADER_LEN + slot as usize * self.block_size() as usize
    }
}

/// Builds the static part of a ring header (live fields zero) with its CRC.
pub fn new_header(
    geometry: &Geometry,
    mode: Mode,
    clock_hz: u64,
    cpu_id: u32,
    producer_id: u64,
    syscall_abi: crate::sel4::SyscallAbi,
) -> RingHeader {
    let mut h = RingHeader::new_zeroed();
    let words = new_static_header(geometry, mode, clock_hz, cpu_id, producer_id, syscall_abi);
    h.as_mut_bytes()[..STATIC_HEADER_WORDS * 4].copy_from_slice(words.as_bytes());
    h
}

/// Words (little-endian) of the header's static part and its CRC: bytes
/// `0..STATIC_HEADER_LEN + 4`.
pub const STATIC_HEADER_WORDS: usize = STATIC_HEADER_LEN / 4 + 1;

// The word layout `new_static_header` builds, pinned to `RingHeader`'s fields.
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(RingHeader, magic) == 0 && RING_MAGIC.len() == 8);
    assert!(offsets::VERSION == 8 && offsets::HEADER_LEN == 10);
    assert!(offsets::BLOCK_SIZE == 12 && offsets::BLOCK_COUNT == 16);
    assert!(offsets::SEQ_MODULUS == 20 && offsets::CLOCK_HZ == 24);
    assert!(offset_of!(RingHeader, producer_id) == 32 && offsets::CPU_ID == 40);
    assert!(offsets::MODE == 44 && offset_of!(RingHeader, syscall_abi) == 45);
    assert!(offset_of!(RingHeader, flags) == 46 && STATIC_HEADER_LEN == 48);
    assert!(offsets::STATIC_CRC == STATIC_HEADER_LEN);
};

/// The first [`STATIC_HEADER_WORDS`] words of [`new_header`]'s header (the rest is zero),
/// built word by word: a writer formatting ring memory stores them without building the
/// whole 192-byte header (no `memset`, issue 15 goal 2).
pub fn new_static_header(
    geometry: &Geometry,
    mode: Mode,
    clock_hz: u64,
    cpu_id: u32,
    producer_id: u64,
    syscall_abi: crate::sel4::SyscallAbi,
) -> [U32; STATIC_HEADER_WORDS] {
    let magic = |i: usize| {
        u32::from_le_bytes([
            RING_MAGIC[i],
            RING_MAGIC[i + 1],
            RING_MAGIC[i + 2],
            RING_MAGIC[i + 3],
        ])
    };
    let mut words = [
        magic(0),
        magic(4),
        u32::from(FORMAT_VERSION) | (RING_HEADER_LEN as u32) << 16,
        geometry.block_size(),
        geometry.block_count,
        geometry.seq_modulus,
        clock_hz as u32,
        (clock_hz >> 32) as u32,
        producer_id as u32,
        (producer_id >> 32) as u32,
        cpu_id,
        // `flags` (the top half) is zero.
        u32::from(mode as u8) | u32::from(syscall_abi as u8) << 8,
        0,
    ]
    .map(U32::new);
    let crc = crate::crc32::crc_of(&words.as_bytes()[..STATIC_HEADER_LEN]);
    words[STATIC_HEADER_WORDS - 1] = U32::new(crc);
    words
}

/// Why ring memory cannot be read; `offset` is from the start of the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// Fewer bytes than a header.
    TooShort {
        /// Bytes available.
        len: usize,
    },
    /// The first eight bytes are not [`RING_MAGIC`].
    BadMagic,
    /// A version this crate does not read.
    UnsupportedVersion {
        /// The version the writer used.
        found: u16,
    },
    /// The header's CRC does not match its static fields.
    BadHeaderCrc {
        /// CRC stored in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// A header field has an impossible value.
    BadField {
        /// The field's name.
        field: &'static str,
        /// Its byte offset in the header.
        offset: usize,
        /// Its value.
        value: u64,
    },
}

impl core::fmt::Display for RingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            RingError::TooShort { len } => {
                write!(f, "{len} bytes is shorter than a ring header ({RING_HEADER_LEN} bytes)")
            }
            RingError::BadMagic => write!(f, "not a tracemark ring (magic is not TRACEMRK)"),
            RingError::UnsupportedVersion { found } => write!(
                f,
                "ring format version {found} is not supported (this tool reads {SUPPORTED_VERSIONS:?}); \
                 use the tracemark release that matches the firmware's encoder"
            ),
            RingError::BadHeaderCrc { stored, computed } => {
                write!(f, "ring header CRC mismatch (stored {stored:#010x}, computed {computed:#010x})")
            }
            RingError::BadField { field, offset, value } => {
                write!(f, "ring header field {field} at offset {offset} has impossible value {value}")
            }
        }
    }
}

/// The state of one block as a reader finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockState {
    /// Holds records; `len` bytes of them after the header.
    Valid,
    /// Never written (fresh ring, first pass not reached it yet): magic 0 where
    /// [`RingView::may_be_unused`] allows it.
    Empty,
    /// Its header does not carry the sequence number expected in this slot: it was being
    /// reclaimed, or the memory is damaged (a zero magic in a slot the ring has already
    /// written is damage too).
    Torn,
    /// The slot lies beyond the end of the available bytes.
    Missing,
}

/// One block of a ring, in sequence order.
#[derive(Debug, Clone, Copy)]
pub struct BlockView<'a> {
    /// Expected sequence number.
    pub seq: u32,
    /// Slot index in memory.
    pub slot: u32,
    /// Byte offset of the block from the start of the ring memory.
    pub offset: usize,
    /// Whether it can be decoded.
    pub state: BlockState,
    /// The header (zeroed unless the block is valid or torn).
    pub header: BlockHeader,
    /// The committed record bytes (empty unless valid).
    pub records: &'a [u8],
    /// Whether this is the block being written (its records end at the commit position).
    pub is_current: bool,
}

impl<'a> BlockView<'a> {
    /// The block's records, oldest first.
    pub fn decode(&self) -> BlockRecords<'a> {
        BlockRecords::new(self.records, self.header.base_ts.get())
    }
}

/// A ring read from memory: its header, checked, and its blocks in order.
#[derive(Debug, Clone, Copy)]
pub struct RingView<'a> {
    /// The header as found.
    pub header: RingHeader,
    /// The checked geometry.
    pub geometry: Geometry,
    /// The mode.
    pub mode: Mode,
    /// Where the committed data ends.
    pub commit: Position,
    /// The ring memory (possibly shorter than the geometry says, if truncated).
    pub bytes: &'a [u8],
}

/// Bytes at the start of a ring header that [`RingView::parse`] checks: the static part,
/// its CRC, and the live fields up to `commit_pos`.
pub const CHECKED_HEADER_LEN: usize = offsets::COMMIT_POS + 4;

/// Whether [`RingView::parse`] accepts a ring whose header starts with `prefix` (given
/// memory at least [`RING_HEADER_LEN`] long): the same checks on the same fields, in the
/// same function, without building a view. A writer initialising memory uses it to tell
/// a claimed ring from other bytes; on a Cortex-M3 it is a fraction of `parse`'s code
/// (BENCHMARKS.md, "Target cost (issue 15), third round: flash").
pub fn header_is_valid(prefix: &[u8; CHECKED_HEADER_LEN]) -> bool {
    match check_prefix(prefix) {
        Ok((geometry, _)) => commit_possible(le32(prefix, offsets::COMMIT_POS), &geometry),
        Err(_) => false,
    }
}

/// The first [`CHECKED_HEADER_LEN`] bytes of `header`.
fn header_prefix(header: &RingHeader) -> [u8; CHECKED_HEADER_LEN] {
    let mut prefix = [0u8; CHECKED_HEADER_LEN];
    prefix.copy_from_slice(&header.as_bytes()[..CHECKED_HEADER_LEN]);
    prefix
}

/// The little-endian `u32` at `off` (a constant offset of a field inside the prefix).
#[inline(always)]
fn le32(p: &[u8; CHECKED_HEADER_LEN], off: usize) -> u32 {
    u32::from_le_bytes([p[off], p[off + 1], p[off + 2], p[off + 3]])
}

/// The checks of a header's static part (magic, version, CRC, header length, geometry,
/// mode), in this order; the one definition [`RingView::parse`] and
/// [`header_is_valid`] share.
// Inlined: in `header_is_valid` the errors it builds are dead code and go.
#[inline(always)]
fn check_prefix(p: &[u8; CHECKED_HEADER_LEN]) -> Result<(Geometry, Mode), RingError> {
    if p[..RING_MAGIC.len()] != RING_MAGIC {
        return Err(RingError::BadMagic);
    }
    let version = u16::from_le_bytes([p[offsets::VERSION], p[offsets::VERSION + 1]]);
    if !SUPPORTED_VERSIONS.contains(&version) {
        return Err(RingError::UnsupportedVersion { found: version });
    }
    let computed = crate::crc32::crc_of(&p[..STATIC_HEADER_LEN]);
    let stored = le32(p, offsets::STATIC_CRC);
    if computed != stored {
        return Err(RingError::BadHeaderCrc { stored, computed });
    }
    let header_len = u16::from_le_bytes([p[offsets::HEADER_LEN], p[offsets::HEADER_LEN + 1]]);
    if usize::from(header_len) != RING_HEADER_LEN {
        return Err(bad("header_len", offsets::HEADER_LEN, header_len.into()));
    }
    let geometry = match Geometry::from_parts(
        le32(p, offsets::BLOCK_SIZE),
        le32(p, offsets::BLOCK_COUNT),
        le32(p, offsets::SEQ_MODULUS),
    ) {
        Ok(g) => g,
        Err(GeometryError::BlockSize(v)) => {
            return Err(bad("block_size", offsets::BLOCK_SIZE, v.into()))
        }
        Err(GeometryError::BlockCount(v)) => {
            return Err(bad("block_count", offsets::BLOCK_COUNT, v.into()))
        }
        Err(GeometryError::SeqModulus(v)) => {
            return Err(bad("seq_modulus", offsets::SEQ_MODULUS, v.into()))
        }
    };
    let mode = p[offsets::MODE];
    let mode = Mode::from_u8(mode).ok_or(bad("mode", offsets::MODE, mode.into()))?;
    Ok((geometry, mode))
}

/// Whether `raw` is a possible commit position for `geometry`: zero (nothing committed),
/// or a sequence number below the modulus and an offset past a block header.
fn commit_possible(raw: u32, geometry: &Geometry) -> bool {
    let commit = geometry.split(raw);
    raw == 0 || commit.seq < geometry.seq_modulus && commit.offset as usize >= BLOCK_HEADER_LEN
}

fn bad(field: &'static str, offset: usize, value: u64) -> RingError {
    RingError::BadField {
        field,
        offset,
        value,
    }
}

impl<'a> RingView<'a> {
    /// Reads the header at the start of `bytes` and checks every field. Bytes beyond the
    /// ring's length are ignored; fewer bytes than the ring's length are allowed (a
    /// truncated dump), and the missing blocks come out as [`BlockState::Missing`].
    pub fn parse(bytes: &'a [u8]) -> Result<RingView<'a>, RingError> {
        let view = Self::parse_static(bytes)?;
        let commit_pos = view.header.commit_pos.get();
        if !view.commit_possible() {
            return Err(bad("commit_pos", offsets::COMMIT_POS, commit_pos.into()));
        }
        Ok(view)
    }

    /// Like [`RingView::parse`], for a reader that wants every block it can get from
    /// damaged memory: when the live commit position is impossible, or does not agree with
    /// the blocks (see [`RingView::commit_consistent`]), it is replaced by the one the
    /// blocks' own headers give ([`RingView::recover_commit`]). Returns the view and, if
    /// it was replaced, the commit position the header holds.
    pub fn parse_recovering(bytes: &'a [u8]) -> Result<(RingView<'a>, Option<u32>), RingError> {
        let mut view = Self::parse_static(bytes)?;
        if view.commit_possible() && view.commit_consistent() {
            return Ok((view, None));
        }
        let stored = view.header.commit_pos.get();
        view.commit = view.recover_commit();
        Ok((view, Some(stored)))
    }

    /// Parses and checks the static header; `commit` is the live commit position split,
    /// unchecked.
    fn parse_static(bytes: &'a [u8]) -> Result<RingView<'a>, RingError> {
        let Ok((header, _)) = RingHeader::read_from_prefix(bytes) else {
            return Err(RingError::TooShort { len: bytes.len() });
        };
        let (geometry, mode) = check_prefix(&header_prefix(&header))?;
        let commit = geometry.split(header.commit_pos.get());
        Ok(RingView {
            header,
            geometry,
            mode,
            commit,
            bytes,
        })
    }

    /// Whether the commit position is a possible value: zero (nothing committed), or a
    /// sequence number below the modulus and an offset past a block header.
    fn commit_possible(&self) -> bool {
        commit_possible(self.header.commit_pos.get(), &self.geometry)
    }

    /// Whether the commit position agrees with the blocks, as the writer's protocol
    /// guarantees: the block it points into carries its sequence number (the writer
    /// writes a block's header before any record of it is committed), at most one block
    /// was opened after it, and a ring with nothing committed holds no block but block 0
    /// (being opened).
    /// A `false` means the live header is damaged.
    pub fn commit_consistent(&self) -> bool {
        if self.is_empty() {
            let g = self.geometry;
            // At most block 0, being opened by the first writer, before its header counts
            // a record (the opener adds its count after the magic). A block 0 that counts
            // records with nothing committed is, far likelier than a dump taken in those
            // few instructions, a commit position that was lost (zeroed): read by the
            // blocks' own headers instead, and reported.
            return (0..g.block_count).all(|slot| match self.slot_header(slot) {
                Some(h) => {
                    h.magic.get() == 0 || slot == 0 && h.seq.get() == 0 && h.records.get() == 0
                }
                None => true,
            });
        }
        // A block cut off by truncation cannot be checked.
        let current = self.block(self.commit.seq).state;
        if current == BlockState::Torn || current == BlockState::Empty {
            return false;
        }
        // In normal operation one block at most is opened after the commit position (the
        // one being reclaimed). More needs nested writers that filled whole blocks while
        // the outermost writer was stopped between reserving and committing: a stale or
        // damaged commit position is far likelier, and reading the blocks by their own
        // headers recovers the records either way.
        self.opened_ahead() <= 1
    }

    /// How many blocks the writer opened after the commit position: the blocks
    /// `c_seq + 1, c_seq + 2, ...` (from block 0 if nothing is committed) found in their
    /// slots with their sequence numbers, up to the first that is not. O(that count).
    pub fn opened_ahead(&self) -> u32 {
        let g = self.geometry;
        let mut seq = if self.is_empty() {
            None
        } else {
            Some(self.commit.seq)
        };
        let mut n = 0;
        while n + 1 < g.block_count {
            let next = seq.map_or(0, |s| g.next_seq(s));
            match self.slot_header(g.slot(next)) {
                Some(h) if h.magic.get() == BLOCK_MAGIC && h.seq.get() == next => {
                    n += 1;
                    seq = Some(next);
                }
                _ => break,
            }
        }
        n
    }

    /// The header found in slot `slot`, if the bytes hold it.
    fn slot_header(&self, slot: u32) -> Option<BlockHeader> {
        let at = self.geometry.block_offset(slot);
        let bytes = self.bytes.get(at..at + BLOCK_HEADER_LEN)?;
        BlockHeader::read_from_bytes(bytes).ok()
    }

    /// The commit position the blocks' own headers give, for a ring whose live header is
    /// damaged: the newest block is the last one, in sequence order, of the largest run of
    /// headers that sit in their slots (magic, `seq % block_count == slot`); its records
    /// end after the number of event records its header counts (or at the first record
    /// that does not decode). No such block: nothing committed.
    pub fn recover_commit(&self) -> Position {
        let g = self.geometry;
        // The newest of the blocks that sit in their slot: the greatest signed distance
        // from the first one found (a ring's blocks span fewer than `block_count`
        // sequence numbers, at most half the sequence space).
        let mut first: Option<u32> = None;
        let mut newest: Option<(u32, u32)> = None;
        for slot in 0..g.block_count {
            let Some(h) = self.slot_header(slot) else {
                break;
            };
            let seq = h.seq.get();
            if h.magic.get() != BLOCK_MAGIC || seq >= g.seq_modulus || g.slot(seq) != slot {
                continue;
            }
            let base = *first.get_or_insert(seq);
            let ahead = g.distance(base, seq);
            if ahead <= g.seq_modulus / 2 && newest.is_none_or(|(_, d)| ahead > d) {
                newest = Some((seq, ahead));
            }
        }
        let Some((newest, _)) = newest else {
            return Position { seq: 0, offset: 0 };
        };
        let slot = g.slot(newest);
        let at = g.block_offset(slot);
        let end = (at + g.block_size() as usize).min(self.bytes.len());
        let Some(header) = self.slot_header(slot) else {
            return Position { seq: 0, offset: 0 };
        };
        let body = &self.bytes[at + BLOCK_HEADER_LEN..end];
        let want = header.records.get();
        let mut records = BlockRecords::new(body, header.base_ts.get());
        let mut seen = 0u32;
        let mut len = records.offset();
        while seen < want {
            match records.next() {
                Some(Ok(r)) => {
                    if !matches!(r.event, crate::Event::Lost { .. }) {
                        seen += 1;
                    }
                    len = records.offset();
                }
                _ => break,
            }
        }
        Position {
            seq: newest,
            offset: (BLOCK_HEADER_LEN + len) as u32,
        }
    }

    /// Whether `block`, found torn, holds a block the writer opened after the commit
    /// position (its header carries a sequence number 1 to [`RingView::opened_ahead`]
    /// blocks ahead of the commit position's, in this slot): the block being reclaimed, or opened by a
    /// nested writer while the outermost one had not committed yet. The writer's protocol
    /// explains such a block; any other torn block is damage.
    pub fn opened_after_commit(&self, block: &BlockView<'_>) -> bool {
        let g = self.geometry;
        let h = &block.header;
        let seq = h.seq.get();
        let ahead = if self.is_empty() {
            // Nothing committed yet: blocks of the first lap being opened.
            (seq < g.block_count).then_some(seq + 1)
        } else {
            (seq < g.seq_modulus).then(|| g.distance(self.commit.seq, seq))
        };
        h.magic.get() == BLOCK_MAGIC
            && g.slot(seq) == block.slot
            && ahead.is_some_and(|d| d >= 1 && d <= self.opened_ahead())
    }

    /// Whether the block with sequence number `seq` of the window may never have been
    /// written: only on the ring's first lap (nothing overwritten yet), for the window's
    /// sequence numbers before 0 (the slots after the commit position's block). Every
    /// other slot of the window has held a block, so a zero magic there is damage, not a
    /// fresh slot (FORMAT.md 7.2).
    pub fn may_be_unused(&self, seq: u32) -> bool {
        let g = self.geometry;
        self.is_empty()
            || self.header.overwritten.get() == 0
                && g.distance(seq, self.commit.seq) > self.commit.seq
    }

    /// Where the ring's used bytes end, by the header's write position
    /// ([`Geometry::end_of`]): a dump of a ring that has not been round its slots may
    /// stop there (FORMAT.md 7.3).
    pub fn used_len(&self) -> usize {
        self.geometry.end_of(self.header.write_pos.get())
    }

    /// Whether the image is a used prefix: shorter than the ring, but holding every byte
    /// up to [`RingView::used_len`] of a ring that overwrote nothing. The blocks wholly
    /// past its end were never written ([`BlockState::Empty`]), not missing.
    ///
    /// The write position must not be behind the commit position (as a writer keeps
    /// it): a header that says otherwise is not trusted to say where the bytes end.
    pub fn is_used_prefix(&self) -> bool {
        let len = self.bytes.len();
        let g = self.geometry;
        let used = self.used_len();
        len < self.ring_len()
            && len >= used
            && used >= g.end_of(self.header.commit_pos.get())
            && self.header.overwritten.get() == 0
    }

    /// How many bytes of this image a dump sends (FORMAT.md 7.3), by
    /// [`Geometry::dump_len`], the rule a live ring's dump follows too (the encoder's
    /// `Ring::used_len`): up to [`RingView::used_len`] while the block slot after it was
    /// never opened (its block magic is 0), else the whole ring. For an image copied
    /// whole from ring memory (a snapshot) and shipped later, as seL4's `tm_frame_uart`
    /// does.
    pub fn dump_len(&self) -> usize {
        self.geometry
            .dump_len(self.used_len(), |at| match self.bytes.get(at..at + 4) {
                Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
                // Past the image: not known to be unopened.
                _ => u32::MAX,
            })
    }

    /// Length of the whole ring in memory, header included.
    pub fn ring_len(&self) -> usize {
        self.geometry.ring_len()
    }

    /// Whether nothing was ever committed.
    pub fn is_empty(&self) -> bool {
        self.commit.offset == 0 && self.commit.seq == 0
    }

    /// The blocks that may hold data, oldest first: the `block_count` sequence numbers
    /// ending at the commit position's block.
    pub fn blocks(&self) -> impl Iterator<Item = BlockView<'a>> + '_ {
        let g = self.geometry;
        let newest = self.commit.seq;
        let count = if self.is_empty() { 0 } else { g.block_count };
        (0..count)
            .rev()
            .map(move |back| self.block(g.seq_back(newest, back)))
    }

    /// The block with sequence number `seq`, as found in its slot.
    pub fn block(&self, seq: u32) -> BlockView<'a> {
        let g = self.geometry;
        let slot = g.slot(seq);
        let offset = g.block_offset(slot);
        let is_current = seq == self.commit.seq;
        let mut view = BlockView {
            seq,
            slot,
            offset,
            state: BlockState::Missing,
            header: BlockHeader::new_zeroed(),
            records: &[],
            is_current,
        };
        let block = match self.bytes.get(offset..offset + g.block_size() as usize) {
            Some(block) => block,
            // A dump of the used prefix (FORMAT.md 7.3): blocks past its end were never
            // written, and the block it ends in holds every byte written to it.
            None if self.is_used_prefix() => {
                if offset >= self.bytes.len() && self.may_be_unused(seq) {
                    view.state = BlockState::Empty;
                    return view;
                }
                match self.bytes.get(offset..) {
                    Some(block) => block,
                    None => return view,
                }
            }
            None => return view,
        };
        let Ok((header, body)) = BlockHeader::read_from_prefix(block) else {
            return view;
        };
        view.header = header;
        if header.magic.get() != BLOCK_MAGIC {
            view.state = if header.magic.get() == 0 && self.may_be_unused(seq) {
                BlockState::Empty
            } else {
                BlockState::Torn
            };
            return view;
        }
        if header.seq.get() != seq {
            view.state = BlockState::Torn;
            return view;
        }
        view.records = self.committed(body, is_current);
        view.state = BlockState::Valid;
        view
    }

    /// The committed record bytes of `body` (a block's bytes after its header): to the
    /// commit offset for the current block, all of them otherwise.
    fn committed(&self, body: &'a [u8], is_current: bool) -> &'a [u8] {
        let len = if is_current {
            (self.commit.offset as usize).saturating_sub(BLOCK_HEADER_LEN)
        } else {
            body.len()
        };
        &body[..len.min(body.len())]
    }

    /// The record bytes `block` would hold if its header's magic were intact, for a
    /// reader that recovers a block whose magic alone is damaged (its `seq` still the
    /// expected one): empty for a missing block.
    pub fn record_bytes(&self, block: &BlockView<'a>) -> &'a [u8] {
        let size = self.geometry.block_size() as usize;
        match self
            .bytes
            .get(block.offset + BLOCK_HEADER_LEN..block.offset + size)
        {
            Some(body) => self.committed(body, block.is_current),
            None => &[],
        }
    }
}

/// Whether a block starting at `base_ts` may follow (in sequence order) a block that
/// started at `prev_base_ts` (FORMAT.md 18): blocks open in time order, unless the clock
/// stepped back, which the writer records with a CLOCKBACK record (`clock_stepped_back`:
/// one of the two blocks holds one, see [`holds_clock_back`]). Anything else is a damaged
/// `base_ts`.
#[inline]
pub const fn starts_in_order(prev_base_ts: u64, base_ts: u64, clock_stepped_back: bool) -> bool {
    base_ts >= prev_base_ts || clock_stepped_back
}

/// Whether the records `bytes` of a block starting at `base_ts` hold a CLOCKBACK record
/// (before the first record that does not decode).
pub fn holds_clock_back(bytes: &[u8], base_ts: u64) -> bool {
    BlockRecords::new(bytes, base_ts)
        .map_while(Result::ok)
        .any(|r| matches!(r.event, crate::Event::ClockBack { .. }))
}

/// Scans `bytes` for ring headers (magic and a matching header CRC), for raw memory
/// images where rings sit at unknown offsets. Yields the offsets, in order; the search
/// steps by 8 bytes (rings are 8-byte aligned).
pub fn find_rings(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut at = 0usize;
    core::iter::from_fn(move || {
        while at + RING_HEADER_LEN <= bytes.len() {
            let here = at;
            at += 8;
            if bytes[here..here + RING_MAGIC.len()] == RING_MAGIC
                && RingView::parse_recovering(&bytes[here..]).is_ok()
            {
                return Some(here);
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_limits() {
        assert!(Geometry::new(4096, 16).is_ok());
        assert_eq!(Geometry::new(100, 16), Err(GeometryError::BlockSize(100)));
        assert_eq!(Geometry::new(128, 16), Err(GeometryError::BlockSize(128)));
        assert_eq!(
            Geometry::new(1 << 17, 16),
            Err(GeometryError::BlockSize(1 << 17))
        );
        assert_eq!(Geometry::new(4096, 1), Err(GeometryError::BlockCount(1)));
        assert_eq!(
            Geometry::new(65536, 40_000),
            Err(GeometryError::BlockCount(40_000))
        );
    }

    /// The 32-bit computation of the geometry (no 64-bit division on firmware) accepts
    /// and refuses the same block counts, with the same modulus, as the 64-bit formula.
    #[test]
    fn geometry_matches_the_64_bit_formula() {
        for shift in 8..=16u32 {
            let space = 1u64 << (32 - shift);
            let counts = (0..70u32)
                .chain([1000, 4099, 65535])
                .chain([space / 2 - 1, space / 2, space / 2 + 1].map(|c| c as u32));
            for count in counts {
                let want = if count < MIN_BLOCK_COUNT || u64::from(count) * 2 > space {
                    Err(GeometryError::BlockCount(count))
                } else {
                    Ok((space / u64::from(count) * u64::from(count)) as u32)
                };
                let got = Geometry::new(1 << shift, count).map(|g| g.seq_modulus);
                assert_eq!(got, want, "block size 2^{shift}, {count} blocks");
            }
        }
    }

    #[test]
    fn sequence_arithmetic_is_consistent_exhaustively() {
        // Small sequence spaces: block size 2^16 leaves 16 bits of sequence number.
        for count in [2u32, 3, 5, 7, 16, 1000] {
            let g = Geometry::new(1 << 16, count).unwrap();
            assert_eq!(g.seq_modulus % count, 0);
            assert!(g.seq_modulus >= 2 * count);
            let mut seq = g.seq_modulus - 3 * count;
            for _ in 0..6 * count {
                let next = g.next_seq(seq);
                assert_eq!(g.distance(seq, next), 1);
                assert_eq!(g.seq_back(next, 1), seq);
                assert_eq!(
                    g.slot(next),
                    (g.slot(seq) + 1) % count,
                    "slots advance by one"
                );
                assert_eq!(
                    g.split(g.join(next, 40)),
                    Position {
                        seq: next,
                        offset: 40
                    }
                );
                seq = next;
            }
        }
    }

    #[test]
    fn blocks_start_in_time_order_unless_the_clock_stepped_back() {
        assert!(starts_in_order(100, 100, false));
        assert!(starts_in_order(100, 250, false));
        assert!(!starts_in_order(100, 99, false));
        assert!(starts_in_order(100, 99, true));
        let mut clockback = [0u8; crate::record::MAX_RECORD_LEN];
        let n = crate::record::encode(
            &mut clockback,
            crate::record::Time::Absolute(50),
            50,
            &crate::Event::ClockBack { back: 7 },
        );
        assert!(holds_clock_back(&clockback[..n], 40));
        let mut irq = [0u8; crate::record::MAX_RECORD_LEN];
        let n = crate::record::encode(
            &mut irq,
            crate::record::Time::Delta(0),
            40,
            &crate::Event::Interrupt { irq: 3 },
        );
        assert!(!holds_clock_back(&irq[..n], 40));
    }

    #[test]
    fn header_has_crc_and_parses() {
        let g = Geometry::new(1024, 4).unwrap();
        let h = new_header(
            &g,
            Mode::Drop,
            1_000_000,
            3,
            0xabc,
            crate::sel4::SyscallAbi::Sel4,
        );
        let mut mem = [0u8; RING_HEADER_LEN + 4 * 1024];
        mem[..RING_HEADER_LEN].copy_from_slice(h.as_bytes());
        let view = RingView::parse(&mem).unwrap();
        assert_eq!(view.mode, Mode::Drop);
        assert!(view.is_empty());
        assert_eq!(view.blocks().count(), 0);
        mem[40] ^= 1; // cpu_id
        assert!(matches!(
            RingView::parse(&mem),
            Err(RingError::BadHeaderCrc { .. })
        ));
    }

    /// The word-by-word static header holds each field where `RingHeader` has it.
    #[test]
    fn new_header_fields() {
        let g = Geometry::new(512, 6).unwrap();
        let h = new_header(
            &g,
            Mode::Overwrite,
            0x1122_3344_5566_7788,
            0xa5,
            0x99aa_bbcc_ddee_ff01,
            crate::sel4::SyscallAbi::Sel4Mcs,
        );
        assert_eq!(h.magic, RING_MAGIC);
        assert_eq!(h.version.get(), FORMAT_VERSION);
        assert_eq!(usize::from(h.header_len.get()), RING_HEADER_LEN);
        assert_eq!(h.block_size.get(), 512);
        assert_eq!(h.block_count.get(), 6);
        assert_eq!(h.seq_modulus.get(), g.seq_modulus);
        assert_eq!(h.clock_hz.get(), 0x1122_3344_5566_7788);
        assert_eq!(h.producer_id.get(), 0x99aa_bbcc_ddee_ff01);
        assert_eq!(h.cpu_id.get(), 0xa5);
        assert_eq!(h.mode, Mode::Overwrite as u8);
        assert_eq!(h.syscall_abi, crate::sel4::SyscallAbi::Sel4Mcs as u8);
        assert_eq!(h.flags.get(), 0);
        let crc = crate::crc32::crc_of(&h.as_bytes()[..STATIC_HEADER_LEN]);
        assert_eq!(h.static_crc.get(), crc);
        assert!(h.as_bytes()[STATIC_HEADER_WORDS * 4..]
            .iter()
            .all(|&b| b == 0));
    }

    /// `header_is_valid` (the writer's check at initialisation) accepts exactly the
    /// headers `RingView::parse` accepts: every byte of the checked prefix set to values
    /// that break each check, with the CRC left stale or recomputed.
    #[test]
    fn header_is_valid_agrees_with_parse() {
        let mut mem = vec![0u8; RING_HEADER_LEN + 8 * 1024];
        let (mut valid, mut invalid) = (0, 0);
        for (block_size, count, mode) in [(1024, 8, Mode::Drop), (256, 2, Mode::Overwrite)] {
            let g = Geometry::new(block_size, count).unwrap();
            let h = new_header(&g, mode, 25_000_000, 1, 7, crate::sel4::SyscallAbi::Raw);
            for off in 0..CHECKED_HEADER_LEN {
                for value in [0u8, 1, 2, 3, 4, 0x10, 0x40, 0x80, 0xff] {
                    for fix_crc in [false, true] {
                        mem[..RING_HEADER_LEN].copy_from_slice(h.as_bytes());
                        mem[off] = value;
                        if fix_crc {
                            let crc = crate::crc32::crc_of(&mem[..STATIC_HEADER_LEN]);
                            mem[offsets::STATIC_CRC..offsets::STATIC_CRC + 4]
                                .copy_from_slice(&crc.to_le_bytes());
                        }
                        let prefix: &[u8; CHECKED_HEADER_LEN] =
                            mem[..CHECKED_HEADER_LEN].try_into().unwrap();
                        let parsed = RingView::parse(&mem).is_ok();
                        assert_eq!(header_is_valid(prefix), parsed, "byte {off} = {value:#x}");
                        if parsed {
                            valid += 1;
                        } else {
                            invalid += 1;
                        }
                    }
                }
            }
        }
        // Both answers are exercised (a check that always said one thing would fail).
        assert!(
            valid > 100 && invalid > 100,
            "{valid} valid, {invalid} invalid"
        );
    }
}
