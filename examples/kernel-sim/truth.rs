//! The ground truth: what the dump holds, counted by the generator as it records.
//!
//! Drop mode keeps every record that was written (plus the `Lost` records the encoder
//! inserts once there is room again), so the counts are simple sums. Overwrite mode loses
//! the oldest *blocks*: the counts are kept per block (a [`Segment`]), the generator
//! noticing a new block when the ring's write position moves to a new sequence number,
//! and the segments of reclaimed blocks are discarded; the number of records they held
//! must equal the ring header's `overwritten` count, which [`CpuAccount::finish`] checks.
//!
//! Exits are matched to entries the way a decoder does it: one stack per CPU over the
//! records it sees. An exit whose entry was in an earlier block is matched only if that
//! block survived; otherwise the decoder sees an exit with an empty stack (the entries
//! of a stack are in time order, so all older entries are gone too): an unmatched exit.

use std::collections::VecDeque;

use serde::Serialize;

use crate::workload::{FUNCTIONS, IRQS};

/// Index of `KENTRY` in the kind arrays.
pub const KENTRY: usize = 0;
/// Index of `KEXIT`.
pub const KEXIT: usize = 1;
/// Index of `IRQ`.
pub const IRQ: usize = 2;
/// Index of `FENTRY`.
pub const FENTRY: usize = 3;
/// Index of `FEXIT`.
pub const FEXIT: usize = 4;
/// Index of `USER`.
pub const USER: usize = 5;
/// Index of `IMAGE`.
pub const IMAGE: usize = 6;
/// Index of `LOST`.
pub const LOST: usize = 7;

/// Syscall numbers are 4 bits.
const SYSCALLS: usize = 16;

#[derive(Debug, Clone, Copy, Default)]
struct SysAgg {
    count: u64,
    exits: u64,
    dur_sum: u64,
    dur_max: u64,
}

impl SysAgg {
    fn exit(&mut self, dur: u64) {
        self.exits += 1;
        self.dur_sum += dur;
        self.dur_max = self.dur_max.max(dur);
    }
}

/// An exit whose entry lies in an earlier block.
#[derive(Debug, Clone, Copy)]
struct CrossExit {
    entry_block: u64,
    /// 0 if the entry was not a syscall.
    sys: u8,
    dur: u64,
}

/// Counts over a run of records: one block (overwrite mode) or the whole ring (drop).
#[derive(Debug, Clone)]
struct Segment {
    ordinal: u64,
    /// Event records (`Lost` excluded), as the block header counts them.
    records: u64,
    first_ts: Option<u64>,
    kinds: [u64; 8],
    sys: [SysAgg; SYSCALLS],
    irqs: [u64; IRQS.len()],
    dur_sum: u64,
    dur_max: u64,
    unmatched: u64,
    cross: Vec<CrossExit>,
}

impl Segment {
    fn new(ordinal: u64) -> Self {
        Segment {
            ordinal,
            records: 0,
            first_ts: None,
            kinds: [0; 8],
            sys: [SysAgg::default(); SYSCALLS],
            irqs: [0; IRQS.len()],
            dur_sum: 0,
            dur_max: 0,
            unmatched: 0,
            cross: Vec::new(),
        }
    }

    fn reset(&mut self, ordinal: u64) {
        let mut cross = std::mem::take(&mut self.cross);
        cross.clear();
        *self = Segment {
            cross,
            ..Segment::new(ordinal)
        };
    }
}

/// A recorded event, as the accounting needs it.
#[derive(Debug, Clone, Copy)]
pub enum Ev {
    /// Kernel entry; `sys` is 0 for a non-syscall entry.
    KEntry {
        /// Syscall number or 0.
        sys: u8,
    },
    /// Kernel exit of `dur` ticks.
    KExit {
        /// Duration the encoder measured.
        dur: u64,
    },
    /// Interrupt, by slot in [`IRQS`].
    Irq {
        /// Slot.
        slot: u8,
    },
    /// Function entry.
    FEntry(u16),
    /// Function exit.
    FExit(u16),
    /// User event.
    User,
    /// Image record.
    Image,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    block: u64,
    sys: u8,
}

/// The running account of one CPU.
pub struct CpuAccount {
    cpu: u32,
    overwrite: bool,
    block_count: usize,
    segs: VecDeque<Segment>,
    cur_seq: Option<u32>,
    next_ordinal: u64,
    reclaimed_records: u64,
    /// What the decoder's stack holds (entries that were written).
    stack: Vec<Open>,
    /// Per function id: 1 + ordinal of the last block with a FENTRY/FEXIT of it (0: never).
    fn_last: Vec<u64>,
    fn_entry_last: Vec<u64>,
    written: u64,
    dropped: u64,
    last_ts: Option<u64>,
}

