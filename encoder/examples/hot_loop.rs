//! Records `N` events of one kind in a loop, for instruction counting under
//! `valgrind --tool=callgrind` (deterministic, unlike wall time on a shared machine):
//! `cargo build --release -p tracemark --example hot_loop &&
//!  valgrind --tool=callgrind target/release/examples/hot_loop interrupt 1000000`.
//! Kinds: kernel_entry, kernel_exit, interrupt, function_entry, user, plain_store, none.

use std::cell::Cell;
use std::hint::black_box;

use tracemark::format::record::{self, Time};
use tracemark::{Config, Event, KernelEntry, Tracer};

fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "interrupt".into());
    let n: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let mut words = vec![0u64; (192 + 64 * 4096) / 8];
    let len = words.len() * 8;
    // SAFETY: `len` initialised, 8-aligned bytes of the vector, used only through this view.
    let mem = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) };
    let clock = Cell::new(0u64);
    let now = || {
        let t = clock.get() + 37;
        clock.set(t);
        t
    };
    let mut plain = vec![0u8; len];
    let t = Tracer::new(mem, &Config::new(), now).unwrap();
    let entry = KernelEntry::syscall(1, 4, true, 42);
    let (mut at, mut last) = (0usize, 0u64);
    for i in 0..n {
        match kind.as_str() {
            "kernel_entry" => {
                t.kernel_entry(black_box(entry));
                if t.entry_depth() > 4 {
                    t.kernel_exit();
                }
            }
            "kernel_exit" => {
                t.kernel_exit();
            }
            "interrupt" => {
                t.interrupt(black_box(27));
            }
            "function_entry" => {
                t.function_entry(black_box(3000));
            }
            "user" => {
                t.user(black_box(7), black_box(&[1, 2, 3, 4, 5, 6, 7, 8]));
            }
            "plain_store" => {
                let ts = now();
                if at + 64 > plain.len() {
                    at = 0;
                }
                record::encode_with(
                    Time::Delta(ts - last),
                    ts,
                    &Event::Interrupt { irq: black_box(27) },
                    &mut |b| {
                        plain[at] = b;
                        at += 1;
                    },
                );
                last = ts;
            }
            _ => {
                black_box(i);
            }
        }
    }
    black_box(&plain);
}
