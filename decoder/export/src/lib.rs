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
//! [`feed`] (the rings of many dumps, largest first, on one pool of threads): each sink
//! sees `begin` with every ring of its dump, then only its own ring's records, in ring
//! order, then `finish`, on a thread of the pool. Sinks that write one file send their
//! output in whole-record chunks through a [`ChunkWriter`] to one writing thread; sinks
//! that write a file per ring (CTF streams, Parquet partitions) belong to a writer that
//! finishes the directory once every ring is done.
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

/// An output format, fed the records of a dump in time order (see the module
/// documentation for the order and the memory contract).
pub trait Sink {
    /// Called once, before any record, with every ring of the dump in file order. The
    /// default does nothing (sinks made knowing their ring already).
    fn begin(&mut self, rings: &[RingInfo]) -> anyhow::Result<()> {
        let _ = rings;
        Ok(())
    }

    /// Called once per decoded record (`LOST` records included), in time order across
    /// rings. `item.entry` is, for a kernel exit, the entry it closes when the decoder
    /// saw it.
    fn record(&mut self, item: &Item) -> anyhow::Result<()>;

    /// Called once after the last record: close what is open, flush, and finish the
    /// output. An error here (or from the other methods) fails the export. The default
    /// does nothing (sinks finished by the writer that owns them).
    fn finish(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
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
pub fn run(
    dump: &Dump<'_>,
    sink: &mut dyn Sink,
    progress: &dyn Fn(u64),
) -> anyhow::Result<Outcome> {
    let infos = ring_infos(dump);
    sink.begin(&infos)?;
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Vec<Item>>(AHEAD);
    let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<Item>>();
    let mut records = 0u64;
    let warnings = std::thread::scope(|s| -> anyhow::Result<Vec<Warning>> {
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
        decoder
            .join()
            .map_err(|_| anyhow::anyhow!("the decoding thread panicked"))
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
/// parallel on up to `threads` threads (see the module documentation).
pub fn for_each_ring<S: Sink + Send>(
    dump: &Dump<'_>,
    rings: &[RingInfo],
    sinks: &mut [S],
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<Outcome> {
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

/// Runs every job: [`Sink::begin`] with the job's dump's rings, its ring's records in
/// ring order, [`Sink::finish`]; one job per thread at a time, at most `threads`
/// threads, largest rings first, so that many dumps share one pool. `progress` is told
/// how many records were handled. Returns the records handled and the decoding
/// warnings (corrupt blocks) with their job's tag. The first error stops the others.
pub fn feed<S: Sink + Send>(
    mut jobs: Vec<Job<'_, '_, S>>,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<(u64, Vec<(usize, Warning)>)> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    const TICK: u64 = 1 << 16;
    jobs.sort_by_key(|j| std::cmp::Reverse(j.dump.rings[j.ring as usize].record_bytes()));
    let n = jobs.len();
    let next = std::sync::Mutex::new(jobs.into_iter());
    let failed = AtomicBool::new(false);
    let records = AtomicU64::new(0);
    let work = || -> anyhow::Result<Vec<(usize, Warning)>> {
        let mut warnings = Vec::new();
        loop {
            if failed.load(Ordering::Relaxed) {
                return Ok(warnings);
            }
            let Some(job) = next.lock().ok().and_then(|mut it| it.next()) else {
                return Ok(warnings);
            };
            let mut one = || -> anyhow::Result<()> {
                job.sink.begin(job.rings)?;
                let mut cursor = RingCursor::new(job.dump, job.ring, 0);
                let mut pending = 0u64;
                for item in cursor.by_ref() {
                    job.sink.record(&item)?;
                    pending += 1;
                    if pending == TICK {
                        progress(pending);
                        records.fetch_add(pending, Ordering::Relaxed);
                        pending = 0;
                    }
                }
                progress(pending);
                records.fetch_add(pending, Ordering::Relaxed);
                job.sink.finish()?;
                warnings.extend(cursor.warnings.drain(..).map(|w| (job.tag, w)));
                Ok(())
            };
            if let Err(e) = one() {
                failed.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
    };
    let threads = threads.clamp(1, n.max(1));
    let mut warnings = Vec::new();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mine = work();
        let mut first_err = None;
        for h in handles {
            match h.join() {
                Ok(Ok(w)) => warnings.extend(w),
                Ok(Err(e)) => first_err = first_err.or(Some(e)),
                Err(_) => {
                    first_err = first_err.or(Some(anyhow::anyhow!("an export thread panicked")))
                }
            }
        }
        match mine {
            Ok(w) => warnings.extend(w),
            Err(e) => first_err = first_err.or(Some(e)),
        }
        first_err.map_or(Ok(()), Err)
    })?;
    Ok((records.into_inner(), warnings))
}

/// A [`std::io::Write`] that sends every write, as one chunk, to a channel: sinks
/// running per ring ([`for_each_ring`]) that write whole records per write share one
/// output file this way, its writing thread receiving the chunks.
pub struct ChunkWriter(pub std::sync::mpsc::SyncSender<Vec<u8>>);

impl std::io::Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.send(buf.to_vec()).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the output writer stopped")
        })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
