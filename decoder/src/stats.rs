//! The summary of a dump: counts per CPU, kind, syscall, IRQ and function, kernel-exit
//! duration percentiles, losses and damage.
//!
//! Runs of blocks are summarised in parallel ([`crate::par`]) with the format crate's
//! [`tracemark_format::scan`] fast path (no `Event` is built); kernel exits that close an
//! entry opened in an earlier run are matched afterwards, in order, so every exit is
//! matched with the entry it closes exactly as a single pass in order would.
//!
//! # Percentiles
//!
//! Durations go into a histogram per syscall whose size does not depend on the dump:
//! exact counts for durations below 65536 ticks, and above that buckets 1/1024 of a
//! power of two wide. So a percentile is exact when it is below 65536 ticks and otherwise
//! the lower bound of its bucket (at most 0.1 % below the true value); the 100th percentile
//! is the exact maximum. The percentile is
//! the nearest-rank one: the smallest duration `d` with at least `ceil(p * n / 100)`
//! durations `<= d`. The sum and the maximum are exact.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use tracemark_format::scan::{scan_block, ByKind, KindVisitor};
use tracemark_format::{KernelEntry, Kind};

use crate::dump::{Dump, Warning};
use crate::merge::block_warning;
use crate::par::{self, Carry, Unit, UnitStack};

const EXACT: usize = 1 << 16;
const SUB_BITS: u32 = 10;
const BUCKETS: usize = EXACT + (64 - 16) * (1 << SUB_BITS);

/// Kernel-exit durations of one syscall (see the module documentation).
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    n: u64,
    sum: u128,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            n: 0,
            sum: 0,
            max: 0,
        }
    }
}

impl Histogram {
    #[inline]
    fn bucket(v: u64) -> usize {
        if v < EXACT as u64 {
            v as usize
        } else {
            let e = 63 - v.leading_zeros();
            let m = (v >> (e - SUB_BITS)) as usize & ((1 << SUB_BITS) - 1);
            EXACT + (e as usize - 16) * (1 << SUB_BITS) + m
        }
    }

    fn lower_bound(b: usize) -> u64 {
        if b < EXACT {
            b as u64
        } else {
            let e = ((b - EXACT) >> SUB_BITS) as u32 + 16;
            let m = ((b - EXACT) & ((1 << SUB_BITS) - 1)) as u64;
            (1u64 << e) | (m << (e - SUB_BITS))
        }
    }

    /// Adds a duration.
    #[inline]
    pub fn add(&mut self, v: u64) {
        self.counts[Self::bucket(v)] += 1;
        self.n += 1;
        self.sum += u128::from(v);
        self.max = self.max.max(v);
    }

    /// Adds all of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.n += other.n;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    /// Number of durations.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Whether it holds no duration.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The nearest-rank `p`-th percentile (0 if empty).
    pub fn percentile(&self, p: f64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        let rank = ((p / 100.0 * self.n as f64).ceil() as u64).clamp(1, self.n);
        if rank == self.n {
            return self.max;
        }
        let mut seen = 0u64;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::lower_bound(b).min(self.max);
            }
        }
        self.max
    }
}

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

/// IRQ numbers below this are counted in an array, the others in a map.
const IRQ_ARRAY: usize = 1024;
/// Function ids below this are remembered in a bitmap, the others in a set.
const FUNC_BITS: u64 = 1 << 20;
/// Words of the function bitmap.
const FUNC_WORDS: usize = (FUNC_BITS / 64) as usize;

struct Acc {
    kinds: [u64; 16],
    entries: [u64; 16],
    exits: [u64; 16],
    hist: [Option<Box<Histogram>>; 16],
    unmatched: u64,
    irq_small: Box<[u64; IRQ_ARRAY]>,
    irqs: HashMap<u32, u64>,
    func_bits: Box<[u64; FUNC_WORDS + 1]>,
    funcs: HashSet<u64>,
}

