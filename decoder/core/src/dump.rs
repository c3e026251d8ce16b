//! Rings in a dump: discovery, blocks in order, and record numbering.
//!
//! A dump is one or more ring images laid end to end, each exactly
//! [`RingView::ring_len`] bytes. The reader parses a ring at offset 0, expects the next
//! one right after it, and, where the bytes are not a ring, scans forward for a ring
//! header with [`find_rings`] (a raw memory image: core file, `gdb dump memory`, JTAG
//! read). A ring cut short by the end of the file keeps its complete blocks.
//!
//! # Record numbers
//!
//! Each CPU numbers its event records (`Lost` records get no number): the number of a
//! record is the count of event records the CPU wrote before it. The reader walks a
//! ring's blocks in sequence order; the first block starts at `overwritten` (the ring
//! header's count of records lost to overwriting), and every block starts where the
//! block before it ended *by that block's header record count* (`records`), whether the
//! block could be decoded or not:
//!
//! - a block whose header is intact (magic and expected sequence number) counts its
//!   `records`, even if its body is damaged or lies in a damaged UART chunk;
//! - a torn block *before* the oldest intact block whose header shows it was opened after
//!   the commit position ([`RingView::opened_after_commit`]) is the slot the writer is
//!   reclaiming: the encoder adds its records to `overwritten` before it rewrites the
//!   header, so it counts 0;
//! - any other torn block (damage: magic or sequence number garbled) counts its
//!   `records` field if that is possible for a block of this size (a damaged header
//!   field rarely damages its neighbours);
//! - a block whose header is not available at all (cut off by truncation, in a missing
//!   UART chunk, or a torn block with an impossible count) counts 0, and a warning says
//!   that the numbers after it on that CPU may be low.
//!
//! `lost_before` cannot fill the gap: it counts records *lost* (overwritten or dropped)
//! when the block was opened, which in a ring of `n` blocks only tells where the block
//! `n - 1` sequence numbers earlier started, never the block just before. So numbers
//! stay stable when a block is damaged: the records lost to damage leave a gap instead
//! of renumbering the rest.

use std::ops::Range;

use tracemark_format::numbering::{
    block_count_consistent, lost_before_consistent, plausible_block_records, RingNumbering,
};
use tracemark_format::record::BlockRecords;
use tracemark_format::ring::{
    find_rings, holds_clock_back, offsets, starts_in_order, BlockState, RingError,
    BLOCK_HEADER_LEN, BLOCK_MAGIC, RING_MAGIC,
};
use tracemark_format::{Event, RingView, SyscallAbi};

/// Why a file holds no usable ring.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The file is empty.
    #[error("at byte 0: the input is empty, no ring to decode (a dump still being written? wait for the writer, or check the path)")]
    Empty,
    /// No ring header anywhere; `offset` is where the first one was expected.
    #[error("at byte {offset}: {source_msg} (and no ring header found anywhere in {len} bytes)")]
    NoRing {
        /// Byte offset of the failure.
        offset: usize,
        /// Why the bytes there are not a ring.
        source_msg: String,
        /// The file's length.
        len: usize,
        /// The ring error at `offset`.
        ring_error: RingError,
    },
}

/// What kind of problem a [`Warning`] is, for summaries ("3 torn blocks").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// A ring header that does not parse (bad magic, CRC, version, field).
    BadRing,
    /// Bytes that are not a ring, skipped.
    NotARing,
    /// A ring cut short by the end of the file.
    Truncated,
    /// A block whose header is torn.
    TornBlock,
    /// A block with undecodable records.
    CorruptBlock,
    /// A block touching a missing or corrupt UART chunk, skipped.
    DamagedChunk,
    /// Record numbers after this place may be low.
    Numbering,
    /// A problem of the UART log a dump was extracted from.
    Uart,
    /// Header fields that contradict each other or the records (a block's record count,
    /// `lost_before` against the ring's counters, blocks out of time order).
    Inconsistent,
}

