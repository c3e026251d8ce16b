//! Recovering dumps framed with [`tracemark_format::uart`] from a captured
//! console log (for instance `uart-raw.log`).
//!
//! [`extract`] scans the whole log, ignores everything that is not a framing
//! line, groups data lines by dump (a begin line always starts a new dump, even
//! if its id was seen before), verifies every chunk and reassembles each dump,
//! filling missing or damaged chunks with zeros and reporting exactly which
//! chunks and which byte ranges are affected.
//!
//! Memory use is bounded by the size of the log, never by a length read from
//! it: reassembly buffers are granted from a budget ([`ExtractLimits`]) that is
//! by default about the log's own size, to the dumps with the most verified
//! data first.

#![forbid(unsafe_code)]

use std::cmp::Reverse;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use tracemark_format::uart::{
    self, Begin, ChunkError, End, Line, LineError, MARKER, MAX_CHUNK_LEN,
};

/// Budget added to the log length by [`ExtractLimits::for_log`], so that short
/// logs whose data lines were lost can still be reported with zero-filled
/// payloads.
pub const DEFAULT_BUDGET_SLACK: usize = 64 * 1024;

/// Default for [`ExtractLimits::max_issues`].
pub const DEFAULT_MAX_ISSUES: usize = 10_000;

/// Bytes of the budget charged per chunk of a dump, on top of its payload
/// length (for the lists of missing or corrupt chunks).
pub const BUDGET_PER_CHUNK: u64 = 8;

/// Resource limits of [`extract_with`].
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
    /// The limits [`extract`] uses for a log of `log_len` bytes: a budget of
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

/// Everything [`extract`] found in a log.
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

/// Scans `log` and recovers every dump in it, with the default limits
/// ([`ExtractLimits::for_log`]).
///
/// Lines may end in `\n`, `\r\n`, `\r\r\n` or `\r`; a framing line may follow
/// other text on the same line (only the text from its marker on counts).
/// Never panics; memory use is bounded by a small multiple of `log.len()`.
pub fn extract(log: &[u8]) -> ExtractReport {
    extract_with(log, &ExtractLimits::for_log(log.len()))
}

/// [`extract`] with explicit limits.
pub fn extract_with(log: &[u8], limits: &ExtractLimits) -> ExtractReport {
    let mut scanner = Scanner::new(limits);
    let mut line_start = 0;
    for (line_no, physical) in (1..).zip(log.split(|&b| b == b'\n')) {
        let mut segment_start = line_start;
        for segment in physical.split(|&b| b == b'\r') {
            scanner.segment(segment, segment_start, line_no);
            segment_start += segment.len() + 1;
        }
        line_start += physical.len() + 1;
    }
    scanner.finish()
}

/// Byte range of chunk `seq` in a payload of `total_len` bytes.
fn chunk_byte_range(total_len: u64, chunk_len: u32, seq: u64) -> Option<Range<usize>> {
    if seq >= uart::chunk_count(total_len, chunk_len) {
        return None;
    }
    let start = seq.checked_mul(u64::from(chunk_len))?;
    let end = start.saturating_add(u64::from(chunk_len)).min(total_len);
    Some(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
}

fn find_marker(text: &[u8]) -> Option<usize> {
    text.windows(MARKER.len()).position(|w| w == MARKER)
}

/// A data line as collected while scanning.
struct ChunkLine {
    seq: u64,
    at: Location,
    /// Range in the arena of the decoded, CRC-verified chunk; `None` for a
    /// damaged line.
    good: Option<Range<usize>>,
}

/// A dump being collected.
struct Pending {
    dump_id: u32,
    first: Location,
    begin: Option<(Location, Begin)>,
    end: Option<(Location, End)>,
    /// The end line disagrees with the begin line and is ignored.
    end_mismatch: bool,
    lines: Vec<ChunkLine>,
    good_bytes: usize,
}

impl Pending {
    fn new(dump_id: u32, first: Location) -> Self {
        Self {
            dump_id,
            first,
            begin: None,
            end: None,
            end_mismatch: false,
            lines: Vec::new(),
            good_bytes: 0,
        }
    }
}

/// The geometry a dump is reassembled with.
struct Geometry {
    total_len: u64,
    chunk_len: u32,
    payload_crc: u32,
    payload_changed: bool,
}

struct Scanner<'a> {
    limits: &'a ExtractLimits,
    pending: Vec<Pending>,
    /// Dump id -> index in `pending` of the dump that takes its data lines.
    open: HashMap<u32, usize>,
    /// Decoded bytes of every valid chunk.
    arena: Vec<u8>,
    issues: Vec<ExtractError>,
    issues_dropped: usize,
    framing_lines: usize,
}

impl<'a> Scanner<'a> {
    fn new(limits: &'a ExtractLimits) -> Self {
        Self {
            limits,
            pending: Vec::new(),
            open: HashMap::new(),
            arena: Vec::new(),
            issues: Vec::new(),
            issues_dropped: 0,
            framing_lines: 0,
        }
    }

    fn issue(&mut self, issue: ExtractError) {
        if self.issues.len() < self.limits.max_issues {
            self.issues.push(issue);
        } else {
            self.issues_dropped += 1;
        }
    }

