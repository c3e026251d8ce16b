//! What extraction reports: the limits it works within, the recovered dumps, and the
//! problems of the log, each with its location.

use std::fmt;
use std::ops::Range;

use tracemark_format::uart::{ChunkError, LineError};

use super::assemble::chunk_byte_range;

/// Budget added to the log length by [`ExtractLimits::for_log`], so that short
/// logs whose data lines were lost can still be reported with zero-filled
/// payloads.
pub const DEFAULT_BUDGET_SLACK: usize = 64 * 1024;

/// Default for [`ExtractLimits::max_issues`].
pub const DEFAULT_MAX_ISSUES: usize = 10_000;

/// Bytes of the budget charged per chunk of a dump, on top of its payload
/// length (for the lists of missing or corrupt chunks).
pub const BUDGET_PER_CHUNK: u64 = 8;

/// Resource limits of [`extract_with`](super::extract_with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Budget for reassembly. Each dump costs its declared length plus
    /// [`BUDGET_PER_CHUNK`] bytes per chunk; dumps are granted the budget in
    /// decreasing order of verified data received, and a dump that does not
    /// fit in what is left is reported with [`ExtractError::TooLarge`]
    /// instead of being reassembled.
    pub max_total_bytes: usize,
    /// At most this many issues are kept in [`ExtractReport::issues`]; the
    /// others are only counted in [`ExtractReport::issues_dropped`].
    pub max_issues: usize,
}

impl ExtractLimits {
    /// The limits [`extract`](super::extract) uses for a log of `log_len` bytes: a budget of
    /// `log_len + DEFAULT_BUDGET_SLACK` bytes (a complete dump never needs
    /// more than about 3/4 of the log, so this leaves room for dumps that
    /// lost a good part of their data lines) and [`DEFAULT_MAX_ISSUES`].
    pub fn for_log(log_len: usize) -> Self {
        Self {
            max_total_bytes: log_len.saturating_add(DEFAULT_BUDGET_SLACK),
            max_issues: DEFAULT_MAX_ISSUES,
        }
    }
}

/// A position in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// 1-based line number, counting `\n` characters.
    pub line: usize,
    /// Byte offset in the log of the framing line's marker (`@TM:`).
    pub offset: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {} (byte {})", self.line, self.offset)
    }
}

/// A problem found in the log. Every variant says where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// A line carrying the marker is not a valid framing line.
    #[error("{at}: malformed framing line: {error}")]
    Malformed {
        /// Where the line is.
        at: Location,
        /// What is wrong with it.
        #[source]
        error: LineError,
    },
    /// A framing line is followed by another marker on the same line and is
    /// not valid by itself (typically a line cut short by another one).
    #[error("{at}: framing line cut short by another framing line")]
    Interrupted {
        /// Where the cut line starts.
        at: Location,
    },
    /// A data line's chunk failed verification.
    #[error("{at}: dump {dump_id:#010x} chunk {seq} is corrupt: {error}")]
    CorruptChunk {
        /// Where the data line is.
        at: Location,
        /// The dump id on the line (unverified if the CRC failed).
        dump_id: u32,
        /// The sequence number on the line (unverified if the CRC failed).
        seq: u64,
        /// What is wrong with the chunk.
        #[source]
        error: ChunkError,
    },
    /// A valid data line whose sequence number is past its dump's last chunk.
    #[error("{at}: dump {dump_id:#010x} has {chunk_count} chunks, but this line is chunk {seq}")]
    SeqOutOfRange {
        /// Where the data line is.
        at: Location,
        /// The dump.
        dump_id: u32,
        /// The sequence number on the line.
        seq: u64,
        /// The dump's chunk count.
        chunk_count: u64,
    },
    /// A valid data line repeats a chunk of the same dump with other content;
    /// the chunk is not trusted.
    #[error("{at}: dump {dump_id:#010x} chunk {seq} was received before with other content")]
    ConflictingChunk {
        /// Where the second (or later) copy is.
        at: Location,
        /// The dump.
        dump_id: u32,
        /// The chunk.
        seq: u64,
    },
    /// An end line disagrees with its dump's begin line about the length or
    /// chunk length; the begin line is used and the end line ignored.
    #[error("{at}: end line of dump {dump_id:#010x} disagrees with its begin line at {begin}")]
    GeometryMismatch {
        /// Where the end line is.
        at: Location,
        /// Where the begin line is.
        begin: Location,
        /// The dump.
        dump_id: u32,
    },
    /// Valid data lines of a dump whose begin and end lines are both missing:
    /// without the geometry they are not reassembled.
    #[error(
        "{at}: {lines} data line(s) of dump {dump_id:#010x} without begin or end line, ignored"
    )]
    NoHeader {
        /// Where the first of these lines is.
        at: Location,
        /// The dump id on the lines.
        dump_id: u32,
        /// How many data lines were ignored (valid ones and damaged ones).
        lines: usize,
    },
    /// A dump declares more bytes than what is left of the reassembly budget
    /// (see [`ExtractLimits`]); it is reported but not reassembled.
    #[error("{at}: dump {dump_id:#010x} declares {declared_len} bytes, more than the {budget_left} bytes left for this log; not reassembled")]
    TooLarge {
        /// Where the dump's begin (or else end) line is.
        at: Location,
        /// The dump.
        dump_id: u32,
        /// The declared payload length.
        declared_len: u64,
        /// What was left of the budget.
        budget_left: u64,
    },
}

