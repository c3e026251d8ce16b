//! `tracemark export`: a dump's records, in time order, handed to a format's [`Sink`].
//!
//! Every output format is one file of this module implementing [`Sink`]:
//!
//! - [`perfetto`]: Perfetto's native protobuf trace (`TracePacket`s with `TrackEvent`s);
//! - [`chrome_json`]: the Chrome trace-event JSON format;
//! - [`ctf`]: a CTF 1.8 trace directory (babeltrace2, Trace Compass);
//! - [`parquet`]: Hive-partitioned Parquet tables (DuckDB, Spark, DataFusion).
//!
//! # The contract
//!
//! [`run`] calls [`Sink::begin`] once with a [`RingInfo`] per ring of the dump, then
//! [`Sink::record`] once per decoded record (`LOST` records included), **in time order
//! across rings** (ties: ring order) and, within a ring, in ring order, and finally
//! [`Sink::finish`]. A record's [`Item::ring`] indexes the slice given to `begin`.
//!
//! Memory stays bounded whatever the dump's size: records are decoded block by block
//! from the mapped file and passed on in small batches, so a sink that keeps only
//! per-ring state (open slices, interned names, a write buffer) exports a dump of any
//! size. A sink must not keep records.
//!
//! Decoding runs on a thread of its own, one batch ahead of the sink, so decoding and
//! encoding overlap on two cores. What a sink writes is its own business (a file, a
//! directory of files, ...); [`run`] does not see its output.
//!
//! # Rings in parallel
//!
//! A format whose rings are independent (one packet sequence, stream file or partition
//! per ring) instead runs one sink per ring with [`for_each_ring`] (one dump) or
//! [`feed`] (the rings of many dumps, in the order given, on one pool of threads): each sink
//! sees `begin` with every ring of its dump, then only its own ring's records, in ring
//! order, then `finish`, on a thread of a rayon pool. Sinks that write one file send
//! their output in whole-record chunks through an [`ordered::RingWriter`] to one writing
//! thread, which writes the rings in ring order (the same bytes with any number of
//! threads); sinks that write a file per ring (CTF streams, Parquet partitions) belong
//! to a writer that finishes the directory once every ring is done. A sink waiting for
//! its turn holds no buffer and no open file, so memory and open files grow with the
//! number of threads, not of rings.
//!
//! # Errors
//!
//! Each sink chooses its error type ([`Sink::Error`], a [`SinkError`]; every sink here
//! returns [`std::io::Error`] naming the file); [`run`] and [`feed`] return it as is.
//! Context (which input, which command) is the binary's to add.
//!
//! # What a sink knows of a dump
//!
//! [`DumpMeta::of`] gives a dump's [`RingInfo`]s (what [`Sink::begin`] receives) and
//! its stable id ([`dump_id`]: producer id and content hash), the one place ring
//! headers are read for export.
//!
//! # Adding a format
//!
//! A file here implementing [`Sink`], a variant of `ExportFormat` in
//! `decoder/cli/src/cmd/export.rs` (its doc comment is the `--help` text) and an arm in
//! that command's `run`. The decoder is reached through three entry points only, so
//! that its internals can change: [`RingCursor::new`] (one ring's records in order,
//! with its `warnings`), [`Merged`] (rings merged by time) and [`Item`].

pub mod chrome_json;
pub mod ctf;
pub mod nesting;
pub mod ordered;
pub mod parquet;
mod parquet_chunk;
pub mod perfetto;

use tracemark_format::SyscallAbi;

use tracemark_decoder::dump::{Dump, Warning};
use tracemark_decoder::merge::{Merged, RingCursor};

pub use tracemark_decoder::merge::Item;

/// What a sink learns about one ring before its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingInfo {
    /// Index of the ring in the dump (the [`Item::ring`] of its records).
    pub index: u32,
    /// The CPU that wrote the ring.
    pub cpu: u32,
    /// Clock frequency in Hz; 0 when the ring header does not say (times are then in
    /// raw ticks).
    pub clock_hz: u64,
    /// Syscall numbering, for naming kernel entries.
    pub abi: SyscallAbi,
    /// Records lost to overwriting before the oldest block (ring header).
    pub overwritten: u64,
    /// Records dropped with the ring full (ring header); the drops also appear as
    /// `LOST` records in the stream where the ring had room to say so.
    pub dropped: u64,
    /// Event records the ring's block headers claim (an upper bound of what
    /// [`Sink::record`] will see for this ring, `LOST` records aside).
    pub records: u64,
    /// The producer or build id of the ring header.
    pub producer_id: u64,
}

