//! The sparse block index: one fixed-size entry per block, enough to find a record by
//! number, by kind and by time, and to decode only the blocks that hold it.
//!
//! # File layout (all little-endian, zerocopy layouts)
//!
//! [`IndexHeader`] (128 bytes), then `ring_count` [`IndexRing`]s, then `block_count`
//! [`IndexBlock`]s (136 bytes each, in ring order and, within a ring, oldest first),
//! then the source path (UTF-8).
//!
//! # Why sparse
//!
//! A dense index (16 bytes per record) of a 90M-record dump is 1.4 GB, more than the dump
//! itself, and writing it costs more than decoding. One entry per block (typically 4 KiB
//! of records, ~1000 records) is 3 % of a per-record index's size, is built in one
//! decoding pass, and still answers in microseconds: binary search to the block, then
//! decode that one block (a few microseconds).
//!
//! # Integrity
//!
//! The index checks itself, so that a damaged index is refused rather than answering
//! wrongly: its header holds an XXH3-64 checksum of the header (with that field
//! zeroed), the ring table and the source path, verified when the index is opened; each
//! block entry holds a 32-bit check of its own bytes, verified whenever the entry is
//! used (a binary search probes, a block decoded, a summary). Checking every entry on
//! open would read the whole index (11.6 MB for a 537 MB dump) for every query: per
//! entry, a query stays O(log n).
//!
//! Facts the dump holds are taken from the dump, not the index: a query reads each
//! ring's CPU, clock frequency and syscall numbering from the ring header in the source.
//!
//! # Staleness
//!
//! The header holds the source's length and a fingerprint: a 64-bit hash of its first
//! and last 256 KiB and of every ring header (which carry the live write and commit
//! positions and loss counters, so any further tracing changes them). Hashing the whole
//! source would cost a full read per query; this costs ~0.1 ms. In addition every block a
//! query decodes is checked against its entry: block header sequence number, base time,
//! and a 32-bit hash (XXH3) of the block's header and record bytes, so a source changed
//! in the middle, even by an edit of the same length, is refused as well (see
//! BENCHMARKS.md for what the hashes cost `index` and `query`).

use std::path::{Path, PathBuf};

use tracemark_format::ring::{BlockHeader, BLOCK_HEADER_LEN, BLOCK_MAGIC, RING_HEADER_LEN};
use tracemark_format::RingView;
use tracemark_format::{KernelEntry, Kind, SyscallAbi};
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

use tracemark_format::scan::{gather, scan_with, ByKind, KindVisitor};

use crate::dump::{count_warning, Block, Dump, Warning};
use crate::merge::{block_warning, BlockItems, EntryStack, Item, MAX_STACK};
use crate::par::{self, Carry, FlatStack, Unit, UnitStack};
use crate::render::RingCtx;

/// First eight bytes of an index file.
pub const INDEX_MAGIC: [u8; 8] = *b"TMINDEX\0";
/// The index layout version.
pub const INDEX_VERSION: u32 = 2;
/// Size of [`IndexHeader`]: the ring table starts right after it.
pub const INDEX_HEADER_LEN: usize = core::mem::size_of::<IndexHeader>();
/// Byte offset of [`IndexHeader::version`].
const VERSION_AT: usize = core::mem::offset_of!(IndexHeader, version);
/// Byte offset of [`IndexHeader::header_len`].
const HEADER_LEN_AT: usize = core::mem::offset_of!(IndexHeader, header_len);

/// Open kernel entries kept per block entry.
pub const STACK_KEPT: usize = 8;

/// The index file header.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct IndexHeader {
    /// [`INDEX_MAGIC`].
    pub magic: [u8; 8],
    /// [`INDEX_VERSION`].
    pub version: U32,
    /// Size of this header.
    pub header_len: U32,
    /// Length of the source file in bytes.
    pub source_len: U64,
    /// [`fingerprint`] of the source.
    pub source_fingerprint: U64,
    /// Number of [`IndexRing`]s.
    pub ring_count: U32,
    /// Number of [`IndexBlock`]s.
    pub block_count: U32,
    /// Byte offset of the source path.
    pub path_offset: U64,
    /// Length of the source path.
    pub path_len: U32,
    /// Size of an [`IndexRing`].
    pub ring_entry_len: U32,
    /// Size of an [`IndexBlock`].
    pub block_entry_len: U32,
    /// XXH3-64 of this header (with this field zeroed), the ring table and the path.
    pub checksum: U64,
    /// Reserved, zero.
    pub reserved: [u8; 60],
}

