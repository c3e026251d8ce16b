//! One module per subcommand, and what they share.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use tracemark_decoder::dump::{Category, Dump, Warning};
use tracemark_decoder::input::{self, DumpBytes, Input};
use tracemark_decoder::render::Format;

pub mod capture;
pub mod decode;
pub mod export;
pub mod extract;
pub mod import;
pub mod index;
pub mod query;
pub mod stats;

/// Standard output, whose write errors say that it was standard output (the error
/// kind is kept, so a closed pipe is still recognised).
pub struct Stdout<W>(pub W);

impl<W: std::io::Write> std::io::Write for Stdout<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).map_err(stdout_error)
    }

    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        self.0.write_vectored(bufs).map_err(stdout_error)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().map_err(stdout_error)
    }
}

fn stdout_error(e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), StdoutError(e))
}

/// An error writing to standard output: the only broken pipe that ends a command
/// quietly with success (`tracemark decode ... | head`); a broken pipe anywhere else
/// (an export's `-o` FIFO whose reader left) is a failure.
#[derive(Debug)]
pub struct StdoutError(std::io::Error);

impl std::fmt::Display for StdoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "writing to standard output: {} (check the disk, file or pipe it goes to, or use -o where the command has it)",
            self.0
        )
    }
}

impl std::error::Error for StdoutError {}

/// `text` with control characters (NUL, line ends, escapes...) written as Rust escapes
/// (`\0`, `\n`, `\u{1b}`), so that bytes from an untrusted dump or index can neither
/// break a message into lines nor drive the terminal.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// How records are printed (the command-line view of [`Format`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// One line per record:
    /// `cpu0 #51517274 12.345678901 KENTRY Syscall Call cap=CNode label=42 fastpath`.
    /// Columns: CPU, record number (`#-` for LOST records, which have none), time in
    /// seconds (raw ticks if the clock frequency is unknown), kind, details.
    #[default]
    Text,
    /// JSON Lines, one object per record:
    /// `{"cpu":0,"n":12,"ts":123,"time":"0.000000123","kind":"IRQ","irq":27}`.
    /// `n` is null for LOST records; `time` is null if the clock frequency is unknown.
    /// KENTRY: `path`, and `syscall`, `syscall_name`, `cap`, `cap_name`, `label`,
    /// `fastpath` for syscalls or `core`, `word` otherwise. KEXIT: `duration_ticks`
    /// (null when unknown, with `note`), and the entry's `path` and `syscall`,
    /// `syscall_name` when the entry is known. IRQ: `irq`. FENTRY/FEXIT: `func`. USER:
    /// `id`, `data` (hex). IMAGE: `base`, `size`, `id`. LOST: `count`, `since`.
    Json,
    /// CSV with a header line: `cpu,n,ts,time,kind,detail`, where `detail` is the text
    /// format's details.
    Csv,
}

impl From<OutputFormat> for Format {
    fn from(f: OutputFormat) -> Format {
        match f {
            OutputFormat::Text => Format::Text,
            OutputFormat::Json => Format::Json,
            OutputFormat::Csv => Format::Csv,
        }
    }
}

/// `--verbose`, shared by every command that reports problems of its input: flatten it
/// into a command with `#[command(flatten)]`.
#[derive(Debug, clap::Args)]
pub struct VerboseArg {
    /// List every problem found (torn, corrupt or skipped blocks, damaged log lines...),
    /// not just the first and a count.
    #[arg(short, long)]
    pub verbose: bool,
}

/// `--threads`, shared by every command that decodes in parallel: flatten it into a
/// command with `#[command(flatten)]`.
#[derive(Debug, clap::Args)]
pub struct ThreadsArg {
    /// Worker threads (default: available cores, at most 8).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl ThreadsArg {
    /// The worker threads to use (at least one).
    pub fn get(&self) -> usize {
        self.threads.unwrap_or_else(threads).max(1)
    }
}

