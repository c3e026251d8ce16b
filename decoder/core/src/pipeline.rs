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
use crate::render::{self, Format, FunctionNames, RingCtx, ThreadNames};

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

/// Where one ring's runs are in pass 2.
struct RingRuns {
    /// Runs started (handed to a worker).
    started: usize,
    /// Runs taken by the writer.
    taken: usize,
    /// Formatted runs not yet taken, by run index (`None`: still being formatted).
    done: VecDeque<Option<Formatted>>,
    /// Whether the ring is in [`Schedule::ready`].
    queued: bool,
    /// The time each run starts at.
    run_starts: Vec<u64>,
}

/// What a worker does next.
enum Work {
    /// Format run `run` of ring `ring` into `buf` (cleared).
    Format {
        ring: usize,
        run: usize,
        buf: Formatted,
    },
    /// Nothing can start now: wait for the writer.
    Wait,
    /// Every run is started, or the job failed: stop.
    Stop,
}

/// What the writer gets for a ring.
enum Taken {
    /// The ring's next run, formatted.
    Run(Formatted),
    /// The next run is not formatted yet: wait for the workers.
    Wait,
    /// The ring has no more runs, or the job failed.
    End,
}

/// The scheduling of pass 2, apart from threads and locks (the threads hold it in a
/// [`Mutex`]): workers take the startable run that begins earliest, each ring at most
/// [`LOOKAHEAD`] runs ahead of the writer, and the writer takes each ring's runs in
/// order.
struct Schedule {
    rings: Vec<RingRuns>,
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

impl Schedule {
    /// A schedule for rings whose runs start at `run_starts` (one list per ring).
    fn new(run_starts: Vec<Vec<u64>>) -> Schedule {
        let mut s = Schedule {
            rings: Vec::with_capacity(run_starts.len()),
            ready: BinaryHeap::new(),
            left: 0,
            failed: false,
            free: Vec::new(),
        };
        for (k, starts) in run_starts.into_iter().enumerate() {
            if let Some(&first) = starts.first() {
                s.left += 1;
                s.ready.push(Reverse((first, k)));
            }
            s.rings.push(RingRuns {
                started: 0,
                taken: 0,
                done: VecDeque::new(),
                queued: !starts.is_empty(),
                run_starts: starts,
            });
        }
        s
    }

    /// Queues ring `k` if its next run may start and it is not queued yet.
    fn requeue(&mut self, k: usize) {
        let r = &mut self.rings[k];
        if !r.queued && r.started < r.run_starts.len() && r.started < r.taken + LOOKAHEAD {
            r.queued = true;
            self.ready.push(Reverse((r.run_starts[r.started], k)));
        }
    }

    /// A worker's next job: the startable run that begins earliest.
    fn start(&mut self) -> Work {
        if self.failed {
            return Work::Stop;
        }
        let Some(Reverse((_, k))) = self.ready.pop() else {
            return if self.left == 0 {
                Work::Stop
            } else {
                Work::Wait
            };
        };
        let r = &mut self.rings[k];
        r.queued = false;
        let run = r.started;
        r.started += 1;
        r.done.push_back(None);
        if r.started == r.run_starts.len() {
            self.left -= 1;
        }
        self.requeue(k);
        let mut buf = self.free.pop().unwrap_or_default();
        // A reused buffer still holds the lines of the run it carried last; a run that
        // is not formatted (after the time window) must come out empty, not as a copy
        // of that run.
        buf.clear();
        Work::Format { ring: k, run, buf }
    }

    /// Run `run` of ring `k` is formatted.
    fn finished(&mut self, k: usize, run: usize, f: Formatted) {
        let r = &mut self.rings[k];
        if let Some(x) = r.done.get_mut(run - r.taken) {
            *x = Some(f);
        }
    }

    /// The writer's next run of ring `k`.
    fn take(&mut self, k: usize) -> Taken {
        let r = &mut self.rings[k];
        if self.failed || r.taken >= r.run_starts.len() {
            return Taken::End;
        }
        if !matches!(r.done.front(), Some(Some(_))) {
            return Taken::Wait;
        }
        let Some(Some(f)) = r.done.pop_front() else {
            return Taken::Wait;
        };
        r.taken += 1;
        self.requeue(k);
        Taken::Run(f)
    }

    /// A buffer the writer is done with.
    fn give_back(&mut self, f: Formatted) {
        self.free.push(f);
    }
}

/// What [`write()`] writes.
#[derive(Debug, Clone, Copy)]
pub struct Selection<'a> {
    /// The rings to write (indices into `dump.rings`); ties in time go to the ring
    /// listed first.
    pub rings: &'a [u32],
    /// The records each ring's filter wants (one filter per ring of the dump).
    pub filters: &'a [RingFilter],
    /// How records are printed.
    pub format: Format,
    /// Function names for FENTRY/FEXIT (`None`: addresses only).
    pub names: Option<&'a FunctionNames>,
    /// Thread names for SWITCH (`None`: ids only).
    pub thread_names: Option<&'a ThreadNames>,
}

