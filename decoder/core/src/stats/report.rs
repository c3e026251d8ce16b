//! The summary's schema (what `stats --json` serialises) and its text and CSV forms.

use std::collections::BTreeMap;

use serde::Serialize;
use tracemark_format::Kind;

/// Per-CPU summary.
#[derive(Debug, Clone, Serialize)]
pub struct CpuStats {
    /// CPU number.
    pub cpu: u32,
    /// Records decoded, `LOST` records included.
    pub records: u64,
    /// Records lost to overwriting (ring header).
    pub overwritten: u64,
    /// Records dropped with the ring full (ring header).
    pub dropped: u64,
    /// Torn blocks skipped.
    pub torn_blocks: u64,
    /// Blocks whose records could not all be decoded.
    pub corrupt_blocks: u64,
    /// Record bytes decoded (block headers and unused block tails excluded).
    pub bytes: u64,
    /// Time of the first record (0 if none).
    pub first_ts: u64,
    /// Time of the last record (0 if none).
    pub last_ts: u64,
    /// Clock frequency.
    pub clock_hz: u64,
}

/// Per-syscall summary.
#[derive(Debug, Clone, Serialize)]
pub struct SyscallStats {
    /// Syscall number (as stored, `-syscall`).
    pub syscall: u8,
    /// Its seL4 name, or `#N`.
    pub name: String,
    /// Kernel entries for this syscall.
    pub count: u64,
    /// Kernel exits that closed such an entry.
    pub exits: u64,
    /// Sum of the exits' durations.
    pub duration_sum_ticks: u64,
    /// Median duration.
    pub p50_ticks: u64,
    /// 90th percentile.
    pub p90_ticks: u64,
    /// 99th percentile.
    pub p99_ticks: u64,
    /// Longest duration.
    pub max_ticks: u64,
}

/// Interrupts of one IRQ number.
#[derive(Debug, Clone, Serialize)]
pub struct IrqStats {
    /// IRQ number.
    pub irq: u32,
    /// Interrupt records.
    pub count: u64,
}

/// Function-call counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FunctionStats {
    /// Function entries.
    pub entries: u64,
    /// Function exits.
    pub exits: u64,
    /// Distinct function ids seen in entries or exits.
    pub distinct: u64,
}

/// The summary of a dump; serialises to the `stats --json` schema.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Per CPU (per ring), in file order.
    pub cpus: Vec<CpuStats>,
    /// Records decoded over all CPUs (sum of `records_per_kind`).
    pub total_records: u64,
    /// Records per kind name.
    pub records_per_kind: BTreeMap<&'static str, u64>,
    /// Syscalls by number.
    pub syscalls: Vec<SyscallStats>,
    /// Kernel exits whose entry is not in the dump.
    pub unmatched_exits: u64,
    /// Interrupts by IRQ number.
    pub irqs: Vec<IrqStats>,
    /// Function calls.
    pub functions: FunctionStats,
    /// Records lost: overwritten plus dropped, over all CPUs.
    pub lost: u64,
    /// Torn blocks skipped, over all CPUs.
    pub torn_blocks: u64,
    /// Blocks with undecodable records, over all CPUs.
    pub corrupt_blocks: u64,
    /// Record bytes decoded.
    pub bytes: u64,
    /// `bytes / total_records`.
    pub mean_bytes_per_record: f64,
    /// Clock frequency of the first ring.
    pub clock_hz: u64,
    /// Last record's time minus first record's time over all CPUs.
    pub time_span_ticks: u64,
}

fn time(ticks: u64, hz: u64) -> String {
    if hz == 0 {
        return String::new();
    }
    let s = ticks as f64 / hz as f64;
    if s >= 1.0 {
        format!(" ({s:.3} s)")
    } else if s >= 1e-3 {
        format!(" ({:.3} ms)", s * 1e3)
    } else if s >= 1e-6 {
        format!(" ({:.3} us)", s * 1e6)
    } else {
        format!(" ({:.0} ns)", s * 1e9)
    }
}

