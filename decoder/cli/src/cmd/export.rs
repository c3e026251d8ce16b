//! `tracemark export`: a dump converted for a timeline viewer or a data engine, one
//! module of [`tracemark_export`] per format.
//!
//! Adding a format: a file in `decoder/export/src/` implementing
//! [`tracemark_export::Sink`], a variant of [`ExportFormat`] (its doc comment is
//! the `--help` text), and an arm in [`Cmd::run`] that builds the sink and hands it to
//! [`tracemark_export::run`] (records in time order across rings) or, for
//! formats whose rings are independent, one sink per ring to
//! [`tracemark_export::for_each_ring`] / [`tracemark_export::feed`].
//! Formats that write one file or one trace (perfetto, chrome-json, ctf) take exactly
//! one input; parquet takes several (`FILE...`), each under its own `dump=` partition.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use tracemark_decoder::dump::{Dump, Warning};
use tracemark_export::ctf::CtfWriter;
use tracemark_export::parquet::{self, ParquetDump};
use tracemark_export::{chrome_json, perfetto, DumpMeta, Job};

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Perfetto's protobuf trace (open in ui.perfetto.dev): a track per CPU, kernel
    /// entries and functions as nested slices, interrupts, user events and losses as
    /// instants, a track per thread switched to with its running time as slices. `-o`
    /// names a file.
    Perfetto,
    /// Chrome trace-event JSON (chrome://tracing, speedscope): the same events as
    /// `B`/`E` pairs and instants, a thread per CPU. `-o` names a file.
    ChromeJson,
    /// A CTF 1.8 trace directory (`metadata` and one stream file per CPU) for
    /// babeltrace2 and Trace Compass. `-o` names a directory.
    Ctf,
    /// Hive-partitioned Parquet tables (`DIR/records/dump=<id>/cpu=<n>/part-<k>.parquet`,
    /// and `images`, `lost`, `rings`) for DuckDB, Spark or DataFusion. Many input files;
    /// `-o` names a directory.
    Parquet,
}

/// Convert dumps for a trace viewer or a data engine.
#[derive(Debug, clap::Args)]
pub struct Cmd {
    /// Dump files, raw memory images, or UART logs with `@TM:` lines (perfetto,
    /// chrome-json and ctf take one; parquet many).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// Where to write the output: a file for perfetto and chrome-json (written through
    /// a temporary file renamed at the end), a directory for ctf and parquet (created if
    /// needed).
    #[arg(short, long)]
    output: PathBuf,
    /// An ELF file of the traced code (repeatable): function slices (and Parquet's
    /// `symbol` column) are named by its symbols. Matched to the dump's IMAGE records
    /// by build id, or by load address or size.
    #[arg(long = "elf", value_name = "FILE")]
    elfs: Vec<PathBuf>,
    /// Use an `--elf` whose build id no IMAGE record of the dump carries by its address
    /// anyway (else refused: another build's names would be wrong).
    #[arg(long, requires = "elfs")]
    elf_ignore_build_id: bool,
    #[command(flatten)]
    verbose: super::VerboseArg,
    // Each worker thread takes one ring at a time.
    #[command(flatten)]
    threads: super::ThreadsArg,
}

/// The output file: a `tempfile::NamedTempFile` beside `path`, persisted over it once
/// complete (readers never see half a trace; a failed run removes it, and two runs do
/// not share it), or `path` itself when it exists and is not a regular file
/// (`/dev/null`, a FIFO).
enum Output {
    Temp(tempfile::NamedTempFile, PathBuf),
    Special(File),
}

