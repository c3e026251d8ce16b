//! `tracemark index`: build the block index of a dump.

use std::io::Write;
use std::path::PathBuf;

use tracemark_decoder::index;

/// Build a block index (per block: first record number, time range, per-kind counts)
/// for `tracemark query`.
#[derive(Debug, clap::Args)]
pub struct Cmd {
    /// A dump file, raw memory image, or UART log with `@TM:` lines.
    file: PathBuf,
    /// List every problem found (torn, corrupt or skipped blocks...) on stderr, not just
    /// the first and a count.
    #[arg(short, long)]
    verbose: bool,
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
        if self.file.as_os_str() == "-" {
            anyhow::bail!(
                "-: an index refers to its dump by path, so it needs a file: save standard input to a file and index that"
            );
        }
        let source = super::open(&self.file)?;
        let dump = source.dump(&self.file)?;
        let bar = super::progress(dump.record_bytes(), 256 << 20, true);
        let inc = |n: u64| {
            if let Some(b) = &bar {
                b.inc(n);
            }
        };
        let source_path = std::fs::canonicalize(&self.file).unwrap_or_else(|_| self.file.clone());
        let (bytes, decode_warnings) = index::build(
            &dump,
            &source_path,
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
        super::write_output(&output, &bytes)?;
        let mut warnings = source.warnings.clone();
        let mut dump_warnings = dump.warnings.clone();
        dump_warnings.extend(decode_warnings);
        dump_warnings.sort_by_key(|w| w.offset);
        warnings.extend(dump_warnings);
        super::report(&self.file, &warnings, self.verbose)
    }
}
