//! `tracemark stats`: the summary of a dump.

use std::io::Write;
use std::path::PathBuf;

use tracemark_decoder::stats;

/// Summarise a dump: time span, records per CPU and kind, syscall durations, interrupts,
/// function calls, losses and damage.
#[derive(Debug, clap::Args)]
pub struct Cmd {
    /// A dump file, raw memory image, or UART log with `@TM:` lines.
    file: PathBuf,
    /// List every problem found (torn, corrupt or skipped blocks...) on stderr, not just
    /// the first and a count.
    #[arg(short, long)]
    verbose: bool,
    /// Print JSON (the schema of `tracemark_decoder::stats::Stats`).
    #[arg(long)]
    json: bool,
    /// Worker threads (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
}

impl Cmd {
    /// Runs the command.
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<()> {
        let source = super::open(&self.file)?;
        let dump = source.dump(&self.file)?;
        let bar = super::progress(dump.record_bytes(), 256 << 20, true);
        let inc = |n: u64| {
            if let Some(b) = &bar {
                b.inc(n);
            }
        };
        let (stats, decode_warnings) =
            stats::compute(&dump, self.threads.unwrap_or_else(super::threads), &inc);
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        if self.json {
            serde_json::to_writer_pretty(&mut *out, &stats)?;
            writeln!(out)?;
        } else {
            stats.write_text(out)?;
        }
        out.flush()?;
        let mut warnings = source.warnings.clone();
        let mut dump_warnings = dump.warnings.clone();
        dump_warnings.extend(decode_warnings);
        dump_warnings.sort_by_key(|w| w.offset);
        warnings.extend(dump_warnings);
        super::report(&self.file, &warnings, self.verbose)
    }
}
