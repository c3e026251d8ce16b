//! `kernel-sim`: drives the real tracemark encoder the way a seL4-like kernel does, one
//! host thread per simulated CPU, and writes the rings' images (a dump, as a debugger or
//! a crash handler would take it) plus a JSON file of what that dump must decode to.
//!
//! ```text
//! kernel-sim --events 200000 --cpus 4 --buffer 64K --mode overwrite \
//!     -o dump.bin --truth truth.json
//! tracemark stats dump.bin --json
//! ```
//!
//! Each CPU's clock is a counter the simulation advances (user time between syscalls,
//! kernel time that depends on the syscall, shorter on the fastpath), read by the
//! encoder through a closure, so every duration in the trace is known exactly. The run
//! is deterministic: the same arguments give the same bytes.

mod rng;
mod truth;
mod workload;

use std::cell::Cell;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use tracemark::format::ring::offsets;
use tracemark::{Clock, Config, EntryPath, KernelEntry, Mode, Outcome, SyscallAbi, Tracer};
use zerocopy::IntoBytes;

use truth::{CpuAccount, CpuTotals, CpuTruth, Ev, Truth};
use workload::{Op, Workload, IRQS};

/// What the ring does when it is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    /// Flight recorder: keep the newest records.
    Overwrite,
    /// Stop when full: keep the oldest records, count the rest as dropped.
    Drop,
}

/// Simulates a multi-core seL4-like kernel recording with tracemark.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Total events over all CPUs (split evenly), written or dropped, image records included.
    #[arg(long, value_parser = parse_count)]
    events: u64,
    /// Number of simulated CPUs (threads).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    cpus: u32,
    /// Ring memory per CPU in bytes (suffixes K, M, G: powers of 1024).
    #[arg(long, value_parser = parse_size)]
    buffer: u64,
    /// Overwrite (flight recorder) or drop (stop when full).
    #[arg(long, value_enum)]
    mode: ModeArg,
    /// Ring block size: a power of two from 256 to 65536.
    #[arg(long, default_value_t = 4096, value_parser = parse_size)]
    block_size: u64,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Clock frequency written into the ring headers.
    #[arg(long, default_value_t = 1_000_000_000, value_parser = parse_count)]
    clock_hz: u64,
    /// Where to write the dump: the ring images of all CPUs, concatenated in CPU order.
    #[arg(short = 'o', long)]
    output: PathBuf,
    /// Where to write the truth JSON.
    #[arg(long)]
    truth: PathBuf,
}

/// A decimal count; `_` separators allowed.
fn parse_count(s: &str) -> Result<u64, String> {
    s.replace('_', "")
        .parse()
        .map_err(|e| format!("{s:?} is not a number: {e}"))
}

/// A byte size: a number with an optional K, M or G suffix (powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let upper = t.to_ascii_uppercase();
    let digits = upper
        .trim_end_matches('B')
        .trim_end_matches('I')
        .to_string();
    let (num, mult) = match digits.chars().last() {
        Some('K') => (&digits[..digits.len() - 1], 1u64 << 10),
        Some('M') => (&digits[..digits.len() - 1], 1 << 20),
        Some('G') => (&digits[..digits.len() - 1], 1 << 30),
        _ => (digits.as_str(), 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?} is not a size (examples: 4096, 64K, 256M)"))
}

/// One CPU's finished run: its memory (the ring at the start) and its truth.
struct CpuRun {
    memory: Vec<u64>,
    ring_len: usize,
    truth: CpuTruth,
    totals: CpuTotals,
}

/// Settings shared by all CPUs.
struct Sim {
    mode: Mode,
    buffer: usize,
    block_size: u32,
    clock_hz: u64,
    seed: u64,
}

/// Payload bytes for user events: a fixed pattern the payload length cuts.
const PAYLOAD: [u8; 32] = *b"tracemark kernel-sim user event!";

