//! Threads (issue 17): names from THREAD records, per-thread CPU time from SWITCH
//! records, and per-interrupt time from interrupt kernel entries and their exits.
//!
//! # How time is attributed
//!
//! On each CPU, the thread a SWITCH names runs from that record to the next SWITCH on
//! the same CPU; its *running time* is the sum of those spans, interrupts taken while it
//! ran included (as FreeRTOS's own run-time statistics count it, which read their
//! counter at each switch). Time is *unknown* before the first SWITCH of a CPU, and
//! across a *lost window*: where records were lost (a LOST record, a block whose first
//! record number does not follow the previous block's, a torn or missing block in
//! between), the thread running after the gap is not known until the next SWITCH, so
//! the time from the last record before the gap to that SWITCH is counted as lost, not
//! given to anyone. Idle time is the running time of threads named `IDLE` (FreeRTOS's
//! idle task, `IDLE0`, `IDLE1`... on SMP).
//!
//! A thread's *kernel time* is the time of the kernel entries it made: the duration each
//! outermost KEXIT carries, given to the thread that ran when its KENTRY was written (on
//! seL4, the thread that entered the kernel: its syscall, its fault, or the interrupt
//! that arrived while it ran; the switch an exit records takes effect after that exit).
//! Its *user time* is its running time minus its kernel time. Nested entries count in
//! the outermost one only. An entry whose KENTRY came before the CPU's first SWITCH, or
//! across a loss, is given to no thread.
//!
//! Interrupt time is the duration a KEXIT carries when it closes a KENTRY of path
//! `Interrupt` (the FreeRTOS integration writes the IRQ number in the entry's word):
//! measured on the target, nested interrupts counted in the outer one too.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

use serde::Serialize;
use tracemark_format::scan::{scan_block, Visitor};
use tracemark_format::{EntryPath, KernelEntry};

use crate::dump::Dump;
use crate::stats::Histogram;

/// A thread's name and priority, from its latest THREAD record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadName {
    /// The name (invalid UTF-8 replaced).
    pub name: String,
    /// The priority, in the RTOS's numbering.
    pub prio: u32,
}

/// The names of the threads of `dump`: the latest THREAD record of each id in dump
/// order (ring by ring, block by block).
pub fn names(dump: &Dump<'_>) -> HashMap<u64, ThreadName> {
    struct V<'m>(&'m mut HashMap<u64, ThreadName>);
    impl Visitor for V<'_> {
        fn thread_name(&mut self, _ts: u64, thread: u64, prio: u32, name: &[u8]) {
            self.0.insert(
                thread,
                ThreadName {
                    name: String::from_utf8_lossy(name).into_owned(),
                    prio,
                },
            );
        }
    }
    let mut out = HashMap::new();
    for ring in &dump.rings {
        for block in &ring.blocks {
            scan_block(block.records, block.base_ts, &mut V(&mut out));
        }
    }
    out
}

/// One thread's share of the CPUs.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadStats {
    /// The id SWITCH records carry (FreeRTOS, seL4: the TCB address).
    pub thread: u64,
    /// Its name, if a THREAD record names it.
    pub name: Option<String>,
    /// Its priority, if named.
    pub prio: Option<u32>,
    /// Whether it is an idle thread (named `IDLE...`).
    pub idle: bool,
    /// Ticks it ran (between a SWITCH to it and the next SWITCH on that CPU).
    pub running_ticks: u64,
    /// `running_ticks` over the observed time of all CPUs, in percent.
    pub cpu_percent: f64,
    /// SWITCH records to it.
    pub switched_in: u64,
    /// Ticks in kernel entries it made (see the module documentation).
    pub kernel_ticks: u64,
    /// `running_ticks - kernel_ticks`: ticks it ran outside the kernel.
    pub user_ticks: u64,
}