impl Category {
    /// The plural noun used in summaries.
    pub fn plural(self) -> &'static str {
        match self {
            Category::BadRing => "bad ring headers",
            Category::NotARing => "skipped regions",
            Category::Truncated => "truncated rings",
            Category::TornBlock => "torn blocks",
            Category::CorruptBlock => "corrupt blocks",
            Category::DamagedChunk => "blocks in damaged UART chunks",
            Category::Numbering => "numbering gaps",
            Category::Uart => "UART log problems",
            Category::Inconsistent => "inconsistent headers",
        }
    }

    /// The noun for `n` problems of this category ("1 torn block", "2 torn blocks").
    pub fn noun(self, n: usize) -> &'static str {
        if n != 1 {
            return self.plural();
        }
        match self {
            Category::BadRing => "bad ring header",
            Category::NotARing => "skipped region",
            Category::Truncated => "truncated ring",
            Category::TornBlock => "torn block",
            Category::CorruptBlock => "corrupt block",
            Category::DamagedChunk => "block in damaged UART chunks",
            Category::Numbering => "numbering gap",
            Category::Uart => "UART log problem",
            Category::Inconsistent => "inconsistent header",
        }
    }
}

/// Something wrong with a dump that does not stop decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Byte offset in the file.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
    /// Whether data was lost to damage (truncation, undecodable bytes), as opposed to
    /// a torn block being reclaimed, which overwrite mode produces in normal operation.
    pub damage: bool,
    /// The kind of problem.
    pub category: Category,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.message)
    }
}

/// A block that holds records.
#[derive(Debug, Clone, Copy)]
pub struct Block<'a> {
    /// Sequence number.
    pub seq: u32,
    /// Byte offset of the block header in the file.
    pub offset: usize,
    /// Time of the block's first record.
    pub base_ts: u64,
    /// Number of the block's first event record.
    pub first_record: u64,
    /// Event records the block header claims.
    pub header_records: u32,
    /// Whether this is the block the writer was filling.
    pub is_current: bool,
    /// The committed record bytes.
    pub records: &'a [u8],
}

impl<'a> Block<'a> {
    /// The block's records, oldest first.
    pub fn decode(&self) -> BlockRecords<'a> {
        BlockRecords::new(self.records, self.base_ts)
    }

    /// Byte offset in the file of the first record byte.
    pub fn records_offset(&self) -> usize {
        self.offset + BLOCK_HEADER_LEN
    }
}

/// One ring found in a dump.
#[derive(Debug, Clone)]
pub struct Ring<'a> {
    /// Byte offset of the ring header in the file.
    pub offset: usize,
    /// The parsed ring.
    pub view: RingView<'a>,
    /// The CPU (from the header).
    pub cpu: u32,
    /// Clock frequency in Hz (0 if unknown).
    pub clock_hz: u64,
    /// Syscall numbering.
    pub abi: SyscallAbi,
    /// Blocks that hold records, oldest first.
    pub blocks: Vec<Block<'a>>,
    /// Blocks found torn (being reclaimed or damaged), skipped.
    pub torn_blocks: u64,
    /// Blocks beyond the end of the file.
    pub missing_blocks: u64,
    /// Blocks skipped because they touch a missing or corrupt UART chunk.
    pub damaged_blocks: u64,
    /// Records lost to overwriting before the oldest block (ring header).
    pub overwritten: u64,
    /// Records dropped because the ring was full (ring header).
    pub dropped: u64,
}

impl Ring<'_> {
    /// Total record bytes of the valid blocks.
    pub fn record_bytes(&self) -> u64 {
        self.blocks.iter().map(|b| b.records.len() as u64).sum()
    }
}

/// The rings of a dump.
#[derive(Debug, Clone)]
pub struct Dump<'a> {
    /// The whole input.
    pub bytes: &'a [u8],
    /// Rings in file order.
    pub rings: Vec<Ring<'a>>,
    /// Problems found while reading ring and block headers.
    pub warnings: Vec<Warning>,
}

