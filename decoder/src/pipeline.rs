//! The decode command's engine: records of the selected rings, formatted in parallel per
//! run of blocks, written in time order across rings.
//!
//! 1. A first pass ([`tracemark_format::scan`], parallel over runs of blocks, see
//!    [`crate::par`]) finds the kernel entries open at the start of each run, so that
//!    every run can then be formatted independently with exits named after the entries
//!    they close, exactly as one pass in order would.
//! 2. Workers format runs into byte buffers, remembering each line's time. Each ring may
//!    have at most [`LOOKAHEAD`] runs formatted ahead of the writer, and workers take
//!    the run that starts earliest, so memory stays bounded whatever the dump's size.
//! 3. The calling thread merges the rings' lines by time (ties: ring order) and writes
//!    them; with one ring the buffers are written as they are.
//!
//! Filters apply per record (kinds, time window); a run that starts after the window's
//! end is not formatted at all.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{IoSlice, Write};
use std::sync::{Condvar, Mutex};

use tracemark_format::scan::{scan_block, ByKind, KindVisitor};
use tracemark_format::KernelEntry;

use crate::dump::{count_warning, Dump, Warning};
use crate::filter::RingFilter;
use crate::merge::{block_warning, BlockItems, EntryStack};
use crate::par::{self, Carry, Unit, UnitStack};
use crate::render::{self, Format, RingCtx};

/// Runs of blocks each ring may have formatted ahead of the writer.
pub const LOOKAHEAD: usize = 3;
/// Blocks per run.
pub const UNIT_BLOCKS: usize = 16;

/// The formatted records of one run: the text and, per line, its time and end offset.
#[derive(Default)]
struct Formatted {
    text: Vec<u8>,
    lines: Vec<(u64, usize)>,
}

impl Formatted {
    /// Forgets the lines, keeping the allocations.
    fn clear(&mut self) {
        self.text.clear();
        self.lines.clear();
    }
}

struct StackOnly<'a>(&'a mut UnitStack);

impl KindVisitor for StackOnly<'_> {
    #[inline(always)]
    fn simple(&mut self, _ts: u64, code: u8, value: u64) {
        if code == 0 {
            self.0.push(value as u32);
        } else if code == 1 {
            self.0.pop(value);
        }
    }
}

/// Runs of [`UNIT_BLOCKS`] blocks of each of `rings`, ring by ring.
fn units(dump: &Dump<'_>, rings: &[u32]) -> Vec<Vec<Unit>> {
    rings
        .iter()
        .map(|&ri| {
            let n = dump.rings[ri as usize].blocks.len();
            (0..n)
                .step_by(UNIT_BLOCKS)
                .map(|a| Unit {
                    ring: ri as usize,
                    blocks: a..(a + UNIT_BLOCKS).min(n),
                })
                .collect()
        })
        .collect()
}

/// Formats one run of blocks.
fn format_unit(
    dump: &Dump<'_>,
    unit: &Unit,
    start: &[u32],
    filter: &RingFilter,
    format: Format,
    ctx: &RingCtx,
    mut f: Formatted,
) -> Formatted {
    let ring = &dump.rings[unit.ring];
    let entries: Vec<KernelEntry> = start.iter().map(|&w| KernelEntry(w)).collect();
    let mut stack = EntryStack::from_entries(&entries);
    f.clear();
    let mut time = render::SecondsCache::default();
    for block in &ring.blocks[unit.blocks.clone()] {
        let mut counter = render::Counter::new(block.first_record);
        let mut items = BlockItems::new(block, unit.ring as u32);
        while let Some(Ok(item)) = items.next_item(&mut stack) {
            if filter.wants(&item) {
                if format == Format::Text {
                    let text = item.number.map(|_| counter.text());
                    render::text_numbered(&mut f.text, &item, ctx, text, &mut time);
                } else {
                    render::record(&mut f.text, format, &item, ctx);
                }
                f.lines.push((item.ts, f.text.len()));
            }
            if item.number.is_some() {
                counter.incr();
            }
        }
    }
    f
}