fn run_cpu(sim: &Sim, cpu: u32, events: u64) -> Result<CpuRun> {
    let mut memory = vec![0u64; sim.buffer.div_ceil(8)];
    let clock = Cell::new(1_000 + u64::from(cpu) * 17);
    let config = Config {
        block_size: sim.block_size,
        mode: sim.mode,
        clock_hz: sim.clock_hz,
        cpu_id: cpu,
        producer_id: 0x6b73_696d, // "ksim"
        syscall_abi: SyscallAbi::Sel4,
    };
    let bytes = &mut memory.as_mut_bytes()[..sim.buffer];
    let tracer = Tracer::new(bytes, &config, || clock.get())
        .map_err(|e| anyhow::anyhow!("cpu {cpu}: cannot set up the ring: {e}"))?;
    let geometry = tracer.ring().geometry();
    let ring_len = tracer.ring().len();
    let mut account = CpuAccount::new(cpu, sim.mode == Mode::Overwrite, geometry.block_count);
    simulate(&tracer, &clock, &mut account, sim.seed, cpu, events);
    let (overwritten, dropped) = tracer.ring().lost();
    // Leave the ring claimed, as a live kernel's memory is when a debugger dumps it; the
    // ring holds no resources, so forgetting the tracer leaks nothing.
    std::mem::forget(tracer);
    let (truth, totals) = account
        .finish(overwritten, dropped)
        .map_err(anyhow::Error::msg)?;
    Ok(CpuRun {
        memory,
        ring_len,
        truth,
        totals,
    })
}

/// Reads a 4- or 8-byte little-endian header field of the ring.
fn header_field<C: Clock>(tracer: &Tracer<'_, C>, offset: usize, len: usize) -> u64 {
    let mut b = [0u8; 8];
    tracer.ring().read_at(offset, &mut b[..len]);
    u64::from_le_bytes(b)
}