impl<'a> Dump<'a> {
    /// Finds the rings in `bytes` and lists their blocks.
    pub fn parse(bytes: &'a [u8]) -> Result<Dump<'a>, DumpError> {
        Dump::parse_partial(bytes, None)
    }

    /// Like [`Dump::parse`] for bytes of which only `valid` (sorted, disjoint byte
    /// ranges) can be trusted, as reassembled from a damaged UART log: a block that
    /// overlaps an untrusted byte is skipped and counted as damaged (its header's record
    /// count still numbers the records after it if the header itself is trusted).
    pub fn parse_partial(
        bytes: &'a [u8],
        valid: Option<&[Range<usize>]>,
    ) -> Result<Dump<'a>, DumpError> {
        if bytes.is_empty() {
            return Err(DumpError::Empty);
        }
        let mut rings = Vec::new();
        let mut warnings = Vec::new();
        let mut first_error = None;
        let mut at = 0usize;
        while at < bytes.len() {
            let rest = &bytes[at..];
            // A dump of a ring's used prefix (FORMAT.md 7.3) followed by another ring:
            // the ring is those bytes alone.
            let parsed = match RingView::parse_recovering(rest) {
                Ok((view, _)) if prefix_then_ring(&view, rest) => {
                    RingView::parse_recovering(&rest[..view.used_len()])
                }
                r => r,
            };
            match parsed {
                Ok((view, replaced)) => {
                    let ring_len = if view.is_used_prefix() {
                        view.bytes.len()
                    } else {
                        view.ring_len()
                    };
                    if let Some(stored) = replaced {
                        warnings.push(commit_warning(at, &view, stored));
                    }
                    let ring = read_ring(at, view, valid, &mut warnings);
                    rings.push(ring);
                    if ring_len > rest.len() {
                        warnings.push(Warning {
                            offset: at,
                            damage: true,
                            category: Category::Truncated,
                            message: format!(
                                "ring truncated: {} of {} bytes present, later blocks missing",
                                rest.len(),
                                ring_len
                            ),
                        });
                        break;
                    }
                    at += ring_len;
                }
                Err(e) => {
                    if first_error.is_none() {
                        first_error = Some((at, e));
                    }
                    let looks_like_ring = rest.starts_with(&RING_MAGIC);
                    let next = find_rings(rest).find(|&o| o > 0);
                    let trailing_zeros = next.is_none() && rest.iter().all(|&b| b == 0);
                    if rings.is_empty() && next.is_none() {
                        // Nothing decodable at all: the error below says it.
                        break;
                    }
                    if !trailing_zeros {
                        let skipped = match next {
                            Some(o) => {
                                format!("{o} bytes skipped to the next ring at byte {}", at + o)
                            }
                            None => format!("the last {} bytes skipped", rest.len()),
                        };
                        warnings.push(Warning {
                            offset: at,
                            damage: true,
                            category: if looks_like_ring {
                                Category::BadRing
                            } else {
                                Category::NotARing
                            },
                            message: format!("{}; {skipped}", ring_error_message(&e)),
                        });
                    }
                    match next {
                        Some(o) => at += o,
                        None => break,
                    }
                }
            }
        }
        if rings.is_empty() {
            let (offset, e) = first_error.unwrap_or((0, RingError::BadMagic));
            return Err(DumpError::NoRing {
                offset,
                source_msg: ring_error_message(&e),
                len: bytes.len(),
                ring_error: e,
            });
        }
        // Totals of lost records over the rings (stats, exports) must not wrap: counts
        // that add up past 2^64 are damage, whatever each ring says alone.
        let mut total = 0u64;
        for r in &rings {
            match total.checked_add(r.overwritten.saturating_add(r.dropped)) {
                Some(t) => total = t,
                None => {
                    warnings.push(Warning {
                        offset: r.offset + offsets::DROPPED,
                        damage: true,
                        category: Category::Inconsistent,
                        message: format!(
                            "cpu{}: the ring header's lost counts (overwritten {} + dropped {}) \
                             take the dump's total of lost records past 2^64 (damaged header); \
                             totals saturate",
                            r.cpu, r.overwritten, r.dropped
                        ),
                    });
                    break;
                }
            }
        }
        Ok(Dump {
            bytes,
            rings,
            warnings,
        })
    }

    /// Total valid blocks.
    pub fn block_count(&self) -> usize {
        self.rings.iter().map(|r| r.blocks.len()).sum()
    }

    /// Total record bytes in valid blocks.
    pub fn record_bytes(&self) -> u64 {
        self.rings.iter().map(|r| r.record_bytes()).sum()
    }
}

/// The warning for a ring whose live commit position was replaced by the one its
/// blocks give.
fn commit_warning(at: usize, view: &RingView<'_>, stored: u32) -> Warning {
    let cpu = view.header.cpu_id.get();
    let found = if view.is_empty() {
        "no block in its slot, nothing decoded".to_string()
    } else {
        format!("newest block {} found by its own header", view.commit.seq)
    };
    Warning {
        offset: at + offsets::COMMIT_POS,
        damage: true,
        category: Category::BadRing,
        message: format!(
            "cpu{cpu}: the ring header's commit position {stored:#010x} does not match the ring's blocks \
             (damaged header); blocks read in the order of their own headers, {found}"
        ),
    }
}

