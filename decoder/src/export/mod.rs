//! Export to other trace formats, one module per format.
//!
//! Every writer is a streaming sink: it is created for a dump ([`DumpMeta`]: one
//! [`RingMeta`] per ring), fed the records of each ring in time order
//! ([`crate::merge::Item`], whose `ring` picks the ring), and finished; memory stays
//! bounded whatever the dump's size. Writers whose per-ring outputs are independent
//! (CTF streams, Parquet partitions) hand out one sink per ring so that rings are
//! written in parallel ([`for_each_ring`]).
//!
//! - [`ctf`]: a CTF 1.8 trace (babeltrace2, Trace Compass);
//! - [`parquet`]: Hive-partitioned Parquet tables (DuckDB, Spark, DataFusion).

use std::io;

use tracemark_format::SyscallAbi;

use crate::dump::{Dump, Warning};
use crate::merge::{Item, RingCursor};

pub mod ctf;
pub mod parquet;
mod parquet_chunk;

/// What an exporter needs to know about one ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingMeta {
    /// CPU number (ring header).
    pub cpu: u32,
    /// Clock frequency in Hz (0: unknown).
    pub clock_hz: u64,
    /// Syscall numbering.
    pub abi: SyscallAbi,
    /// Records lost to overwriting before the oldest block (ring header).
    pub overwritten: u64,
    /// Records dropped with the ring full (ring header).
    pub dropped: u64,
    /// The producer or build id of the ring header.
    pub producer_id: u64,
}

impl RingMeta {
    /// Records lost on this ring: overwritten plus dropped.
    pub fn lost(&self) -> u64 {
        self.overwritten.saturating_add(self.dropped)
    }
}

/// What an exporter needs to know about a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpMeta {
    /// One entry per ring, in file order (indexed by [`Item::ring`]).
    pub rings: Vec<RingMeta>,
    /// The dump's id: producer id and content hash, see [`dump_id`].
    pub id: String,
    /// The content hash alone.
    pub hash: u64,
}

impl DumpMeta {
    /// The metadata of `dump`; hashes its bytes.
    pub fn of(dump: &Dump<'_>) -> Self {
        let rings: Vec<RingMeta> = dump
            .rings
            .iter()
            .map(|r| RingMeta {
                cpu: r.cpu,
                clock_hz: r.clock_hz,
                abi: r.abi,
                overwritten: r.overwritten,
                dropped: r.dropped,
                producer_id: r.view.header.producer_id.get(),
            })
            .collect();
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

/// A consumer of one ring's records, in time order.
pub trait RingSink: Send {
    /// Takes the next record of the ring.
    fn record(&mut self, item: &Item) -> io::Result<()>;
}

/// One ring of one dump and the sink its records go to.
pub struct Job<'a, 'd, S> {
    /// The dump.
    pub dump: &'a Dump<'d>,
    /// Index of the ring in `dump.rings`.
    pub ring: u32,
    /// Where its records go.
    pub sink: &'a mut S,
    /// A tag returned with the job's warnings (the input's index, say).
    pub tag: usize,
}

/// Feeds every ring of `dump` to its sink (`sinks[i]` gets ring `i`), rings in
/// parallel with up to `threads` threads. Returns the decoding warnings (corrupt
/// blocks), sorted by offset.
pub fn for_each_ring<S: RingSink>(
    dump: &Dump<'_>,
    sinks: &mut [S],
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<Vec<Warning>> {
    let jobs = sinks
        .iter_mut()
        .enumerate()
        .map(|(i, sink)| Job {
            dump,
            ring: i as u32,
            sink,
            tag: 0,
        })
        .collect();
    let mut w: Vec<Warning> = feed(jobs, threads, progress)?
        .into_iter()
        .map(|(_, w)| w)
        .collect();
    w.sort_by_key(|w| w.offset);
    Ok(w)
}

/// Feeds each job's ring, in time order, to its sink: one thread per job and at most
/// `threads` at a time, largest rings first. `progress` is told how many records were
/// handled. Returns the decoding warnings (corrupt blocks) with their job's tag.
pub fn feed<S: RingSink>(
    mut jobs: Vec<Job<'_, '_, S>>,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<Vec<(usize, Warning)>> {
    jobs.sort_by_key(|j| std::cmp::Reverse(j.dump.rings[j.ring as usize].record_bytes()));
    let n = jobs.len();
    let next = std::sync::Mutex::new(jobs.into_iter());
    let failed = std::sync::atomic::AtomicBool::new(false);
    let work = || -> io::Result<Vec<(usize, Warning)>> {
        let mut warnings = Vec::new();
        loop {
            if failed.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(warnings);
            }
            let Some(job) = next.lock().ok().and_then(|mut it| it.next()) else {
                return Ok(warnings);
            };
            let mut cursor = RingCursor::new(job.dump, job.ring, 0);
            let mut pending = 0u64;
            for item in cursor.by_ref() {
                if let Err(e) = job.sink.record(&item) {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    return Err(e);
                }
                pending += 1;
                if pending == 1 << 20 {
                    progress(pending);
                    pending = 0;
                }
            }
            progress(pending);
            warnings.extend(cursor.warnings.drain(..).map(|w| (job.tag, w)));
        }
    };
    let threads = threads.clamp(1, n.max(1));
    let mut warnings = Vec::new();
    std::thread::scope(|s| -> io::Result<()> {
        let handles: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mine = work();
        let mut first_err = None;
        for h in handles {
            match h.join() {
                Ok(Ok(w)) => warnings.extend(w),
                Ok(Err(e)) => first_err = first_err.or(Some(e)),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        match mine {
            Ok(w) => warnings.extend(w),
            Err(e) => first_err = first_err.or(Some(e)),
        }
        first_err.map_or(Ok(()), Err)
    })?;
    Ok(warnings)
}
