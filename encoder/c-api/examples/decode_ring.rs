//! Prints a raw ring image (a `tm_dump` output or a debugger's dump of the ring memory)
//! as text, one record per line, for scripts that check what a target recorded.
//!
//! ```text
//! cargo run -p tracemark-c --example decode_ring -- RING.bin
//! header cpu=0 clock_hz=12500000 mode=drop overwritten=0 dropped=0 blocks=43
//! 1234 KENTRY 0x00000036
//! 1300 KEXIT ticks=66
//! 1301 USER id=1 payload=4200000000000000
//! ```
//!
//! Other record lines: `IRQ irq=N`, `FENTRY func=N`, `FEXIT func=N`,
//! `IMAGE base=N size=N id=N`, `LOST count=N since=N`; `KEXIT` also prints `no-entry` or
//! `nesting-overflow`. Exits with status 1 if a block is torn or a record does not decode.
//! This is a stop-gap for the examples' checks; the `tracemark` CLI decodes rings in full.

use std::fmt::Write as _;
use std::process::ExitCode;

use tracemark_format::ring::{BlockState, RingView};
use tracemark_format::{Event, ExitDuration};

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: decode_ring RING.bin");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("decode_ring: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let view = match RingView::parse(&bytes) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("decode_ring: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let h = &view.header;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "header cpu={} clock_hz={} mode={} overwritten={} dropped={} blocks={} producer={}",
        h.cpu_id.get(),
        h.clock_hz.get(),
        view.mode.name(),
        h.overwritten.get(),
        h.dropped.get(),
        view.geometry.block_count,
        h.producer_id.get()
    );
    let mut ok = true;
    for block in view.blocks() {
        match block.state {
            BlockState::Valid => {}
            BlockState::Empty => continue,
            s => {
                eprintln!("decode_ring: block {} is {s:?}", block.seq);
                ok = false;
                continue;
            }
        }
        let mut n = 0u32;
        for r in block.decode() {
            let r = match r {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("decode_ring: block {}: {e}", block.seq);
                    ok = false;
                    break;
                }
            };
            if !matches!(r.event, Event::Lost { .. }) {
                n += 1;
            }
            let _ = write!(out, "{} ", r.ts);
            let _ = match r.event {
                Event::KernelEntry(e) => writeln!(out, "KENTRY {:#010x}", e.0),
                Event::KernelExit(ExitDuration::Ticks(t)) => writeln!(out, "KEXIT ticks={t}"),
                Event::KernelExit(ExitDuration::NoEntry) => writeln!(out, "KEXIT no-entry"),
                Event::KernelExit(ExitDuration::NestingOverflow) => {
                    writeln!(out, "KEXIT nesting-overflow")
                }
                Event::Interrupt { irq } => writeln!(out, "IRQ irq={irq}"),
                Event::FunctionEntry { func } => writeln!(out, "FENTRY func={func}"),
                Event::FunctionExit { func } => writeln!(out, "FEXIT func={func}"),
                Event::User { id, payload } => {
                    let hex: String = payload
                        .as_bytes()
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    writeln!(out, "USER id={id} payload={hex}")
                }
                Event::Image { base, size, id } => {
                    writeln!(out, "IMAGE base={base} size={size} id={id}")
                }
                Event::Lost { count, since } => writeln!(out, "LOST count={count} since={since}"),
            };
        }
        if !block.is_current && n != block.header.records.get() {
            eprintln!(
                "decode_ring: block {} holds {n} records, its header says {}",
                block.seq,
                block.header.records.get()
            );
            ok = false;
        }
    }
    print!("{out}");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
