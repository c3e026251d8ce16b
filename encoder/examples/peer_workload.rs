//! tracemark's side of the barectf peer comparison (`benches/peers/barectf/run.sh`):
//! the workload, timed in-process.
//!
//! `peer_workload tracemark|tracemark-owned|plain_store|none EVENTS` prints `NAME <ns per event> <bytes per event>`.
//!
//! Per 20 events: 9 kernel entries, 9 kernel exits (the encoder measures the duration), 2
//! interrupts, in the order a kernel produces them. The clock is a counter that moves by
//! 37 ticks per read. The ring is 64 MiB in overwrite mode with 4 KiB blocks.
//! `plain_store` is the baseline: the same records encoded with the format crate's
//! encoder into a plain array, with no ring logic (no reservation, commit or blocks).
//! `none` is the workload alone (clock reads and event values, nothing stored).
//! `tracemark-owned` is the single-owner writer (`Tracer::owned`, single-context as
//! barectf's tracer is): the workload reads the clock and keeps each entry's time; an
//! entry and its exit are written together at the exit, and an entry with an interrupt
//! inside is written first, with its word (`kernel_entry_with`).

use std::cell::Cell;
use std::hint::black_box;
use std::time::Instant;

use tracemark::format::record::{self, Time};
use tracemark::format::ring::offsets;
use tracemark::{Config, Event, ExitDuration, KernelEntry, Mode, Tracer};

const RING: usize = 64 << 20;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "tracemark".into());
    let events: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let rounds = events / 20;
    let mut words = vec![1u64; (192 + RING) / 8];
    let len = words.len() * 8;
    let counter = Cell::new(0u64);
    let now = || {
        let t = counter.get() + 37;
        counter.set(t);
        t
    };
    let entry = |n: u64, i: u32| {
        KernelEntry::syscall(1 + (i & 7) as u8, 4, i & 1 == 1, (n as u32 * 7 + i) & 0xff)
    };
    let (elapsed, bytes) = match which.as_str() {
        "tracemark" => {
            // SAFETY: `len` initialised, 8-aligned bytes of `words`, used only through
            // this view while `words` lives.
            let mem =
                unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) };
            let config = Config {
                block_size: 4096,
                mode: Mode::Overwrite,
                ..Config::new()
            };
            let t = Tracer::new(mem, &config, now).expect("ring set up");
            let start = Instant::now();
            for n in 0..rounds {
                for i in 0..9u32 {
                    t.kernel_entry(black_box(entry(n, i)));
                    if i == 2 || i == 6 {
                        t.interrupt(black_box(27 + (i >> 2)));
                    }
                    t.kernel_exit();
                }
            }
            let elapsed = start.elapsed();
            // No wrap at 10M events (about 52 MB of 64 MiB): the write position is the
            // bytes used, block headers and tails included.
            let mut pos = [0u8; 4];
            t.ring().read_at(offsets::WRITE_POS, &mut pos);
            (elapsed, u64::from(u32::from_le_bytes(pos)))
        }
        "tracemark-owned" => {
            // SAFETY: as above.
            let mem =
                unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) };
            let config = Config {
                block_size: 4096,
                mode: Mode::Overwrite,
                ..Config::new()
            };
            let t = Tracer::new(mem, &config, now).expect("ring set up");
            // SAFETY: one thread, no signal handler records; every entry with an interrupt
            // inside is written (`kernel_entry`) before the interrupt.
            let o = unsafe { t.owned() };
            let start = Instant::now();
            for n in 0..rounds {
                for i in 0..9u32 {
                    let entered = now();
                    let word = black_box(entry(n, i));
                    if i == 2 || i == 6 {
                        o.kernel_entry_with(entered, word);
                        o.interrupt(black_box(27 + (i >> 2)), now());
                        o.kernel_exit(word, 0, now());
                    } else {
                        o.kernel_pair(entered, word, 0, now());
                    }
                }
            }
            let elapsed = start.elapsed();
            let mut pos = [0u8; 4];
            t.ring().read_at(offsets::WRITE_POS, &mut pos);
            (elapsed, u64::from(u32::from_le_bytes(pos)))
        }
        "plain_store" => {
            // SAFETY: as above.
            let plain =
                unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) };
            let (mut at, mut last, mut total) = (0usize, 0u64, 0u64);
            let mut put = |event: Event, ts: u64| {
                if at + record::MAX_RECORD_LEN > plain.len() {
                    total += at as u64;
                    at = 0;
                }
                record::encode_with(Time::Delta(ts - last), ts, &event, &mut |b| {
                    plain[at] = b;
                    at += 1;
                });
                last = ts;
            };
            let start = Instant::now();
            for n in 0..rounds {
                for i in 0..9u32 {
                    let entered = now();
                    put(Event::KernelEntry(black_box(entry(n, i))), entered);
                    if i == 2 || i == 6 {
                        let ts = now();
                        put(
                            Event::Interrupt {
                                irq: black_box(27 + (i >> 2)),
                            },
                            ts,
                        );
                    }
                    let ts = now();
                    put(Event::KernelExit(ExitDuration::Ticks(ts - entered)), ts);
                }
            }
            let elapsed = start.elapsed();
            (elapsed, total + at as u64)
        }
        "none" => {
            // The workload alone: the same clock reads and event values, nothing stored
            // (the floor every encoder's figure includes).
            let start = Instant::now();
            for n in 0..rounds {
                for i in 0..9u32 {
                    let entered = now();
                    black_box(entry(n, i));
                    if i == 2 || i == 6 {
                        black_box((now(), 27 + (i >> 2)));
                    }
                    black_box(now() - entered);
                }
            }
            (start.elapsed(), 0)
        }
        other => {
            eprintln!("peer_workload: unknown encoder {other:?} (tracemark, tracemark-owned, plain_store, none)");
            std::process::exit(2);
        }
    };
    let n = (rounds * 20) as f64;
    println!(
        "{which} {:.3} {:.2}",
        elapsed.as_nanos() as f64 / n,
        bytes as f64 / n
    );
}
