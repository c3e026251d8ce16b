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

mod histogram;
mod report;

pub use histogram::Histogram;
pub use report::{CpuStats, FunctionStats, IrqStats, Stats, SyscallStats};

use std::collections::{HashMap, HashSet};

use tracemark_format::record::ExitDuration;
use tracemark_format::scan::{scan_block, ByKind, KindVisitor};
use tracemark_format::{KernelEntry, Kind};

use crate::dump::{count_warning, Dump, Warning};
use crate::merge::block_warning;
use crate::par::{self, Carry, Unit, UnitStack};

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
        // No entry on the target or nesting overflow: no duration.
        if let ExitDuration::Ticks(ticks) = ExitDuration::from_wire(wire) {
            self.hist[i].get_or_insert_with(Default::default).add(ticks);
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
        out.warnings.extend(count_warning(
            ring.cpu,
            block,
            end.records - end.lost,
            end.error.is_none(),
        ));
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
    // Images of one ring stored one after the other (a live capture's polls): each
    // loses only what its predecessor does not hold (FORMAT.md section 7.2).
    let mut last: Vec<(u32, u64, u64, u64)> = Vec::new();
    for (c, ring) in cpus.iter_mut().zip(&dump.rings) {
        let producer = ring.view.header.producer_id.get();
        let end = ring.blocks.last().map_or(ring.overwritten, |b| {
            b.first_record + u64::from(b.header_records)
        });
        let prev = last.iter_mut().find(|p| p.0 == ring.cpu && p.1 == producer);
        if let Some(p) = prev {
            if let Some((o, d)) =
                tracemark_format::live::chained_losses(p.2, p.3, c.overwritten, c.dropped)
            {
                c.overwritten = o;
                c.dropped = d;
            }
            *p = (ring.cpu, producer, end, ring.dropped);
        } else {
            last.push((ring.cpu, producer, end, ring.dropped));
        }
    }
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
                duration_sum_ticks: h.map_or(0, |h| u64::try_from(h.sum()).unwrap_or(u64::MAX)),
                p50_ticks: p(50.0),
                p90_ticks: p(90.0),
                p99_ticks: p(99.0),
                max_ticks: h.map_or(0, |h| h.max()),
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
            .fold(0u64, u64::saturating_add),
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