#[cfg(test)]
impl RingInfo {
    /// A ring for unit tests: ring 0 of CPU `cpu`, no losses, no records claimed,
    /// producer 0.
    pub(crate) fn for_test(cpu: u32, clock_hz: u64, abi: SyscallAbi) -> Self {
        RingInfo {
            index: 0,
            cpu,
            clock_hz,
            abi,
            overwritten: 0,
            dropped: 0,
            records: 0,
            producer_id: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_exact_ticks_is_where_nanoseconds_stop_fitting() {
        for hz in [1, 3, 32_768, 48_000_000, 2_500_000_000] {
            let max = max_exact_ticks(hz);
            let ns = u128::from(max) * 1_000_000_000 / u128::from(hz);
            assert!(ns <= u128::from(u64::MAX), "{hz}");
            if max < u64::MAX {
                let next = u128::from(max + 1) * 1_000_000_000 / u128::from(hz);
                assert!(next > u128::from(u64::MAX), "{hz}");
            }
        }
        assert_eq!(max_exact_ticks(0), u64::MAX);
    }
}

#[cfg(test)]
impl DumpMeta {
    /// Metadata for unit tests: these rings, with a dump id and hash given as is.
    pub(crate) fn for_test(rings: Vec<RingInfo>, id: &str, hash: u64) -> Self {
        DumpMeta {
            rings,
            id: id.into(),
            hash,
        }
    }
}

impl RingInfo {
    /// Records lost on this ring: overwritten plus dropped.
    pub fn lost(&self) -> u64 {
        self.overwritten.saturating_add(self.dropped)
    }

    /// `ticks` of this ring's clock in nanoseconds (ticks as they are when the clock
    /// frequency is unknown).
    #[inline]
    pub fn ns(&self, ticks: u64) -> u64 {
        ticks_to_ns(ticks, self.clock_hz)
    }
}

pub use tracemark_decoder::time::ticks_to_ns;

/// What an exporter knows about a dump: its rings and its stable id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpMeta {
    /// One entry per ring, in file order (indexed by [`Item::ring`]).
    pub rings: Vec<RingInfo>,
    /// The dump's id: producer id and content hash, see [`dump_id`].
    pub id: String,
    /// The content hash alone.
    pub hash: u64,
}

impl DumpMeta {
    /// The metadata of `dump`; hashes its bytes.
    pub fn of(dump: &Dump<'_>) -> Self {
        let rings = ring_infos(dump);
        let hash = content_hash(dump.bytes);
        let producer = rings.first().map_or(0, |r| r.producer_id);
        DumpMeta {
            id: dump_id(producer, hash),
            rings,
            hash,
        }
    }
}

/// The 64-bit XXH3 hash of a dump's bytes (the `xxhash-rust` crate: about 10 GB/s, so
/// a 537 MB dump hashes in tens of milliseconds).
pub fn content_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// A dump's id: `<producer id>-<content hash>`, both 16 hex digits. The same bytes give
/// the same id on every run and machine; two dumps of one producer differ by the hash.
pub fn dump_id(producer_id: u64, hash: u64) -> String {
    format!("{producer_id:016x}-{hash:016x}")
}

/// An error a [`Sink`] can fail with (ripgrep's `SinkError`): each sink picks its own
/// typed error, and only the binary adds context to it. Implemented for
/// [`std::io::Error`], which is what every sink of this crate returns.
pub trait SinkError: std::error::Error + Send + Sync + Sized + 'static {
    /// An error made from a message (a sink's own check, no underlying error).
    fn error_message<T: std::fmt::Display>(message: T) -> Self;
}

impl SinkError for std::io::Error {
    fn error_message<T: std::fmt::Display>(message: T) -> Self {
        std::io::Error::other(message.to_string())
    }
}

/// An output format, fed the records of a dump in time order (see the module
/// documentation for the order and the memory contract).
pub trait Sink {
    /// What the sink fails with.
    type Error: SinkError;