/// One interrupt's count and time.
#[derive(Debug, Clone, Serialize)]
pub struct IsrStats {
    /// The IRQ number (the interrupt entry's word).
    pub irq: u32,
    /// Interrupt entries.
    pub count: u64,
    /// Of those, exits with a measured duration.
    pub timed: u64,
    /// Total ticks in the handler.
    pub total_ticks: u64,
    /// Shortest, mean, longest handler time in ticks.
    pub min_ticks: u64,
    /// Mean handler time in ticks.
    pub mean_ticks: f64,
    /// Longest handler time in ticks.
    pub max_ticks: u64,
    /// Median handler time in ticks.
    pub p50_ticks: u64,
    /// 90th percentile.
    pub p90_ticks: u64,
    /// 99th percentile.
    pub p99_ticks: u64,
}

/// A span of time on a CPU that no thread is given because records were lost.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LostWindow {
    /// The CPU.
    pub cpu: u32,
    /// Time of the last record before the loss.
    pub from_ts: u64,
    /// Time of the first SWITCH after it (or of the CPU's last record).
    pub to_ts: u64,
}

/// Per-thread CPU time and per-interrupt time of a dump.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ThreadReport {
    /// Clock frequency of the first ring (0: unknown).
    pub clock_hz: u64,
    /// Sum over CPUs of the time from their first to their last record.
    pub observed_ticks: u64,
    /// Running time of idle threads.
    pub idle_ticks: u64,
    /// Time before each CPU's first SWITCH.
    pub unknown_ticks: u64,
    /// Time in lost windows.
    pub lost_ticks: u64,
    /// The lost windows.
    pub lost_windows: Vec<LostWindow>,
    /// Threads, most running time first.
    pub threads: Vec<ThreadStats>,
    /// Interrupts by number.
    pub interrupts: Vec<IsrStats>,
}

#[derive(Default)]
struct Acc {
    /// Running ticks, switches in, kernel ticks.
    running: HashMap<u64, (u64, u64, u64)>,
    isr: BTreeMap<u32, (u64, Histogram, u64)>,
    unknown: u64,
    lost: u64,
    windows: Vec<LostWindow>,
    observed: u64,
}

/// Walks one ring in order.
struct RingWalk<'a> {
    acc: &'a mut Acc,
    cpu: u32,
    /// The running thread and since when; `None`: unknown.
    current: Option<(u64, u64)>,
    /// Start of the unknown or lost span while `current` is `None`, and whether it is
    /// lost (else: before the first switch).
    gap: Option<(u64, bool)>,
    first: Option<u64>,
    last: u64,
    /// Open kernel entries: the IRQ of interrupt entries, `None` for others.
    entries: Vec<Option<u32>>,
    /// The thread that ran when the outermost open entry was written, if known.
    entered_by: Option<u64>,
}

impl RingWalk<'_> {
    fn seen(&mut self, ts: u64) {
        if self.first.is_none() {
            self.first = Some(ts);
            self.gap = Some((ts, false));
        }
        self.last = ts;
    }

    /// Records were lost after the last record seen.
    fn lose(&mut self) {
        if self.first.is_none() {
            return;
        }
        let from = self.last;
        if let Some((t, since)) = self.current.take() {
            self.acc.running.entry(t).or_default().0 += from.saturating_sub(since);
            self.gap = Some((from, true));
        } else if self.gap.is_none() {
            self.gap = Some((from, true));
        } else if let Some((_, lost)) = &mut self.gap {
            // An unknown span that now also spans a loss: lost from here on.
            *lost |= true;
        }
        self.entries.clear();
        self.entered_by = None;
    }

    fn close_gap(&mut self, to: u64) {
        if let Some((from, lost)) = self.gap.take() {
            let d = to.saturating_sub(from);
            if lost {
                self.acc.lost += d;
                self.acc.windows.push(LostWindow {
                    cpu: self.cpu,
                    from_ts: from,
                    to_ts: to,
                });
            } else {
                self.acc.unknown += d;
            }
        }
    }

    fn finish(&mut self) {
        let last = self.last;
        if let Some((t, since)) = self.current.take() {
            self.acc.running.entry(t).or_default().0 += last.saturating_sub(since);
        }
        self.close_gap(last);
        if let Some(f) = self.first {
            self.acc.observed += last.saturating_sub(f);
        }
    }
}

