//! Throughput of `stats`, `index` and record decoding on a generated dump, next to a
//! plain read of the same bytes in the same run (the baseline).
//!
//! `cargo bench -p tracemark-decoder --bench throughput` generates two rings of 32 MiB
//! with the real encoder; set `TRACEMARK_BENCH_DUMP=/path/to/dump.bin` to measure a dump
//! of your own (for instance kernel-sim's 90M-record one), and `TRACEMARK_BENCH_RUNS`
//! for the number of runs per measurement (default 5; the median is printed).

use std::cell::Cell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use tracemark::{Config, KernelEntry, Mode, Tracer};
use tracemark_decoder::dump::Dump;
use tracemark_decoder::filter::Filter;
use tracemark_decoder::render;
use tracemark_decoder::{index, pipeline, stats};
use tracemark_format::ring::RING_HEADER_LEN;

/// Two overwrite rings of `mib` MiB each, filled 1.2 times with a kernel-like mix.
fn generate(mib: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for cpu in 0..2u32 {
        let len = RING_HEADER_LEN + (mib << 20);
        let mut words = vec![0u64; len.div_ceil(8)];
        let bytes: &mut [u8] = zerocopy::IntoBytes::as_mut_bytes(words.as_mut_slice());
        let clock = Cell::new(1_000_000);
        let config = Config {
            mode: Mode::Overwrite,
            clock_hz: 1_000_000_000,
            cpu_id: cpu,
            ..Config::new()
        };
        {
            let t = Tracer::new(&mut bytes[..len], &config, || clock.get()).expect("ring");
            let mut x = 0x2545_f491_4f6c_dd1du64 ^ u64::from(cpu);
            let records = ((mib << 20) as f64 / 5.5 * 1.2) as u64;
            let mut n = 0;
            while n < records {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let tick = |d: u64| clock.set(clock.get() + d);
                match x % 16 {
                    0..=3 => {
                        t.kernel_entry(KernelEntry::syscall(
                            [1u8, 2, 5][(x >> 8) as usize % 3],
                            10,
                            x & 1 << 20 != 0,
                            ((x >> 24) % 64) as u32,
                        ));
                        tick(200 + (x >> 32) % 3000);
                        t.kernel_exit();
                        n += 2;
                    }
                    4..=13 => {
                        let f = (x >> 8) % 4096;
                        t.function_entry(f);
                        tick(20 + (x >> 30) % 500);
                        t.function_exit(f);
                        n += 2;
                    }
                    14 => {
                        t.interrupt(27 + ((x >> 8) % 8) as u32);
                        n += 1;
                    }
                    _ => {
                        t.user((x >> 8) as u32 % 16, &x.to_le_bytes()[..4]);
                        n += 1;
                    }
                }
                tick(30 + (x >> 50) % 1000);
            }
        }
        out.extend_from_slice(&bytes[..len]);
    }
    out
}

fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this once, quickly.
    let quick = !std::env::args().any(|a| a == "--bench");
    let runs: usize = std::env::var("TRACEMARK_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 1 } else { 5 });
    let bytes = match std::env::var("TRACEMARK_BENCH_DUMP") {
        Ok(p) => std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}")),
        Err(_) => generate(if quick { 1 } else { 32 }),
    };
    let dump = Dump::parse(&bytes).expect("the generated dump parses");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let (s, _) = stats::compute(&dump, 1, &|_| {});
    let records = s.total_records;
    println!(
        "{} bytes, {} records, {} rings, {threads} threads, median of {runs} runs",
        bytes.len(),
        records,
        dump.rings.len()
    );

    let base = median(runs, || {
        // A plain read of every byte: the floor any decoder of these bytes stands on.
        let mut acc = 0u64;
        for c in bytes.chunks_exact(8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            acc = acc.wrapping_add(u64::from_le_bytes(w));
        }
        black_box(acc);
    });
    let report = |name: &str, d: Duration| {
        println!(
            "{name:<28} {:>9.1} ms {:>8.1} M records/s {:>6.1}x the plain read",
            d.as_secs_f64() * 1e3,
            records as f64 / d.as_secs_f64() / 1e6,
            d.as_secs_f64() / base.as_secs_f64()
        );
    };
    report("plain read (baseline)", base);
    report(
        "parse (rings, blocks)",
        median(runs, || {
            black_box(Dump::parse(&bytes).expect("parses"));
        }),
    );
    report(
        "stats, 1 thread",
        median(runs, || {
            black_box(stats::compute(&dump, 1, &|_| {}));
        }),
    );
    report(
        &format!("stats, {threads} threads"),
        median(runs, || {
            black_box(stats::compute(&dump, threads, &|_| {}));
        }),
    );
    report(
        &format!("index, {threads} threads"),
        median(runs, || {
            black_box(index::build(&dump, "bench".as_ref(), threads, &|_| {}));
        }),
    );
    let filters: Vec<_> = dump
        .rings
        .iter()
        .map(|r| Filter::default().for_ring(r.clock_hz))
        .collect();
    let rings: Vec<u32> = (0..dump.rings.len() as u32).collect();
    for (name, format) in [
        ("decode text", render::Format::Text),
        ("decode json", render::Format::Json),
    ] {
        report(
            &format!("{name}, {threads} threads"),
            median(runs, || {
                let mut sink = std::io::sink();
                let w = pipeline::write_records(
                    &dump,
                    &rings,
                    &filters,
                    format,
                    threads,
                    &mut sink,
                    &|_| {},
                );
                black_box(w.expect("writes to a sink"));
            }),
        );
    }
}