impl Output {
    fn create(path: &Path) -> anyhow::Result<Output> {
        let name = || path.display().to_string();
        if std::fs::metadata(path).is_ok_and(|m| !m.file_type().is_file()) {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(name)?;
            return Ok(Output::Special(f));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let t = tempfile::Builder::new()
            .prefix(".tracemark-export-")
            .tempfile_in(dir)
            .with_context(name)?;
        Ok(Output::Temp(t, path.to_path_buf()))
    }

    /// The file to write.
    fn file(&self) -> anyhow::Result<File> {
        match self {
            Output::Temp(t, p) => t.reopen().with_context(|| p.display().to_string()),
            Output::Special(f) => f.try_clone().context("the output"),
        }
    }

    fn commit(self) -> anyhow::Result<()> {
        if let Output::Temp(t, path) = self {
            t.persist(&path)
                .map_err(|e| e.error)
                .with_context(|| path.display().to_string())?;
        }
        Ok(())
    }
}

type Table = Arc<HashMap<u64, String>>;

/// Function names and source locations from `--elf`, by function id or address (empty
/// without `--elf`).
fn tables(
    dump: &Dump<'_>,
    elfs: &[PathBuf],
    ignore_build_id: bool,
) -> anyhow::Result<(Table, Table)> {
    let symbols = super::symbols(dump, elfs, ignore_build_id)?;
    let names = symbols.as_ref().map(|s| s.names()).unwrap_or_default();
    let sources = symbols.as_ref().map(|s| s.locations()).unwrap_or_default();
    Ok((Arc::new(names), Arc::new(sources)))
}

/// The `--elf` names as Parquet's `symbol` column source.
struct Names(Table);

impl parquet::FunctionNames for Names {
    fn name(&self, func: u64) -> Option<String> {
        self.0.get(&func).cloned()
    }
}

impl Cmd {
    /// Runs the command.
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<()> {
        let threads = self.threads.get();
        self.check_input_count()?;
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
        for (f, dump) in self.files.iter().zip(&dumps) {
            self.note_clocks(f, dump);
        }
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
        let done = || {
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
        };
        let mut decode_warnings: Vec<Vec<Warning>> = vec![Vec::new(); dumps.len()];
        match self.format {
            ExportFormat::Perfetto | ExportFormat::ChromeJson => {
                decode_warnings[0] = self.one_file(&dumps[0], threads, &inc)?;
            }
            ExportFormat::Ctf => {
                decode_warnings[0] = self.ctf(&dumps[0], threads, &inc, &done, out)?;
            }
            ExportFormat::Parquet => {
                decode_warnings = self.parquet(&dumps, threads, &inc, &done, out)?;
            }
        }
        done();
        out.flush()?;
        report_all(
            &self.files,
            &sources,
            &dumps,
            decode_warnings,
            self.verbose.verbose,
        )
    }

    /// Perfetto, Chrome JSON and CTF take one input.
    fn check_input_count(&self) -> anyhow::Result<()> {
        if self.format != ExportFormat::Parquet && self.files.len() != 1 {
            let name = clap::ValueEnum::to_possible_value(&self.format)
                .map(|v| v.get_name().to_string())
                .unwrap_or_default();
            bail!(
                "--format {name} takes one input file (one trace per dump); {} given \
                 (--format parquet takes many)",
                self.files.len()
            );
        }
        Ok(())
    }

    /// What the user must know of `dump`'s clocks before its times are exported.
    fn note_clocks(&self, f: &Path, dump: &Dump<'_>) {
        // Perfetto and Chrome JSON have times in ns only (CTF keeps ticks; Parquet's
        // time_ns is null where it does not fit).
        if matches!(
            self.format,
            ExportFormat::Perfetto | ExportFormat::ChromeJson
        ) {
            for i in tracemark_export::ns_overflows(dump) {
                let r = &dump.rings[i as usize];
                eprintln!(
                    "tracemark: {}: warning: cpu{} (ring {i}): times past {} ticks do not fit \
                     in 64-bit nanoseconds at {} Hz: they are exported at the largest time, \
                     not in their order (decode and stats show the ticks)",
                    f.display(),
                    r.cpu,
                    tracemark_export::max_exact_ticks(r.clock_hz),
                    r.clock_hz
                );
            }
        }
        for r in dump.rings.iter().filter(|r| r.clock_hz == 0) {
            eprintln!(
                "tracemark: {}: note: cpu{}: clock frequency unknown; times are raw ticks \
                 shown as ns",
                f.display(),
                r.cpu
            );
        }
    }

    /// CTF: one trace directory from one dump, its summary line on `out`. Returns the
    /// decoding warnings.
    fn ctf(
        &self,
        dump: &Dump<'_>,
        threads: usize,
        inc: &(dyn Fn(u64) + Sync),
        done: &dyn Fn(),
        out: &mut dyn Write,
    ) -> anyhow::Result<Vec<Warning>> {
        let meta = DumpMeta::of(dump);
        let mut w = CtfWriter::new(&self.output, &meta)
            .with_context(|| self.output.display().to_string())?;
        let outcome =
            tracemark_export::for_each_ring(dump, &meta.rings, w.streams_mut(), threads, inc)
                .with_context(|| self.output.display().to_string())?;
        let warnings = outcome.warnings;
        let sum = w
            .finish()
            .with_context(|| self.output.display().to_string())?;
        done();
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
        Ok(warnings)
    }