/// The options of every command that reads one dump (`decode`, `stats`, `index`, and
/// new commands alike): flatten them into a command with `#[command(flatten)]`.
#[derive(Debug, clap::Args)]
pub struct InputArgs {
    /// A dump file, raw memory image, or UART log with `@TM:` lines (`-`: standard
    /// input).
    pub file: PathBuf,
    #[command(flatten)]
    verbose: VerboseArg,
    #[command(flatten)]
    threads: ThreadsArg,
    /// Most bytes read from a pipe, standard input or a device (regular files are mapped,
    /// whatever their size): more is refused, so that an endless stream cannot exhaust
    /// memory.
    #[arg(long, value_name = "BYTES", default_value_t = input::MAX_STREAM_LEN)]
    pub max_stream: u64,
}

impl InputArgs {
    /// The worker threads to use.
    pub fn threads(&self) -> usize {
        self.threads.get()
    }

    /// Opens the input and finds its rings, runs `work` on them with a progress bar
    /// (when stderr is a terminal and `total(dump)` reaches `min`; `bytes`: the units are
    /// bytes, else records), then reports the input's, the dump's and `work`'s warnings:
    /// an error (non-zero exit) if any of them is damage.
    pub fn with_dump(
        &self,
        total: impl Fn(&Dump<'_>) -> u64,
        min: u64,
        bytes: bool,
        work: impl FnOnce(&Dump<'_>, &(dyn Fn(u64) + Sync)) -> anyhow::Result<Vec<Warning>>,
    ) -> anyhow::Result<()> {
        self.run_dump(
            Input::open_limited(&self.file, self.max_stream),
            total,
            min,
            bytes,
            work,
        )
    }

    /// [`InputArgs::with_dump`] for a command that reads every byte of the dump: the
    /// file is mapped with all its pages ([`Input::open_whole`]).
    pub fn with_whole_dump(
        &self,
        total: impl Fn(&Dump<'_>) -> u64,
        min: u64,
        bytes: bool,
        work: impl FnOnce(&Dump<'_>, &(dyn Fn(u64) + Sync)) -> anyhow::Result<Vec<Warning>>,
    ) -> anyhow::Result<()> {
        self.run_dump(
            Input::open_whole(&self.file, self.max_stream),
            total,
            min,
            bytes,
            work,
        )
    }

    fn run_dump(
        &self,
        input: std::io::Result<Input>,
        total: impl Fn(&Dump<'_>) -> u64,
        min: u64,
        bytes: bool,
        work: impl FnOnce(&Dump<'_>, &(dyn Fn(u64) + Sync)) -> anyhow::Result<Vec<Warning>>,
    ) -> anyhow::Result<()> {
        let input = input.with_context(|| self.file.display().to_string())?;
        let source = source(&self.file, input)?;
        let dump = source.dump(&self.file)?;
        let bar = progress(total(&dump), min, bytes);
        let inc = |n: u64| {
            if let Some(b) = &bar {
                b.inc(n);
            }
        };
        let work_warnings = work(&dump, &inc)?;
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        let mut warnings = source.warnings.clone();
        let mut dump_warnings = dump.warnings.clone();
        dump_warnings.extend(work_warnings);
        dump_warnings.sort_by_key(|w| w.offset);
        warnings.extend(dump_warnings);
        report(&self.file, &warnings, self.verbose.verbose)
    }
}

/// Worker threads: the machine's parallelism, at most 8.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// An input file's dump bytes ([`DumpBytes`]: a dump or memory image as it is, or a
/// UART log's dumps reassembled), as the commands open them.
pub struct Source(DumpBytes);

impl std::ops::Deref for Source {
    type Target = DumpBytes;

    fn deref(&self) -> &DumpBytes {
        &self.0
    }
}

impl Source {
    /// The rings of the source (`path` names it in errors).
    pub fn dump(&self, path: &Path) -> anyhow::Result<Dump<'_>> {
        self.0.dump().with_context(|| path.display().to_string())
    }
}

/// Opens an input: a dump or raw memory image (mapped), or a UART log whose dumps are
/// extracted and concatenated.
pub fn open(path: &Path) -> anyhow::Result<Source> {
    let input = Input::open(path).with_context(|| path.display().to_string())?;
    source(path, input)
}

/// The dump bytes of `input` (read from `path`): as they are, or reassembled from a
/// UART log.
fn source(path: &Path, input: Input) -> anyhow::Result<Source> {
    let bytes = DumpBytes::new(input).with_context(|| path.display().to_string())?;
    Ok(Source(bytes))
}

/// Writes `bytes` to `path`: through a temporary file beside it (a unique name, removed
/// if anything fails) persisted over it for a regular file (readers never see half a
/// file), directly for anything else that exists (`/dev/null`, a FIFO, a terminal),
/// which a rename would replace.
pub fn write_output(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let special = std::fs::metadata(path).is_ok_and(|m| !m.file_type().is_file());
    let result = if special {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, bytes))
    } else {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        tempfile::NamedTempFile::new_in(dir)
            .and_then(|mut tmp| {
                std::io::Write::write_all(&mut tmp, bytes)?;
                Ok(tmp)
            })
            .and_then(|tmp| tmp.persist(path).map(drop).map_err(|e| e.error))
    };
    result.with_context(|| path.display().to_string())
}

/// A progress bar over `total` units on a terminal, or `None` when stderr is not one or
/// the job is small.
pub fn progress(total: u64, min: u64, unit_bytes: bool) -> Option<ProgressBar> {
    if total < min || !std::io::stderr().is_terminal() {
        return None;
    }
    let template = if unit_bytes {
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    } else {
        "{bar:40} {pos}/{len} records eta {eta}"
    };
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    Some(bar)
}

/// Reports `warnings` (UART-log problems first, then the dump's in file order). With
/// `verbose`, every warning gets a line of its own. A warning that means data was lost
/// makes an error: one line, `FILE: at byte OFFSET: message (and N more problems: ...)`,
/// so that the command exits non-zero after printing what it could. Torn blocks of an
/// overwrite ring being reclaimed are normal and only shown with `verbose`.
pub fn report(path: &Path, warnings: &[Warning], verbose: bool) -> anyhow::Result<()> {
    if verbose {
        for w in warnings {
            eprintln!(
                "tracemark: {}",
                escape(&format!("{}: warning: {w}", path.display()))
            );
        }
    }
    let Some(first) = warnings.iter().find(|w| w.damage) else {
        return Ok(());
    };
    let mut others: Vec<(Category, usize)> = Vec::new();
    for w in warnings.iter().filter(|w| !std::ptr::eq(*w, first)) {
        match others.iter_mut().find(|(c, _)| *c == w.category) {
            Some((_, n)) => *n += 1,
            None => others.push((w.category, 1)),
        }
    }
    others.sort();
    let more: usize = others.iter().map(|(_, n)| n).sum();
    let tail = if more == 0 {
        String::new()
    } else {
        let parts: Vec<String> = others
            .iter()
            .map(|(c, n)| format!("{n} {}", c.noun(*n)))
            .collect();
        format!(
            " (and {more} more problem{}: {}{})",
            if more == 1 { "" } else { "s" },
            parts.join(", "),
            if verbose {
                ""
            } else {
                "; --verbose lists them"
            }
        )
    };
    bail!("{}: {first}{tail}", path.display())
}

/// With `--elf` files: the dump's function ids resolved from them (one fast pass over
/// the dump for its images and distinct function ids), the matching told on stderr.
pub fn symbols(
    dump: &Dump<'_>,
    elfs: &[std::path::PathBuf],
    ignore_build_id: bool,
) -> anyhow::Result<Option<tracemark_decoder::symbols::Symbols>> {
    use tracemark_decoder::symbols;
    if elfs.is_empty() {
        return Ok(None);
    }
    let scan = symbols::scan(dump);
    let mut s = symbols::Symbols::load(elfs, &scan.images, ignore_build_id)?;
    s.resolve(scan.functions.iter().copied());
    for n in &s.notes {
        eprintln!("tracemark: note: {n}");
    }
    for w in &s.warnings {
        eprintln!("tracemark: warning: {}", escape(w));
    }
    Ok(Some(s))
}