/// The truth about one CPU's ring image.
#[derive(Debug, Clone, Serialize)]
pub struct CpuTruth {
    /// CPU number.
    pub cpu: u32,
    /// Events the encoder reported as written.
    pub written: u64,
    /// Events dropped (drop mode, ring full).
    pub dropped: u64,
    /// Events lost with reclaimed blocks (overwrite mode).
    pub overwritten: u64,
    /// Records in the dump, `LOST` records included.
    pub records_in_dump: u64,
    /// Records in the dump per kind.
    pub per_kind: PerKind,
    /// Timestamp of the first record in the dump (absent if empty).
    pub first_ts: Option<u64>,
    /// Timestamp of the last record in the dump.
    pub last_ts: Option<u64>,
    /// Exits in the dump whose entry is not.
    pub unmatched_exits: u64,
}

/// Record counts per kind.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[allow(non_snake_case)]
pub struct PerKind {
    /// Kernel entries.
    pub KENTRY: u64,
    /// Kernel exits.
    pub KEXIT: u64,
    /// Interrupts.
    pub IRQ: u64,
    /// Function entries.
    pub FENTRY: u64,
    /// Function exits.
    pub FEXIT: u64,
    /// User events.
    pub USER: u64,
    /// Image records.
    pub IMAGE: u64,
    /// `Lost` records the encoder inserted (drop mode).
    pub LOST: u64,
}

impl PerKind {
    fn from_array(k: &[u64; 8]) -> Self {
        PerKind {
            KENTRY: k[KENTRY],
            KEXIT: k[KEXIT],
            IRQ: k[IRQ],
            FENTRY: k[FENTRY],
            FEXIT: k[FEXIT],
            USER: k[USER],
            IMAGE: k[IMAGE],
            LOST: k[LOST],
        }
    }
}

/// Per-syscall totals over the dump.
#[derive(Debug, Clone, Serialize)]
pub struct SyscallTruth {
    /// Syscall number.
    pub syscall: u8,
    /// Kernel entries for it.
    pub count: u64,
    /// Exits matched to one of its entries.
    pub exits: u64,
    /// Sum of those exits' durations.
    pub duration_sum_ticks: u64,
    /// Longest of them.
    pub max_ticks: u64,
}

/// Per-IRQ totals over the dump.
#[derive(Debug, Clone, Serialize)]
pub struct IrqTruth {
    /// IRQ number.
    pub irq: u32,
    /// `IRQ` records for it.
    pub count: u64,
}

/// Function-event totals over the dump.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionTruth {
    /// `FENTRY` records.
    pub entries: u64,
    /// `FEXIT` records.
    pub exits: u64,
    /// Distinct ids over `FENTRY` and `FEXIT` records.
    pub distinct: u64,
    /// Distinct ids over `FENTRY` records only.
    pub distinct_entries: u64,
}

/// What one CPU's account adds to the totals.
pub struct CpuTotals {
    kinds: [u64; 8],
    sys: [SysAgg; SYSCALLS],
    irqs: [u64; IRQS.len()],
    dur_sum: u64,
    dur_max: u64,
    unmatched: u64,
    fn_distinct: Vec<bool>,
    fn_entry_distinct: Vec<bool>,
}

impl CpuAccount {
    /// An account for `cpu`'s ring of `block_count` blocks.
    pub fn new(cpu: u32, overwrite: bool, block_count: u32) -> Self {
        let mut segs = VecDeque::with_capacity(if overwrite { block_count as usize } else { 1 });
        if !overwrite {
            segs.push_back(Segment::new(0));
        }
        CpuAccount {
            cpu,
            overwrite,
            block_count: block_count as usize,
            segs,
            cur_seq: None,
            next_ordinal: 0,
            reclaimed_records: 0,
            stack: Vec::with_capacity(16),
            fn_last: vec![0; FUNCTIONS as usize],
            fn_entry_last: vec![0; FUNCTIONS as usize],
            written: 0,
            dropped: 0,
            last_ts: None,
        }
    }

    /// Whether block tracking is needed: the caller passes the write position's sequence
    /// number to [`CpuAccount::written`] only then.
    pub fn tracks_blocks(&self) -> bool {
        self.overwrite
    }

    fn open_block(&mut self) {
        let ordinal = self.next_ordinal;
        self.next_ordinal += 1;
        if self.segs.len() == self.block_count {
            // The encoder reclaims the slot of the block `block_count` back.
            let mut old = self.segs.pop_front().unwrap_or_else(|| Segment::new(0));
            self.reclaimed_records += old.records;
            old.reset(ordinal);
            self.segs.push_back(old);
        } else {
            self.segs.push_back(Segment::new(ordinal));
        }
    }

