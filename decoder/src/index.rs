//! The sparse block index: one fixed-size entry per block, enough to find a record by
//! number, by kind and by time, and to decode only the blocks that hold it.
//!
//! # File layout (all little-endian, zerocopy layouts)
//!
//! [`IndexHeader`] (128 bytes), then `ring_count` [`IndexRing`]s, then `block_count`
//! [`IndexBlock`]s (128 bytes each, in ring order and, within a ring, oldest first),
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
//! # Staleness
//!
//! The header holds the source's length and a fingerprint: a 64-bit hash of its first
//! and last 256 KiB and of every ring header (which carry the live write and commit
//! positions and loss counters, so any further tracing changes them). Hashing the whole
//! source would cost a full read per query; this costs ~0.1 ms. In addition every block a
//! query decodes is checked against its entry (block header sequence number and base
//! time), so a source changed in the middle is refused as well.

use std::path::{Path, PathBuf};

use tracemark_format::record::BlockRecords;
use tracemark_format::ring::{BlockHeader, BLOCK_HEADER_LEN, BLOCK_MAGIC, RING_HEADER_LEN};
use tracemark_format::{Event, KernelEntry, Kind, SyscallAbi};
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::dump::{Block, Dump, Warning};
use crate::merge::{block_warning, EntryStack, Item};
use crate::render::RingCtx;

/// First eight bytes of an index file.
pub const INDEX_MAGIC: [u8; 8] = *b"TMINDEX\0";
/// The index layout version.
pub const INDEX_VERSION: u32 = 1;
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
    /// Reserved, zero.
    pub reserved: [u8; 68],
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
    /// Reserved, zero.
    pub reserved: U32,
}

const _: () = assert!(core::mem::size_of::<IndexHeader>() == 128);
const _: () = assert!(core::mem::size_of::<IndexBlock>() == 128);

/// Why an index cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Not an index file.
    #[error("at byte 0: not a tracemark index (bad magic); build one with `tracemark index DUMP`")]
    BadMagic,
    /// An index version this tool does not read.
    #[error("at byte 8: index version {0} is not supported (this tool reads {INDEX_VERSION}); rebuild it with `tracemark index`")]
    Version(u32),
    /// The file is shorter than its header says or sizes are inconsistent.
    #[error("at byte {offset}: index is truncated or damaged ({what}); rebuild it with `tracemark index`")]
    Damaged {
        /// Where.
        offset: usize,
        /// What is inconsistent.
        what: &'static str,
    },
    /// The source changed since the index was built.
    #[error("index is stale: {0}; rebuild it with `tracemark index`")]
    Stale(String),
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

fn entry_word(e: &KernelEntry) -> U32 {
    U32::new(e.0)
}

fn index_ring(
    dump: &Dump<'_>,
    ri: usize,
    warnings: &mut Vec<Warning>,
    progress: &dyn Fn(u64),
) -> Vec<IndexBlock> {
    let ring = &dump.rings[ri];
    let mut stack = EntryStack::default();
    let mut out = Vec::with_capacity(ring.blocks.len());
    let mut pending = 0u64;
    for block in &ring.blocks {
        let mut e = IndexBlock::new_zeroed();
        e.records_offset = U64::new(block.records_offset() as u64);
        e.records_len = U32::new(block.records.len() as u32);
        e.ring = U16::new(ri as u16);
        e.seq = U32::new(block.seq);
        e.base_ts = U64::new(block.base_ts);
        e.first_record = U64::new(block.first_record);
        let open = stack.entries();
        e.stack_depth = U32::new(open.len() as u32);
        let keep = open.len().saturating_sub(STACK_KEPT);
        for (slot, entry) in e.stack.iter_mut().zip(&open[keep..]) {
            *slot = entry_word(entry);
        }
        let mut kinds = [0u32; 8];
        let mut events = 0u32;
        let mut first = None;
        let mut last = block.base_ts;
        for r in block.decode() {
            match r {
                Ok(rec) => {
                    stack.apply(&rec.event);
                    let k = rec.event.kind() as usize;
                    kinds[k & 7] += 1;
                    if k != Kind::Lost as usize {
                        events += 1;
                    }
                    first.get_or_insert(rec.ts);
                    last = rec.ts;
                }
                Err(err) => {
                    e.flags = U16::new(1);
                    warnings.push(block_warning(ring.cpu, block, err.offset, &err.to_string()));
                    break;
                }
            }
        }
        e.kinds = kinds.map(U32::new);
        e.events = U32::new(events);
        e.first_ts = U64::new(first.unwrap_or(block.base_ts));
        e.last_ts = U64::new(last);
        out.push(e);
        pending += block.records.len() as u64;
        if pending > 1 << 24 {
            progress(pending);
            pending = 0;
        }
    }
    progress(pending);
    out
}

