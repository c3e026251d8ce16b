//! The heartbeat: one line for the user (the binary prints it on stderr) every few seconds saying whether input arrives
//! (bytes and lines per second since the last beat), how long ago the producer last
//! wrote, and what the live framing found. "The simulator froze" shows as a growing
//! `last input` with zero rates; "the firmware is stuck but printing" as input that
//! continues while no dump completes.

use std::time::{Duration, Instant, SystemTime};

use super::framing::FramingStats;

/// Input counters, total and since the last beat.
#[derive(Debug)]
pub struct Meter {
    started: Instant,
    bytes: u64,
    lines: u64,
    last_input: Option<Instant>,
    beat_at: Instant,
    beat_bytes: u64,
    beat_lines: u64,
}

impl Meter {
    /// Counters starting now.
    pub fn new(now: Instant) -> Self {
        Self {
            started: now,
            bytes: 0,
            lines: 0,
            last_input: None,
            beat_at: now,
            beat_bytes: 0,
            beat_lines: 0,
        }
    }

    /// Counts bytes that just arrived.
    pub fn record(&mut self, data: &[u8], now: Instant) {
        self.bytes += data.len() as u64;
        self.lines += memchr::memchr_iter(b'\n', data).count() as u64;
        if !data.is_empty() {
            self.last_input = Some(now);
        }
    }

    /// Bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Lines (`\n`) received so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Time since the producer last wrote (since the start if it never did).
    pub fn silent_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_input.unwrap_or(self.started))
    }

    /// The heartbeat line for `now`, and the rates restart from here.
    pub fn beat(&mut self, now: Instant, framing: FramingStats, extra: &str) -> String {
        let secs = now
            .saturating_duration_since(self.beat_at)
            .as_secs_f64()
            .max(1e-3);
        let bps = (self.bytes - self.beat_bytes) as f64 / secs;
        let lps = (self.lines - self.beat_lines) as f64 / secs;
        self.beat_at = now;
        self.beat_bytes = self.bytes;
        self.beat_lines = self.lines;
        let silent = self.silent_for(now);
        let input = match self.last_input {
            None => format!("no input yet ({:.1} s)", silent.as_secs_f64()),
            Some(_) if silent >= Duration::from_secs(2) && bps == 0.0 => {
                format!(
                    "last input {:.1} s ago (producer silent)",
                    silent.as_secs_f64()
                )
            }
            Some(_) => format!("last input {:.1} s ago", silent.as_secs_f64()),
        };
        format!(
            "{} in {}/s {:.0} lines/s (total {}, {} lines) | {input} | dumps {} saved, {} damaged{}{}, {} chunk errors | {extra}",
            humantime::format_rfc3339_seconds(SystemTime::now()),
            size(bps as u64),
            lps,
            size(self.bytes),
            self.lines,
            framing.complete,
            framing.damaged,
            if framing.in_progress { ", 1 in progress" } else { "" },
            match framing.unsaved {
                0 => String::new(),
                n => format!(", {n} not saved"),
            },
            framing.chunk_errors,
        )
    }
}

/// `512 B`, `12.3 KB`, `1.5 GB` (powers of 1024, like the `--slot-size` suffixes).
pub fn size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_and_rates() {
        let t0 = Instant::now();
        let mut m = Meter::new(t0);
        m.record(b"a\nb\nc", t0 + Duration::from_secs(1));
        let line = m.beat(t0 + Duration::from_secs(2), FramingStats::default(), "x");
        assert!(
            line.contains("in 2 B/s 1 lines/s (total 5 B, 2 lines)"),
            "{line}"
        );
        assert!(line.contains("| last input 1.0 s ago |"), "{line}");
        let line = m.beat(t0 + Duration::from_secs(7), FramingStats::default(), "x");
        assert!(line.contains("in 0 B/s 0 lines/s"), "{line}");
        assert!(
            line.contains("last input 6.0 s ago (producer silent)"),
            "{line}"
        );
        assert_eq!(size(3 << 20), "3.0 MB");
    }
}