struct Ring {
    /// Runs started (handed to a worker).
    started: usize,
    /// Runs taken by the writer.
    taken: usize,
    /// Formatted runs not yet taken, by run index.
    done: VecDeque<Option<Formatted>>,
    /// Whether the ring is in [`Shared::ready`].
    queued: bool,
}

struct Shared {
    rings: Vec<Ring>,
    /// Rings whose next run may start now (fewer than [`LOOKAHEAD`] runs ahead of the
    /// writer), by the time their next run starts: each ring at most once (its
    /// `queued`). A heap, so that picking the earliest run costs O(log rings).
    ready: BinaryHeap<Reverse<(u64, usize)>>,
    /// Rings with runs not yet started.
    left: usize,
    failed: bool,
    /// Buffers the writer is done with, for the workers to reuse (no allocation, no
    /// page faults per run).
    free: Vec<Formatted>,
}

/// Writes the records of `rings` (indices into `dump.rings`) that `filters` (one per
/// ring of the dump) want, in `format`, in time order, with up to `threads` workers.
/// `progress` is told how many records were handled. Returns the decoding warnings.
pub fn write_records(
    dump: &Dump<'_>,
    rings: &[u32],
    filters: &[RingFilter],
    format: Format,
    threads: usize,
    out: &mut dyn Write,
    progress: &(dyn Fn(u64) + Sync),
) -> std::io::Result<Vec<Warning>> {
    let units = units(dump, rings);
    let ctxs: Vec<RingCtx> = dump.rings.iter().map(RingCtx::of).collect();

    // Pass 1: the open entries at the start of every run, and the decoding errors.
    let flat: Vec<Unit> = units.iter().flatten().cloned().collect();
    let (_, scanned) = par::run(
        &flat,
        threads,
        || (),
        |(), u| {
            let ring = &dump.rings[u.ring];
            let mut stack = UnitStack::default();
            let mut warnings = Vec::new();
            for block in &ring.blocks[u.blocks.clone()] {
                let end = scan_block(
                    block.records,
                    block.base_ts,
                    &mut ByKind(&mut StackOnly(&mut stack)),
                );
                if let Some(e) = end.error {
                    warnings.push(block_warning(ring.cpu, block, e.offset, &e.to_string()));
                }
                warnings.extend(count_warning(
                    ring.cpu,
                    block,
                    end.records - end.lost,
                    end.error.is_none(),
                ));
            }
            (stack, warnings)
        },
    );
    let mut warnings = Vec::new();
    let mut starts: Vec<Vec<Vec<u32>>> = Vec::with_capacity(units.len());
    let mut scanned = scanned.into_iter();
    for ring_units in &units {
        let mut carry = Carry::default();
        let mut s = Vec::with_capacity(ring_units.len());
        for _ in ring_units {
            let Some((stack, w)) = scanned.next() else {
                break;
            };
            s.push(carry.open.clone());
            carry.apply(&stack, |_, _| {});
            warnings.extend(w);
        }
        starts.push(s);
    }
    // A run whose blocks all start after the window's end holds nothing wanted. Every
    // block is looked at, not only the run's first: a block out of time order (a clock
    // step back, or a damaged `base_ts`, reported by the dump reader) may start earlier
    // than the one before it, and `query --from/--to` reads it too.
    let wanted = |k: usize, j: usize| {
        let u = &units[k][j];
        let to = filters[u.ring].to;
        j == 0
            || dump.rings[u.ring].blocks[u.blocks.clone()]
                .iter()
                .any(|b| b.base_ts <= to)
    };

    // Pass 2: format in parallel, merge and write here.
    let run_start = |k: usize, j: usize| {
        let u = &units[k][j];
        dump.rings[u.ring].blocks[u.blocks.start].base_ts
    };
    let mut first = Shared {
        rings: units
            .iter()
            .map(|_| Ring {
                started: 0,
                taken: 0,
                done: VecDeque::new(),
                queued: false,
            })
            .collect(),
        ready: BinaryHeap::new(),
        left: 0,
        failed: false,
        free: Vec::new(),
    };
    for (k, ring_units) in units.iter().enumerate() {
        if !ring_units.is_empty() {
            first.left += 1;
            first.rings[k].queued = true;
            first.ready.push(Reverse((run_start(k, 0), k)));
        }
    }
    // Queues ring `k` if its next run may start and it is not queued yet.
    let requeue = |s: &mut Shared, k: usize| {
        let r = &mut s.rings[k];
        if !r.queued && r.started < units[k].len() && r.started < r.taken + LOOKAHEAD {
            r.queued = true;
            let ts = run_start(k, r.started);
            s.ready.push(Reverse((ts, k)));
        }
    };
    let shared = Mutex::new(first);
    let cond = Condvar::new();
    let work = || loop {
        let (k, j, buf) = {
            let Ok(mut s) = shared.lock() else { return };
            loop {
                if s.failed {
                    return;
                }
                // The startable run that begins earliest.
                if let Some(Reverse((_, k))) = s.ready.pop() {
                    let r = &mut s.rings[k];
                    r.queued = false;
                    let j = r.started;
                    r.started += 1;
                    r.done.push_back(None);
                    if r.started == units[k].len() {
                        s.left -= 1;
                    }
                    requeue(&mut s, k);
                    let mut buf = s.free.pop().unwrap_or_default();
                    // A reused buffer still holds the lines of the run it carried
                    // last; a run that is not formatted (after the time window) must
                    // come out empty, not as a copy of that run.
                    buf.clear();
                    break (k, j, buf);
                }
                if s.left == 0 {
                    return;
                }
                s = match cond.wait(s) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            }
        };
        let u = &units[k][j];
        let f = if wanted(k, j) {
            format_unit(
                dump,
                u,
                &starts[k][j],
                &filters[u.ring],
                format,
                &ctxs[u.ring],
                buf,
            )
        } else {
            buf
        };
        let n: usize = dump.rings[u.ring].blocks[u.blocks.clone()]
            .iter()
            .map(|b| b.header_records as usize)
            .sum();
        progress(n as u64);
        let Ok(mut s) = shared.lock() else { return };
        let r = &mut s.rings[k];
        let slot = j - r.taken;
        if let Some(x) = r.done.get_mut(slot) {
            *x = Some(f);
        }
        cond.notify_all();
    };
    let worker = || {
        // A worker that panics must not leave the writer waiting for its run forever:
        // mark the job failed, so that the writer stops and the scope re-raises the panic.
        struct OnPanic<'s>(&'s Mutex<Shared>, &'s Condvar);
        impl Drop for OnPanic<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    if let Ok(mut s) = self.0.lock() {
                        s.failed = true;
                    }
                    self.1.notify_all();
                }
            }
        }
        let _guard = OnPanic(&shared, &cond);
        work()
    };
    // The writer: takes run `j` of ring `k` once formatted.
    let take = |k: usize| -> Option<Formatted> {
        let mut s = shared.lock().ok()?;
        loop {
            if s.failed {
                return None;
            }
            let r = &mut s.rings[k];
            if r.taken >= units[k].len() {
                return None;
            }
            if let Some(Some(_)) = r.done.front() {
                let f = r.done.pop_front().flatten();
                r.taken += 1;
                requeue(&mut s, k);
                cond.notify_all();
                return f;
            }
            s = cond.wait(s).ok()?;
        }
    };
    let give_back = |f: Formatted| {
        if let Ok(mut s) = shared.lock() {
            s.free.push(f);
        }
    };
    let result = std::thread::scope(|sc| {
        for _ in 0..threads.max(1) {
            sc.spawn(worker);
        }
        let r = merge_and_write(units.len(), &take, &give_back, out);
        if r.is_err() {
            if let Ok(mut s) = shared.lock() {
                s.failed = true;
            }
            cond.notify_all();
        }
        r
    });
    result?;
    Ok(warnings)
}