/// Builds the index of `dump` (read from `source_path`) with up to `threads` workers.
/// Returns the index file's bytes and the decoding warnings.
pub fn build(
    dump: &Dump<'_>,
    source_path: &Path,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> (Vec<u8>, Vec<Warning>) {
    let n = dump.rings.len();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        let mut warnings = Vec::new();
        loop {
            let ri = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if ri >= n {
                break;
            }
            done.push((ri, index_ring(dump, ri, &mut warnings, progress)));
        }
        (done, warnings)
    };
    let threads = threads.clamp(1, n.max(1));
    let mut parts = Vec::new();
    let mut warnings = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let (d, w) = work();
        parts.extend(d);
        warnings.extend(w);
        for h in handles {
            match h.join() {
                Ok((d, w)) => {
                    parts.extend(d);
                    warnings.extend(w);
                }
                Err(p) => std::panic::resume_unwind(p),
            }
        }
    });
    parts.sort_by_key(|(ri, _)| *ri);
    warnings.sort_by_key(|w| w.offset);

    let path = source_path.to_string_lossy().into_owned();
    let ring_len = core::mem::size_of::<IndexRing>();
    let block_len = core::mem::size_of::<IndexBlock>();
    let blocks: usize = parts.iter().map(|(_, b)| b.len()).sum();
    let path_offset = 128 + n * ring_len + blocks * block_len;
    let mut h = IndexHeader::new_zeroed();
    h.magic = INDEX_MAGIC;
    h.version = U32::new(INDEX_VERSION);
    h.header_len = U32::new(128);
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
    for (ring, (_, b)) in dump.rings.iter().zip(&parts) {
        let mut r = IndexRing::new_zeroed();
        r.offset = U64::new(ring.offset as u64);
        r.cpu = U32::new(ring.cpu);
        r.abi = ring.abi as u8;
        r.clock_hz = U64::new(ring.clock_hz);
        r.overwritten = U64::new(ring.overwritten);
        r.dropped = U64::new(ring.dropped);
        r.torn_blocks = U64::new(ring.torn_blocks);
        r.first_block = U32::new(first_block);
        r.block_count = U32::new(b.len() as u32);
        first_block += b.len() as u32;
        out.extend_from_slice(r.as_bytes());
    }
    for (_, b) in &parts {
        out.extend_from_slice(b.as_bytes());
    }
    out.extend_from_slice(path.as_bytes());
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
        if header.header_len.get() != 128
            || header.ring_entry_len.get() as usize != core::mem::size_of::<IndexRing>()
            || header.block_entry_len.get() as usize != core::mem::size_of::<IndexBlock>()
        {
            return Err(damaged(12, "entry sizes"));
        }
        let nr = header.ring_count.get() as usize;
        let nb = header.block_count.get() as usize;
        let ring_bytes = nr * core::mem::size_of::<IndexRing>();
        let block_bytes = nb * core::mem::size_of::<IndexBlock>();
        let rings_src = rest.get(..ring_bytes).ok_or(damaged(128, "ring table"))?;
        let blocks_src = rest
            .get(ring_bytes..ring_bytes + block_bytes)
            .ok_or(damaged(128 + ring_bytes, "block table"))?;
        let rings =
            <[IndexRing]>::ref_from_bytes(rings_src).map_err(|_| damaged(128, "ring table"))?;
        let blocks = <[IndexBlock]>::ref_from_bytes(blocks_src)
            .map_err(|_| damaged(128 + ring_bytes, "block table"))?;
        let po = header.path_offset.get() as usize;
        let path = bytes
            .get(po..po.saturating_add(header.path_len.get() as usize))
            .ok_or(damaged(po, "source path"))?;
        let mut total = 0u64;
        for (i, r) in rings.iter().enumerate() {
            if u64::from(r.first_block.get()) != total {
                return Err(damaged(
                    128 + i * core::mem::size_of::<IndexRing>(),
                    "ring block range",
                ));
            }
            total += u64::from(r.block_count.get());
        }
        if total != nb as u64 {
            return Err(damaged(128, "block count"));
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

    /// The output context of ring `ri`.
    pub fn ctx(&self, ri: usize) -> RingCtx {
        let r = &self.rings[ri];
        RingCtx {
            cpu: r.cpu.get(),
            clock_hz: r.clock_hz.get(),
            abi: SyscallAbi::from_u8(r.abi).unwrap_or(SyscallAbi::Raw),
        }
    }

    /// The source block of entry `e`, checked against the entry.
    pub fn block<'s>(&self, source: &'s [u8], e: &IndexBlock) -> Result<Block<'s>, IndexError> {
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
        let mut number = block.first_record;
        for rec in BlockRecords::new(block.records, block.base_ts).map_while(Result::ok) {
            let entry = stack.apply(&rec.event);
            let n = if matches!(rec.event, Event::Lost { .. }) {
                None
            } else {
                number += 1;
                Some(number - 1)
            };
            if !f(Item {
                ts: rec.ts,
                number: n,
                ring: ri as u32,
                event: rec.event,
                entry,
            }) {
                break;
            }
        }
        Ok(())
    }

    /// Index of the block of ring `ri` holding record number `n`.
    pub fn find_record(&self, ri: usize, n: u64) -> Option<usize> {
        let blocks = self.ring_blocks(ri);
        let i = blocks.partition_point(|b| b.first_record.get() <= n);
        let b = blocks.get(i.checked_sub(1)?)?;
        (n < b.first_record.get() + u64::from(b.events.get())).then_some(i - 1)
    }

    /// Index of the first block of ring `ri` that may hold records at or after `ts`.
    pub fn find_time(&self, ri: usize, ts: u64) -> usize {
        self.ring_blocks(ri)
            .partition_point(|b| b.last_ts.get() < ts)
    }
}