fn simulate<C: Clock>(
    tracer: &Tracer<'_, C>,
    clock: &Cell<u64>,
    account: &mut CpuAccount,
    seed: u64,
    cpu: u32,
    events: u64,
) {
    let shift = tracer.ring().geometry().shift;
    let core = (cpu & 7) as u8;
    let mut work = Workload::new(seed, cpu);
    // The simulation's own stack of entry times: the encoder measures the same.
    let mut entry_ts: Vec<u64> = Vec::with_capacity(16);
    let track_blocks = account.tracks_blocks();
    let mut any_dropped = false;
    for _ in 0..events {
        let step = work.next_step();
        let ts = clock.get() + u64::from(step.dt);
        clock.set(ts);
        let reported_before = if any_dropped {
            header_field(tracer, offsets::REPORTED_DROPS, 8)
        } else {
            0
        };
        let (outcome, ev) = match step.op {
            Op::Image => (
                tracer.image(0xffff_ff80_0000_0000, 0x0024_0000, 0x5e14_c0de_0000_0001),
                Ev::Image,
            ),
            Op::Syscall {
                sys,
                cap,
                fast,
                label,
            } => {
                entry_ts.push(ts);
                (
                    tracer.kernel_entry(KernelEntry::syscall(sys, cap, fast, label)),
                    Ev::KEntry { sys },
                )
            }
            Op::IrqEntry { slot } => {
                entry_ts.push(ts);
                let irq = IRQS[usize::from(slot)];
                (
                    tracer.kernel_entry(KernelEntry::other(EntryPath::Interrupt, core, irq)),
                    Ev::KEntry { sys: 0 },
                )
            }
            Op::Exit => {
                let start = entry_ts.pop().unwrap_or(ts);
                (tracer.kernel_exit(), Ev::KExit { dur: ts - start })
            }
            Op::Irq { slot } => (tracer.interrupt(IRQS[usize::from(slot)]), Ev::Irq { slot }),
            Op::FEntry(f) => (tracer.function_entry(u64::from(f)), Ev::FEntry(f)),
            Op::FExit(f) => (tracer.function_exit(u64::from(f)), Ev::FExit(f)),
            Op::User { id, len } => {
                let mut data = PAYLOAD;
                data[..8].copy_from_slice(&ts.to_le_bytes());
                (
                    tracer.user(u32::from(id), &data[..usize::from(len)]),
                    Ev::User,
                )
            }
        };
        if any_dropped && header_field(tracer, offsets::REPORTED_DROPS, 8) != reported_before {
            // The encoder reported earlier drops with a `Lost` record before this event.
            account.lost_record(ts);
        }
        match outcome {
            Outcome::Written => {
                let seq = if track_blocks {
                    (header_field(tracer, offsets::WRITE_POS, 4) as u32) >> shift
                } else {
                    0
                };
                account.written(ts, seq, ev);
            }
            Outcome::Dropped => {
                any_dropped = true;
                account.dropped();
            }
        }
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let started = Instant::now();
    let block_size = u32::try_from(cli.block_size)
        .ok()
        .filter(|b| b.is_power_of_two() && (256..=65536).contains(b));
    let Some(block_size) = block_size else {
        bail!(
            "--block-size {} must be a power of two from 256 to 65536",
            cli.block_size
        );
    };
    let needed = 192 + 2 * u64::from(block_size);
    if cli.buffer < needed {
        bail!(
            "--buffer {} is too small: a ring needs at least {needed} bytes (header and two blocks of {block_size})",
            cli.buffer
        );
    }
    let sim = Sim {
        mode: match cli.mode {
            ModeArg::Overwrite => Mode::Overwrite,
            ModeArg::Drop => Mode::Drop,
        },
        buffer: usize::try_from(cli.buffer).context("--buffer does not fit in memory")?,
        block_size,
        clock_hz: cli.clock_hz,
        seed: cli.seed,
    };
    let per_cpu = |cpu: u32| {
        cli.events / u64::from(cli.cpus)
            + u64::from(u64::from(cpu) < cli.events % u64::from(cli.cpus))
    };
    let runs: Vec<Result<CpuRun>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cli.cpus)
            .map(|cpu| {
                let sim = &sim;
                let n = per_cpu(cpu);
                std::thread::Builder::new()
                    .name(format!("cpu{cpu}"))
                    .spawn_scoped(s, move || run_cpu(sim, cpu, n))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a CPU thread panicked"))),
                Err(e) => Err(anyhow::Error::new(e).context("cannot start a CPU thread")),
            })
            .collect()
    });
    let runs = runs.into_iter().collect::<Result<Vec<_>>>()?;
    let simulated = started.elapsed();

    let file = File::create(&cli.output)
        .with_context(|| format!("cannot create {}", cli.output.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut bytes = 0u64;
    let mut results = Vec::with_capacity(runs.len());
    for run in runs {
        let image = &run.memory.as_bytes()[..run.ring_len];
        out.write_all(image)
            .with_context(|| format!("cannot write {}", cli.output.display()))?;
        bytes += image.len() as u64;
        results.push((run.truth, run.totals));
    }
    out.flush()
        .with_context(|| format!("cannot write {}", cli.output.display()))?;
    drop(out);

    let truth = Truth::combine(
        sim.mode.name(),
        results,
        cli.events,
        cli.seed,
        cli.clock_hz,
        bytes,
    );
    let json = serde_json::to_string_pretty(&truth)?;
    std::fs::write(&cli.truth, json + "\n")
        .with_context(|| format!("cannot write {}", cli.truth.display()))?;
    let total = started.elapsed();
    let in_dump: u64 = truth.cpus.iter().map(|c| c.records_in_dump).sum();
    eprintln!(
        "kernel-sim: {} events on {} cpus ({} in dump), {} bytes, simulated in {:.3} s ({:.1} M events/s), total {:.3} s",
        cli.events,
        cli.cpus,
        in_dump,
        bytes,
        simulated.as_secs_f64(),
        cli.events as f64 / simulated.as_secs_f64() / 1e6,
        total.as_secs_f64()
    );
    Ok(())
}