    /// Called once, before any record, with every ring of the dump in file order. The
    /// default does nothing (sinks made knowing their ring already).
    fn begin(&mut self, rings: &[RingInfo]) -> Result<(), Self::Error> {
        let _ = rings;
        Ok(())
    }

    /// Called once per decoded record (`LOST` records included), in time order across
    /// rings. `item.entry` is, for a kernel exit, the entry it closes when the decoder
    /// saw it.
    fn record(&mut self, item: &Item) -> Result<(), Self::Error>;

    /// Called once after the last record: close what is open, flush, and finish the
    /// output. An error here (or from the other methods) fails the export. The default
    /// does nothing (sinks finished by the writer that owns them).
    fn finish(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// The name of ring `ring`'s track (Perfetto) or thread (Chrome JSON): "CPU n", and, when another ring of the dump is of
/// the same CPU (concatenated dumps), the ring and its producer, so that the tracks can
/// be told apart: "CPU 0 (ring 1, producer 0x...)".
pub fn track_name(rings: &[RingInfo], ring: usize) -> String {
    let r = &rings[ring];
    if rings.iter().filter(|o| o.cpu == r.cpu).count() > 1 {
        format!(
            "CPU {} (ring {}, producer {:#x})",
            r.cpu, r.index, r.producer_id
        )
    } else {
        format!("CPU {}", r.cpu)
    }
}

/// Thread names of a dump, by the id SWITCH records carry: the latest THREAD record of
/// each id (`tracemark_decoder::threads::names`), for the timeline exports to name
/// thread tracks with. Shared by the per-ring sinks, which run in parallel.
pub type ThreadNames = std::sync::Arc<std::collections::HashMap<u64, String>>;

/// At most this many threads are named (the others keep `Thread 0x...`): the map is
/// built once per dump and bounded by the number of THREAD ids, which a corrupt or
/// hostile dump could make large.
pub const MAX_THREAD_NAMES: usize = 1 << 16;

/// The names of `dump`'s threads ([`ThreadNames`]), at most [`MAX_THREAD_NAMES`] (the
/// lowest ids kept, so that the choice is deterministic). One scan of the dump's
/// blocks (the fast scanner, as `tracemark stats` does), skipped for a dump whose rings
/// are all of a format version before THREAD records (3).
pub fn thread_names(dump: &Dump<'_>) -> ThreadNames {
    // THREAD records exist from format version 3: older dumps (the seL4 and bare-metal
    // traces so far) skip the extra scan of every block.
    if dump.rings.iter().all(|r| r.view.header.version.get() < 3) {
        return ThreadNames::default();
    }
    let mut all: Vec<(u64, String)> = tracemark_decoder::threads::names(dump)
        .into_iter()
        .map(|(id, t)| (id, t.name))
        .collect();
    all.sort_unstable_by_key(|(id, _)| *id);
    all.truncate(MAX_THREAD_NAMES);
    std::sync::Arc::new(all.into_iter().collect())
}

/// The display name of thread `thread`: its name with its id (`consumer (0x20000400)`),
/// or `Thread 0x...` when no THREAD record names it.
pub fn thread_label(names: Option<&ThreadNames>, thread: u64) -> String {
    match names.and_then(|n| n.get(&thread)) {
        Some(name) => format!("{name} ({thread:#x})"),
        None => format!("Thread {thread:#x}"),
    }
}

/// The name of a USER event: `freertos:QUEUE_SEND` for an id of the FreeRTOS
/// integration (`tracemark_format::freertos`), as `tracemark decode` names it, else
/// `User <id>`.
pub fn user_event_name(id: u32) -> String {
    match tracemark_format::freertos::event(id) {
        Some(e) => format!("freertos:{}", e.name),
        None => format!("User {id}"),
    }
}

/// The Linux syscall a kernel entry of ring ABI `abi` stands for, by number and name, as
/// `tracemark decode` shows it (`linux=brk`): a [`SyscallAbi::LinuxArm`] ring
/// (`tracemark import qemu`) records a Linux syscall as an `UnknownSyscall` entry with
/// the number in its word. `None` for any other entry or ABI, or a number without a
/// name.
pub fn linux_syscall(
    e: tracemark_format::KernelEntry,
    abi: SyscallAbi,
) -> Option<(u32, &'static str)> {
    match (abi, e.path(), e.as_other()) {
        (SyscallAbi::LinuxArm, tracemark_format::EntryPath::UnknownSyscall, Some(o)) => {
            tracemark_decoder::syscalls::name(o.word()).map(|n| (o.word(), n))
        }
        _ => None,
    }
}

/// The largest time in ticks of a `hz` clock whose nanoseconds fit in 64 bits (times
/// past it are clamped to `u64::MAX` ns by [`ticks_to_ns`]).
pub fn max_exact_ticks(hz: u64) -> u64 {
    match hz {
        0 | 1_000_000_000 => u64::MAX,
        _ => {
            u64::try_from(u128::from(u64::MAX) * u128::from(hz) / 1_000_000_000).unwrap_or(u64::MAX)
        }
    }
}

/// The rings of `dump` (by index) whose times, as their block headers give them, pass
/// [`max_exact_ticks`]: their records are exported at clamped times (a 1 Hz clock past
/// 2^64 / 10^9 ticks puts them all at one time), which the caller must say. Checked on
/// each block's base time: records past the limit after the base time of their ring's
/// last block are clamped without being reported here.
pub fn ns_overflows(dump: &Dump<'_>) -> Vec<u32> {
    dump.rings
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            let max = max_exact_ticks(r.clock_hz);
            r.blocks.iter().any(|b| b.base_ts > max)
        })
        .map(|(i, _)| i as u32)
        .collect()
}

