//! What an extraction report means for decoding: the dumps laid end to end with their
//! verified ranges and the log's problems as [`Warning`]s, and a one-line summary per
//! dump.

use std::ops::Range;

use super::{Dump, ExtractError, ExtractReport};
use crate::dump::{Category, Warning};

/// The dumps of a UART log laid end to end ([`ExtractReport::concatenated`]).
#[derive(Debug, Clone, Default)]
pub struct Concatenated {
    /// The dumps' bytes, one after the other.
    pub data: Vec<u8>,
    /// The byte ranges of `data` covered by verified chunks.
    pub valid: Vec<Range<usize>>,
    /// The log's problems (log offsets).
    pub warnings: Vec<Warning>,
}

impl ExtractReport {
    /// The dumps laid end to end (zeros in place of lost chunks), the verified byte
    /// ranges of that concatenation, and the log's problems as warnings (at log
    /// offsets): what decoding a UART log as one input needs.
    pub fn concatenated(&self) -> Concatenated {
        let report = self;
        let mut data = Vec::new();
        let mut valid = Vec::new();
        let mut warnings = Vec::new();
        for d in &report.dumps {
            let at = d.begin.or(d.end).map_or(0, |l| l.offset);
            if let Some(e) = &d.error {
                warnings.push(uart_warning(at, e.to_string()));
                continue;
            }
            if !d.missing.is_empty() || !d.corrupt.is_empty() || !d.conflicting.is_empty() {
                warnings.push(uart_warning(at, d.summary()));
            }
            let base = data.len();
            valid.extend(d.valid.iter().map(|r| r.start + base..r.end + base));
            data.extend_from_slice(&d.data);
        }
        for issue in &report.issues {
            // Chunk-level problems are already summarised per dump.
            if matches!(issue, ExtractError::TooLarge { .. }) {
                continue;
            }
            let loc = issue.location();
            warnings.push(uart_warning(loc.offset, issue.to_string()));
        }
        Concatenated {
            data,
            valid,
            warnings,
        }
    }
}

fn uart_warning(offset: usize, message: String) -> Warning {
    Warning {
        offset,
        message,
        damage: true,
        category: Category::Uart,
    }
}

impl Dump {
    /// One line on the dump's chunks:
    /// `dump 0x0000002a of 4096 bytes in 16 chunks of 256: 2 chunks missing (3, 17), 1 corrupt (5)`.
    pub fn summary(&self) -> String {
        let d = self;
        fn list(v: &[u64]) -> String {
            const SHOWN: usize = 20;
            let mut s: Vec<String> = v.iter().take(SHOWN).map(u64::to_string).collect();
            if v.len() > SHOWN {
                s.push(format!("... {} more", v.len() - SHOWN));
            }
            s.join(", ")
        }
        let mut parts = Vec::new();
        if !d.missing.is_empty() {
            parts.push(format!(
                "{} chunks missing ({})",
                d.missing.len(),
                list(&d.missing)
            ));
        }
        if !d.corrupt.is_empty() {
            parts.push(format!(
                "{} corrupt ({})",
                d.corrupt.len(),
                list(&d.corrupt)
            ));
        }
        if !d.conflicting.is_empty() {
            parts.push(format!(
                "{} conflicting ({})",
                d.conflicting.len(),
                list(&d.conflicting)
            ));
        }
        if parts.is_empty() && !d.payload_crc_ok {
            parts.push("payload CRC mismatch".to_string());
        }
        format!(
            "dump {:#010x} of {} bytes in {} chunks of {}: {}",
            d.dump_id,
            d.declared_len,
            d.chunk_count,
            d.chunk_len,
            if parts.is_empty() {
                "complete".to_string()
            } else {
                parts.join(", ")
            }
        )
    }
}