/// Writes the records of `rings` (indices into `dump.rings`) that `filters` (one per
/// ring of the dump) want, in `format`, in time order, with up to `threads` workers and
/// no function or thread names ([`write()`] with a [`Selection`] has them). `progress` is told how
/// many records were handled. Returns the decoding warnings.
pub fn write_records(
    dump: &Dump<'_>,
    rings: &[u32],
    filters: &[RingFilter],
    format: Format,
    threads: usize,
    out: &mut dyn Write,
    progress: &(dyn Fn(u64) + Sync),
) -> std::io::Result<Vec<Warning>> {
    let selection = Selection {
        rings,
        filters,
        format,
        names: None,
        thread_names: None,
    };
    write(dump, &selection, threads, out, progress)
}

/// Writes the records `selection` wants in time order, with up to `threads` workers.
/// `progress` is told how many records were handled. Returns the decoding warnings.
pub fn write(
    dump: &Dump<'_>,
    selection: &Selection<'_>,
    threads: usize,
    out: &mut dyn Write,
    progress: &(dyn Fn(u64) + Sync),
) -> std::io::Result<Vec<Warning>> {
    let units = units(dump, selection.rings);
    let ctxs: Vec<RingCtx> = dump
        .rings
        .iter()
        .map(|r| {
            RingCtx::of(r)
                .with_names(selection.names)
                .with_thread_names(selection.thread_names)
        })
        .collect();
    let (starts, warnings) = open_entries(dump, &units, threads);
    let filters = selection.filters;
    let format_run = |k: usize, j: usize, buf: Formatted| {
        let u = &units[k][j];
        let blocks = &dump.rings[u.ring].blocks[u.blocks.clone()];
        // A run whose blocks all start after the window's end holds nothing wanted. Every
        // block is looked at, not only the run's first: a block out of time order (a
        // clock step back, or a damaged `base_ts`, reported by the dump reader) may start
        // earlier than the one before it, and `query --from/--to` reads it too.
        let to = filters[u.ring].to;
        let f = if j == 0 || blocks.iter().any(|b| b.base_ts <= to) {
            let ctx = &ctxs[u.ring];
            format_unit(
                dump,
                u,
                &starts[k][j],
                &filters[u.ring],
                selection.format,
                ctx,
                buf,
            )
        } else {
            buf
        };
        let n: usize = blocks.iter().map(|b| b.header_records as usize).sum();
        progress(n as u64);
        f
    };
    let run_starts = units
        .iter()
        .map(|runs| {
            runs.iter()
                .map(|u| dump.rings[u.ring].blocks[u.blocks.start].base_ts)
                .collect()
        })
        .collect();
    run_threads(Schedule::new(run_starts), threads, &format_run, out)?;
    Ok(warnings)
}

