//! `tracemark export`: a dump in another trace format.
//!
//! This module is the command-line wiring; the formats live in
//! [`tracemark_decoder::export`].

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use tracemark_decoder::dump::{Dump, Warning};
use tracemark_decoder::export::ctf::CtfWriter;
use tracemark_decoder::export::parquet::ParquetDump;
use tracemark_decoder::export::{self, DumpMeta, Job};

/// Output formats of `tracemark export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// A CTF 1.8 trace directory (`metadata` and one stream file per CPU) for
    /// babeltrace2 and Trace Compass. One input file.
    Ctf,
    /// Hive-partitioned Parquet tables (`DIR/records/dump=<id>/cpu=<n>/part-<k>.parquet`,
    /// and `images`, `lost`, `rings`) for DuckDB, Spark or DataFusion. Many input files.
    Parquet,
}

/// Write dumps in another trace format.
#[derive(Debug, clap::Args)]
pub struct Cmd {
    /// Dump files, raw memory images, or UART logs with `@TM:` lines.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// Output directory (created if needed).
    #[arg(short, long)]
    output: PathBuf,
    /// List every problem found (torn, corrupt or skipped blocks...) on stderr, not just
    /// the first and a count.
    #[arg(short, long)]
    verbose: bool,
    /// Worker threads (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
}

impl Cmd {
    /// Runs the command.
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<()> {
        let threads = self.threads.unwrap_or_else(super::threads);
        let sources = self
            .files
            .iter()
            .map(|f| super::open(f))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let dumps = sources
            .iter()
            .zip(&self.files)
            .map(|(s, f)| s.dump(f))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let total: u64 = dumps
            .iter()
            .flat_map(|d| d.rings.iter().flat_map(|r| &r.blocks))
            .map(|b| u64::from(b.header_records))
            .sum();
        let bar = super::progress(total, 4 << 20, false);
        let inc = |n: u64| {
            if let Some(b) = &bar {
                b.inc(n);
            }
        };
        let mut decode_warnings: Vec<Vec<Warning>> = vec![Vec::new(); dumps.len()];
        match self.format {
            ExportFormat::Ctf => {
                let [dump] = &dumps[..] else {
                    bail!(
                        "--format ctf takes one input file (one CTF trace per dump); got {}",
                        dumps.len()
                    );
                };
                let meta = DumpMeta::of(dump);
                let mut w = CtfWriter::new(&self.output, &meta)
                    .with_context(|| self.files[0].display().to_string())?;
                decode_warnings[0] = export::for_each_ring(dump, w.streams_mut(), threads, &inc)?;
                let sum = w.finish()?;
                if let Some(b) = &bar {
                    b.finish_and_clear();
                }
                writeln!(
                    out,
                    "{}: {} events in {} packets, {} records reported discarded, {} bytes (trace {})",
                    self.output.display(),
                    sum.events,
                    sum.packets,
                    sum.discarded,
                    sum.bytes,
                    meta.id
                )?;
            }
            ExportFormat::Parquet => {
                let metas: Vec<DumpMeta> = dumps.iter().map(DumpMeta::of).collect();
                check_distinct(&self.files, &metas)?;
                let mut writers = metas
                    .iter()
                    .map(|m| ParquetDump::new(&self.output, m, None))
                    .collect::<std::io::Result<Vec<_>>>()?;
                let jobs: Vec<Job<'_, '_, _>> = writers
                    .iter_mut()
                    .zip(&dumps)
                    .enumerate()
                    .flat_map(|(tag, (w, dump))| {
                        w.partitions_mut()
                            .iter_mut()
                            .enumerate()
                            .map(move |(ring, sink)| Job {
                                dump,
                                ring: ring as u32,
                                sink,
                                tag,
                            })
                    })
                    .collect();
                for (tag, w) in export::feed(jobs, threads, &inc)? {
                    decode_warnings[tag].push(w);
                }
                if let Some(b) = &bar {
                    b.finish_and_clear();
                }
                for ((w, m), f) in writers.into_iter().zip(&metas).zip(&self.files) {
                    let sum = w.finish()?;
                    writeln!(
                        out,
                        "{}: dump={} {} rows in {} files, {} bytes",
                        f.display(),
                        m.id,
                        sum.rows,
                        sum.parts,
                        sum.bytes
                    )?;
                }
            }
        }
        out.flush()?;
        report_all(&self.files, &sources, &dumps, decode_warnings, self.verbose)
    }
}

/// Two inputs with the same bytes would write the same partition.
fn check_distinct(files: &[PathBuf], metas: &[DumpMeta]) -> anyhow::Result<()> {
    for (i, m) in metas.iter().enumerate() {
        if let Some(j) = metas[..i].iter().position(|o| o.id == m.id) {
            bail!(
                "{} and {} hold the same dump (id {}): give it once",
                files[j].display(),
                files[i].display(),
                m.id
            );
        }
    }
    Ok(())
}

/// Reports every input's warnings; fails with the first input that lost data.
fn report_all(
    files: &[PathBuf],
    sources: &[super::Source],
    dumps: &[Dump<'_>],
    decode: Vec<Vec<Warning>>,
    verbose: bool,
) -> anyhow::Result<()> {
    let mut first_err = None;
    for (((f, s), d), dw) in files.iter().zip(sources).zip(dumps).zip(decode) {
        let mut warnings = s.warnings.clone();
        let mut dump_warnings = d.warnings.clone();
        dump_warnings.extend(dw);
        dump_warnings.sort_by_key(|w| w.offset);
        warnings.extend(dump_warnings);
        if let Err(e) = super::report(Path::new(f), &warnings, verbose) {
            if first_err.is_some() {
                eprintln!("tracemark: {e:#}");
            }
            first_err = first_err.or(Some(e));
        }
    }
    first_err.map_or(Ok(()), Err)
}
