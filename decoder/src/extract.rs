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
use std::ops::Range;

mod report;
#[cfg(test)]
mod tests;

pub use report::{
    Dump, ExtractError, ExtractLimits, ExtractReport, Location, BUDGET_PER_CHUNK,
    DEFAULT_BUDGET_SLACK, DEFAULT_MAX_ISSUES,
};

use tracemark_format::uart::{self, Begin, ChunkError, End, Line, MARKER, MAX_CHUNK_LEN};

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