    /// One line, without terminators; `start` is its offset in the log.
    fn segment(&mut self, text: &[u8], start: usize, line: usize) {
        let mut previous: Option<usize> = None;
        let mut from = 0;
        while let Some(found) = text.get(from..).and_then(find_marker) {
            let marker = from + found;
            if let Some(prev) = previous {
                let at = Location {
                    line,
                    offset: start + prev,
                };
                self.fragment(&text[prev..marker], at);
            }
            previous = Some(marker);
            from = marker + MARKER.len();
        }
        if let Some(prev) = previous {
            let at = Location {
                line,
                offset: start + prev,
            };
            self.framing_lines += 1;
            match uart::parse_line(&text[prev..]) {
                Ok(Some(parsed)) => self.line(parsed, at),
                Ok(None) => {}
                Err(error) => {
                    self.issue(ExtractError::Malformed { at, error });
                    self.attribute_damaged(&text[prev..], at);
                }
            }
        }
    }

    /// Text from one marker up to the next marker on the same line.
    fn fragment(&mut self, text: &[u8], at: Location) {
        self.framing_lines += 1;
        match uart::parse_line(text) {
            // Complete by itself: only its line break was lost.
            Ok(Some(parsed)) => self.line(parsed, at),
            _ => {
                self.issue(ExtractError::Interrupted { at });
                self.attribute_damaged(text, at);
            }
        }
    }

    /// Counts a damaged line that looks like a data line against its chunk,
    /// if its dump is open (the id and seq are unverified, so no dump is
    /// opened for them).
    fn attribute_damaged(&mut self, text: &[u8], at: Location) {
        if let Some((dump_id, seq)) = uart::peek_data_header(text) {
            if let Some(&index) = self.open.get(&dump_id) {
                self.pending[index].lines.push(ChunkLine {
                    seq,
                    at,
                    good: None,
                });
            }
        }
    }

    fn line(&mut self, parsed: Line<'_>, at: Location) {
        match parsed {
            Line::Begin(begin) => {
                let mut dump = Pending::new(begin.dump_id, at);
                dump.begin = Some((at, begin));
                self.pending.push(dump);
                self.open.insert(begin.dump_id, self.pending.len() - 1);
            }
            Line::Data(data) => {
                let mut chunk = [0u8; MAX_CHUNK_LEN];
                match data.decode(&mut chunk) {
                    Ok(len) => {
                        let index = match self.open.get(&data.dump_id) {
                            Some(&index) => index,
                            None => {
                                self.pending.push(Pending::new(data.dump_id, at));
                                let index = self.pending.len() - 1;
                                self.open.insert(data.dump_id, index);
                                index
                            }
                        };
                        let start = self.arena.len();
                        self.arena.extend_from_slice(&chunk[..len]);
                        let dump = &mut self.pending[index];
                        dump.good_bytes += len;
                        dump.lines.push(ChunkLine {
                            seq: data.seq,
                            at,
                            good: Some(start..start + len),
                        });
                    }
                    Err(error) => {
                        self.issue(ExtractError::CorruptChunk {
                            at,
                            dump_id: data.dump_id,
                            seq: data.seq,
                            error,
                        });
                        if let Some(&index) = self.open.get(&data.dump_id) {
                            self.pending[index].lines.push(ChunkLine {
                                seq: data.seq,
                                at,
                                good: None,
                            });
                        }
                    }
                }
            }
            Line::End(end) => {
                let index = match self.open.remove(&end.dump_id) {
                    Some(index) => index,
                    None => {
                        self.pending.push(Pending::new(end.dump_id, at));
                        self.pending.len() - 1
                    }
                };
                let mismatch = match self.pending[index].begin {
                    Some((begin_at, begin))
                        if begin.total_len != end.total_len || begin.chunk_len != end.chunk_len =>
                    {
                        Some(begin_at)
                    }
                    _ => None,
                };
                let dump = &mut self.pending[index];
                dump.end = Some((at, end));
                dump.end_mismatch = mismatch.is_some();
                if let Some(begin) = mismatch {
                    self.issue(ExtractError::GeometryMismatch {
                        at,
                        begin,
                        dump_id: end.dump_id,
                    });
                }
            }
        }
    }

