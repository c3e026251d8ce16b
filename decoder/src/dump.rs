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
//! Each CPU numbers its event records (`Lost` records get no number). The first record
//! of the oldest surviving block is number `overwritten` (the ring header's count of
//! records lost to overwriting); every later block starts where the block before it
//! ended *by its header's record count*. Numbers therefore stay stable when a block is
//! damaged: the records lost to damage leave a gap instead of renumbering the rest.

use tracemark_format::record::BlockRecords;
use tracemark_format::ring::{find_rings, BlockState, RingError, BLOCK_HEADER_LEN};
use tracemark_format::{RingView, SyscallAbi};

/// Why a file holds no usable ring.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The file is empty.
    #[error("at byte 0: empty file, no ring")]
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

/// Something wrong with a dump that does not stop decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Byte offset in the file.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
    /// Whether data was lost to damage (truncation, undecodable bytes), as opposed to
    /// a torn block, which overwrite mode produces in normal operation.
    pub damage: bool,
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
        if bytes.is_empty() {
            return Err(DumpError::Empty);
        }
        let mut rings = Vec::new();
        let mut warnings = Vec::new();
        let mut first_error = None;
        let mut at = 0usize;
        while at < bytes.len() {
            let rest = &bytes[at..];
            match RingView::parse(rest) {
                Ok(view) => {
                    let ring_len = view.ring_len();
                    let ring = read_ring(at, view, &mut warnings);
                    rings.push(ring);
                    if ring_len > rest.len() {
                        warnings.push(Warning {
                            offset: at,
                            damage: true,
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
                    match find_rings(rest).find(|&o| o > 0) {
                        Some(o) => {
                            if !rings.is_empty() || at != 0 {
                                warnings.push(Warning {
                                    offset: at,
                                    damage: true,
                                    message: format!("{} bytes that are not a ring skipped", o),
                                });
                            }
                            at += o;
                        }
                        None => {
                            if !rings.is_empty() && rest.iter().any(|&b| b != 0) {
                                warnings.push(Warning {
                                    offset: at,
                                    damage: true,
                                    message: format!(
                                        "{} trailing bytes are not a ring: {}",
                                        rest.len(),
                                        ring_error_message(&e)
                                    ),
                                });
                            }
                            break;
                        }
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

/// A ring error as a message (the format crate's `Display`).
pub fn ring_error_message(e: &RingError) -> String {
    e.to_string()
}

fn read_ring<'a>(offset: usize, view: RingView<'a>, warnings: &mut Vec<Warning>) -> Ring<'a> {
    let header = view.header;
    let cpu = header.cpu_id.get();
    let overwritten = header.overwritten.get();
    let mut next_record = overwritten;
    let mut blocks = Vec::new();
    let mut torn = 0u64;
    let mut missing = 0u64;
    for b in view.blocks() {
        match b.state {
            BlockState::Valid => {
                blocks.push(Block {
                    seq: b.seq,
                    offset: offset + b.offset,
                    base_ts: b.header.base_ts.get(),
                    first_record: next_record,
                    header_records: b.header.records.get(),
                    is_current: b.is_current,
                    records: b.records,
                });
                next_record = next_record.saturating_add(u64::from(b.header.records.get()));
            }
            BlockState::Torn => {
                torn += 1;
                warnings.push(Warning {
                    offset: offset + b.offset,
                    damage: false,
                    message: format!(
                        "cpu{cpu}: block {} is torn (being reclaimed or damaged), skipped",
                        b.seq
                    ),
                });
            }
            BlockState::Missing => missing += 1,
            BlockState::Empty => {}
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
        overwritten,
        dropped: header.dropped.get(),
    }
}