/// One ring of the source.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct IndexRing {
    /// Byte offset of the ring header in the source.
    pub offset: U64,
    /// CPU number.
    pub cpu: U32,
    /// Syscall numbering ([`SyscallAbi`] wire value).
    pub abi: u8,
    /// Reserved, zero.
    pub reserved: [u8; 3],
    /// Clock frequency.
    pub clock_hz: U64,
    /// Records overwritten before the oldest block.
    pub overwritten: U64,
    /// Records dropped.
    pub dropped: U64,
    /// Torn blocks.
    pub torn_blocks: U64,
    /// Index of the ring's first [`IndexBlock`].
    pub first_block: U32,
    /// Number of its blocks.
    pub block_count: U32,
}

/// One block of a ring.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct IndexBlock {
    /// Byte offset of the block's first record byte in the source.
    pub records_offset: U64,
    /// Committed record bytes.
    pub records_len: U32,
    /// Index of the ring.
    pub ring: U16,
    /// Bit 0: decoding stopped at damage.
    pub flags: U16,
    /// Block sequence number (checked against the source).
    pub seq: U32,
    /// Event records decoded (`Lost` excluded).
    pub events: U32,
    /// Base time (checked against the source).
    pub base_ts: U64,
    /// Number of the first event record.
    pub first_record: U64,
    /// Time of the first record.
    pub first_ts: U64,
    /// Time of the last record.
    pub last_ts: U64,
    /// Records per kind code 0..8 (`Lost` included).
    pub kinds: [U32; 8],
    /// Open kernel entries at the block's start (all of them, maybe more than kept).
    pub stack_depth: U32,
    /// The innermost `min(stack_depth, 8)` open entries, outermost first.
    pub stack: [U32; STACK_KEPT],
    /// [`block_hash`] of the source block.
    pub hash: U32,
    /// Reserved, zero.
    pub reserved: U32,
    /// [`entry_check`] of this entry.
    pub check: U32,
}

const _: () = assert!(INDEX_HEADER_LEN == 128);
const _: () = assert!(core::mem::size_of::<IndexBlock>() == 136);

/// Why an index cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Not an index file.
    #[error("at byte 0: not a tracemark index (bad magic); build one with `tracemark index DUMP`")]
    BadMagic,
    /// An index version this tool does not read.
    #[error("at byte {VERSION_AT}: index version {0} is not supported (this tool reads {INDEX_VERSION}); rebuild it with `tracemark index`")]
    Version(u32),
    /// The file is shorter than its header says or sizes are inconsistent.
    #[error("at byte {offset}: index is truncated or damaged ({what}); rebuild it with `tracemark index`")]
    Damaged {
        /// Where.
        offset: usize,
        /// What is inconsistent.
        what: &'static str,
    },
    /// The index's checksum does not match its bytes.
    #[error("at byte {CHECKSUM_AT}: index checksum mismatch (stored {stored:#018x}, computed {computed:#018x}): the index is damaged; rebuild it with `tracemark index`")]
    Checksum {
        /// Checksum stored in the header.
        stored: u64,
        /// Checksum of the bytes.
        computed: u64,
    },
    /// A block entry's check does not match its bytes.
    #[error("at byte {offset}: index block entry {entry} is damaged (its check does not match); rebuild the index with `tracemark index`")]
    Entry {
        /// Byte offset of the entry in the index file.
        offset: usize,
        /// Its number.
        entry: usize,
    },
    /// The source changed since the index was built.
    #[error("index is stale: {0}; rebuild it with `tracemark index`")]
    Stale(String),
}

/// Byte offset of [`IndexHeader::checksum`].
const CHECKSUM_AT: usize = core::mem::offset_of!(IndexHeader, checksum);

/// The checksum of an index file: XXH3-64 of its header with the checksum field zeroed,
/// its ring table (`ring_bytes` bytes after the header) and `path`.
pub fn index_checksum(bytes: &[u8], ring_bytes: usize, path: &[u8]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let head = &bytes[..bytes.len().min(INDEX_HEADER_LEN + ring_bytes)];
    let end = CHECKSUM_AT + 8;
    if head.len() < end {
        h.update(head);
    } else {
        h.update(&head[..CHECKSUM_AT]);
        h.update(&[0u8; 8]);
        h.update(&head[end..]);
    }
    h.update(path);
    h.digest()
}