/// Whether every byte of `range` lies in one of the sorted, disjoint `valid` ranges.
fn covered(valid: Option<&[Range<usize>]>, range: Range<usize>) -> bool {
    let Some(valid) = valid else { return true };
    if range.start >= range.end {
        return true;
    }
    let i = valid.partition_point(|r| r.end <= range.start);
    valid
        .get(i)
        .is_some_and(|r| r.start <= range.start && range.end <= r.end)
}

/// A ring error as a message (the format crate's `Display`).
pub fn ring_error_message(e: &RingError) -> String {
    e.to_string()
}

fn read_ring<'a>(
    offset: usize,
    view: RingView<'a>,
    valid: Option<&[Range<usize>]>,
    warnings: &mut Vec<Warning>,
) -> Ring<'a> {
    let header = view.header;
    let cpu = header.cpu_id.get();
    let overwritten = header.overwritten.get();
    let g = view.geometry;
    let block_size = g.block_size();
    let mut numbering = RingNumbering::new(overwritten, g.block_count, block_size);
    if numbering.overflowed() {
        warnings.push(Warning {
            offset: offset + offsets::OVERWRITTEN,
            damage: true,
            category: Category::Numbering,
            message: format!(
                "cpu{cpu}: the ring header's overwritten count {overwritten} leaves no room for \
                 the ring's record numbers below 2^64 (damaged header); records numbered from 0"
            ),
        });
    }
    let dropped = header.dropped.get();
    if overwritten.checked_add(dropped).is_none() {
        warnings.push(Warning {
            offset: offset + offsets::OVERWRITTEN,
            damage: true,
            category: Category::Inconsistent,
            message: format!(
                "cpu{cpu}: the ring header's lost counts (overwritten {overwritten} + dropped \
                 {dropped}) pass 2^64 (damaged header); totals of lost records saturate"
            ),
        });
    }
    let mut checks = BlockChecks::default();
    let mut blocks = Vec::new();
    let mut torn = 0u64;
    let mut missing = 0u64;
    let mut damaged = 0u64;
    let mut seen_intact = false;
    let mut unknown_gap = false;
    for b in view.blocks() {
        let at = offset + b.offset;
        let header_ok = covered(valid, at..at + BLOCK_HEADER_LEN);
        match b.state {
            BlockState::Valid if !header_ok => {
                // The header bytes are zeros from a lost chunk and only look valid by
                // accident; impossible in practice (the magic would be zero).
                damaged += 1;
                unknown_gap |= seen_intact;
            }
            BlockState::Valid => {
                seen_intact = true;
                let records_at = at + BLOCK_HEADER_LEN;
                let mut count = u64::from(b.header.records.get());
                if !plausible_block_records(block_size, b.header.records.get()) {
                    // A damaged count: number by the records the block holds.
                    let held = b
                        .decode()
                        .map_while(Result::ok)
                        .filter(|r| !matches!(r.event, Event::Lost { .. }))
                        .count() as u64;
                    warnings.push(Warning {
                        offset: at + offsets::BLOCK_RECORDS,
                        damage: true,
                        category: Category::Numbering,
                        message: format!(
                            "cpu{cpu}: block {}: header record count {count} is more than a block of \
                             {block_size} bytes holds (damaged header); numbered by its {held} decodable records",
                            b.seq
                        ),
                    });
                    count = held;
                }
                if header_ok {
                    checks.block(&view, offset, &b, b.records, warnings);
                }
                if covered(valid, records_at..records_at + b.records.len()) {
                    blocks.push(Block {
                        seq: b.seq,
                        offset: at,
                        base_ts: b.header.base_ts.get(),
                        first_record: numbering.next(),
                        header_records: b.header.records.get(),
                        is_current: b.is_current,
                        records: b.records,
                    });
                } else {
                    damaged += 1;
                    warnings.push(Warning {
                        offset: at,
                        damage: true,
                        category: Category::DamagedChunk,
                        message: format!(
                            "cpu{cpu}: block {} touches a missing or corrupt UART chunk, {count} records skipped",
                            b.seq
                        ),
                    });
                }
                numbering.advance(count);
            }
            BlockState::Torn => {
                // The writer's protocol explains only blocks opened after the commit
                // position (being reclaimed, or opened by nested writers); anything else
                // is damage.
                let reclaiming = !seen_intact && view.opened_after_commit(&b);
                let count = u64::from(b.header.records.get());
                // A zeroed magic in a slot the ring has written: its count is trusted
                // only if the rest of the header still names the block.
                let zeroed = b.header.magic.get() == 0;
                let plausible = header_ok
                    && plausible_block_records(block_size, b.header.records.get())
                    && (!zeroed || b.header.seq.get() == b.seq);
                // Only the magic is gone (the sequence number, count and the rest still
                // name this block): its records are decoded, and reported.
                let records = view.record_bytes(&b);
                let records_at = at + BLOCK_HEADER_LEN;
                let recovered = !reclaiming
                    && zeroed
                    && plausible
                    && covered(valid, records_at..records_at + records.len());
                torn += u64::from(!recovered);
                if recovered {
                    seen_intact = true;
                    checks.block(&view, offset, &b, records, warnings);
                    blocks.push(Block {
                        seq: b.seq,
                        offset: at,
                        base_ts: b.header.base_ts.get(),
                        first_record: numbering.next(),
                        header_records: b.header.records.get(),
                        is_current: b.is_current,
                        records,
                    });
                }
                if !reclaiming {
                    if plausible {
                        numbering.advance(count);
                    } else {
                        unknown_gap = true;
                    }
                }
                warnings.push(Warning {
                    offset: at,
                    damage: !reclaiming,
                    category: Category::TornBlock,
                    message: if reclaiming {
                        format!(
                            "cpu{cpu}: block {} is torn (being reclaimed), skipped",
                            b.seq
                        )
                    } else if zeroed {
                        format!(
                            "cpu{cpu}: block {}: block magic is 0 in a slot the ring has \
                             already written (an unused block cannot lie between written \
                             ones: damaged header), {}",
                            b.seq,
                            if recovered {
                                "its records decoded by the rest of its header"
                            } else {
                                "its records skipped"
                            }
                        )
                    } else if b.header.magic.get() == BLOCK_MAGIC {
                        format!(
                            "cpu{cpu}: block {} is torn (its header says block {}), skipped",
                            b.seq,
                            b.header.seq.get()
                        )
                    } else {
                        format!(
                            "cpu{cpu}: block {} is torn (bad block magic), skipped",
                            b.seq
                        )
                    },
                });
            }
            BlockState::Missing => {
                missing += 1;
                unknown_gap = true;
            }
            BlockState::Empty => {
                if !header_ok {
                    damaged += 1;
                    unknown_gap |= seen_intact;
                }
            }
        }
        if unknown_gap && matches!(b.state, BlockState::Valid) && header_ok {
            // Report once, at the first block numbered after an unknown count.
            warnings.push(Warning {
                offset: at,
                damage: true,
                category: Category::Numbering,
                message: format!(
                    "cpu{cpu}: an earlier block's record count is unknown; record numbers from block {} on may be low",
                    b.seq
                ),
            });
            unknown_gap = false;
        }
    }
    Ring {
        offset,
        view,
        cpu,
        clock_hz: header.clock_hz.get(),
        abi: SyscallAbi::from_u8(header.syscall_abi).unwrap_or(SyscallAbi::Raw),
        blocks,
        torn_blocks: torn,
        missing_blocks: missing,
        damaged_blocks: damaged,
        overwritten,
        dropped,
    }
}

