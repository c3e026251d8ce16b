//! `tracemark extract`: recover the dumps framed in a UART log.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use tracemark_decoder::extract;
use tracemark_decoder::input::Input;

/// Recover the dumps sent over a console (`@TM:` lines, see FORMAT.md section 17) from
/// a captured log: prints one line per dump saying which chunks are missing or corrupt,
/// writes the reassembled dumps end to end (zeros in place of lost chunks), and exits
/// non-zero if anything was lost.
#[derive(Debug, clap::Args)]
pub struct Cmd {
    /// The console log.
    log: PathBuf,
    /// Where to write the reassembled dump(s).
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    verbose: super::VerboseArg,
}

impl Cmd {
    /// Runs the command.
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<()> {
        let input = Input::open(&self.log).with_context(|| self.log.display().to_string())?;
        let report = extract::extract(input.bytes());
        let data = report.concatenated().data;
        let mut bad = 0usize;
        for d in &report.dumps {
            let at = d.begin.or(d.end).map_or(0, |l| l.offset);
            let status = match &d.error {
                Some(e) => e.to_string(),
                None => d.summary(),
            };
            if !d.is_complete() {
                bad += 1;
            }
            writeln!(out, "{}: at byte {at}: {status}", self.log.display())?;
        }
        if self.verbose.verbose {
            for issue in &report.issues {
                writeln!(out, "{}: {issue}", self.log.display())?;
            }
        }
        super::write_output(&self.output, &data)?;
        out.flush()?;
        if report.dumps.is_empty() {
            bail!(
                "{}: at byte 0: no tracemark dump (@TM:B/@TM:E lines) found",
                self.log.display()
            );
        }
        if bad > 0 || !report.issues.is_empty() || report.issues_dropped > 0 {
            let first = report.issues.first().map_or_else(
                || "at byte 0: damaged dump".to_string(),
                |i| format!("at byte {}: {i}", i.location().offset),
            );
            bail!(
                "{}: {first} ({bad} of {} dumps incomplete, {} problems in the log; {} bytes written to {})",
                self.log.display(),
                report.dumps.len(),
                report.issues.len() + report.issues_dropped,
                data.len(),
                self.output.display()
            );
        }
        Ok(())
    }
}