    fn finish(mut self) -> ExtractReport {
        let pending = std::mem::take(&mut self.pending);

        let geometry: Vec<Option<Geometry>> = pending
            .iter()
            .map(|p| match (p.begin, p.end) {
                (Some((_, b)), Some((_, e))) if !p.end_mismatch => Some(Geometry {
                    total_len: b.total_len,
                    chunk_len: b.chunk_len,
                    payload_crc: e.payload_crc,
                    payload_changed: b.payload_crc != e.payload_crc,
                }),
                (Some((_, b)), _) => Some(Geometry {
                    total_len: b.total_len,
                    chunk_len: b.chunk_len,
                    payload_crc: b.payload_crc,
                    payload_changed: false,
                }),
                (None, Some((_, e))) => Some(Geometry {
                    total_len: e.total_len,
                    chunk_len: e.chunk_len,
                    payload_crc: e.payload_crc,
                    payload_changed: false,
                }),
                (None, None) => None,
            })
            .collect();

        // Grant the reassembly budget, dumps with the most verified data first.
        let mut order: Vec<usize> = (0..pending.len())
            .filter(|&i| geometry[i].is_some())
            .collect();
        order.sort_by_key(|&i| Reverse(pending[i].good_bytes));
        let mut budget_left = self.limits.max_total_bytes as u64;
        let mut refused: Vec<Option<u64>> = vec![None; pending.len()];
        for &i in &order {
            if let Some(g) = &geometry[i] {
                let count = uart::chunk_count(g.total_len, g.chunk_len);
                let cost = g
                    .total_len
                    .saturating_add(count.saturating_mul(BUDGET_PER_CHUNK));
                if cost <= budget_left {
                    budget_left -= cost;
                } else {
                    refused[i] = Some(budget_left);
                }
            }
        }

        let mut dumps = Vec::new();
        for ((p, g), refused) in pending.into_iter().zip(geometry).zip(refused) {
            let Some(g) = g else {
                self.issue(ExtractError::NoHeader {
                    at: p.first,
                    dump_id: p.dump_id,
                    lines: p.lines.len(),
                });
                continue;
            };
            let at = p.begin.map_or(p.first, |(at, _)| at);
            let mut dump = Dump {
                dump_id: p.dump_id,
                begin: p.begin.map(|(at, _)| at),
                end: p.end.map(|(at, _)| at),
                declared_len: g.total_len,
                chunk_len: g.chunk_len,
                chunk_count: uart::chunk_count(g.total_len, g.chunk_len),
                payload_crc: g.payload_crc,
                payload_changed: g.payload_changed,
                data: Vec::new(),
                missing: Vec::new(),
                corrupt: Vec::new(),
                conflicting: Vec::new(),
                duplicates: 0,
                payload_crc_ok: false,
                valid: Vec::new(),
                error: None,
            };
            match refused {
                Some(budget_left) => {
                    let error = ExtractError::TooLarge {
                        at,
                        dump_id: p.dump_id,
                        declared_len: g.total_len,
                        budget_left,
                    };
                    self.issue(error.clone());
                    dump.error = Some(error);
                }
                None => self.assemble(&mut dump, p.lines),
            }
            dumps.push(dump);
        }

        self.issues.sort_by_key(|issue| issue.location().offset);
        ExtractReport {
            dumps,
            issues: self.issues,
            issues_dropped: self.issues_dropped,
            framing_lines: self.framing_lines,
        }
    }