    /// Parquet: the tables of every dump, a summary line per input on `out`. Returns
    /// each input's decoding warnings.
    fn parquet(
        &self,
        dumps: &[Dump<'_>],
        threads: usize,
        inc: &(dyn Fn(u64) + Sync),
        done: &dyn Fn(),
        out: &mut dyn Write,
    ) -> anyhow::Result<Vec<Vec<Warning>>> {
        let mut decode_warnings: Vec<Vec<Warning>> = vec![Vec::new(); dumps.len()];
        let metas: Vec<DumpMeta> = dumps.iter().map(DumpMeta::of).collect();
        check_distinct(&self.files, &metas)?;
        let mut writers = Vec::with_capacity(dumps.len());
        for (m, d) in metas.iter().zip(dumps) {
            let (names, _) = tables(d, &self.elfs, self.elf_ignore_build_id)?;
            let symbols: Option<Arc<dyn parquet::FunctionNames>> = if names.is_empty() {
                None
            } else {
                Some(Arc::new(Names(names)))
            };
            writers.push(
                ParquetDump::new(&self.output, m, symbols)
                    .with_context(|| self.output.display().to_string())?,
            );
        }
        let mut jobs: Vec<Job<'_, '_, _>> = writers
            .iter_mut()
            .zip(dumps)
            .zip(&metas)
            .enumerate()
            .flat_map(|(tag, ((w, dump), meta))| {
                w.partitions_mut()
                    .iter_mut()
                    .enumerate()
                    .map(move |(ring, sink)| Job {
                        dump,
                        rings: &meta.rings,
                        ring: ring as u32,
                        sink,
                        tag,
                    })
            })
            .collect();
        // Largest rings first: the pool's threads finish together. Partitions are
        // files of their own, so the order changes no byte.
        jobs.sort_by_key(|j| std::cmp::Reverse(j.dump.rings[j.ring as usize].record_bytes()));
        let (_, warnings) = tracemark_export::feed(jobs, threads, inc)
            .with_context(|| self.output.display().to_string())?;
        for (tag, w) in warnings {
            decode_warnings[tag].push(w);
        }
        done();
        for ((w, m), f) in writers.into_iter().zip(&metas).zip(&self.files) {
            let sum = w
                .finish()
                .with_context(|| self.output.display().to_string())?;
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
        Ok(decode_warnings)
    }

    /// Perfetto or Chrome JSON: one file from one dump. Returns the decoding warnings.
    fn one_file(
        &self,
        dump: &Dump<'_>,
        threads: usize,
        inc: &(dyn Fn(u64) + Sync),
    ) -> anyhow::Result<Vec<Warning>> {
        let (names, sources) = tables(dump, &self.elfs, self.elf_ignore_build_id)?;
        let output = Output::create(&self.output)?;
        let file = output.file()?;
        let out_name = || self.output.display().to_string();
        let outcome = match self.format {
            ExportFormat::Perfetto => {
                // Without --elf, no lookup per function record.
                let shared = |t: &Table| -> Option<perfetto::SharedNamer> {
                    let t = t.clone();
                    (!t.is_empty())
                        .then(|| -> perfetto::SharedNamer { Arc::new(move |f| t.get(&f).cloned()) })
                };
                let (o, _) = perfetto::write_trace(
                    dump,
                    file,
                    threads,
                    shared(&names),
                    shared(&sources),
                    inc,
                )
                .with_context(out_name)?;
                o
            }
            _ => self.chrome_json(dump, file, &names, &sources, inc)?,
        };
        output.commit()?;
        Ok(outcome.warnings)
    }

    /// Chrome JSON into `file`.
    fn chrome_json(
        &self,
        dump: &Dump<'_>,
        file: File,
        names: &Table,
        sources: &Table,
        inc: &(dyn Fn(u64) + Sync),
    ) -> anyhow::Result<tracemark_export::Outcome> {
        let namer = |names: &Table| {
            let names = names.clone();
            Box::new(move |f: u64| names.get(&f).cloned())
        };
        let mut sink = chrome_json::ChromeJson::new(file)
            .with_thread_names(tracemark_export::thread_names(dump));
        if !names.is_empty() {
            sink = sink.with_function_names(namer(names));
        }
        if !sources.is_empty() {
            sink = sink.with_function_sources(namer(sources));
        }
        let o = tracemark_export::run(dump, &mut sink, inc)
            .with_context(|| self.output.display().to_string())?;
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
        Ok(o)
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