/// What [`run`] reports.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Records handed to the sink.
    pub records: u64,
    /// Decoding problems found on the way (corrupt blocks), by file offset.
    pub warnings: Vec<Warning>,
}

/// Records per batch passed from the decoding thread to the sink.
const BATCH: usize = 8192;
/// Batches decoded ahead of the sink.
const AHEAD: usize = 4;

/// The [`RingInfo`] of every ring of `dump`.
pub fn ring_infos(dump: &Dump<'_>) -> Vec<RingInfo> {
    dump.rings
        .iter()
        .enumerate()
        .map(|(i, r)| RingInfo {
            index: i as u32,
            cpu: r.cpu,
            clock_hz: r.clock_hz,
            abi: r.abi,
            overwritten: r.overwritten,
            dropped: r.dropped,
            records: r.blocks.iter().map(|b| u64::from(b.header_records)).sum(),
            producer_id: r.view.header.producer_id.get(),
        })
        .collect()
}

/// Feeds every record of `dump` to `sink` (see the module documentation), telling
/// `progress` how many records were handed over, batch by batch.
pub fn run<S: Sink + ?Sized>(
    dump: &Dump<'_>,
    sink: &mut S,
    progress: &dyn Fn(u64),
) -> Result<Outcome, S::Error> {
    let infos = ring_infos(dump);
    sink.begin(&infos)?;
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Vec<Item>>(AHEAD);
    let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<Item>>();
    let mut records = 0u64;
    let warnings = std::thread::scope(|s| -> Result<Vec<Warning>, S::Error> {
        // Owned here so that an early return closes the channel and the decoding
        // thread, blocked on a full channel, stops.
        let full_rx = full_rx;
        let decoder = s.spawn(move || {
            let cursors = (0..dump.rings.len() as u32)
                .map(|i| RingCursor::new(dump, i, 0))
                .collect();
            let mut merged = Merged::new(cursors);
            loop {
                let mut batch = empty_rx
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(BATCH));
                batch.clear();
                batch.extend(merged.by_ref().take(BATCH));
                let done = batch.len() < BATCH;
                // A closed channel means the sink failed: stop decoding.
                if (!batch.is_empty() && full_tx.send(batch).is_err()) || done {
                    break;
                }
            }
            let mut w: Vec<Warning> = merged
                .cursors()
                .iter()
                .flat_map(|c| c.warnings.iter().cloned())
                .collect();
            w.sort_by_key(|w| w.offset);
            w
        });
        for batch in full_rx.iter() {
            for item in &batch {
                sink.record(item)?;
            }
            records += batch.len() as u64;
            progress(batch.len() as u64);
            // The decoder may be gone already; the batch is then dropped here.
            let _ = empty_tx.send(batch);
        }
        // A panic of the decoding thread is a bug: passed on as a panic, not made
        // into an error.
        Ok(decoder
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p)))
    })?;
    sink.finish()?;
    Ok(Outcome { records, warnings })
}

