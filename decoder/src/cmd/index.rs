//! `tracemark index`: build the block index of a dump.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use tracemark_decoder::dump::Dump;
use tracemark_decoder::index;

/// Build a block index (per block: first record number, time range, per-kind counts)
/// for `tracemark query`.
#[derive(Debug, clap::Args)]
pub struct Cmd {
    /// A dump file or raw memory image.
    file: PathBuf,
    /// Where to write the index (default: FILE.idx).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Worker threads (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
}

impl Cmd {
    /// Runs the command.
    pub fn run(self, _out: &mut dyn Write) -> anyhow::Result<()> {
        let input = super::open(&self.file)?;
        let dump = Dump::parse(input.bytes()).with_context(|| self.file.display().to_string())?;
        let bar = super::progress(dump.record_bytes(), 256 << 20, true);
        let inc = |n: u64| {
            if let Some(b) = &bar {
                b.inc(n);
            }
        };
        let source = std::fs::canonicalize(&self.file).unwrap_or_else(|_| self.file.clone());
        let (bytes, decode_warnings) = index::build(
            &dump,
            &source,
            self.threads.unwrap_or_else(super::threads),
            &inc,
        );
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        let output = self.output.clone().unwrap_or_else(|| {
            let mut p = self.file.clone().into_os_string();
            p.push(".idx");
            PathBuf::from(p)
        });
        let tmp = {
            let mut p = output.clone().into_os_string();
            p.push(".tmp");
            PathBuf::from(p)
        };
        std::fs::write(&tmp, &bytes)
            .and_then(|()| std::fs::rename(&tmp, &output))
            .with_context(|| output.display().to_string())?;
        let mut warnings = dump.warnings.clone();
        warnings.extend(decode_warnings);
        warnings.sort_by_key(|w| w.offset);
        super::report(&self.file, &warnings)
    }
}