/// A ring's stream of lines during the merge.
struct Stream {
    f: Formatted,
    line: usize,
}

impl Stream {
    fn head(&self) -> Option<u64> {
        self.f.lines.get(self.line).map(|l| l.0)
    }
}

fn merge_and_write(
    n: usize,
    take: &dyn Fn(usize) -> Option<Formatted>,
    give_back: &dyn Fn(Formatted),
    out: &mut dyn Write,
) -> std::io::Result<()> {
    // The next non-empty run of ring `k`, if any.
    let next = |k: usize| -> Option<Stream> {
        loop {
            let f = take(k)?;
            if !f.lines.is_empty() {
                return Some(Stream { f, line: 0 });
            }
            give_back(f);
        }
    };
    let mut streams: Vec<Option<Stream>> = (0..n).map(next).collect();
    if n == 1 {
        while let Some(s) = streams[0].take() {
            out.write_all(&s.f.text)?;
            give_back(s.f);
            streams[0] = next(0);
        }
        return Ok(());
    }
    // Runs of lines to write, as (ring, start, end) in its current buffer: written with
    // one vectored write per batch rather than copied.
    let mut runs: Vec<(usize, usize, usize)> = Vec::with_capacity(BATCH_RUNS);
    // The streams by their head's time (ties: ring order): a k-way merge in
    // O(log rings) per run of lines, so that many small rings stay linear.
    let mut heads: BinaryHeap<Reverse<(u64, usize)>> = streams
        .iter()
        .enumerate()
        .filter_map(|(k, s)| Some(Reverse((s.as_ref()?.head()?, k))))
        .collect();
    loop {
        // The stream with the earliest head, and the time the run of lines taken from
        // it may extend to: the next stream's head.
        let Some(Reverse((_, k))) = heads.pop() else {
            return flush(&streams, &mut runs, out);
        };
        let (second, second_ring) = heads.peek().map_or((u64::MAX, usize::MAX), |r| r.0);
        let Some(s) = streams[k].as_mut() else {
            continue;
        };
        // Take lines while they come before the other streams' earliest head (on a tie,
        // the lower ring goes first).
        let start = if s.line == 0 {
            0
        } else {
            s.f.lines[s.line - 1].1
        };
        let mut end_line = s.line;
        while let Some(&(t, _)) = s.f.lines.get(end_line) {
            if t < second || (t == second && k < second_ring) {
                end_line += 1;
            } else {
                break;
            }
        }
        let end = s.f.lines[end_line - 1].1;
        s.line = end_line;
        let exhausted = s.line == s.f.lines.len();
        runs.push((k, start, end));
        if exhausted || runs.len() == BATCH_RUNS {
            flush(&streams, &mut runs, out)?;
        }
        if exhausted {
            if let Some(done) = std::mem::replace(&mut streams[k], next(k)) {
                give_back(done.f);
            }
        }
        if let Some(t) = streams[k].as_ref().and_then(Stream::head) {
            heads.push(Reverse((t, k)));
        }
    }
}

/// Runs of lines written with one vectored write.
const BATCH_RUNS: usize = 512;

/// Writes `runs` (ring, start, end) of the streams' buffers and empties it.
fn flush(
    streams: &[Option<Stream>],
    runs: &mut Vec<(usize, usize, usize)>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = runs
        .iter()
        .filter_map(|&(k, a, b)| {
            let s = streams.get(k)?.as_ref()?;
            Some(IoSlice::new(s.f.text.get(a..b)?))
        })
        .collect();
    runs.clear();
    let mut bufs = &mut slices[..];
    while !bufs.is_empty() {
        match out.write_vectored(bufs) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