/// One ring of one dump and the sink its records go to (see [`feed`]).
pub struct Job<'a, 'd, S> {
    /// The dump.
    pub dump: &'a Dump<'d>,
    /// Every ring of the dump (what [`Sink::begin`] receives).
    pub rings: &'a [RingInfo],
    /// Index of the ring in `dump.rings`.
    pub ring: u32,
    /// Where its records go.
    pub sink: &'a mut S,
    /// A tag returned with the job's warnings (the input's index, say).
    pub tag: usize,
}

/// Feeds every ring of `dump` to its sink (`sinks[i]` gets ring `i`), rings in
/// parallel on up to `threads` threads, started in ring order (see the module
/// documentation).
pub fn for_each_ring<S: Sink + Send>(
    dump: &Dump<'_>,
    rings: &[RingInfo],
    sinks: &mut [S],
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Outcome, S::Error> {
    let jobs = sinks
        .iter_mut()
        .enumerate()
        .map(|(i, sink)| Job {
            dump,
            rings,
            ring: i as u32,
            sink,
            tag: 0,
        })
        .collect();
    let (records, warnings) = feed(jobs, threads, progress)?;
    let mut warnings: Vec<Warning> = warnings.into_iter().map(|(_, w)| w).collect();
    warnings.sort_by_key(|w| w.offset);
    Ok(Outcome { records, warnings })
}

/// What [`run_job`] and [`feed`] return: the records handled and the decoding warnings
/// (corrupt blocks), each with its job's tag.
pub type Handled = (u64, Vec<(usize, Warning)>);

/// Runs one job: [`Sink::begin`] with the job's dump's rings, its ring's records in ring
/// order, [`Sink::finish`]. `progress` is told how many records were handled, every
/// 2^16 and at the end. Returns the records handled and the decoding warnings with the
/// job's tag.
pub fn run_job<S: Sink>(
    job: Job<'_, '_, S>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Handled, S::Error> {
    const TICK: u64 = 1 << 16;
    job.sink.begin(job.rings)?;
    let mut cursor = RingCursor::new(job.dump, job.ring, 0);
    let (mut pending, mut total) = (0u64, 0u64);
    for item in cursor.by_ref() {
        job.sink.record(&item)?;
        pending += 1;
        if pending == TICK {
            progress(pending);
            total += pending;
            pending = 0;
        }
    }
    progress(pending);
    total += pending;
    job.sink.finish()?;
    let tag = job.tag;
    Ok((total, cursor.warnings.drain(..).map(|w| (tag, w)).collect()))
}

/// Runs every job ([`run_job`]) on a rayon pool of `threads` threads, started in the
/// order given (callers that want the largest first sort them), so that many dumps
/// share one pool. `progress` is told how many records were handled. Returns the
/// records handled and the decoding warnings (corrupt blocks) with their job's tag, in
/// job order. The first error (in job order) is returned, and stops the jobs not yet
/// started.
pub fn feed<S: Sink + Send>(
    jobs: Vec<Job<'_, '_, S>>,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Handled, S::Error> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;
    type Done<E> = Mutex<Option<Result<Handled, E>>>;
    let n = jobs.len();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.clamp(1, n.max(1)))
        .thread_name(|i| format!("tracemark-export-{i}"))
        .build()
        .unwrap_or_else(|e| panic!("cannot start the export threads: {e}"));
    let failed = AtomicBool::new(false);
    // One slot per job, filled by its thread: the results in job order whatever the
    // order the jobs end in.
    let results: Vec<Done<S::Error>> = (0..n).map(|_| Mutex::new(None)).collect();
    pool.scope_fifo(|scope| {
        for (job, slot) in jobs.into_iter().zip(&results) {
            let failed = &failed;
            scope.spawn_fifo(move |_| {
                if failed.load(Ordering::Relaxed) {
                    return;
                }
                let r = run_job(job, progress);
                if r.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            });
        }
    });
    let mut records = 0;
    let mut warnings = Vec::new();
    for slot in results {
        match slot.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(Ok((r, w))) => {
                records += r;
                warnings.extend(w);
            }
            Some(Err(e)) => return Err(e),
            // Not started: an earlier or later job failed; its error is in its slot.
            None => {}
        }
    }
    Ok((records, warnings))
}
