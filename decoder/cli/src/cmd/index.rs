//! `tracemark index`: build the block index of a dump.

use std::io::Write;
use std::path::PathBuf;

use tracemark_decoder::index;

/// Build a block index (per block: first record number, time range, per-kind counts)
/// for `tracemark query`.
#[derive(Debug, clap::Args)]
pub struct Cmd {
    #[command(flatten)]
    input: super::InputArgs,
    /// Where to write the index (default: FILE.idx).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

impl Cmd {
    /// Runs the command.
    pub fn run(self, _out: &mut dyn Write) -> anyhow::Result<()> {
        if self.input.file.as_os_str() == "-" {
            anyhow::bail!(
                "-: an index refers to its dump by path, so it needs a file: save standard input to a file and index that"
            );
        }
        let file = &self.input.file;
        let source_path = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
        let output = self.output.clone().unwrap_or_else(|| {
            let mut p = file.clone().into_os_string();
            p.push(".idx");
            PathBuf::from(p)
        });
        let threads = self.input.threads();
        self.input.with_whole_dump(
            |d| d.record_bytes(),
            256 << 20,
            true,
            |dump, progress| {
                let (bytes, warnings) = index::build(dump, &source_path, threads, progress);
                super::write_output(&output, &bytes)?;
                Ok(warnings)
            },
        )
    }
}