/// Pass 1: the kernel entries open at the start of every run (per ring, per run), and
/// the decoding errors, scanned in parallel.
fn open_entries(
    dump: &Dump<'_>,
    units: &[Vec<Unit>],
    threads: usize,
) -> (Vec<Vec<Vec<u32>>>, Vec<Warning>) {
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
    for ring_units in units {
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
    (starts, warnings)
}

/// Pass 2 on threads: `threads` workers run `format_run(ring, run, buffer)` on the runs
/// `schedule` hands out, while this thread merges and writes them to `out`.
fn run_threads(
    schedule: Schedule,
    threads: usize,
    format_run: &(dyn Fn(usize, usize, Formatted) -> Formatted + Sync),
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let rings = schedule.rings.len();
    let shared = Mutex::new(schedule);
    let cond = Condvar::new();
    let work = || loop {
        let (k, j, buf) = {
            let Ok(mut s) = shared.lock() else { return };
            loop {
                match s.start() {
                    Work::Format { ring, run, buf } => break (ring, run, buf),
                    Work::Stop => return,
                    Work::Wait => {
                        s = match cond.wait(s) {
                            Ok(s) => s,
                            Err(_) => return,
                        }
                    }
                }
            }
        };
        let f = format_run(k, j, buf);
        let Ok(mut s) = shared.lock() else { return };
        s.finished(k, j, f);
        cond.notify_all();
    };
    let worker = || {
        // A worker that panics must not leave the writer waiting for its run forever:
        // mark the job failed, so that the writer stops and the scope re-raises the panic.
        struct OnPanic<'s>(&'s Mutex<Schedule>, &'s Condvar);
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
    // The writer: takes the next run of ring `k` once formatted.
    let take = |k: usize| -> Option<Formatted> {
        let mut s = shared.lock().ok()?;
        loop {
            match s.take(k) {
                Taken::Run(f) => {
                    cond.notify_all();
                    return Some(f);
                }
                Taken::End => return None,
                Taken::Wait => s = cond.wait(s).ok()?,
            }
        }
    };
    let give_back = |f: Formatted| {
        if let Ok(mut s) = shared.lock() {
            s.give_back(f);
        }
    };
    std::thread::scope(|sc| {
        for _ in 0..threads.max(1) {
            sc.spawn(worker);
        }
        let r = merge_and_write(rings, &take, &give_back, out);
        if r.is_err() {
            if let Ok(mut s) = shared.lock() {
                s.failed = true;
            }
            cond.notify_all();
        }
        r
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run_of(w: Work) -> (usize, usize, Formatted) {
        match w {
            Work::Format { ring, run, buf } => (ring, run, buf),
            Work::Wait => panic!("expected a run, got Wait"),
            Work::Stop => panic!("expected a run, got Stop"),
        }
    }

    fn formatted(ts: u64, text: &str) -> Formatted {
        Formatted {
            text: text.as_bytes().to_vec(),
            lines: vec![(ts, text.len())],
        }
    }

    /// Workers take the startable run that begins earliest, across rings.
    #[test]
    fn workers_take_the_earliest_run_first() {
        let mut s = Schedule::new(vec![vec![10, 30], vec![5, 20], vec![]]);
        let order: Vec<(usize, usize)> = (0..4)
            .map(|_| {
                let (k, j, _) = run_of(s.start());
                (k, j)
            })
            .collect();
        assert_eq!(order, [(1, 0), (0, 0), (1, 1), (0, 1)]);
        assert!(matches!(s.start(), Work::Stop), "every run started");
    }

    /// A ring never has more than LOOKAHEAD runs started ahead of the writer; taking
    /// one lets the next start. Runs are taken in order, whatever order they finish in.
    #[test]
    fn a_ring_runs_at_most_lookahead_ahead_of_the_writer() {
        let runs = LOOKAHEAD + 3;
        let mut s = Schedule::new(vec![(0..runs as u64).collect()]);
        let mut started = Vec::new();
        for _ in 0..LOOKAHEAD {
            started.push(run_of(s.start()));
        }
        assert!(matches!(s.start(), Work::Wait), "lookahead reached");
        assert!(matches!(s.take(0), Taken::Wait), "nothing formatted yet");
        // Finish them in reverse: the writer still gets run 0 first.
        for (k, j, _) in started.into_iter().rev() {
            s.finished(k, j, formatted(j as u64, &format!("run{j}")));
        }
        let Taken::Run(f) = s.take(0) else {
            panic!("run 0 is formatted")
        };
        assert_eq!(f.text, b"run0");
        let (_, j, _) = run_of(s.start());
        assert_eq!(j, LOOKAHEAD, "taking a run frees one slot");
        assert!(matches!(s.start(), Work::Wait));
    }

    /// The writer gets End after the last run, and a buffer given back is handed out
    /// again empty (a run after the time window must not repeat the previous lines).
    #[test]
    fn buffers_are_reused_empty_and_the_ring_ends() {
        let mut s = Schedule::new(vec![vec![1, 2]]);
        let (k, j, _) = run_of(s.start());
        s.finished(k, j, formatted(1, "first"));
        let Taken::Run(f) = s.take(0) else {
            panic!("run 0")
        };
        s.give_back(f);
        let (k, j, buf) = run_of(s.start());
        assert!(buf.text.is_empty() && buf.lines.is_empty());
        assert!(buf.text.capacity() >= 5, "the allocation is kept");
        s.finished(k, j, buf);
        assert!(matches!(s.take(0), Taken::Run(_)));
        assert!(matches!(s.take(0), Taken::End));
        assert!(matches!(s.start(), Work::Stop));
    }

    /// After a failure, workers stop and the writer ends.
    #[test]
    fn a_failed_job_stops_everyone() {
        let mut s = Schedule::new(vec![vec![1, 2, 3]]);
        let _ = run_of(s.start());
        s.failed = true;
        assert!(matches!(s.start(), Work::Stop));
        assert!(matches!(s.take(0), Taken::End));
    }

    /// The merge takes lines across rings by time (ties: lower ring first) and writes
    /// each ring's runs in order, without threads.
    #[test]
    fn merge_orders_lines_across_rings() {
        use std::cell::RefCell;
        let runs = RefCell::new(vec![
            VecDeque::from([
                Formatted {
                    text: b"a1\na5\n".to_vec(),
                    lines: vec![(1, 3), (5, 6)],
                },
                Formatted::default(),
                formatted(9, "a9\n"),
            ]),
            VecDeque::from([Formatted {
                text: b"b1\nb3\nb7\n".to_vec(),
                lines: vec![(1, 3), (3, 6), (7, 9)],
            }]),
        ]);
        let take = |k: usize| runs.borrow_mut()[k].pop_front();
        let mut out = Vec::new();
        merge_and_write(2, &take, &|_| {}, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a1\nb1\nb3\na5\nb7\na9\n");
    }
}
