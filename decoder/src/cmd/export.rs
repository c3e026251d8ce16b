//! `tracemark export`: a dump converted for a timeline viewer or a data engine, one
//! module of [`tracemark_decoder::export`] per format.
//!
//! Adding a format: a file in `decoder/src/export/` implementing
//! [`tracemark_decoder::export::Sink`], a variant of [`ExportFormat`] (its doc comment is
//! the `--help` text), and an arm in [`Cmd::run`] that builds the sink and hands it to
//! [`tracemark_decoder::export::run`]. Formats that write one file take exactly one
//! input; the command accepts several (`FILE...`) for formats that write a directory
//! of partitions.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tracemark_decoder::export::{self, chrome_json, perfetto};

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Perfetto's protobuf trace (open in ui.perfetto.dev): a track per CPU, kernel
    /// entries and functions as nested slices, interrupts, user events and losses as
    /// instants. `-o` names a file.
    Perfetto,
    /// Chrome trace-event JSON (chrome://tracing, speedscope): the same events as
    /// `B`/`E` pairs and instants, a thread per CPU. `-o` names a file.
    ChromeJson,
}

/// Convert a dump for a trace viewer.
#[derive(Debug, clap::Args)]
pub struct Cmd {
    /// Dump files, raw memory images, or UART logs with `@TM:` lines (perfetto and
    /// chrome-json take one).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// Where to write the output (written through a temporary file renamed at the end).
    #[arg(short, long)]
    output: PathBuf,
    /// An ELF file of the traced code (repeatable): function slices are named by its
    /// symbols. Matched to the dump's IMAGE records by build id, or by load address or
    /// size.
    #[arg(long = "elf", value_name = "FILE")]
    elfs: Vec<PathBuf>,
    /// List every problem found (torn, corrupt or skipped blocks...) on stderr, not just
    /// the first and a count.
    #[arg(short, long)]
    verbose: bool,
}

/// The output file: a temporary file renamed over `path` once complete (readers never
/// see half a trace), or `path` itself when it exists and is not a regular file
/// (`/dev/null`, a FIFO).
struct Output {
    path: PathBuf,
    tmp: Option<PathBuf>,
}

impl Output {
    fn create(path: &Path) -> anyhow::Result<(Output, File)> {
        let special = std::fs::metadata(path).is_ok_and(|m| !m.file_type().is_file());
        let (tmp, open) = if special {
            (None, path.to_path_buf())
        } else {
            let mut t = path.as_os_str().to_owned();
            t.push(".tmp");
            let t = PathBuf::from(t);
            (Some(t.clone()), t)
        };
        let f = if special {
            std::fs::OpenOptions::new().write(true).open(&open)
        } else {
            File::create(&open)
        }
        .with_context(|| open.display().to_string())?;
        Ok((
            Output {
                path: path.to_path_buf(),
                tmp,
            },
            f,
        ))
    }

    fn commit(mut self) -> anyhow::Result<()> {
        if let Some(t) = self.tmp.take() {
            std::fs::rename(&t, &self.path).with_context(|| self.path.display().to_string())?;
        }
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Some(t) = &self.tmp {
            let _ = std::fs::remove_file(t);
        }
    }
}