    /// Fills `dump.data` and the chunk lists; the dump's budget was granted,
    /// so its length fits in memory.
    fn assemble(&mut self, dump: &mut Dump, mut lines: Vec<ChunkLine>) {
        let Ok(total) = usize::try_from(dump.declared_len) else {
            return;
        };
        dump.data = vec![0; total];
        // Stable: copies of one chunk stay in log order.
        lines.sort_by_key(|l| l.seq);
        let mut next_seq = 0;
        let mut rest = &lines[..];
        while let Some(first) = rest.first() {
            let seq = first.seq;
            let same = rest.iter().take_while(|l| l.seq == seq).count();
            let (group, tail) = rest.split_at(same);
            rest = tail;

            let Some(range) = dump.chunk_range(seq) else {
                for line in group.iter().filter(|l| l.good.is_some()) {
                    self.issue(ExtractError::SeqOutOfRange {
                        at: line.at,
                        dump_id: dump.dump_id,
                        seq,
                        chunk_count: dump.chunk_count,
                    });
                }
                continue;
            };
            dump.missing.extend(next_seq..seq);
            next_seq = seq + 1;

            let mut chosen: Option<&Range<usize>> = None;
            let mut conflict = false;
            for line in group {
                let Some(good) = &line.good else { continue };
                if good.len() != range.len() {
                    self.issue(ExtractError::CorruptChunk {
                        at: line.at,
                        dump_id: dump.dump_id,
                        seq,
                        error: ChunkError::LengthMismatch {
                            expected: range.len(),
                            found: good.len(),
                        },
                    });
                    continue;
                }
                match chosen {
                    None => chosen = Some(good),
                    Some(first) if self.arena[first.clone()] == self.arena[good.clone()] => {
                        dump.duplicates += 1;
                    }
                    Some(_) => {
                        conflict = true;
                        self.issue(ExtractError::ConflictingChunk {
                            at: line.at,
                            dump_id: dump.dump_id,
                            seq,
                        });
                    }
                }
            }
            match chosen {
                _ if conflict => dump.conflicting.push(seq),
                Some(good) => {
                    dump.data[range.clone()].copy_from_slice(&self.arena[good.clone()]);
                    match dump.valid.last_mut() {
                        Some(last) if last.end == range.start => last.end = range.end,
                        _ => dump.valid.push(range),
                    }
                }
                None => dump.corrupt.push(seq),
            }
        }
        dump.missing.extend(next_seq..dump.chunk_count);
        dump.payload_crc_ok = uart::payload_crc(&dump.data) == dump.payload_crc;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tracemark_format::uart::{encode_data_line, write_framed, DEFAULT_CHUNK_LEN, MAX_LINE_LEN};

    /// Deterministic pseudo-random bytes (xorshift64*).
    fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
            })
            .collect()
    }

    /// The framing lines of a dump, each with its `\n`.
    fn frame_lines(dump_id: u32, data: &[u8], chunk_len: usize) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        write_framed(dump_id, data, chunk_len, &mut |line: &[u8]| {
            lines.push(line.to_vec());
            Ok::<(), std::convert::Infallible>(())
        })
        .unwrap();
        lines
    }

    const NOISE: &[&str] = &[
        "[    0.000000] Linux version 6.6.0 (gcc 13) #1 SMP\n",
        "[    1.234567] random: crng init done\n",
        "\n",
        "login: root\n",
        "mail me @ TM: or at TM:D,00000001,0,AAAA,00000000\n",
        "@TM\n",
        "\x1b[32mOK\x1b[0m  Started tracemark dump\n",
        "binary junk \u{0}\u{7f}\u{ff}\n",
    ];

    /// Joins lines, with a noise line before each one and after the last.
    fn with_noise(lines: &[Vec<u8>]) -> Vec<u8> {
        let mut log = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            log.extend_from_slice(NOISE[i % NOISE.len()].as_bytes());
            log.extend_from_slice(line);
        }
        log.extend_from_slice(NOISE[lines.len() % NOISE.len()].as_bytes());
        log
    }

    /// Where line `index` of `lines` starts in `with_noise(lines)`.
    fn noisy_location(lines: &[Vec<u8>], index: usize) -> Location {
        let mut offset = 0;
        let mut line = 1;
        for (i, l) in lines.iter().enumerate() {
            let noise = NOISE[i % NOISE.len()];
            offset += noise.len();
            line += 1;
            if i == index {
                return Location { line, offset };
            }
            offset += l.len();
            line += 1;
        }
        panic!("no line {index}")
    }

    fn assert_complete(dump: &Dump, dump_id: u32, data: &[u8], chunk_len: usize) {
        let chunk_len = uart::effective_chunk_len(chunk_len);
        assert_eq!(dump.dump_id, dump_id);
        assert_eq!(dump.declared_len, data.len() as u64);
        assert_eq!(dump.chunk_len as usize, chunk_len);
        assert_eq!(dump.chunk_count, data.len().div_ceil(chunk_len) as u64);
        assert_eq!(dump.payload_crc, uart::payload_crc(data));
        assert!(dump.data == data, "payload differs");
        assert_eq!(dump.missing, Vec::<u64>::new());
        assert_eq!(dump.corrupt, Vec::<u64>::new());
        assert_eq!(dump.conflicting, Vec::<u64>::new());
        assert_eq!(dump.duplicates, 0);
        assert!(dump.payload_crc_ok);
        assert!(!dump.payload_changed);
        let expected_valid: Vec<Range<usize>> = if data.is_empty() {
            vec![]
        } else {
            std::iter::once(0..data.len()).collect()
        };
        assert_eq!(dump.valid, expected_valid);
        assert_eq!(dump.error, None);
        assert!(dump.is_complete());
    }

    #[test]
    fn round_trip_sizes() {
        let cases = [
            (0, 0),
            (1, 0),
            (DEFAULT_CHUNK_LEN - 1, 0),
            (DEFAULT_CHUNK_LEN, 0),
            (DEFAULT_CHUNK_LEN + 1, 0),
            (100 * 1024, 0),
            (1000, 1),
            (1000, 57),
            (1000, MAX_CHUNK_LEN),
        ];
        for (i, &(len, chunk_len)) in cases.iter().enumerate() {
            let data = random_bytes(len, i as u64 + 1);
            let lines = frame_lines(0x1234_5678, &data, chunk_len);
            let log = with_noise(&lines);
            let report = extract(&log);
            assert_eq!(report.issues, vec![], "case {len}/{chunk_len}");
            assert_eq!(report.issues_dropped, 0);
            assert_eq!(report.framing_lines, lines.len());
            assert_eq!(report.dumps.len(), 1);
            let dump = &report.dumps[0];
            assert_complete(dump, 0x1234_5678, &data, chunk_len);
            assert_eq!(dump.begin, Some(noisy_location(&lines, 0)));
            assert_eq!(dump.end, Some(noisy_location(&lines, lines.len() - 1)));
            assert!(report.is_clean());
        }
    }

    #[test]
    fn crlf_and_stray_carriage_returns() {
        let data = random_bytes(5000, 7);
        let lines = frame_lines(3, &data, 0);
        let lf = with_noise(&lines);
        let reference = extract(&lf);
        assert_complete(&reference.dumps[0], 3, &data, 0);
        for ending in [&b"\r\n"[..], b"\r\r\n", b"\n\r", b"\r"] {
            let mut log = Vec::new();
            for &b in &lf {
                if b == b'\n' {
                    log.extend_from_slice(ending);
                } else {
                    log.push(b);
                }
            }
            let report = extract(&log);
            assert_eq!(report.issues, vec![]);
            assert_eq!(report.dumps.len(), 1);
            assert_complete(&report.dumps[0], 3, &data, 0);
            // Line numbers count '\n' only.
            let begin = report.dumps[0].begin.unwrap();
            let expected_line = if ending.contains(&b'\n') { 2 } else { 1 };
            assert_eq!(begin.line, expected_line);
            assert_eq!(begin.offset, NOISE[0].len() - 1 + ending.len());
        }
    }

    #[test]
    fn dropped_line_is_exactly_one_missing_chunk() {
        let data = random_bytes(1000, 11);
        let mut lines = frame_lines(0x42, &data, 48);
        assert_eq!(lines.len(), 2 + 21);
        lines.remove(1 + 5); // data line of chunk 5
        let report = extract(&with_noise(&lines));
        assert_eq!(report.issues, vec![]);
        assert_eq!(report.dumps.len(), 1);
        let dump = &report.dumps[0];
        assert_eq!(dump.missing, vec![5]);
        assert_eq!(dump.corrupt, Vec::<u64>::new());
        assert_eq!(dump.valid, vec![0..240, 288..1000]);
        assert_eq!(dump.data[..240], data[..240]);
        assert_eq!(dump.data[240..288], [0; 48]);
        assert_eq!(dump.data[288..], data[288..]);
        assert!(!dump.payload_crc_ok);
        assert!(!dump.is_complete());
        assert!(!report.is_clean());
        assert!(dump.is_range_valid(0..240));
        assert!(dump.is_range_valid(300..1000));
        assert!(!dump.is_range_valid(200..250));
        assert!(!dump.is_range_valid(240..241));
        assert!(!dump.is_range_valid(0..1000));
        assert!(!dump.is_range_valid(999..1001));
        assert_eq!(dump.chunk_range(5), Some(240..288));
        assert_eq!(dump.chunk_range(20), Some(960..1000));
        assert_eq!(dump.chunk_range(21), None);
    }

    #[test]
    fn dropped_first_and_last_chunks() {
        let data = random_bytes(100, 5);
        let mut lines = frame_lines(1, &data, 10);
        lines.remove(10); // chunk 9
        lines.remove(1); // chunk 0
        let report = extract(&with_noise(&lines));
        let dump = &report.dumps[0];
        assert_eq!(dump.missing, vec![0, 9]);
        assert_eq!(dump.valid, vec![10..90]);
    }

    /// Replaces the byte at `index` of the base64 field of `line`, returning
    /// the byte it replaced.
    fn garble_payload(line: &mut [u8], index: usize, byte: u8) -> u8 {
        let start = line
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b',')
            .nth(2)
            .unwrap()
            .0
            + 1;
        std::mem::replace(&mut line[start + index], byte)
    }

    #[test]
    fn garbled_base64_character_is_a_corrupt_chunk() {
        let data = random_bytes(1000, 12);
        for (byte, expect_crc_error) in [(b'~', false), (0xff, false), (b'A', true), (b'z', true)] {
            let mut lines = frame_lines(0x42, &data, 48);
            let old = garble_payload(&mut lines[1 + 7], 10, byte);
            assert_ne!(old, byte);
            let log = with_noise(&lines);
            let report = extract(&log);
            assert_eq!(report.dumps.len(), 1);
            let dump = &report.dumps[0];
            assert_eq!(dump.corrupt, vec![7]);
            assert_eq!(dump.missing, Vec::<u64>::new());
            assert_eq!(dump.valid, vec![0..336, 384..1000]);
            assert_eq!(dump.data[336..384], [0; 48]);
            assert!(!dump.payload_crc_ok);
            assert_eq!(report.issues.len(), 1);
            let ExtractError::CorruptChunk {
                at,
                dump_id,
                seq,
                error,
            } = report.issues[0]
            else {
                panic!("{:?}", report.issues)
            };
            assert_eq!(at, noisy_location(&lines, 8));
            assert_eq!((dump_id, seq), (0x42, 7));
            if expect_crc_error {
                assert!(matches!(error, ChunkError::CrcMismatch { .. }), "{error:?}");
            } else {
                assert_eq!(error, ChunkError::InvalidSymbol { offset: 10, byte });
            }
        }
    }

    #[test]
    fn garbled_structure_is_attributed_to_its_chunk() {
        let data = random_bytes(1000, 13);
        let mut lines = frame_lines(0x42, &data, 48);
        // Damage the chunk CRC field of chunk 3: the line no longer parses.
        let line = &mut lines[1 + 3];
        let n = line.len();
        line[n - 3] = b'Z';
        // And drop a comma in chunk 4's line.
        let line = &mut lines[1 + 4];
        let comma = line.iter().rposition(|&b| b == b',').unwrap();
        line[comma] = b'.';
        let report = extract(&with_noise(&lines));
        let dump = &report.dumps[0];
        assert_eq!(dump.corrupt, vec![3, 4]);
        assert_eq!(dump.missing, Vec::<u64>::new());
        assert_eq!(
            report.issues,
            vec![
                ExtractError::Malformed {
                    at: noisy_location(&lines, 4),
                    error: LineError::BadField(uart::Field::ChunkCrc),
                },
                ExtractError::Malformed {
                    at: noisy_location(&lines, 5),
                    error: LineError::FieldCount {
                        kind: uart::LineKind::Data,
                        found: 4
                    },
                },
            ]
        );
    }

    #[test]
    fn garbled_sequence_number_is_caught_by_the_crc() {
        let data = random_bytes(1000, 14);
        let mut lines = frame_lines(0x42, &data, 48);
        // "@TM:D,00000042,7," -> "@TM:D,00000042,8,"
        let line = &mut lines[1 + 7];
        assert_eq!(line[15], b'7');
        line[15] = b'8';
        let report = extract(&with_noise(&lines));
        let dump = &report.dumps[0];
        // Chunk 8 has its own good line, so only chunk 7 is lost, as missing.
        assert_eq!(dump.missing, vec![7]);
        assert_eq!(dump.corrupt, Vec::<u64>::new());
        assert_eq!(dump.valid, vec![0..336, 384..1000]);
        assert_eq!(report.issues.len(), 1);
        assert!(matches!(
            report.issues[0],
            ExtractError::CorruptChunk {
                seq: 8,
                error: ChunkError::CrcMismatch { .. },
                ..
            }
        ));
    }

    #[test]
    fn two_dumps_in_one_log() {
        let a = random_bytes(3000, 21);
        let b = random_bytes(777, 22);
        let la = frame_lines(0, &a, 0);
        let lb = frame_lines(1, &b, 33);

        // One after the other.
        let mut lines = la.clone();
        lines.extend(lb.iter().cloned());
        let report = extract(&with_noise(&lines));
        assert_eq!(report.issues, vec![]);
        assert_eq!(report.dumps.len(), 2);
        assert_complete(&report.dumps[0], 0, &a, 0);
        assert_complete(&report.dumps[1], 1, &b, 33);

        // Interleaved line by line (two CPUs dumping at once).
        let mut lines = Vec::new();
        for i in 0..la.len().max(lb.len()) {
            lines.extend(la.get(i).cloned());
            lines.extend(lb.get(i).cloned());
        }
        let report = extract(&with_noise(&lines));
        assert_eq!(report.issues, vec![]);
        assert_eq!(report.dumps.len(), 2);
        assert_complete(&report.dumps[0], 0, &a, 0);
        assert_complete(&report.dumps[1], 1, &b, 33);
    }

    #[test]
    fn same_id_twice_gives_two_dumps() {
        let a = random_bytes(500, 31);
        let b = random_bytes(600, 32);
        let mut lines = frame_lines(9, &a, 0);
        let first_len = lines.len();
        lines.extend(frame_lines(9, &b, 0));
        // The first dump's end line is lost: the second begin still separates them.
        lines.remove(first_len - 1);
        let report = extract(&with_noise(&lines));
        assert_eq!(report.issues, vec![]);
        assert_eq!(report.dumps.len(), 2);
        assert_eq!(report.dumps[0].end, None);
        assert_eq!(report.dumps[0].data, a);
        assert!(report.dumps[0].is_complete());
        assert_complete(&report.dumps[1], 9, &b, 0);
    }

    fn begin_line(begin: Begin) -> Vec<u8> {
        let mut out = [0u8; MAX_LINE_LEN];
        let n = begin.encode(&mut out);
        out[..n].to_vec()
    }

    #[test]
    fn hostile_begin_line_is_refused_without_allocating() {
        let legit = random_bytes(2000, 41);
        let mut lines = vec![begin_line(Begin {
            dump_id: 0x666,
            total_len: 1 << 40,
            chunk_len: 48,
            payload_crc: 0,
        })];
        lines.extend(frame_lines(1, &legit, 0));
        lines.push(begin_line(Begin {
            dump_id: 0x667,
            total_len: u64::MAX,
            chunk_len: 1,
            payload_crc: 0,
        }));
        let log = with_noise(&lines);
        let report = extract(&log);
        assert_eq!(report.dumps.len(), 3);
        let budget = (log.len() + DEFAULT_BUDGET_SLACK) as u64;
        let cost = 2000 + 42 * BUDGET_PER_CHUNK;
        let hostile = &report.dumps[0];
        let expected = ExtractError::TooLarge {
            at: noisy_location(&lines, 0),
            dump_id: 0x666,
            declared_len: 1 << 40,
            budget_left: budget - cost,
        };
        assert_eq!(hostile.error, Some(expected.clone()));
        assert_eq!(hostile.declared_len, 1 << 40);
        assert_eq!(hostile.data, Vec::<u8>::new());
        assert_eq!(hostile.valid, vec![]);
        assert!(!hostile.is_complete());
        assert_complete(&report.dumps[1], 1, &legit, 0);
        assert_eq!(
            report.dumps[2].error,
            Some(ExtractError::TooLarge {
                at: noisy_location(&lines, lines.len() - 1),
                dump_id: 0x667,
                declared_len: u64::MAX,
                budget_left: budget - cost,
            })
        );
        assert_eq!(report.issues.len(), 2);
        assert_eq!(report.issues[0], expected);
    }

    #[test]
    fn many_plausible_hostile_begins_stay_within_the_budget() {
        let legit = random_bytes(4096, 42);
        let mut lines = Vec::new();
        for id in 0..2000 {
            lines.push(begin_line(Begin {
                dump_id: 0x1000 + id,
                total_len: 60_000,
                chunk_len: 96,
                payload_crc: 0,
            }));
        }
        lines.extend(frame_lines(1, &legit, 0));
        let log: Vec<u8> = lines.concat();
        let limits = ExtractLimits::for_log(log.len());
        let report = extract(&log);
        assert_eq!(report.dumps.len(), 2001);
        let allocated: usize = report.dumps.iter().map(|d| d.data.len()).sum();
        assert!(allocated <= limits.max_total_bytes, "{allocated}");
        // The dump with real data was served first.
        assert_complete(&report.dumps[2000], 1, &legit, 0);
        let refused = report.dumps.iter().filter(|d| d.error.is_some()).count();
        assert!(refused > 1900, "{refused}");
    }

    #[test]
    fn marker_after_garbage_on_the_same_line() {
        let data = random_bytes(300, 51);
        let lines = frame_lines(5, &data, 0);
        let mut log = Vec::new();
        for line in &lines {
            log.extend_from_slice(b"[  3.1] usb 1-1: new device fou");
            log.extend_from_slice(line);
        }
        let report = extract(&log);
        assert_eq!(report.issues, vec![]);
        assert_complete(&report.dumps[0], 5, &data, 0);
        assert_eq!(
            report.dumps[0].begin,
            Some(Location {
                line: 1,
                offset: 31
            })
        );
    }

    #[test]
    fn line_cut_short_by_another_framing_line() {
        let data = random_bytes(300, 52);
        let mut lines = frame_lines(5, &data, 0);
        // Chunk 2's line loses its end (and line break); chunk 3's follows.
        let cut = lines[1 + 2].len() / 2;
        lines[1 + 2].truncate(cut);
        // Chunk 4's line loses only its line break.
        lines[1 + 4].pop();
        let mut log = Vec::new();
        for line in &lines {
            log.extend_from_slice(line);
        }
        let report = extract(&log);
        let dump = &report.dumps[0];
        assert_eq!(dump.corrupt, vec![2]);
        assert_eq!(dump.missing, Vec::<u64>::new());
        assert_eq!(
            report.issues,
            vec![ExtractError::Interrupted {
                at: Location {
                    line: 4,
                    offset: lines[0].len() + lines[1].len() + lines[2].len()
                }
            }]
        );
        assert_eq!(dump.valid, vec![0..96, 144..300]);
    }

    #[test]
    fn repeated_line_is_a_harmless_duplicate() {
        let data = random_bytes(500, 61);
        let mut lines = frame_lines(2, &data, 0);
        let again = lines[3].clone();
        lines.insert(6, again);
        let report = extract(&with_noise(&lines));
        assert_eq!(report.issues, vec![]);
        let dump = &report.dumps[0];
        assert_eq!(dump.duplicates, 1);
        assert!(dump.is_complete());
        assert_eq!(dump.data, data);
    }

    #[test]
    fn conflicting_copy_is_not_trusted() {
        let data = random_bytes(500, 62);
        let mut lines = frame_lines(2, &data, 0);
        let mut out = [0u8; MAX_LINE_LEN];
        let n = encode_data_line(2, 4, &[0xaa; 48], &mut out).unwrap();
        lines.insert(8, out[..n].to_vec());
        let report = extract(&with_noise(&lines));
        let dump = &report.dumps[0];
        assert_eq!(dump.conflicting, vec![4]);
        assert_eq!(dump.valid, vec![0..192, 240..500]);
        assert_eq!(dump.data[192..240], [0; 48]);
        assert_eq!(
            report.issues,
            vec![ExtractError::ConflictingChunk {
                at: noisy_location(&lines, 8),
                dump_id: 2,
                seq: 4
            }]
        );
    }

    #[test]
    fn valid_line_with_wrong_length_or_seq() {
        let data = random_bytes(100, 63);
        let mut lines = frame_lines(2, &data, 0); // chunks 0..=2 (48, 48, 4)
        let mut out = [0u8; MAX_LINE_LEN];
        let n = encode_data_line(2, 5, &[1; 4], &mut out).unwrap();
        lines.insert(4, out[..n].to_vec());
        let n = encode_data_line(2, 2, &[1; 5], &mut out).unwrap();
        lines[3] = out[..n].to_vec();
        let report = extract(&with_noise(&lines));
        let dump = &report.dumps[0];
        assert_eq!(dump.corrupt, vec![2]);
        assert_eq!(dump.valid, vec![0..96]);
        assert_eq!(
            report.issues,
            vec![
                ExtractError::CorruptChunk {
                    at: noisy_location(&lines, 3),
                    dump_id: 2,
                    seq: 2,
                    error: ChunkError::LengthMismatch {
                        expected: 4,
                        found: 5
                    },
                },
                ExtractError::SeqOutOfRange {
                    at: noisy_location(&lines, 4),
                    dump_id: 2,
                    seq: 5,
                    chunk_count: 3
                },
            ]
        );
    }

    #[test]
    fn missing_begin_or_end_line() {
        let data = random_bytes(1000, 71);
        let mut lines = frame_lines(4, &data, 0);
        lines.remove(0);
        let report = extract(&with_noise(&lines));
        assert_eq!(report.issues, vec![]);
        assert_eq!(report.dumps[0].begin, None);
        assert_complete(&report.dumps[0], 4, &data, 0);

        let mut lines = frame_lines(4, &data, 0);
        lines.pop();
        let report = extract(&with_noise(&lines));
        assert_eq!(report.issues, vec![]);
        assert_eq!(report.dumps[0].end, None);
        assert_complete(&report.dumps[0], 4, &data, 0);

        // Neither: the data lines cannot be placed.
        let mut lines = frame_lines(4, &data, 0);
        lines.pop();
        lines.remove(0);
        let report = extract(&with_noise(&lines));
        assert_eq!(report.dumps, vec![]);
        assert_eq!(
            report.issues,
            vec![ExtractError::NoHeader {
                at: noisy_location(&lines, 0),
                dump_id: 4,
                lines: 21
            }]
        );
    }

    #[test]
    fn end_line_disagreeing_with_begin_line() {
        let data = random_bytes(200, 72);
        let mut lines = frame_lines(4, &data, 0);
        let other = frame_lines(4, &data[..100], 0);
        let last = lines.len() - 1;
        lines[last] = other[other.len() - 1].clone();
        let report = extract(&with_noise(&lines));
        assert_eq!(
            report.issues,
            vec![ExtractError::GeometryMismatch {
                at: noisy_location(&lines, last),
                begin: noisy_location(&lines, 0),
                dump_id: 4
            }]
        );
        assert_complete(&report.dumps[0], 4, &data, 0);
    }

    #[test]
    fn memory_changed_during_dump() {
        let mut pass = 0u8;
        let mut log = Vec::new();
        uart::write_framed_with(
            8,
            100,
            0,
            |offset, buf: &mut [u8]| {
                if offset == 0 {
                    pass += 1;
                }
                buf.fill(pass);
            },
            &mut |line: &[u8]| {
                log.extend_from_slice(line);
                Ok::<(), ()>(())
            },
        )
        .unwrap();
        let report = extract(&log);
        let dump = &report.dumps[0];
        assert!(dump.payload_changed);
        assert!(dump.payload_crc_ok);
        assert_eq!(dump.data, vec![2; 100]);
    }

    #[test]
    fn issues_are_capped() {
        let log = b"@TM:\n".repeat(20);
        let limits = ExtractLimits {
            max_issues: 5,
            ..ExtractLimits::for_log(log.len())
        };
        let report = extract_with(&log, &limits);
        assert_eq!(report.issues.len(), 5);
        assert_eq!(report.issues_dropped, 15);
        assert_eq!(report.framing_lines, 20);
        assert_eq!(
            report.issues[4],
            ExtractError::Malformed {
                at: Location {
                    line: 5,
                    offset: 20
                },
                error: LineError::UnknownKind
            }
        );
        assert_eq!(
            report.issues[4].to_string(),
            "line 5 (byte 20): malformed framing line: unknown line kind after the marker"
        );
    }

    #[test]
    fn empty_and_unrelated_logs() {
        assert_eq!(extract(b""), ExtractReport::default());
        let report = extract(b"hello\nworld\r\n\r\n");
        assert_eq!(report, ExtractReport::default());
        assert!(report.is_clean());
    }

    /// A framed log (two dumps) to mutate.
    fn sample_log() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let a = random_bytes(700, 81);
        let b = random_bytes(300, 82);
        let mut lines = frame_lines(1, &a, 40);
        lines.extend(frame_lines(2, &b, 0));
        (with_noise(&lines), a, b)
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        Flip(usize, u8),
        Delete(usize, usize),
        Insert(usize, Vec<u8>),
        Duplicate(usize, usize, usize),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
            (any::<usize>(), 0..200usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
            (
                any::<usize>(),
                proptest::collection::vec(any::<u8>(), 0..20)
            )
                .prop_map(|(i, v)| Mutation::Insert(i, v)),
            (any::<usize>(), 0..300usize, any::<usize>())
                .prop_map(|(i, n, j)| Mutation::Duplicate(i, n, j)),
        ]
    }

    fn apply(log: &mut Vec<u8>, m: &Mutation) {
        if log.is_empty() {
            return;
        }
        match m {
            Mutation::Flip(i, b) => {
                let i = i % log.len();
                log[i] = *b;
            }
            Mutation::Delete(i, n) => {
                let i = i % log.len();
                let end = (i + n).min(log.len());
                log.drain(i..end);
            }
            Mutation::Insert(i, v) => {
                let i = i % (log.len() + 1);
                log.splice(i..i, v.iter().copied());
            }
            Mutation::Duplicate(i, n, j) => {
                let i = i % log.len();
                let end = (i + n).min(log.len());
                let piece = log[i..end].to_vec();
                let j = j % (log.len() + 1);
                log.splice(j..j, piece);
            }
        }
    }

    proptest! {
        #[test]
        fn extract_never_panics_on_arbitrary_bytes(
            log in proptest::collection::vec(any::<u8>(), 0..2000)
        ) {
            let report = extract(&log);
            prop_assert!(report.dumps.iter().all(|d| d.data.len() as u64 <= d.declared_len));
        }

        #[test]
        fn extract_never_panics_on_marker_soup(
            pieces in proptest::collection::vec(
                prop_oneof![
                    Just(&b"@TM:"[..]), Just(&b"B,1,"[..]), Just(&b"D,"[..]), Just(&b"E,1,"[..]),
                    Just(&b"00000001,"[..]), Just(&b"0,"[..]), Just(&b"48,"[..]),
                    Just(&b"AAAA,"[..]), Just(&b"\n"[..]), Just(&b"\r"[..]), Just(&b"99999999999,"[..]),
                ],
                0..200,
            )
        ) {
            let log: Vec<u8> = pieces.concat();
            let _ = extract(&log);
        }

        #[test]
        fn damaged_logs_never_yield_wrong_valid_bytes(
            mutations in proptest::collection::vec(mutation(), 0..8)
        ) {
            let (mut log, a, b) = sample_log();
            for m in &mutations {
                apply(&mut log, m);
            }
            let limits = ExtractLimits::for_log(log.len());
            let report = extract(&log);
            let allocated: usize = report.dumps.iter().map(|d| d.data.len()).sum();
            prop_assert!(allocated <= limits.max_total_bytes);
            for dump in &report.dumps {
                let original = match dump.dump_id {
                    1 => &a,
                    2 => &b,
                    other => panic!("dump id {other} appeared"),
                };
                if dump.error.is_some() {
                    continue;
                }
                prop_assert_eq!(dump.declared_len, original.len() as u64);
                prop_assert_eq!(dump.data.len(), original.len());
                for range in &dump.valid {
                    prop_assert_eq!(&dump.data[range.clone()], &original[range.clone()]);
                }
                let valid: usize = dump.valid.iter().map(|r| r.len()).sum();
                let bad = dump.missing.len() + dump.corrupt.len() + dump.conflicting.len();
                prop_assert_eq!(bad == 0, valid == original.len());
                if dump.payload_crc_ok {
                    prop_assert!(&dump.data == original);
                }
            }
        }
    }
}