/// Byte offset of [`IndexBlock::check`].
const ENTRY_CHECK_AT: usize = core::mem::offset_of!(IndexBlock, check);

/// The check of a block entry: the low 32 bits of XXH3-64 of its bytes before `check`.
#[inline]
pub fn entry_check(e: &IndexBlock) -> u32 {
    xxhash_rust::xxh3::xxh3_64(&e.as_bytes()[..ENTRY_CHECK_AT]) as u32
}

/// The hash an index keeps of a source block: the low 32 bits of XXH3-64 of the block's
/// header and committed record bytes.
#[inline]
pub fn block_hash(header_and_records: &[u8]) -> u32 {
    xxhash_rust::xxh3::xxh3_64(header_and_records) as u32
}

/// A 64-bit hash of the first and last 256 KiB of `bytes` and of the ring headers at
/// `ring_offsets` (see the module documentation).
pub fn fingerprint(bytes: &[u8], ring_offsets: impl Iterator<Item = usize>) -> u64 {
    const SPAN: usize = 256 * 1024;
    #[inline]
    fn mix(h: u64, chunk: &[u8]) -> u64 {
        let mut h = h;
        let mut words = chunk.chunks_exact(8);
        for w in &mut words {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            h = (h ^ u64::from_le_bytes(a))
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .rotate_left(29);
        }
        for &b in words.remainder() {
            h = (h ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
        h
    }
    let mut h = mix(
        0x5452_4143_454d_524b ^ bytes.len() as u64,
        &bytes[..bytes.len().min(SPAN)],
    );
    h = mix(h, &bytes[bytes.len().saturating_sub(SPAN)..]);
    for o in ring_offsets {
        if let Some(hdr) = bytes.get(o..o.saturating_add(RING_HEADER_LEN)) {
            h = mix(h, hdr);
        }
    }
    h
}

/// Counts of one block, and the open-entry stack at its start relative to its unit.
struct IndexVisitor {
    kinds: [u32; 8],
    /// Event records of kinds the index has no column for (SWITCH, CLOCKBACK): they
    /// are in the block's `events` (the difference to the sum of the first seven kinds).
    other: u32,
    last: u64,
    /// The unit's stack (owned, so that its depth stays in a register).
    stack: FlatStack,
}

impl KindVisitor for IndexVisitor {
    #[inline(always)]
    fn simple(&mut self, ts: u64, code: u8, value: u64) {
        self.kinds[usize::from(code & 7)] += 1;
        self.last = ts;
        self.stack.record(code, value);
    }
    #[inline(always)]
    fn other(&mut self, ts: u64, kind: Kind) {
        match self.kinds.get_mut(kind as usize) {
            Some(k) => *k += 1,
            None => self.other += 1,
        }
        self.last = ts;
    }
}

/// A block's stack at its start, relative to its unit: how many of the entries left
/// open by earlier units had been closed, and the unit's own open entries.
struct StackAtStart {
    popped: usize,
    depth: usize,
    /// The innermost `top_len` (at most [`STACK_KEPT`]) of the unit's own open
    /// entries, outermost first (an array: no allocation per block).
    top: [u32; STACK_KEPT],
    top_len: usize,
}

impl StackAtStart {
    fn top(&self) -> &[u32] {
        &self.top[..self.top_len]
    }
}

/// What [`index_unit`] yields.
type UnitIndex = (Vec<(IndexBlock, StackAtStart)>, UnitStack, Vec<Warning>);

/// Index entries of one unit of blocks (stacks still relative to the unit).
///
/// The loop over the unit's blocks is compiled with the varint gatherer's target
/// features (see [`tracemark_format::scan::scan_with`]), so that the visitor and its
/// stack are locals of the function that runs the scan.
fn index_unit(dump: &Dump<'_>, unit: &Unit, progress: &dyn Fn(u64)) -> UnitIndex {
    #[cfg(target_arch = "x86_64")]
    if let Some(bmi2) = gather::Bmi2::detect() {
        #[target_feature(enable = "bmi1,bmi2")]
        fn with_bmi2(
            dump: &Dump<'_>,
            unit: &Unit,
            progress: &dyn Fn(u64),
            bmi2: gather::Bmi2,
        ) -> UnitIndex {
            index_unit_with(dump, unit, progress, bmi2)
        }
        // SAFETY: a `Bmi2` token exists only if the processor supports BMI1 and BMI2.
        return unsafe { with_bmi2(dump, unit, progress, bmi2) };
    }
    index_unit_with(dump, unit, progress, gather::Portable)
}

#[inline(always)]
fn index_unit_with<G: gather::Gather>(
    dump: &Dump<'_>,
    unit: &Unit,
    progress: &dyn Fn(u64),
    g: G,
) -> UnitIndex {
    let ring = &dump.rings[unit.ring];
    let mut v = IndexVisitor {
        kinds: [0; 8],
        other: 0,
        last: 0,
        stack: FlatStack::default(),
    };
    let mut warnings = Vec::new();
    let mut out = Vec::with_capacity(unit.blocks.len());
    let mut pending = 0u64;
    for block in &ring.blocks[unit.blocks.clone()] {
        let mut e = IndexBlock::new_zeroed();
        e.records_offset = U64::new(block.records_offset() as u64);
        e.records_len = U32::new(block.records.len() as u32);
        e.ring = U16::new(unit.ring as u16);
        e.seq = U32::new(block.seq);
        e.base_ts = U64::new(block.base_ts);
        e.first_record = U64::new(block.first_record);
        e.hash = U32::new(block_hash(
            &dump.bytes[block.offset..block.records_offset() + block.records.len()],
        ));
        let stack = &v.stack;
        let mut at_start = StackAtStart {
            popped: stack.pending_len(),
            depth: stack.depth(),
            top: [0; STACK_KEPT],
            top_len: stack.depth().min(STACK_KEPT),
        };
        for (slot, w) in at_start.top.iter_mut().zip(stack.top(STACK_KEPT)) {
            *slot = w;
        }
        v.kinds = [0; 8];
        v.other = 0;
        v.last = block.base_ts;
        let end = scan_with(block.records, block.base_ts, &mut ByKind(&mut v), g);
        let (kinds, other, last) = (v.kinds, v.other, v.last);
        if let Some(err) = end.error {
            e.flags = U16::new(1);
            warnings.push(block_warning(ring.cpu, block, err.offset, &err.to_string()));
        }
        warnings.extend(count_warning(
            ring.cpu,
            block,
            end.records - end.lost,
            end.error.is_none(),
        ));
        let first = if end.records > 0 {
            block.decode().next().and_then(Result::ok).map(|r| r.ts)
        } else {
            None
        };
        e.kinds = kinds.map(U32::new);
        e.events = U32::new(kinds[..7].iter().sum::<u32>() + other);
        e.first_ts = U64::new(first.unwrap_or(block.base_ts));
        e.last_ts = U64::new(last);
        out.push((e, at_start));
        pending += block.records.len() as u64;
        if pending > 1 << 24 {
            progress(pending);
            pending = 0;
        }
    }
    progress(pending);
    (out, v.stack.to_unit_stack(), warnings)
}

/// Builds the index of `dump` (read from `source_path`) with up to `threads` workers.
/// Returns the index file's bytes and the decoding warnings.
///
/// Runs of blocks are indexed in parallel ([`crate::par`]); the open-entry stack each
/// block starts with is completed afterwards from what earlier runs left open.
pub fn build(
    dump: &Dump<'_>,
    source_path: &Path,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> (Vec<u8>, Vec<Warning>) {
    let n = dump.rings.len();
    let units = par::units(dump, threads);
    let (_, results) = par::run(
        &units,
        threads,
        || (),
        |(), u| index_unit(dump, u, progress),
    );
    // The index file is written as the entries are completed: every block of every
    // ring has one entry and the units come in ring order then block order, so the
    // header and ring table are known before the entries.
    let path = source_path.to_string_lossy().into_owned();
    let ring_len = core::mem::size_of::<IndexRing>();
    let block_len = core::mem::size_of::<IndexBlock>();
    let blocks = dump.block_count();
    let path_offset = INDEX_HEADER_LEN + n * ring_len + blocks * block_len;
    let mut h = IndexHeader::new_zeroed();
    h.magic = INDEX_MAGIC;
    h.version = U32::new(INDEX_VERSION);
    h.header_len = U32::new(INDEX_HEADER_LEN as u32);
    h.source_len = U64::new(dump.bytes.len() as u64);
    h.source_fingerprint = U64::new(fingerprint(dump.bytes, dump.rings.iter().map(|r| r.offset)));
    h.ring_count = U32::new(n as u32);
    h.block_count = U32::new(blocks as u32);
    h.path_offset = U64::new(path_offset as u64);
    h.path_len = U32::new(path.len() as u32);
    h.ring_entry_len = U32::new(ring_len as u32);
    h.block_entry_len = U32::new(block_len as u32);
    let mut out = Vec::with_capacity(path_offset + path.len());
    out.extend_from_slice(h.as_bytes());
    let mut first_block = 0u32;
    for ring in &dump.rings {
        let mut r = IndexRing::new_zeroed();
        r.offset = U64::new(ring.offset as u64);
        r.cpu = U32::new(ring.cpu);
        r.abi = ring.abi as u8;
        r.clock_hz = U64::new(ring.clock_hz);
        r.overwritten = U64::new(ring.overwritten);
        r.dropped = U64::new(ring.dropped);
        r.torn_blocks = U64::new(ring.torn_blocks);
        r.first_block = U32::new(first_block);
        r.block_count = U32::new(ring.blocks.len() as u32);
        first_block += ring.blocks.len() as u32;
        out.extend_from_slice(r.as_bytes());
    }
    let mut warnings = Vec::new();
    let mut carries: Vec<Carry> = vec![Carry::default(); n];
    for (u, (entries, unit_stack, w)) in units.iter().zip(results) {
        let carry = &mut carries[u.ring];
        for (mut e, s) in entries {
            // The stack at the block's start: what earlier units left open, minus the
            // entries this unit's exits closed so far, then this unit's open entries.
            let below = carry.open.len().saturating_sub(s.popped);
            let depth = (below + s.depth).min(MAX_STACK);
            let inherited = &carry.open[..below];
            let inherited = &inherited[below.saturating_sub(STACK_KEPT - s.top_len)..];
            e.stack_depth = U32::new(depth as u32);
            for (slot, w) in e.stack.iter_mut().zip(inherited.iter().chain(s.top())) {
                *slot = U32::new(*w);
            }
            e.check = U32::new(entry_check(&e));
            out.extend_from_slice(e.as_bytes());
        }
        carry.apply(&unit_stack, |_, _| {});
        warnings.extend(w);
    }
    debug_assert_eq!(out.len(), path_offset, "one entry per block, in ring order");
    warnings.sort_by_key(|w| w.offset);
    out.extend_from_slice(path.as_bytes());
    let checksum = index_checksum(&out, n * ring_len, path.as_bytes());
    out[CHECKSUM_AT..CHECKSUM_AT + 8].copy_from_slice(&checksum.to_le_bytes());
    (out, warnings)
}

/// An index file, checked, borrowed from its bytes.
pub struct Index<'a> {
    /// The header.
    pub header: &'a IndexHeader,
    /// The rings.
    pub rings: &'a [IndexRing],
    /// All blocks.
    pub blocks: &'a [IndexBlock],
    /// The source path recorded at build time.
    pub source_path: PathBuf,
}

fn damaged(offset: usize, what: &'static str) -> IndexError {
    IndexError::Damaged { offset, what }
}

impl<'a> Index<'a> {
    /// Checks and reads an index file's bytes.
    pub fn parse(bytes: &'a [u8]) -> Result<Index<'a>, IndexError> {
        if bytes.len() < 8 || bytes[..8] != INDEX_MAGIC {
            return Err(IndexError::BadMagic);
        }
        let (header, rest) = IndexHeader::ref_from_prefix(bytes)
            .map_err(|_| damaged(bytes.len(), "shorter than the header"))?;
        if header.version.get() != INDEX_VERSION {
            return Err(IndexError::Version(header.version.get()));
        }

        if header.header_len.get() as usize != INDEX_HEADER_LEN
            || header.ring_entry_len.get() as usize != core::mem::size_of::<IndexRing>()
            || header.block_entry_len.get() as usize != core::mem::size_of::<IndexBlock>()
        {
            return Err(damaged(HEADER_LEN_AT, "entry sizes"));
        }
        let nr = header.ring_count.get() as usize;
        let nb = header.block_count.get() as usize;
        let ring_bytes = nr * core::mem::size_of::<IndexRing>();
        let block_bytes = nb * core::mem::size_of::<IndexBlock>();
        let rings_src = rest
            .get(..ring_bytes)
            .ok_or(damaged(INDEX_HEADER_LEN, "ring table"))?;
        let blocks_src = rest
            .get(ring_bytes..ring_bytes + block_bytes)
            .ok_or(damaged(INDEX_HEADER_LEN + ring_bytes, "block table"))?;
        let rings = <[IndexRing]>::ref_from_bytes(rings_src)
            .map_err(|_| damaged(INDEX_HEADER_LEN, "ring table"))?;
        let blocks = <[IndexBlock]>::ref_from_bytes(blocks_src)
            .map_err(|_| damaged(INDEX_HEADER_LEN + ring_bytes, "block table"))?;
        let po = header.path_offset.get() as usize;
        let path = bytes
            .get(po..po.saturating_add(header.path_len.get() as usize))
            .ok_or(damaged(po, "source path"))?;
        let computed = index_checksum(bytes, ring_bytes, path);
        if computed != header.checksum.get() {
            return Err(IndexError::Checksum {
                stored: header.checksum.get(),
                computed,
            });
        }
        let mut total = 0u64;
        for (i, r) in rings.iter().enumerate() {
            if u64::from(r.first_block.get()) != total {
                return Err(damaged(
                    INDEX_HEADER_LEN + i * core::mem::size_of::<IndexRing>(),
                    "ring block range",
                ));
            }
            total += u64::from(r.block_count.get());
        }
        if total != nb as u64 {
            return Err(damaged(INDEX_HEADER_LEN, "block count"));
        }
        Ok(Index {
            header,
            rings,
            blocks,
            source_path: PathBuf::from(String::from_utf8_lossy(path).into_owned()),
        })
    }

    /// Refuses a source whose length or fingerprint differ from the ones indexed.
    pub fn check_source(&self, source: &[u8]) -> Result<(), IndexError> {
        if source.len() as u64 != self.header.source_len.get() {
            return Err(IndexError::Stale(format!(
                "the source is {} bytes, the index was built from {} bytes",
                source.len(),
                self.header.source_len.get()
            )));
        }
        let f = fingerprint(source, self.rings.iter().map(|r| r.offset.get() as usize));
        if f != self.header.source_fingerprint.get() {
            return Err(IndexError::Stale(
                "the source's content differs from the indexed one".into(),
            ));
        }
        Ok(())
    }

    /// The blocks of ring `ri`.
    pub fn ring_blocks(&self, ri: usize) -> &'a [IndexBlock] {
        let r = &self.rings[ri];
        let a = r.first_block.get() as usize;
        &self.blocks[a..a + r.block_count.get() as usize]
    }

    /// The output context of every ring, read from the ring headers in `source` (the
    /// dump is the authority on CPU, clock and syscall numbering; the index only says
    /// where the rings are). A ring header that is missing or names another CPU than
    /// the index means the index does not belong to this source.
    pub fn source_ctxs(&self, source: &[u8]) -> Result<Vec<RingCtx<'static>>, IndexError> {
        self.rings
            .iter()
            .map(|r| {
                let at = r.offset.get() as usize;
                let view = source
                    .get(at..)
                    .and_then(|b| RingView::parse_recovering(b).ok())
                    .ok_or_else(|| {
                        IndexError::Stale(format!("no ring header at byte {at} of the source"))
                    })?
                    .0;
                let h = view.header;
                if h.cpu_id.get() != r.cpu.get() {
                    return Err(IndexError::Stale(format!(
                        "the ring at byte {at} of the source is cpu{}, the index says cpu{}",
                        h.cpu_id.get(),
                        r.cpu.get()
                    )));
                }
                Ok(RingCtx {
                    cpu: h.cpu_id.get(),
                    clock_hz: h.clock_hz.get(),
                    abi: SyscallAbi::from_u8(h.syscall_abi).unwrap_or(SyscallAbi::Raw),
                    names: None,
                    thread_names: None,
                })
            })
            .collect()
    }

    /// The source block of entry `e`, checked against the entry.
    pub fn block<'s>(&self, source: &'s [u8], e: &IndexBlock) -> Result<Block<'s>, IndexError> {
        self.check_entry(e)?;
        let ro = e.records_offset.get() as usize;
        let stale = || {
            IndexError::Stale(format!(
                "block at byte {} no longer matches",
                ro.saturating_sub(BLOCK_HEADER_LEN)
            ))
        };
        let hdr_at = ro.checked_sub(BLOCK_HEADER_LEN).ok_or_else(stale)?;
        let (h, _) = source
            .get(hdr_at..)
            .and_then(|b| BlockHeader::read_from_prefix(b).ok())
            .ok_or_else(stale)?;
        let records = source
            .get(ro..ro.saturating_add(e.records_len.get() as usize))
            .ok_or_else(stale)?;
        if h.magic.get() != BLOCK_MAGIC
            || h.seq.get() != e.seq.get()
            || h.base_ts.get() != e.base_ts.get()
        {
            return Err(stale());
        }
        let whole = &source[hdr_at..ro + records.len()];
        if block_hash(whole) != e.hash.get() {
            return Err(IndexError::Stale(format!(
                "the block at byte {hdr_at} of the source differs from the indexed one \
                 (its bytes were changed)"
            )));
        }
        Ok(Block {
            seq: e.seq.get(),
            offset: hdr_at,
            base_ts: e.base_ts.get(),
            first_record: e.first_record.get(),
            header_records: h.records.get(),
            is_current: false,
            records,
        })
    }

    /// The open-entry stack at the start of block `e`.
    pub fn stack(e: &IndexBlock) -> EntryStack {
        let depth = (e.stack_depth.get() as usize).min(STACK_KEPT);
        let entries: Vec<KernelEntry> = e.stack[..depth]
            .iter()
            .map(|w| KernelEntry(w.get()))
            .collect();
        EntryStack::from_entries(&entries)
    }

    /// Decodes block entry `e` of ring `ri`, calling `f` for each record; decoding
    /// errors end the block silently (they were reported when the index was built).
    pub fn decode(
        &self,
        source: &[u8],
        ri: usize,
        e: &IndexBlock,
        mut f: impl FnMut(Item) -> bool,
    ) -> Result<(), IndexError> {
        let block = self.block(source, e)?;
        let mut stack = Self::stack(e);
        let mut items = BlockItems::new(&block, ri as u32);
        while let Some(Ok(item)) = items.next_item(&mut stack) {
            if !f(item) {
                break;
            }
        }
        Ok(())
    }

    /// Checks block entry `e` (one of [`Index::blocks`]) against its own check.
    pub fn check_entry(&self, e: &IndexBlock) -> Result<(), IndexError> {
        if entry_check(e) == e.check.get() {
            return Ok(());
        }
        let size = core::mem::size_of::<IndexBlock>();
        let entry =
            (e as *const IndexBlock as usize).wrapping_sub(self.blocks.as_ptr() as usize) / size;
        Err(IndexError::Entry {
            offset: INDEX_HEADER_LEN + core::mem::size_of_val(self.rings) + entry * size,
            entry,
        })
    }

    /// Index of the block of ring `ri` holding record number `n`. The entries the search
    /// probes are checked.
    pub fn find_record(&self, ri: usize, n: u64) -> Result<Option<usize>, IndexError> {
        let blocks = self.ring_blocks(ri);
        let mut damaged = Ok(());
        let i = blocks.partition_point(|b| {
            if damaged.is_ok() {
                damaged = self.check_entry(b);
            }
            b.first_record.get() <= n
        });
        damaged?;
        let Some(b) = i.checked_sub(1).and_then(|j| blocks.get(j)) else {
            return Ok(None);
        };
        Ok((n < b
            .first_record
            .get()
            .saturating_add(u64::from(b.events.get())))
        .then_some(i - 1))
    }

    /// Index of the first block of ring `ri` whose last record is at or after `ts`,
    /// found by a linear scan: right even where the ring's blocks are out of time order
    /// (a clock step back, a damaged `base_ts`), where [`Index::find_time`]'s binary
    /// search is not. The entry found is checked.
    pub fn find_time_unordered(&self, ri: usize, ts: u64) -> Result<usize, IndexError> {
        let blocks = self.ring_blocks(ri);
        let i = blocks
            .iter()
            .position(|b| b.last_ts.get() >= ts)
            .unwrap_or(blocks.len());
        if let Some(b) = blocks.get(i) {
            self.check_entry(b)?;
        }
        Ok(i)
    }

    /// Index of the first block of ring `ri` that may hold records at or after `ts`. The
    /// entries the search probes are checked.
    pub fn find_time(&self, ri: usize, ts: u64) -> Result<usize, IndexError> {
        let mut damaged = Ok(());
        let i = self.ring_blocks(ri).partition_point(|b| {
            if damaged.is_ok() {
                damaged = self.check_entry(b);
            }
            b.last_ts.get() < ts
        });
        damaged.map(|()| i)
    }
}
