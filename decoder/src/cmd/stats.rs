//! `tracemark stats`: the summary of a dump.

use std::io::Write;

use tracemark_decoder::render::Format;
use tracemark_decoder::stats;

/// Summarise a dump: time span, records per CPU and kind, syscall durations, interrupts,
/// function calls, losses and damage.
#[derive(Debug, clap::Args)]
pub struct Cmd {
    #[command(flatten)]
    input: super::InputArgs,
    /// Output format: text, JSON (the schema of `tracemark_decoder::stats::Stats`), or
    /// CSV (`field,value` rows, fields named by their JSON path).
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// Same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    json: bool,
}

impl Cmd {
    /// Runs the command.
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<()> {
        let format = if self.json { Format::Json } else { self.format };
        let threads = self.input.threads();
        self.input.with_dump(
            |d| d.record_bytes(),
            256 << 20,
            true,
            |dump, inc| {
                let (stats, warnings) = stats::compute(dump, threads, inc);
                match format {
                    Format::Json => {
                        serde_json::to_writer_pretty(&mut *out, &stats)?;
                        writeln!(out)?;
                    }
                    Format::Csv => stats.write_csv(out)?,
                    Format::Text => stats.write_text(out)?,
                }
                out.flush()?;
                Ok(warnings)
            },
        )
    }
}
