//! ns per record for each kind, with a counter as the clock so the encoder's own cost is
//! what is measured, against a plain-store baseline that encodes the same record and
//! copies its bytes into an array with no ring logic (no reservation, no commit, no
//! blocks). Run: `cargo bench -p tracemark --bench record_cost`.
//!
//! The ring is a 256 KiB flight recorder (overwrite mode, 4 KiB blocks), so block
//! switches and overwrites are part of the measured cost, as in a real kernel.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::cell::Cell;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tracemark::format::record::{self, Time, MAX_RECORD_LEN};
use tracemark::format::UserPayload;
use tracemark::{Config, Event, ExitDuration, KernelEntry, Mode, Tracer};

const RING: usize = 192 + 64 * 4096;

/// A counter clock: each read moves time on by a fixed stride.
struct Counter(Cell<u64>);

impl tracemark::Clock for &Counter {
    #[inline(always)]
    fn now(&self) -> u64 {
        let t = self.0.get() + 37;
        self.0.set(t);
        t
    }
}

/// The baseline: the same encoding into a plain array, no ring logic.
struct PlainStore {
    buf: Vec<u8>,
    at: usize,
    last: u64,
}

impl PlainStore {
    #[inline(always)]
    fn write(&mut self, ts: u64, event: &Event) {
        let time = Time::Delta(ts - self.last);
        self.last = ts;
        if self.at + MAX_RECORD_LEN > self.buf.len() {
            self.at = 0;
        }
        let (buf, mut at) = (&mut self.buf, self.at);
        record::encode_with(time, ts, event, &mut |b| {
            buf[at] = b;
            at += 1;
        });
        self.at = at;
    }
}

fn memory() -> Vec<u64> {
    vec![0u64; RING / 8]
}

fn bytes(words: &mut [u64]) -> &mut [u8] {
    let len = words.len() * 8;
    // SAFETY: the u64 slice is `len` initialised bytes, 8-aligned, borrowed mutably here.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) }
}

fn kinds(c: &mut Criterion) {
    let entry = KernelEntry::syscall(1, 4, true, 42);
    let payload = UserPayload::new(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    let events: [(&str, Event); 6] = [
        ("kernel_entry", Event::KernelEntry(entry)),
        ("kernel_exit", Event::KernelExit(ExitDuration::Ticks(900))),
        ("interrupt", Event::Interrupt { irq: 27 }),
        ("function_entry", Event::FunctionEntry { func: 3000 }),
        ("function_exit", Event::FunctionExit { func: 3000 }),
        ("user_8_bytes", Event::User { id: 7, payload }),
    ];
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Elements(1));
    for (name, event) in events {
        let mut mem = memory();
        let clock = Counter(Cell::new(0));
        let config = Config {
            mode: Mode::Overwrite,
            ..Config::new()
        };
        let t = Tracer::new(bytes(&mut mem), &config, &clock).unwrap();
        // Each kind gets its own call, as a kernel would make it; arguments are opaque
        // to the optimiser so nothing is precomputed.
        group.bench_function(format!("{name}/tracemark"), |b| match event {
            Event::KernelEntry(e) => b.iter(|| t.kernel_entry(black_box(e))),
            Event::KernelExit(_) => b.iter(|| t.kernel_exit()),
            Event::Interrupt { irq } => b.iter(|| t.interrupt(black_box(irq))),
            Event::FunctionEntry { func } => b.iter(|| t.function_entry(black_box(func))),
            Event::FunctionExit { func } => b.iter(|| t.function_exit(black_box(func))),
            Event::User { id, payload } => {
                b.iter(|| t.user(black_box(id), black_box(payload.as_bytes())))
            }
            e => b.iter(|| t.record(black_box(e))),
        });
        let mut plain = PlainStore {
            buf: vec![0; RING],
            at: 0,
            last: 0,
        };
        let clock = Counter(Cell::new(0));
        group.bench_function(format!("{name}/plain_store"), |b| {
            let make = |e: Event| {
                // The same per-kind specialisation as the tracer's API.
                move |ts: u64| match e {
                    Event::KernelExit(_) => Event::KernelExit(ExitDuration::Ticks(ts % 1024 + 300)),
                    e => e,
                }
            };
            let make = make(event);
            b.iter(|| {
                let ts = tracemark::Clock::now(&&clock);
                plain.write(ts, &make(black_box(ts)));
            })
        });
    }
    group.finish();
}

/// The kernel mix of the issue: 45% entry, 45% exit, 10% interrupt, in the order a
/// kernel produces them.
fn kernel_mix(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernel_mix");
    group.throughput(Throughput::Elements(20));
    let mut mem = memory();
    let clock = Counter(Cell::new(0));
    let t = Tracer::new(bytes(&mut mem), &Config::new(), &clock).unwrap();
    group.bench_function("tracemark", |b| {
        b.iter(|| {
            for i in 0..9u32 {
                t.kernel_entry(KernelEntry::syscall(1 + (i % 8) as u8, 4, false, i));
                if i % 4 == 0 {
                    t.interrupt(27);
                }
                t.kernel_exit();
            }
            t.interrupt(30);
        })
    });
    group.finish();
}

criterion_group!(benches, kinds, kernel_mix);
criterion_main!(benches);
