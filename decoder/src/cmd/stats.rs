//! `tracemark stats`: the summary of a dump.

use std::io::Write;
use std::path::PathBuf;

use tracemark_decoder::{hot, stats};

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
    /// An ELF file of the traced code (repeatable): names the hottest functions.
    /// Matched to the dump's IMAGE records by build id, or by load address or size.
    #[arg(long = "elf", value_name = "FILE")]
    elfs: Vec<PathBuf>,
    /// Rank the hottest functions by calls and by inclusive time (implied by `--elf`;
    /// a second pass over the function records).
    #[arg(long)]
    hot: bool,
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
        // The hottest functions: a second, function-only pass (when asked for and there
        // are any: it costs about half of a plain `stats`).
        let functions = stats.records_per_kind.get("FENTRY").copied().unwrap_or(0);
        let mut symbols = super::symbols(&dump, &self.elfs)?;
        let hot = if functions > 0 && (self.hot || symbols.is_some()) {
            let threads = self.threads.unwrap_or_else(super::threads);
            hot::compute(&dump, threads, &mut |f| match symbols.as_mut() {
                Some(s) => {
                    let r = s.get(f);
                    let loc = r.file.as_ref().map(|file| match r.line {
                        Some(l) => format!("{file}:{l}"),
                        None => file.clone(),
                    });
                    (r.function.clone(), loc)
                }
                None => (None, None),
            })
        } else {
            hot::HotFunctions::default()
        };
        if self.json {
            let mut v = serde_json::to_value(&stats)?;
            if let Some(m) = v.as_object_mut() {
                m.insert("hot_functions".into(), serde_json::to_value(&hot)?);
            }
            serde_json::to_writer_pretty(&mut *out, &v)?;
            writeln!(out)?;
        } else {
            stats.write_text(out)?;
            hot.write_text(out)?;
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