impl Visitor for RingWalk<'_> {
    fn thread_switch(&mut self, ts: u64, thread: u64) {
        self.seen(ts);
        match self.current {
            Some((t, since)) => {
                self.acc.running.entry(t).or_default().0 += ts.saturating_sub(since);
            }
            None => self.close_gap(ts),
        }
        self.acc.running.entry(thread).or_default().1 += 1;
        self.current = Some((thread, ts));
    }
    fn kernel_entry(&mut self, ts: u64, word: u32) {
        self.seen(ts);
        let e = KernelEntry(word);
        let irq = (e.path() == EntryPath::Interrupt)
            .then(|| e.as_other().map(|o| o.word()))
            .flatten();
        if let Some(irq) = irq {
            self.acc.isr.entry(irq).or_default().0 += 1;
        }
        if self.entries.is_empty() {
            self.entered_by = self.current.map(|(t, _)| t);
        }
        self.entries.push(irq);
    }
    fn kernel_exit(&mut self, ts: u64, wire: u64) {
        self.seen(ts);
        let open = self.entries.pop();
        if open.is_some() && self.entries.is_empty() {
            if let Some(t) = self.entered_by.take() {
                if wire >= 2 {
                    self.acc.running.entry(t).or_default().2 += wire - 2;
                }
            }
        }
        if let Some(Some(irq)) = open {
            if wire >= 2 {
                let e = self.acc.isr.entry(irq).or_default();
                e.2 = if e.1.is_empty() {
                    wire - 2
                } else {
                    e.2.min(wire - 2)
                };
                e.1.add(wire - 2);
            }
        }
    }
    fn lost(&mut self, ts: u64, _count: u64, _since: u64) {
        self.lose();
        // The LOST record is the first record after the gap.
        self.seen(ts);
    }
    fn interrupt(&mut self, ts: u64, _irq: u32) {
        self.seen(ts);
    }
    fn function_entry(&mut self, ts: u64, _func: u64) {
        self.seen(ts);
    }
    fn function_exit(&mut self, ts: u64, _func: u64) {
        self.seen(ts);
    }
    fn user(&mut self, ts: u64, _id: u32, _payload: &[u8]) {
        self.seen(ts);
    }
    fn image(&mut self, ts: u64, _base: u64, _size: u64, _id: u64) {
        self.seen(ts);
    }
    fn thread_name(&mut self, ts: u64, _thread: u64, _prio: u32, _name: &[u8]) {
        self.seen(ts);
    }
    fn clock_back(&mut self, ts: u64, _back: u64) {
        self.seen(ts);
    }
}

/// Per-thread CPU time and per-interrupt time of `dump` (see the module documentation).
pub fn compute(dump: &Dump<'_>) -> ThreadReport {
    let names = names(dump);
    let mut acc = Acc::default();
    for ring in &dump.rings {
        let mut w = RingWalk {
            acc: &mut acc,
            cpu: ring.cpu,
            current: None,
            gap: None,
            first: None,
            last: 0,
            entries: Vec::new(),
            entered_by: None,
        };
        let mut prev: Option<&crate::dump::Block<'_>> = None;
        for block in &ring.blocks {
            if let Some(p) = prev {
                let contiguous = block.seq == p.seq.wrapping_add(1)
                    && block.first_record == p.first_record + u64::from(p.header_records);
                if !contiguous {
                    w.lose();
                }
            }
            let end = scan_block(block.records, block.base_ts, &mut w);
            if end.error.is_some() {
                // The rest of the block is unknown: a loss.
                w.lose();
            }
            prev = Some(block);
        }
        w.finish();
    }
    let observed = acc.observed;
    let pct = |t: u64| {
        if observed == 0 {
            0.0
        } else {
            t as f64 * 100.0 / observed as f64
        }
    };
    let mut threads: Vec<ThreadStats> = acc
        .running
        .iter()
        .map(|(&thread, &(running, switched_in, kernel))| {
            let n = names.get(&thread);
            ThreadStats {
                thread,
                name: n.map(|n| n.name.clone()),
                prio: n.map(|n| n.prio),
                idle: n.is_some_and(|n| n.name.starts_with("IDLE")),
                running_ticks: running,
                cpu_percent: pct(running),
                switched_in,
                kernel_ticks: kernel,
                user_ticks: running.saturating_sub(kernel),
            }
        })
        .collect();
    threads.sort_by(|a, b| {
        b.running_ticks
            .cmp(&a.running_ticks)
            .then(a.thread.cmp(&b.thread))
    });
    let interrupts = acc
        .isr
        .iter()
        .map(|(&irq, (count, h, min))| {
            let timed = h.len();
            let total = u64::try_from(h.sum()).unwrap_or(u64::MAX);
            IsrStats {
                irq,
                count: *count,
                timed,
                total_ticks: total,
                min_ticks: *min,
                mean_ticks: if timed == 0 {
                    0.0
                } else {
                    total as f64 / timed as f64
                },
                max_ticks: h.max(),
                p50_ticks: h.percentile(50.0),
                p90_ticks: h.percentile(90.0),
                p99_ticks: h.percentile(99.0),
            }
        })
        .collect();
    ThreadReport {
        clock_hz: dump.rings.first().map_or(0, |r| r.clock_hz),
        observed_ticks: observed,
        idle_ticks: threads
            .iter()
            .filter(|t| t.idle)
            .map(|t| t.running_ticks)
            .sum(),
        unknown_ticks: acc.unknown,
        lost_ticks: acc.lost,
        lost_windows: acc.windows,
        threads,
        interrupts,
    }
}

