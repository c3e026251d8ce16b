//! Line classification: finds the framing lines of a log (also several on one
//! line, or after other text), parses them, verifies data chunks and collects
//! them per dump.

use std::collections::HashMap;
use std::ops::Range;

use tracemark_format::uart::{self, Begin, End, Line, MARKER, MAX_CHUNK_LEN};

use super::{ExtractError, ExtractLimits, Issues, Location};

/// A data line as collected while scanning.
pub(super) struct ChunkLine {
    pub(super) seq: u64,
    pub(super) at: Location,
    /// Range in the arena of the decoded, CRC-verified chunk; `None` for a
    /// damaged line.
    pub(super) good: Option<Range<usize>>,
}

/// A dump being collected.
pub(super) struct Pending {
    pub(super) dump_id: u32,
    pub(super) first: Location,
    pub(super) begin: Option<(Location, Begin)>,
    pub(super) end: Option<(Location, End)>,
    /// The end line disagrees with the begin line and is ignored.
    pub(super) end_mismatch: bool,
    pub(super) lines: Vec<ChunkLine>,
    pub(super) good_bytes: usize,
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

/// What a scan of the whole log collected.
pub(super) struct Collected {
    /// Every dump, in the order of its first framing line.
    pub(super) pending: Vec<Pending>,
    /// Decoded bytes of every valid chunk.
    pub(super) arena: Vec<u8>,
    pub(super) issues: Issues,
    pub(super) framing_lines: usize,
}

/// Scans a log one line segment at a time.
pub(super) struct Scanner {
    /// Dump id -> index in `pending` of the dump that takes its data lines.
    open: HashMap<u32, usize>,
    c: Collected,
}

fn find_marker(text: &[u8]) -> Option<usize> {
    text.windows(MARKER.len()).position(|w| w == MARKER)
}

impl Scanner {
    pub(super) fn new(limits: &ExtractLimits) -> Self {
        Self {
            open: HashMap::new(),
            c: Collected {
                pending: Vec::new(),
                arena: Vec::new(),
                issues: Issues::new(limits.max_issues),
                framing_lines: 0,
            },
        }
    }

    /// What was collected.
    pub(super) fn into_collected(self) -> Collected {
        self.c
    }

    fn issue(&mut self, issue: ExtractError) {
        self.c.issues.push(issue);
    }

    /// One line, without terminators; `start` is its offset in the log.
    pub(super) fn segment(&mut self, text: &[u8], start: usize, line: usize) {
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
            self.c.framing_lines += 1;
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
        self.c.framing_lines += 1;
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
                self.c.pending[index].lines.push(ChunkLine {
                    seq,
                    at,
                    good: None,
                });
            }
        }
    }

    /// The index in `pending` of the open dump `dump_id`, opening one at `at` if none is.
    fn open_dump(&mut self, dump_id: u32, at: Location) -> usize {
        match self.open.get(&dump_id) {
            Some(&index) => index,
            None => {
                self.c.pending.push(Pending::new(dump_id, at));
                let index = self.c.pending.len() - 1;
                self.open.insert(dump_id, index);
                index
            }
        }
    }

    fn line(&mut self, parsed: Line<'_>, at: Location) {
        match parsed {
            Line::Begin(begin) => {
                let mut dump = Pending::new(begin.dump_id, at);
                dump.begin = Some((at, begin));
                self.c.pending.push(dump);
                self.open.insert(begin.dump_id, self.c.pending.len() - 1);
            }
            Line::Data(data) => {
                let mut chunk = [0u8; MAX_CHUNK_LEN];
                match data.decode(&mut chunk) {
                    Ok(len) => {
                        let index = self.open_dump(data.dump_id, at);
                        let start = self.c.arena.len();
                        self.c.arena.extend_from_slice(&chunk[..len]);
                        let dump = &mut self.c.pending[index];
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
                            self.c.pending[index].lines.push(ChunkLine {
                                seq: data.seq,
                                at,
                                good: None,
                            });
                        }
                    }
                }
            }
            Line::End(end) => self.end(end, at),
        }
    }

    /// An end line closes its dump (or stands alone if none is open).
    fn end(&mut self, end: End, at: Location) {
        let index = match self.open.remove(&end.dump_id) {
            Some(index) => index,
            None => {
                self.c.pending.push(Pending::new(end.dump_id, at));
                self.c.pending.len() - 1
            }
        };
        let mismatch = match self.c.pending[index].begin {
            Some((begin_at, begin))
                if begin.total_len != end.total_len || begin.chunk_len != end.chunk_len =>
            {
                Some(begin_at)
            }
            _ => None,
        };
        let dump = &mut self.c.pending[index];
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
