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
//!
//! The work is split along its seams: `scan` classifies the lines of the log
//! and collects verified chunks per dump, `assemble` grants the budget and
//! reassembles each dump from its chunks, `report` holds what is returned, `summary` what it means for decoding.

#![forbid(unsafe_code)]

mod assemble;
mod report;
mod scan;
mod summary;
#[cfg(test)]
mod tests;

pub use report::{
    Dump, ExtractError, ExtractLimits, ExtractReport, Location, BUDGET_PER_CHUNK,
    DEFAULT_BUDGET_SLACK, DEFAULT_MAX_ISSUES,
};
pub use summary::Concatenated;

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
    let mut scanner = scan::Scanner::new(limits);
    let mut line_start = 0;
    for (line_no, physical) in (1..).zip(log.split(|&b| b == b'\n')) {
        let mut segment_start = line_start;
        for segment in physical.split(|&b| b == b'\r') {
            scanner.segment(segment, segment_start, line_no);
            segment_start += segment.len() + 1;
        }
        line_start += physical.len() + 1;
    }
    assemble::finish(scanner.into_collected(), limits)
}

/// The issues found so far: at most `max` are kept, the others only counted.
struct Issues {
    kept: Vec<ExtractError>,
    dropped: usize,
    max: usize,
}

impl Issues {
    fn new(max: usize) -> Self {
        Self {
            kept: Vec::new(),
            dropped: 0,
            max,
        }
    }

    fn push(&mut self, issue: ExtractError) {
        if self.kept.len() < self.max {
            self.kept.push(issue);
        } else {
            self.dropped += 1;
        }
    }
}