impl Cmd {
    /// Runs the command.
    pub fn run(self, _out: &mut dyn Write) -> anyhow::Result<()> {
        let [input] = &self.files[..] else {
            let name = clap::ValueEnum::to_possible_value(&self.format)
                .map(|v| v.get_name().to_string())
                .unwrap_or_default();
            anyhow::bail!(
                "--format {name} writes one file from one dump; {} inputs given",
                self.files.len()
            );
        };
        let input = input.clone();
        let source = super::open(&input)?;
        let dump = source.dump(&input)?;
        for r in dump.rings.iter().filter(|r| r.clock_hz == 0) {
            eprintln!(
                "tracemark: note: cpu{}: clock frequency unknown; times are raw ticks shown as ns",
                r.cpu
            );
        }
        let total: u64 = dump
            .rings
            .iter()
            .flat_map(|r| &r.blocks)
            .map(|b| u64::from(b.header_records))
            .sum();
        let bar = super::progress(total, 4 << 20, false);
        let inc = |n: u64| {
            if let Some(b) = &bar {
                b.inc(n);
            }
        };
        type Table = std::sync::Arc<std::collections::HashMap<u64, String>>;
        let symbols = super::symbols(&dump, &self.elfs)?;
        let names: Table =
            std::sync::Arc::new(symbols.as_ref().map(|s| s.names()).unwrap_or_default());
        let sources: Table =
            std::sync::Arc::new(symbols.as_ref().map(|s| s.locations()).unwrap_or_default());
        drop(symbols);
        let namer = |names: &Table| {
            let names = names.clone();
            Box::new(move |f: u64| names.get(&f).cloned())
        };
        let (output, file) = Output::create(&self.output)?;
        let out_name = self.output.display().to_string();
        let with_path = |e: anyhow::Error| e.context(out_name.clone());
        let outcome = match self.format {
            ExportFormat::Perfetto => {
                // The rings are independent packet sequences: one sink per ring, in
                // parallel, their output written here in whole-packet chunks after
                // the header.
                let header = perfetto::header(&export::ring_infos(&dump));
                let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
                std::thread::scope(|s| -> anyhow::Result<export::Outcome> {
                    let writer = s.spawn(move || -> std::io::Result<()> {
                        let mut f = file;
                        f.write_all(&header)?;
                        for chunk in rx {
                            f.write_all(&chunk)?;
                        }
                        finish_file(f)
                    });
                    let make = |ring: u32| {
                        let mut sink =
                            perfetto::Perfetto::new(export::ChunkWriter(tx.clone())).per_ring(ring);
                        // Without --elf, no lookup per function record.
                        if !names.is_empty() {
                            sink = sink.with_function_names(namer(&names));
                        }
                        if !sources.is_empty() {
                            sink = sink.with_function_sources(namer(&sources));
                        }
                        sink
                    };
                    // The sinks (and their senders) are dropped here, so that the
                    // writer sees the end of the channel.
                    let result = export::run_per_ring(&dump, super::threads(), &make, &inc)
                        .map(|(_sinks, outcome)| outcome);
                    drop(tx);
                    let written = writer
                        .join()
                        .map_err(|_| anyhow::anyhow!("the writing thread panicked"))?;
                    // A write error first: it is why the sinks failed, if they did.
                    written.map_err(|e| with_path(e.into()))?;
                    result.map_err(with_path)
                })?
            }
            ExportFormat::ChromeJson => {
                let mut sink = chrome_json::ChromeJson::new(file);
                if !names.is_empty() {
                    sink = sink.with_function_names(namer(&names));
                }
                if !sources.is_empty() {
                    sink = sink.with_function_sources(namer(&sources));
                }
                let o = export::run(&dump, &mut sink, &inc).map_err(with_path)?;
                if sink.written > chrome_json::LARGE {
                    eprintln!(
                        "tracemark: warning: {} is {} MiB: chrome://tracing and most JSON \
                         viewers fail or crawl above {} MiB; prefer --format perfetto \
                         (ui.perfetto.dev streams it)",
                        self.output.display(),
                        sink.written >> 20,
                        chrome_json::LARGE >> 20
                    );
                }
                finish_file(sink.into_inner())?;
                o
            }
        };
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        output.commit()?;
        let mut warnings = source.warnings.clone();
        let mut dump_warnings = dump.warnings.clone();
        dump_warnings.extend(outcome.warnings);
        dump_warnings.sort_by_key(|w| w.offset);
        warnings.extend(dump_warnings);
        super::report(&input, &warnings, self.verbose)
    }
}

/// Closes the output (the sinks write in large chunks of their own, unbuffered).
fn finish_file(f: File) -> std::io::Result<()> {
    drop(f);
    Ok(())
}