impl Default for Acc {
    fn default() -> Self {
        Acc {
            kinds: [0; 16],
            entries: [0; 16],
            exits: [0; 16],
            hist: Default::default(),
            unmatched: 0,
            irq_small: Box::new([0; IRQ_ARRAY]),
            irqs: HashMap::new(),
            // One more word: the scratch word of records that are not function ids.
            func_bits: Box::new([0; FUNC_WORDS + 1]),
            funcs: HashSet::new(),
        }
    }
}

impl Acc {
    fn merge(&mut self, o: Acc) {
        for i in 0..16 {
            self.kinds[i] += o.kinds[i];
            self.entries[i] += o.entries[i];
            self.exits[i] += o.exits[i];
            if let Some(h) = o.hist[i].as_deref() {
                match &mut self.hist[i] {
                    Some(mine) => mine.merge(h),
                    None => self.hist[i] = o.hist[i].clone(),
                }
            }
        }
        self.unmatched += o.unmatched;
        for (a, b) in self.irq_small.iter_mut().zip(o.irq_small.iter()) {
            *a += b;
        }
        for (k, v) in o.irqs {
            *self.irqs.entry(k).or_default() += v;
        }
        for (a, b) in self.func_bits.iter_mut().zip(o.func_bits.iter()) {
            *a |= b;
        }
        self.funcs.extend(o.funcs);
    }

    /// A kernel exit (wire duration) that closes `entry` (`None`: no entry in the dump).
    #[inline]
    fn exit(&mut self, entry: Option<u32>, wire: u64) {
        let Some(word) = entry else {
            self.unmatched += 1;
            return;
        };
        let Some(s) = KernelEntry(word).as_syscall() else {
            return;
        };
        let i = usize::from(s.syscall());
        self.exits[i] += 1;
        // Wire 0 and 1: no duration (no entry on the target, nesting overflow).
        if wire >= 2 {
            self.hist[i]
                .get_or_insert_with(Default::default)
                .add(wire - 2);
        }
    }
}

/// What a unit of blocks yields besides the worker's accumulator.
struct UnitOut {
    stack: UnitStack,
    records: u64,
    bytes: u64,
    first_ts: Option<u64>,
    last_ts: u64,
    corrupt_blocks: u64,
    warnings: Vec<Warning>,
}

struct StatsVisitor<'a> {
    acc: &'a mut Acc,
    stack: &'a mut UnitStack,
    last: u64,
}

impl StatsVisitor<'_> {
    #[inline(always)]
    fn at(&mut self, ts: u64, kind: Kind) {
        self.acc.kinds[kind as usize] += 1;
        self.last = ts;
    }
}

impl KindVisitor for StatsVisitor<'_> {
    #[inline(always)]
    fn simple(&mut self, ts: u64, code: u8, value: u64) {
        // Kinds 0 to 4 with as few unpredictable branches as possible: the kind is
        // random from record to record, so counters are indexed and the function
        // bitmap and IRQ array are updated with masks; only kernel entries and exits
        // (a quarter of the records) branch.
        self.acc.kinds[usize::from(code & 7)] += 1;
        self.last = ts;
        // The bitmap word of a small function id, or a scratch word past the bitmap
        // for other records (a dependency chain through one word, but no branch).
        let is_func = code >= Kind::FunctionEntry as u8;
        let func_small = is_func & (value < FUNC_BITS);
        let word = if func_small {
            (value / 64) as usize & (FUNC_WORDS - 1)
        } else {
            FUNC_WORDS
        };
        self.acc.func_bits[word] |= 1 << (value % 64);
        if code < Kind::Interrupt as u8 {
            if code == Kind::KernelEntry as u8 {
                let word = value as u32;
                if let Some(s) = KernelEntry(word).as_syscall() {
                    self.acc.entries[usize::from(s.syscall())] += 1;
                }
                self.stack.push(word);
            } else if let Some(e) = self.stack.pop(value) {
                self.acc.exit(Some(e), value);
            }
        } else if code == Kind::Interrupt as u8 {
            // Interrupts are rare: a branch is cheaper than a counter updated by every
            // record.
            match self.acc.irq_small.get_mut(value as usize) {
                Some(c) => *c += 1,
                None => self.rare(code, value),
            }
        } else if !func_small {
            self.rare(code, value);
        }
    }
    #[inline(always)]
    fn other(&mut self, ts: u64, kind: Kind) {
        self.at(ts, kind);
    }
}