/// The warning for `block` if the event records decoded from it (`decoded`, `Lost`
/// records excluded; `complete`: decoding reached the end of its records without an
/// error) contradict its header's `records` count
/// ([`tracemark_format::numbering::block_count_consistent`]). A closed block whose count
/// is more than its bytes can hold was already reported when the dump was read.
pub fn count_warning(cpu: u32, block: &Block<'_>, decoded: u64, complete: bool) -> Option<Warning> {
    let header = block.header_records;
    let implausible = !block.is_current && header as usize > block.records.len();
    if implausible || block_count_consistent(header, decoded, block.is_current, complete) {
        return None;
    }
    Some(Warning {
        offset: block.offset + offsets::BLOCK_RECORDS,
        damage: true,
        category: Category::Inconsistent,
        message: format!(
            "cpu{cpu}: block {}: its header counts {header} records but {decoded} decode{} \
             (damaged records or count); record numbers of this block may repeat or skip",
            block.seq,
            if !complete {
                " before a decoding error"
            } else if block.is_current {
                " (the block being written)"
            } else {
                ""
            }
        ),
    })
}

/// The checks of a ring's valid blocks against the ring header and each other, in
/// window order (FORMAT.md 18, "what a reader checks"). Each kind of contradiction is
/// reported once per ring, at the first block that shows it.
#[derive(Default)]
struct BlockChecks {
    /// The previous valid block: sequence number, `base_ts`, `lost_before`, file offset.
    prev: Option<(u32, u64, u64, usize)>,
    lost_reported: bool,
    lost_order_reported: bool,
    time_reported: bool,
}