impl ThreadReport {
    /// Whether there is anything to show (a SWITCH or an interrupt entry).
    pub fn is_empty(&self) -> bool {
        self.threads.is_empty() && self.interrupts.is_empty()
    }

    /// The text report.
    pub fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let time = |t: u64| -> String {
            if self.clock_hz == 0 {
                format!("{t} ticks")
            } else {
                format!("{t} ticks ({:.6} s)", t as f64 / self.clock_hz as f64)
            }
        };
        if !self.threads.is_empty() {
            writeln!(
                out,
                "threads (running time between switches, interrupts included):"
            )?;
            writeln!(
                out,
                "  {:<18} {:<20} {:>5} {:>14} {:>7} {:>9} {:>14} {:>14}",
                "thread",
                "name",
                "prio",
                "running ticks",
                "cpu %",
                "switches",
                "kernel ticks",
                "user ticks"
            )?;
            for t in &self.threads {
                writeln!(
                    out,
                    "  {:<#18x} {:<20} {:>5} {:>14} {:>6.2}% {:>9} {:>14} {:>14}{}",
                    t.thread,
                    t.name.as_deref().unwrap_or("?"),
                    t.prio.map_or_else(|| "-".into(), |p| p.to_string()),
                    t.running_ticks,
                    t.cpu_percent,
                    t.switched_in,
                    t.kernel_ticks,
                    t.user_ticks,
                    if t.idle { "  (idle)" } else { "" }
                )?;
            }
            writeln!(out, "  observed: {}", time(self.observed_ticks))?;
            writeln!(out, "  idle: {}", time(self.idle_ticks))?;
            writeln!(
                out,
                "  before the first switch: {}",
                time(self.unknown_ticks)
            )?;
            writeln!(
                out,
                "  lost windows: {} ({}), not attributed to any thread",
                self.lost_windows.len(),
                time(self.lost_ticks)
            )?;
        }
        if !self.interrupts.is_empty() {
            writeln!(out, "interrupt time (ticks):")?;
            writeln!(
                out,
                "  {:>6} {:>9} {:>12} {:>8} {:>10} {:>8} {:>8} {:>8} {:>8}",
                "irq", "count", "total", "min", "mean", "p50", "p90", "p99", "max"
            )?;
            for i in &self.interrupts {
                writeln!(
                    out,
                    "  {:>6} {:>9} {:>12} {:>8} {:>10.1} {:>8} {:>8} {:>8} {:>8}",
                    i.irq,
                    i.count,
                    i.total_ticks,
                    i.min_ticks,
                    i.mean_ticks,
                    i.p50_ticks,
                    i.p90_ticks,
                    i.p99_ticks,
                    i.max_ticks
                )?;
            }
        }
        Ok(())
    }
}