impl Stats {
    /// Writes the summary as CSV: a `field,value` header, then one row per value of
    /// the JSON form, named by its path (`cpus.0.records,1234`).
    pub fn write_csv(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        fn walk(
            out: &mut dyn std::io::Write,
            path: &mut String,
            v: &serde_json::Value,
        ) -> std::io::Result<()> {
            let len = path.len();
            let mut child = |out: &mut dyn std::io::Write, key: &str, v| {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                let r = walk(out, path, v);
                path.truncate(len);
                r
            };
            match v {
                serde_json::Value::Object(m) => {
                    for (k, v) in m {
                        child(out, k, v)?;
                    }
                    Ok(())
                }
                serde_json::Value::Array(a) => {
                    for (i, v) in a.iter().enumerate() {
                        child(out, &i.to_string(), v)?;
                    }
                    Ok(())
                }
                serde_json::Value::String(s) if s.contains([',', '"', '\n']) => {
                    writeln!(out, "{path},\"{}\"", s.replace('"', "\"\""))
                }
                serde_json::Value::String(s) => writeln!(out, "{path},{s}"),
                other => writeln!(out, "{path},{other}"),
            }
        }
        let v = serde_json::to_value(self).map_err(std::io::Error::other)?;
        writeln!(out, "field,value")?;
        walk(out, &mut String::new(), &v)
    }

    /// Writes the summary for people.
    pub fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let hz = self.clock_hz;
        writeln!(
            out,
            "time span: {} ticks{}",
            self.time_span_ticks,
            time(self.time_span_ticks, hz)
        )?;
        writeln!(
            out,
            "records: {} in {} bytes ({:.2} bytes/record)",
            self.total_records, self.bytes, self.mean_bytes_per_record
        )?;
        writeln!(
            out,
            "lost: {} records; torn blocks: {}; corrupt blocks: {}; unmatched kernel exits: {}",
            self.lost, self.torn_blocks, self.corrupt_blocks, self.unmatched_exits
        )?;
        writeln!(out, "\nper CPU:")?;
        writeln!(
            out,
            "  {:>4} {:>12} {:>12} {:>10} {:>6} {:>12} {:>20} {:>20}",
            "cpu", "records", "overwritten", "dropped", "torn", "bytes", "first_ts", "last_ts"
        )?;
        for c in &self.cpus {
            writeln!(
                out,
                "  {:>4} {:>12} {:>12} {:>10} {:>6} {:>12} {:>20} {:>20}",
                c.cpu,
                c.records,
                c.overwritten,
                c.dropped,
                c.torn_blocks,
                c.bytes,
                c.first_ts,
                c.last_ts
            )?;
        }
        writeln!(out, "\nper kind:")?;
        // Names as wide as the longest (CLOCKBACK has 9 letters), so the counts align.
        let width = Kind::EVENTS
            .iter()
            .map(|k| k.name().len())
            .max()
            .unwrap_or(0);
        for k in Kind::EVENTS {
            let n = self.records_per_kind.get(k.name()).copied().unwrap_or(0);
            writeln!(out, "  {:<width$} {n:>12}", k.name())?;
        }
        if !self.syscalls.is_empty() {
            writeln!(out, "\nsyscalls (kernel-exit durations in ticks):")?;
            writeln!(
                out,
                "  {:<20} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12}",
                "syscall", "count", "exits", "p50", "p90", "p99", "max"
            )?;
            for s in &self.syscalls {
                writeln!(
                    out,
                    "  {:<20} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12}{}",
                    format!("{} ({})", s.name, s.syscall),
                    s.count,
                    s.exits,
                    s.p50_ticks,
                    s.p90_ticks,
                    s.p99_ticks,
                    s.max_ticks,
                    if hz == 0 {
                        String::new()
                    } else {
                        format!(
                            "  p50{} p99{} max{}",
                            time(s.p50_ticks, hz),
                            time(s.p99_ticks, hz),
                            time(s.max_ticks, hz)
                        )
                    }
                )?;
            }
        }
        if !self.irqs.is_empty() {
            writeln!(out, "\ninterrupts:")?;
            for i in &self.irqs {
                writeln!(out, "  irq {:<6} {:>12}", i.irq, i.count)?;
            }
        }
        writeln!(
            out,
            "\nfunctions: {} entries, {} exits, {} distinct",
            self.functions.entries, self.functions.exits, self.functions.distinct
        )?;
        Ok(())
    }
}
