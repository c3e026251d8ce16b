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
    /// Recover dumps framed in a UART log (`@TM:` lines).
    Extract(cmd::extract::Cmd),
    /// Make a dump from another tool's trace (`import qemu LOG`: a QEMU execution log).
    Import(cmd::import::Cmd),
    /// Build a block index for fast queries.
    Index(cmd::index::Cmd),
    /// Answer queries from an index without decoding the whole dump.
    Query(cmd::query::Cmd),
    /// Summarise a dump: counts, syscall durations, interrupts, losses.
    Stats(cmd::stats::Cmd),
    /// Record a console stream on bounded disk, saving framed dumps as they complete.
    Capture(cmd::capture::Cmd),
    /// Convert dumps for a trace viewer or a data engine (Perfetto, Chrome JSON, CTF, Parquet).
    Export(cmd::export::Cmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, cmd::Stdout(stdout.lock()));
    let result = match cli.command {
        Command::Decode(c) => c.run(&mut out),
        Command::Extract(c) => c.run(&mut out),
        Command::Import(c) => c.run(&mut out),
        Command::Index(c) => c.run(&mut out),
        Command::Query(c) => c.run(&mut out),
        Command::Stats(c) => c.run(&mut out),
        Command::Capture(c) => return c.main(),
        Command::Export(c) => c.run(&mut out),
    }
    .and_then(|()| out.flush().map_err(anyhow::Error::from));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Do not let a failing BufWriter flush on drop hide the message.
            std::mem::forget(out);
            // One line, whatever the bytes an input or index put into the message.
            eprintln!("tracemark: {}", cmd::escape(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// Standard output's reader left (`| head`): success. Only standard output's
/// ([`cmd::StdoutError`]): a broken pipe writing a command's output file fails.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| {
            io.kind() == std::io::ErrorKind::BrokenPipe
                && io.get_ref().is_some_and(|i| i.is::<cmd::StdoutError>())
        })
    })
}