impl ExtractError {
    /// Where in the log the problem is.
    pub fn location(&self) -> Location {
        match self {
            ExtractError::Malformed { at, .. }
            | ExtractError::Interrupted { at }
            | ExtractError::CorruptChunk { at, .. }
            | ExtractError::SeqOutOfRange { at, .. }
            | ExtractError::ConflictingChunk { at, .. }
            | ExtractError::GeometryMismatch { at, .. }
            | ExtractError::NoHeader { at, .. }
            | ExtractError::TooLarge { at, .. } => *at,
        }
    }
}

/// One dump found in the log: a begin line with the data lines that follow it
/// (up to its end line or the next begin line with the same id), or an end
/// line with the data lines before it when the begin line was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dump {
    /// The dump id chosen by the target.
    pub dump_id: u32,
    /// Where the begin line is, if it was received.
    pub begin: Option<Location>,
    /// Where the end line is, if it was received.
    pub end: Option<Location>,
    /// Payload length declared by the begin line (or the end line when the
    /// begin line is missing).
    pub declared_len: u64,
    /// Raw bytes per data line.
    pub chunk_len: u32,
    /// Number of data lines of the dump.
    pub chunk_count: u64,
    /// The expected whole-payload CRC: the end line's (CRC of the bytes
    /// actually sent) if available, else the begin line's.
    pub payload_crc: u32,
    /// The begin and end lines carry different payload CRCs: the memory
    /// changed while it was being dumped.
    pub payload_changed: bool,
    /// The reassembled payload, `declared_len` bytes, with zeros in place of
    /// missing, corrupt and conflicting chunks. Empty if [`Dump::error`] is
    /// set.
    pub data: Vec<u8>,
    /// Sequence numbers of chunks of which no line was found, ascending.
    pub missing: Vec<u64>,
    /// Sequence numbers of chunks of which only damaged lines were found
    /// (bad base64, CRC mismatch, wrong length, malformed or cut lines),
    /// ascending.
    pub corrupt: Vec<u64>,
    /// Sequence numbers of chunks received valid more than once with
    /// different contents, ascending; they are zero-filled.
    pub conflicting: Vec<u64>,
    /// Number of valid chunk lines that repeated an already received chunk
    /// with identical content (harmless).
    pub duplicates: usize,
    /// The CRC of [`Dump::data`] equals [`Dump::payload_crc`].
    pub payload_crc_ok: bool,
    /// Byte ranges of [`Dump::data`] covered by verified chunks: sorted,
    /// disjoint and not adjacent (touching ranges are merged).
    pub valid: Vec<Range<usize>>,
    /// Set when the dump could not be reassembled at all
    /// ([`ExtractError::TooLarge`]).
    pub error: Option<ExtractError>,
}

impl Dump {
    /// The whole payload was recovered and verified.
    pub fn is_complete(&self) -> bool {
        self.error.is_none()
            && self.missing.is_empty()
            && self.corrupt.is_empty()
            && self.conflicting.is_empty()
            && self.payload_crc_ok
    }

    /// The byte range of chunk `seq` in [`Dump::data`], if it is a chunk of
    /// this dump.
    pub fn chunk_range(&self, seq: u64) -> Option<Range<usize>> {
        chunk_byte_range(self.declared_len, self.chunk_len, seq)
    }

    /// Every byte of `range` lies in verified chunks (true for an empty range
    /// that starts within the payload).
    pub fn is_range_valid(&self, range: Range<usize>) -> bool {
        if range.start >= range.end {
            return range.start <= self.data.len();
        }
        let i = self.valid.partition_point(|r| r.end <= range.start);
        self.valid
            .get(i)
            .is_some_and(|r| r.start <= range.start && range.end <= r.end)
    }
}

/// Everything [`extract`](super::extract) found in a log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtractReport {
    /// The dumps, in the order their first line appears in the log.
    pub dumps: Vec<Dump>,
    /// Problems found, in log order (at most [`ExtractLimits::max_issues`]).
    pub issues: Vec<ExtractError>,
    /// Issues not kept because of [`ExtractLimits::max_issues`].
    pub issues_dropped: usize,
    /// Number of marker occurrences seen (valid or not).
    pub framing_lines: usize,
}

impl ExtractReport {
    /// Every dump is complete and nothing in the log looked wrong.
    pub fn is_clean(&self) -> bool {
        self.issues.is_empty()
            && self.issues_dropped == 0
            && self.dumps.iter().all(Dump::is_complete)
    }
}
