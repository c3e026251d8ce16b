//! Writes a synthetic multi-CPU dump with the real encoder, for benchmarks:
//! `cargo run --release -p tracemark-decoder --example gen_dump -- OUT [CPUS] [MIB_PER_RING] [FILL]`
//! (defaults: 8 CPUs, 64 MiB rings, written to 1.3 times their capacity so they wrap).

use std::cell::Cell;
use std::io::Write;

use tracemark::{Config, KernelEntry, Mode, Tracer};
use tracemark_format::ring::RING_HEADER_LEN;

fn memory(len: usize) -> Vec<u64> {
    vec![0u64; len.div_ceil(8)]
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let out = args.get(1).map_or("dump.bin", String::as_str);
    let cpus: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(8);
    let mib: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(64);
    let fill: f64 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(1.3);
    let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
    let mut total = 0u64;
    for cpu in 0..cpus {
        let len = RING_HEADER_LEN + (mib << 20);
        let mut words = memory(len);
        let bytes: &mut [u8] = zerocopy::IntoBytes::as_mut_bytes(words.as_mut_slice());
        let clock = Cell::new(1_000_000 + u64::from(cpu) * 7);
        let config = Config {
            mode: Mode::Overwrite,
            clock_hz: 1_000_000_000,
            cpu_id: cpu,
            ..Config::new()
        };
        let t = Tracer::new(&mut bytes[..len], &config, || clock.get()).expect("ring");
        // About 3.5 bytes per record.
        let target = (((mib << 20) as f64 / 3.5) * fill) as u64;
        let mut x = 0x2545_f491_4f6c_dd1du64 ^ u64::from(cpu);
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut n = 0u64;
        let tick = |c: &Cell<u64>, d: u64| c.set(c.get() + d);
        while n < target {
            let r = rnd();
            match r % 16 {
                0..=7 => {
                    let sys = [1u8, 2, 3, 5, 6, 7][(r >> 8) as usize % 6];
                    t.kernel_entry(KernelEntry::syscall(
                        sys,
                        10 + ((r >> 12) % 3) as u8 * 2,
                        r & 1 << 20 != 0,
                        ((r >> 24) % 64) as u32,
                    ));
                    tick(&clock, 200 + (r >> 32) % 3000);
                    if r & (1 << 40) != 0 {
                        t.interrupt(27 + ((r >> 41) % 4) as u32);
                        n += 1;
                        tick(&clock, 50);
                    }
                    t.kernel_exit();
                    n += 2;
                }
                8..=13 => {
                    let f = 0x1000 + (r >> 8) % 200 * 16;
                    t.function_entry(f);
                    tick(&clock, 20 + (r >> 30) % 500);
                    t.function_exit(f);
                    n += 2;
                }
                14 => {
                    t.interrupt(27 + ((r >> 8) % 8) as u32);
                    n += 1;
                }
                _ => {
                    t.user(
                        (r >> 8) as u32 % 16,
                        &r.to_le_bytes()[..(r >> 60) as usize % 8],
                    );
                    n += 1;
                }
            }
            tick(&clock, 30 + (r >> 50) % 1000);
        }
        total += n;
        drop(t);
        file.write_all(&bytes[..len])?;
    }
    file.flush()?;
    eprintln!(
        "wrote {out}: {cpus} rings of {mib} MiB, {total} records written (older ones overwritten)"
    );
    Ok(())
}
