//! Prints a raw ring image (a `tm_dump` output or a debugger's dump of the ring memory)
//! as text, one record per line, for scripts that check what a target recorded.
//!
//! With `--from-log LOG [--save RING.bin]` it first reassembles the ring from the `@TM:`
//! lines of a console log (`tm_dump_uart`, `uart::write_framed_with`), checking every
//! chunk CRC and the payload CRC, optionally saving the image.
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
use tracemark_format::uart::{self, Line};
use tracemark_format::{Event, ExitDuration};

/// The first complete framed dump in `log`.
fn from_log(log: &[u8]) -> Result<Vec<u8>, String> {
    let mut current: Option<(u32, Vec<u8>, u32, u64)> = None;
    let mut chunk = [0u8; uart::MAX_CHUNK_LEN];
    for line in log.split(|&b| b == b'\n') {
        match uart::parse_line(line).map_err(|e| format!("bad framing line: {e:?}"))? {
            None => {}
            Some(Line::Begin(b)) => {
                let len = usize::try_from(b.total_len).map_err(|_| "dump too long")?;
                current = Some((b.dump_id, vec![0; len], b.chunk_len, 0));
            }
            Some(Line::Data(d)) => {
                let Some((id, data, chunk_len, seen)) = current.as_mut() else {
                    return Err("data line before a begin line".into());
                };
                if d.dump_id != *id {
                    continue;
                }
                let n = d
                    .decode(&mut chunk)
                    .map_err(|e| format!("chunk {}: {e:?}", d.seq))?;
                let at = usize::try_from(d.seq * u64::from(*chunk_len)).map_err(|_| "offset")?;
                data.get_mut(at..at + n)
                    .ok_or("chunk beyond the dump")?
                    .copy_from_slice(&chunk[..n]);
                *seen += 1;
            }
            Some(Line::End(e)) => {
                let Some((id, data, _, seen)) = current.take() else {
                    return Err("end line before a begin line".into());
                };
                if e.dump_id != id || seen != e.chunk_count {
                    return Err(format!("dump {id:#x}: {seen} of {} chunks", e.chunk_count));
                }
                if uart::payload_crc(&data) != e.payload_crc {
                    return Err(format!("dump {id:#x}: payload CRC mismatch"));
                }
                return Ok(data);
            }
        }
    }
    Err("no complete framed dump in the log".into())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, log, save) = match args.as_slice() {
        [p] => (p.clone(), false, None),
        [flag, p] if flag == "--from-log" => (p.clone(), true, None),
        [flag, p, s, out] if flag == "--from-log" && s == "--save" => {
            (p.clone(), true, Some(out.clone()))
        }
        _ => {
            eprintln!("usage: decode_ring RING.bin | decode_ring --from-log LOG [--save RING.bin]");
            return ExitCode::from(2);
        }
    };
    let mut bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("decode_ring: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if log {
        bytes = match from_log(&bytes) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("decode_ring: {path}: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Some(out) = save {
            if let Err(e) = std::fs::write(&out, &bytes) {
                eprintln!("decode_ring: {out}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
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
                Event::ThreadSwitch { thread } => writeln!(out, "SWITCH thread={thread}"),
                Event::ThreadName { thread, prio, name } => writeln!(
                    out,
                    "THREAD thread={thread} prio={prio} name={}",
                    String::from_utf8_lossy(name.as_bytes())
                ),
                Event::ClockBack { back } => writeln!(out, "CLOCKBACK back={back}"),
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