impl StatsVisitor<'_> {
    /// A large function id or IRQ number.
    #[cold]
    #[inline(never)]
    fn rare(&mut self, code: u8, value: u64) {
        if code == Kind::Interrupt as u8 {
            *self.acc.irqs.entry(value as u32).or_default() += 1;
        } else {
            self.acc.funcs.insert(value);
        }
    }
}

fn unit_stats(dump: &Dump<'_>, unit: &Unit, acc: &mut Acc, progress: &dyn Fn(u64)) -> UnitOut {
    let ring = &dump.rings[unit.ring];
    let mut stack = UnitStack::default();
    let mut out = UnitOut {
        stack: UnitStack::default(),
        records: 0,
        bytes: 0,
        first_ts: None,
        last_ts: 0,
        corrupt_blocks: 0,
        warnings: Vec::new(),
    };
    let mut v = StatsVisitor {
        acc,
        stack: &mut stack,
        last: 0,
    };
    let mut pending = 0u64;
    for block in &ring.blocks[unit.blocks.clone()] {
        let end = scan_block(block.records, block.base_ts, &mut ByKind(&mut v));
        if out.first_ts.is_none() && end.records > 0 {
            out.first_ts = block.decode().next().and_then(Result::ok).map(|r| r.ts);
        }
        if let Some(e) = end.error {
            out.corrupt_blocks += 1;
            out.warnings
                .push(block_warning(ring.cpu, block, e.offset, &e.to_string()));
        }
        // Where decoding stopped: past the END marker of a closed block.
        if end.records > 0 {
            out.bytes += end.offset.min(block.records.len()) as u64;
        }
        out.records += end.records;
        pending += block.records.len() as u64;
        if pending > 1 << 24 {
            progress(pending);
            pending = 0;
        }
    }
    progress(pending);
    out.last_ts = v.last;
    out.stack = stack;
    out
}

/// Summarises `dump` with up to `threads` workers; `progress` is told how many record
/// bytes were processed. Returns the summary and the decoding warnings.
pub fn compute(
    dump: &Dump<'_>,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> (Stats, Vec<Warning>) {
    let units = par::units(dump, threads);
    let (states, outs) = par::run(&units, threads, Acc::default, |acc, u| {
        unit_stats(dump, u, acc, progress)
    });
    let mut acc = Acc::default();
    for a in states {
        acc.merge(a);
    }
    let mut cpus: Vec<CpuStats> = dump
        .rings
        .iter()
        .map(|ring| CpuStats {
            cpu: ring.cpu,
            records: 0,
            overwritten: ring.overwritten,
            dropped: ring.dropped,
            torn_blocks: ring.torn_blocks,
            corrupt_blocks: 0,
            bytes: 0,
            first_ts: 0,
            last_ts: 0,
            clock_hz: ring.clock_hz,
        })
        .collect();
    let mut warnings = Vec::new();
    let mut carries: Vec<Carry> = vec![Carry::default(); dump.rings.len()];
    let mut firsts: Vec<Option<u64>> = vec![None; dump.rings.len()];
    for (u, o) in units.iter().zip(outs) {
        let c = &mut cpus[u.ring];
        carries[u.ring].apply(&o.stack, |wire, entry| acc.exit(entry, wire));
        c.records += o.records;
        c.bytes += o.bytes;
        c.corrupt_blocks += o.corrupt_blocks;
        if let Some(f) = o.first_ts {
            firsts[u.ring].get_or_insert(f);
            c.last_ts = o.last_ts;
        }
        warnings.extend(o.warnings);
    }
    for (c, f) in cpus.iter_mut().zip(firsts) {
        c.first_ts = f.unwrap_or(0);
    }
    for (irq, &n) in acc.irq_small.iter().enumerate() {
        if n > 0 {
            acc.irqs.insert(irq as u32, n);
        }
    }
    warnings.sort_by_key(|w| w.offset);
    (finish(dump, cpus, acc), warnings)
}