    /// An event was written at `ts`; `seq` is the sequence number of the block the
    /// write position is in after it (overwrite mode; ignored otherwise).
    #[inline]
    pub fn written(&mut self, ts: u64, seq: u32, ev: Ev) {
        if self.overwrite && self.cur_seq != Some(seq) {
            self.cur_seq = Some(seq);
            self.open_block();
        }
        self.written += 1;
        self.last_ts = Some(ts);
        let Some(seg) = self.segs.back_mut() else {
            return;
        };
        seg.records += 1;
        seg.first_ts.get_or_insert(ts);
        let block = seg.ordinal;
        match ev {
            Ev::KEntry { sys } => {
                seg.kinds[KENTRY] += 1;
                if sys != 0 {
                    seg.sys[usize::from(sys) % SYSCALLS].count += 1;
                }
                self.stack.push(Open { block, sys });
            }
            Ev::KExit { dur } => {
                seg.kinds[KEXIT] += 1;
                seg.dur_sum += dur;
                seg.dur_max = seg.dur_max.max(dur);
                match self.stack.pop() {
                    None => seg.unmatched += 1,
                    Some(open) if open.block == block => {
                        if open.sys != 0 {
                            seg.sys[usize::from(open.sys) % SYSCALLS].exit(dur);
                        }
                    }
                    Some(open) => seg.cross.push(CrossExit {
                        entry_block: open.block,
                        sys: open.sys,
                        dur,
                    }),
                }
            }
            Ev::Irq { slot } => {
                seg.kinds[IRQ] += 1;
                seg.irqs[usize::from(slot)] += 1;
            }
            Ev::FEntry(f) => {
                seg.kinds[FENTRY] += 1;
                self.fn_last[usize::from(f)] = block + 1;
                self.fn_entry_last[usize::from(f)] = block + 1;
            }
            Ev::FExit(f) => {
                seg.kinds[FEXIT] += 1;
                self.fn_last[usize::from(f)] = block + 1;
            }
            Ev::User => seg.kinds[USER] += 1,
            Ev::Image => seg.kinds[IMAGE] += 1,
        }
    }

    /// The encoder wrote a `Lost` record at `ts` (drop mode).
    pub fn lost_record(&mut self, ts: u64) {
        self.last_ts = Some(ts);
        if let Some(seg) = self.segs.back_mut() {
            seg.first_ts.get_or_insert(ts);
            seg.kinds[LOST] += 1;
        }
    }

    /// An event was dropped.
    #[inline]
    pub fn dropped(&mut self) {
        self.dropped += 1;
    }

    /// Closes the account against the ring's own loss counters; fails if they disagree
    /// with what the generator counted (a bug in the simulator or the encoder).
    pub fn finish(
        self,
        ring_overwritten: u64,
        ring_dropped: u64,
    ) -> Result<(CpuTruth, CpuTotals), String> {
        if ring_dropped != self.dropped {
            return Err(format!(
                "cpu {}: ring says {} dropped, the simulator saw {}",
                self.cpu, ring_dropped, self.dropped
            ));
        }
        if ring_overwritten != self.reclaimed_records {
            return Err(format!(
                "cpu {}: ring says {} overwritten, the simulator's reclaimed blocks held {}",
                self.cpu, ring_overwritten, self.reclaimed_records
            ));
        }
        let first_block = self.segs.front().map_or(0, |s| s.ordinal);
        let mut t = CpuTotals {
            kinds: [0; 8],
            sys: [SysAgg::default(); SYSCALLS],
            irqs: [0; IRQS.len()],
            dur_sum: 0,
            dur_max: 0,
            unmatched: 0,
            fn_distinct: self.fn_last.iter().map(|&b| b > first_block).collect(),
            fn_entry_distinct: self
                .fn_entry_last
                .iter()
                .map(|&b| b > first_block)
                .collect(),
        };
        for seg in &self.segs {
            for (a, b) in t.kinds.iter_mut().zip(seg.kinds) {
                *a += b;
            }
            for (a, b) in t.sys.iter_mut().zip(seg.sys) {
                a.count += b.count;
                a.exits += b.exits;
                a.dur_sum += b.dur_sum;
                a.dur_max = a.dur_max.max(b.dur_max);
            }
            for (a, b) in t.irqs.iter_mut().zip(seg.irqs) {
                *a += b;
            }
            t.dur_sum += seg.dur_sum;
            t.dur_max = t.dur_max.max(seg.dur_max);
            t.unmatched += seg.unmatched;
            for c in &seg.cross {
                if c.entry_block < first_block {
                    t.unmatched += 1;
                } else if c.sys != 0 {
                    t.sys[usize::from(c.sys) % SYSCALLS].exit(c.dur);
                }
            }
        }
        let records_in_dump = t.kinds.iter().sum();
        let in_dump = records_in_dump > 0;
        let truth = CpuTruth {
            cpu: self.cpu,
            written: self.written,
            dropped: self.dropped,
            overwritten: ring_overwritten,
            records_in_dump,
            per_kind: PerKind::from_array(&t.kinds),
            first_ts: self.segs.front().and_then(|s| s.first_ts),
            last_ts: if in_dump { self.last_ts } else { None },
            unmatched_exits: t.unmatched,
        };
        Ok((truth, t))
    }
}

