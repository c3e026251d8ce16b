//! Bytes per record on the two workloads of the issue, with realistic clock deltas:
//!
//! - kernel mix: 45% kernel entry, 45% kernel exit, 10% interrupt; a 1 GHz cycle
//!   counter; user time 500..20000 cycles between syscalls, 150..3000 in the kernel;
//!   seL4 syscalls 1..=8 on varied cap types with small invocation labels;
//! - function trace: `-finstrument-functions` style entry/exit of nested calls, function
//!   ids below 4096, 20..400 cycles apart.
//!
//! Prints the record bytes alone and the ring bytes including block headers and block
//! tails. Run: `cargo bench -p tracemark --bench bytes_per_record`.

use std::cell::Cell;

use tracemark::format::ring::{BlockState, RingView};
use tracemark::{Config, KernelEntry, Mode, Tracer};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

const RECORDS: usize = 1_000_000;

fn measure(name: &str, run: impl Fn(&Tracer<'_, &dyn Fn() -> u64>, &Cell<u64>, &mut Rng)) {
    let mut words = vec![0u64; (192 + 4096 * 4096) / 8];
    let len = words.len() * 8;
    // SAFETY: the u64 vector is `len` initialised, 8-aligned bytes, only used through this view.
    let mem = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) };
    let clock = Cell::new(1_000_000u64);
    let now = || clock.get();
    let now: &dyn Fn() -> u64 = &now;
    let config = Config {
        mode: Mode::Drop,
        clock_hz: 1_000_000_000,
        ..Config::new()
    };
    {
        let t = Tracer::new(&mut *mem, &config, now).unwrap();
        run(&t, &clock, &mut Rng(0x9e37_79b9_7f4a_7c15));
    }
    let view = RingView::parse(mem).unwrap();
    let (mut records, mut net, mut gross) = (0usize, 0usize, 0usize);
    for block in view.blocks().filter(|b| b.state == BlockState::Valid) {
        records += block.decode().count();
        net += record_bytes(&block);
        gross += if block.is_current {
            32 + block.records.len()
        } else {
            view.geometry.block_size() as usize
        };
    }
    println!(
        "{name:>16}: {records} records, {:.2} B/record (record bytes), {:.2} B/record (ring bytes incl. block headers and tails)",
        net as f64 / records as f64,
        gross as f64 / records as f64
    );
}

/// Bytes of records in a block, up to its END marker.
fn record_bytes(block: &tracemark::format::ring::BlockView<'_>) -> usize {
    let mut it = block.decode();
    let mut end = 0;
    while let Some(r) = it.next() {
        r.unwrap();
        end = it.offset();
    }
    end
}

fn main() {
    measure("kernel mix", |t, clock, rng| {
        let mut n = 0;
        while n < RECORDS {
            // 20 records: 9 syscalls (entry + exit) and 2 interrupts.
            for i in 0..9 {
                clock.set(clock.get() + rng.range(500, 20_000));
                let sys = rng.range(1, 9) as u8;
                let cap = [4u8, 6, 8, 10, 12, 2][rng.range(0, 6) as usize];
                let label = rng.range(0, 64) as u32;
                t.kernel_entry(KernelEntry::syscall(sys, cap, sys <= 2 && cap == 4, label));
                if i == 3 || i == 7 {
                    clock.set(clock.get() + rng.range(50, 1500));
                    t.interrupt([27u32, 30, 31, 45][rng.range(0, 4) as usize]);
                }
                clock.set(clock.get() + rng.range(150, 3000));
                t.kernel_exit();
            }
            n += 20;
        }
    });
    measure("function trace", |t, clock, rng| {
        let mut n = 0;
        let mut stack = Vec::new();
        while n < RECORDS {
            clock.set(clock.get() + rng.range(20, 400));
            if stack.len() < 12 && (stack.is_empty() || rng.next() % 2 == 0) {
                let f = rng.range(0, 4096);
                t.function_entry(f);
                stack.push(f);
            } else {
                t.function_exit(stack.pop().unwrap());
            }
            n += 1;
        }
    });
}
