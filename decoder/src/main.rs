//! `tracemark`: decode, index, query and summarise tracemark dumps.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// Decode, index, query and summarise tracemark ring dumps and raw memory images.
#[derive(Debug, Parser)]
#[command(name = "tracemark", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print records in time order across CPUs.
    Decode(cmd::decode::Cmd),
    /// Write dumps in another format: a CTF 1.8 trace or Parquet tables.
    Export(cmd::export::Cmd),
    /// Recover dumps framed in a UART log (`@TM:` lines).
    Extract(cmd::extract_cmd::Cmd),
    /// Build a block index for fast queries.
    Index(cmd::index::Cmd),
    /// Answer queries from an index without decoding the whole dump.
    Query(cmd::query::Cmd),
    /// Summarise a dump: counts, syscall durations, interrupts, losses.
    Stats(cmd::stats::Cmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let result = match cli.command {
        Command::Decode(c) => c.run(&mut out),
        Command::Export(c) => c.run(&mut out),
        Command::Extract(c) => c.run(&mut out),
        Command::Index(c) => c.run(&mut out),
        Command::Query(c) => c.run(&mut out),
        Command::Stats(c) => c.run(&mut out),
    }
    .and_then(|()| out.flush().map_err(anyhow::Error::from));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Do not let a failing BufWriter flush on drop hide the message.
            std::mem::forget(out);
            eprintln!("tracemark: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