/// The whole truth file.
#[derive(Debug, Clone, Serialize)]
pub struct Truth {
    /// `overwrite` or `drop`.
    pub mode: &'static str,
    /// Per CPU, in CPU order.
    pub cpus: Vec<CpuTruth>,
    /// Records in the dump per kind, over all CPUs.
    pub per_kind: PerKind,
    /// Syscalls with at least one entry or matched exit in the dump, by number.
    pub syscalls: Vec<SyscallTruth>,
    /// IRQs with at least one `IRQ` record in the dump, by number.
    pub irqs: Vec<IrqTruth>,
    /// Sum of the durations of all `KEXIT` records in the dump.
    pub duration_sum_ticks: u64,
    /// Longest of them.
    pub duration_max_ticks: u64,
    /// Exits in the dump the decoder cannot match to an entry.
    pub unmatched_exits: u64,
    /// Function-event totals.
    pub functions: FunctionTruth,
    /// Events the simulator generated (written and dropped).
    pub events: u64,
    /// Seed of the run.
    pub seed: u64,
    /// Clock frequency in the ring headers.
    pub clock_hz: u64,
    /// Bytes of the dump.
    pub bytes: u64,
}

impl Truth {
    /// Adds up the per-CPU results.
    pub fn combine(
        mode: &'static str,
        per_cpu: Vec<(CpuTruth, CpuTotals)>,
        events: u64,
        seed: u64,
        clock_hz: u64,
        bytes: u64,
    ) -> Self {
        let mut kinds = [0u64; 8];
        let mut sys = [SysAgg::default(); SYSCALLS];
        let mut irqs = [0u64; IRQS.len()];
        let (mut dur_sum, mut dur_max, mut unmatched) = (0, 0, 0);
        let mut fn_any = vec![false; FUNCTIONS as usize];
        let mut fn_entry = vec![false; FUNCTIONS as usize];
        let mut cpus = Vec::new();
        for (truth, t) in per_cpu {
            for (a, b) in kinds.iter_mut().zip(t.kinds) {
                *a += b;
            }
            for (a, b) in sys.iter_mut().zip(t.sys) {
                a.count += b.count;
                a.exits += b.exits;
                a.dur_sum += b.dur_sum;
                a.dur_max = a.dur_max.max(b.dur_max);
            }
            for (a, b) in irqs.iter_mut().zip(t.irqs) {
                *a += b;
            }
            dur_sum += t.dur_sum;
            dur_max = dur_max.max(t.dur_max);
            unmatched += t.unmatched;
            for (a, b) in fn_any.iter_mut().zip(&t.fn_distinct) {
                *a |= *b;
            }
            for (a, b) in fn_entry.iter_mut().zip(&t.fn_entry_distinct) {
                *a |= *b;
            }
            cpus.push(truth);
        }
        let syscalls = sys
            .iter()
            .enumerate()
            .filter(|(_, s)| s.count > 0 || s.exits > 0)
            .map(|(n, s)| SyscallTruth {
                syscall: n as u8,
                count: s.count,
                exits: s.exits,
                duration_sum_ticks: s.dur_sum,
                max_ticks: s.dur_max,
            })
            .collect();
        let mut irq_list: Vec<_> = IRQS
            .iter()
            .zip(irqs)
            .filter(|(_, c)| *c > 0)
            .map(|(&irq, count)| IrqTruth { irq, count })
            .collect();
        irq_list.sort_by_key(|i| i.irq);
        Truth {
            mode,
            cpus,
            per_kind: PerKind::from_array(&kinds),
            syscalls,
            irqs: irq_list,
            duration_sum_ticks: dur_sum,
            duration_max_ticks: dur_max,
            unmatched_exits: unmatched,
            functions: FunctionTruth {
                entries: kinds[FENTRY],
                exits: kinds[FEXIT],
                distinct: fn_any.iter().filter(|b| **b).count() as u64,
                distinct_entries: fn_entry.iter().filter(|b| **b).count() as u64,
            },
            events,
            seed,
            clock_hz,
            bytes,
        }
    }
}