impl BlockChecks {
    fn block(
        &mut self,
        view: &RingView<'_>,
        ring_at: usize,
        b: &tracemark_format::ring::BlockView<'_>,
        records: &[u8],
        warnings: &mut Vec<Warning>,
    ) {
        let h = &view.header;
        let cpu = h.cpu_id.get();
        let (overwritten, dropped) = (h.overwritten.get(), h.dropped.get());
        let at = ring_at + b.offset;
        let lost_before = b.header.lost_before.get();
        let base_ts = b.header.base_ts.get();
        if !self.lost_reported
            && overwritten.checked_add(dropped).is_some()
            && !lost_before_consistent(lost_before, overwritten, dropped)
        {
            self.lost_reported = true;
            warnings.push(Warning {
                offset: ring_at + offsets::OVERWRITTEN,
                damage: true,
                category: Category::Inconsistent,
                message: format!(
                    "cpu{cpu}: block {} (at byte {at}) says {lost_before} records were lost \
                     before it, more than the ring header's overwritten {overwritten} + dropped \
                     {dropped} (damaged counters); lost counts and record numbers of this CPU \
                     may be low",
                    b.seq
                ),
            });
        }
        if let Some((pseq, pts, plost, pat)) = self.prev {
            if !self.lost_order_reported && lost_before < plost {
                self.lost_order_reported = true;
                warnings.push(Warning {
                    offset: at + offsets::BLOCK_LOST_BEFORE,
                    damage: true,
                    category: Category::Inconsistent,
                    message: format!(
                        "cpu{cpu}: block {} says {lost_before} records were lost before it, \
                         fewer than block {pseq} before it says ({plost}): lost counts only \
                         grow (damaged block header)",
                        b.seq
                    ),
                });
            }
            if !self.time_reported
                && !starts_in_order(pts, base_ts, false)
                && !starts_in_order(
                    pts,
                    base_ts,
                    clock_stepped_back(view, ring_at, pat, records, base_ts),
                )
            {
                self.time_reported = true;
                warnings.push(Warning {
                    offset: at + offsets::BLOCK_BASE_TS,
                    damage: true,
                    category: Category::Inconsistent,
                    message: format!(
                        "cpu{cpu}: block {} starts at {base_ts}, before block {pseq} before it \
                         ({pts}), with no CLOCKBACK record to explain it (damaged block \
                         header): its records are out of time order",
                        b.seq
                    ),
                });
            }
        }
        self.prev = Some((b.seq, base_ts, lost_before, at));
    }
}

/// Whether a CLOCKBACK record in the block at file offset `prev_at` (the one before) or
/// in `records` (the block that starts earlier) explains a block starting before the one
/// before it. Only called when a block starts earlier, which a steady clock never does.
fn clock_stepped_back(
    view: &RingView<'_>,
    ring_at: usize,
    prev_at: usize,
    records: &[u8],
    base_ts: u64,
) -> bool {
    let prev_rel = prev_at - ring_at;
    let size = view.geometry.block_size() as usize;
    let prev = view.bytes.get(prev_rel..prev_rel + size).and_then(|blk| {
        let h = <tracemark_format::ring::BlockHeader as zerocopy::FromBytes>::read_from_prefix(blk)
            .ok()?
            .0;
        Some((blk.get(BLOCK_HEADER_LEN..)?, h.base_ts.get()))
    });
    holds_clock_back(records, base_ts)
        || prev.is_some_and(|(bytes, base)| holds_clock_back(bytes, base))
}

/// Whether `rest` starts with a ring dumped up to its used length (FORMAT.md 7.3) and
/// another ring's header follows right there.
fn prefix_then_ring(view: &RingView<'_>, rest: &[u8]) -> bool {
    let used = view.used_len();
    used < view.ring_len()
        && view.header.overwritten.get() == 0
        && rest.get(used..).is_some_and(|r| r.starts_with(&RING_MAGIC))
}
