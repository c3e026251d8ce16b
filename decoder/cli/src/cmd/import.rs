//! `tracemark import SOURCE ...`: make a dump from another tool's trace. One
//! sub-subcommand per source (`qemu` so far).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tracemark_import::qemu::{symbols::Symbols, writer::RING_LEN, Importer, Report};

/// Make a tracemark dump from another tool's trace.
#[derive(Debug, clap::Args)]
pub struct Cmd {
    #[command(subcommand)]
    tool: Tool,
}

/// The tool whose trace is imported.
#[derive(Debug, clap::Subcommand)]
enum Tool {
    /// A QEMU execution log (`-d exec,cpu,in_asm,nochain -D LOG`): syscalls with their
    /// numbers, functions in first-run order.
    Qemu(Qemu),
}

/// Guest architectures understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Arch {
    /// 32-bit ARM (ARM and Thumb code), Linux EABI syscalls.
    Arm,
}

/// `tracemark import qemu`.
#[derive(Debug, clap::Args)]
struct Qemu {
    /// The log (`-` for standard input).
    log: PathBuf,
    /// The program that ran (ELF with symbols): blocks that start a function become
    /// function entries, and the order file lists its symbols.
    #[arg(long)]
    elf: Option<PathBuf>,
    /// Guest architecture.
    #[arg(long, value_enum, default_value = "arm")]
    arch: Arch,
    /// Where to write the dump.
    #[arg(short, long)]
    output: PathBuf,
    /// Write the syscall table as CSV: number,name,count,first_pc.
    #[arg(long, value_name = "FILE.csv")]
    syscalls: Option<PathBuf>,
    /// Write the functions in first-execution order, one symbol per line
    /// (`ld`/`lld --symbol-ordering-file`).
    #[arg(long, value_name = "FILE")]
    order_file: Option<PathBuf>,
}

impl Cmd {
    /// Runs the command.
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<()> {
        match self.tool {
            Tool::Qemu(q) => q.run(out),
        }
    }
}

impl Qemu {
    fn run(self, out: &mut dyn Write) -> anyhow::Result<()> {
        let Arch::Arm = self.arch;
        let symbols = self.elf.as_deref().map(Symbols::read).transpose()?;
        let name = self.log.display().to_string();
        let mut input: Box<dyn std::io::Read> = if self.log.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(std::fs::File::open(&self.log).with_context(|| name.clone())?)
        };
        // The dump is written beside its destination and renamed over it once
        // complete: a reader never sees half a dump, a failure leaves nothing behind.
        let dir = match self.output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let output = self.output.display().to_string();
        let tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| output.clone())?;
        let mut importer = Importer::new(
            std::io::BufWriter::with_capacity(1 << 20, tmp),
            symbols,
            RING_LEN,
        );
        importer.read(&mut input, &name)?;
        let (report, dump) = importer.finish().with_context(|| output.clone())?;
        let tmp = dump
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| output.clone())?;
        tmp.persist(&self.output)
            .map_err(|e| e.error)
            .with_context(|| output.clone())?;
        if let Some(p) = &self.syscalls {
            let mut csv = Vec::new();
            report.syscalls.write_csv(&mut csv)?;
            super::write_output(p, &csv)?;
        }
        if let Some(p) = &self.order_file {
            let mut order = Vec::new();
            report.functions.write(&mut order)?;
            super::write_output(p, &order)?;
        }
        summary(out, &name, &report, &self.output)?;
        out.flush()?;
        for w in &report.warnings {
            eprintln!("tracemark: {name}: warning: {w}");
        }
        Ok(())
    }
}

fn summary(out: &mut dyn Write, name: &str, r: &Report, dump: &Path) -> anyhow::Result<()> {
    writeln!(
        out,
        "{name}: {} bytes, {} block executions, {} translations, {} register dumps{}",
        r.bytes,
        r.execs,
        r.translations,
        r.dumps,
        if r.chained() {
            " (chained: incomplete)"
        } else {
            ""
        }
    )?;
    writeln!(
        out,
        "{} syscalls ({} numbers recovered from the block's instructions, {} corrected), {} functions in first-run order",
        r.syscalls.total(),
        r.syscalls.recovered,
        r.syscalls.corrected,
        r.functions.names.len()
    )?;
    if r.returns + r.unreturned > 0 {
        writeln!(
            out,
            "{} function returns seen, {} entries without a return in the log",
            r.returns, r.unreturned
        )?;
    }
    r.syscalls.write_summary(out)?;
    writeln!(
        out,
        "wrote {} records in {} rings to {} (timestamps: guest instructions)",
        r.records,
        r.rings,
        dump.display()
    )?;
    Ok(())
}