fn finish(dump: &Dump<'_>, cpus: Vec<CpuStats>, acc: Acc) -> Stats {
    let abi = dump.rings[0].abi;
    let records_per_kind = Kind::EVENTS
        .iter()
        .map(|k| (k.name(), acc.kinds[*k as usize]))
        .collect();
    let total_records: u64 = cpus.iter().map(|c| c.records).sum();
    let syscalls = (0..16u8)
        .filter(|&i| acc.entries[usize::from(i)] > 0 || acc.exits[usize::from(i)] > 0)
        .map(|i| {
            let h = acc.hist[usize::from(i)].as_deref();
            let p = |q| h.map_or(0, |h| h.percentile(q));
            SyscallStats {
                syscall: i,
                name: abi
                    .syscall_name(i)
                    .map_or_else(|| format!("#{i}"), str::to_string),
                count: acc.entries[usize::from(i)],
                exits: acc.exits[usize::from(i)],
                duration_sum_ticks: h.map_or(0, |h| u64::try_from(h.sum).unwrap_or(u64::MAX)),
                p50_ticks: p(50.0),
                p90_ticks: p(90.0),
                p99_ticks: p(99.0),
                max_ticks: h.map_or(0, |h| h.max),
            }
        })
        .collect();
    let mut irqs: Vec<IrqStats> = acc
        .irqs
        .iter()
        .map(|(&irq, &count)| IrqStats { irq, count })
        .collect();
    irqs.sort_by_key(|i| i.irq);
    let bytes: u64 = cpus.iter().map(|c| c.bytes).sum();
    let with_records = cpus.iter().filter(|c| c.records > 0);
    let first = with_records.clone().map(|c| c.first_ts).min().unwrap_or(0);
    let last = with_records.map(|c| c.last_ts).max().unwrap_or(0);
    Stats {
        total_records,
        records_per_kind,
        syscalls,
        unmatched_exits: acc.unmatched,
        irqs,
        functions: FunctionStats {
            entries: acc.kinds[Kind::FunctionEntry as usize],
            exits: acc.kinds[Kind::FunctionExit as usize],
            distinct: acc.funcs.len() as u64
                + acc.func_bits[..FUNC_WORDS]
                    .iter()
                    .map(|w| u64::from(w.count_ones()))
                    .sum::<u64>(),
        },
        lost: cpus
            .iter()
            .map(|c| c.overwritten.saturating_add(c.dropped))
            .sum(),
        torn_blocks: cpus.iter().map(|c| c.torn_blocks).sum(),
        corrupt_blocks: cpus.iter().map(|c| c.corrupt_blocks).sum(),
        bytes,
        mean_bytes_per_record: if total_records == 0 {
            0.0
        } else {
            bytes as f64 / total_records as f64
        },
        clock_hz: dump.rings[0].clock_hz,
        time_span_ticks: last.saturating_sub(first),
        cpus,
    }
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
        for k in Kind::EVENTS {
            let n = self.records_per_kind.get(k.name()).copied().unwrap_or(0);
            writeln!(out, "  {:<8} {n:>12}", k.name())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_exact_below_65536_and_close_above() {
        let mut h = Histogram::default();
        for v in 1..=100 {
            h.add(v);
        }
        assert_eq!(h.percentile(50.0), 50);
        assert_eq!(h.percentile(90.0), 90);
        assert_eq!(h.percentile(99.0), 99);
        assert_eq!(h.percentile(100.0), 100);
        let mut h = Histogram::default();
        h.add(1_000_000_007);
        let p = h.percentile(50.0);
        assert!((1_000_000_007 - 1_000_000_007 / 1024..=1_000_000_007).contains(&p));
        h.add(u64::MAX);
        assert_eq!(h.percentile(100.0), u64::MAX);
        for b in [0usize, 5, EXACT, EXACT + 77, BUCKETS - 1] {
            assert_eq!(Histogram::bucket(Histogram::lower_bound(b)), b);
        }
    }
}
