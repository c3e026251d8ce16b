//! `tracemark stats`: the summary of a dump.

use std::io::Write;
use std::path::PathBuf;

use tracemark_decoder::render::Format;
use tracemark_decoder::{hot, stats};

/// Summarise a dump: time span, records per CPU and kind, syscall durations, interrupts,
/// function calls, losses and damage.
#[derive(Debug, clap::Args)]
pub struct Cmd {
    #[command(flatten)]
    input: super::InputArgs,
    /// Output format: text, JSON (the schema of `tracemark_decoder::stats::Stats`), or
    /// CSV (`field,value` rows, fields named by their JSON path).
    #[arg(long, value_enum, default_value_t)]
    format: super::OutputFormat,
    /// Same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// An ELF file of the traced code (repeatable): names the hottest functions.
    /// Matched to the dump's IMAGE records by build id, or by load address or size.
    #[arg(long = "elf", value_name = "FILE")]
    elfs: Vec<PathBuf>,
    /// Use an `--elf` whose build id no IMAGE record of the dump carries by its address
    /// anyway (else refused: another build's names would be wrong).
    #[arg(long, requires = "elfs")]
    elf_ignore_build_id: bool,
    /// Rank the hottest functions by calls and by inclusive time (implied by `--elf`;
    /// a second pass over the function records).
    #[arg(long)]
    hot: bool,
}

impl Cmd {
    /// Runs the command.
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<()> {
        let format = if self.json {
            Format::Json
        } else {
            Format::from(self.format)
        };
        let threads = self.input.threads();
        self.input.with_whole_dump(
            |d| d.record_bytes(),
            256 << 20,
            true,
            |dump, inc| {
                let (stats, warnings) = stats::compute(dump, threads, inc);
                let hot = self.hot_functions(dump, &stats, threads)?;
                // Issue 17: per-thread CPU time and interrupt time (a sequential pass
                // over the rings; see `tracemark_decoder::threads`).
                let thread_report = tracemark_decoder::threads::compute(dump);
                match format {
                    Format::Json => {
                        let mut v = serde_json::to_value(&stats)?;
                        if let Some(m) = v.as_object_mut() {
                            m.insert("hot_functions".into(), serde_json::to_value(&hot)?);
                            m.insert("threads".into(), serde_json::to_value(&thread_report)?);
                        }
                        serde_json::to_writer_pretty(&mut *out, &v)?;
                        writeln!(out)?;
                    }
                    Format::Csv => stats.write_csv(out)?,
                    Format::Text => {
                        stats.write_text(out)?;
                        hot.write_text(out)?;
                        thread_report.write_text(out)?;
                    }
                }
                out.flush()?;
                Ok(warnings)
            },
        )
    }

    /// The hottest functions: a second, function-only pass, when asked for (`--hot`, or
    /// `--elf`) and there are any (it costs about half of a plain `stats`).
    fn hot_functions(
        &self,
        dump: &tracemark_decoder::dump::Dump<'_>,
        stats: &stats::Stats,
        threads: usize,
    ) -> anyhow::Result<hot::HotFunctions> {
        let functions = stats.records_per_kind.get("FENTRY").copied().unwrap_or(0);
        let mut symbols = super::symbols(dump, &self.elfs, self.elf_ignore_build_id)?;
        if functions == 0 || !(self.hot || symbols.is_some()) {
            return Ok(hot::HotFunctions::default());
        }
        Ok(hot::compute(
            dump,
            threads,
            &mut |f| match symbols.as_mut() {
                Some(s) => {
                    let r = s.get(f);
                    let loc = r.file.as_ref().map(|file| match r.line {
                        Some(l) => format!("{file}:{l}"),
                        None => file.clone(),
                    });
                    (r.function.clone(), loc)
                }
                None => (None, None),
            },
        ))
    }
}
