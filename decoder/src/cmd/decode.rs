//! `tracemark decode`: records in time order across CPUs.

use std::io::Write;
use std::path::PathBuf;

use tracemark_decoder::dump::{Dump, Warning};
use tracemark_decoder::filter::{parse_kinds, Filter, Kinds, TimeSpec};
use tracemark_decoder::pipeline;
use tracemark_decoder::render::{self, Format};

/// Print records in time order across CPUs.
#[derive(Debug, clap::Args)]
pub struct Cmd {
    /// A dump file, raw memory image, or UART log with `@TM:` lines.
    file: PathBuf,
    /// List every problem found (torn, corrupt or skipped blocks...) on stderr, not just
    /// the first and a count.
    #[arg(short, long)]
    verbose: bool,
    /// Only this CPU (repeatable).
    #[arg(long = "cpu")]
    cpus: Vec<u32>,
    /// Only these kinds (comma-separated: KENTRY,KEXIT,IRQ,FENTRY,FEXIT,USER,IMAGE,LOST).
    #[arg(long, value_parser = parse_kinds)]
    kind: Option<Kinds>,
    /// Not before this time (seconds like 12.5, or ticks like 1000t).
    #[arg(long)]
    from: Option<TimeSpec>,
    /// Not after this time.
    #[arg(long)]
    to: Option<TimeSpec>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// Worker threads (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
    /// An ELF file of the traced code (repeatable): FENTRY/FEXIT show function names.
    /// Matched to the dump's IMAGE records by build id, or by load address or size.
    #[arg(long = "elf", value_name = "FILE")]
    elfs: Vec<PathBuf>,
}

impl Cmd {
    /// Runs the command.
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<()> {
        let source = super::open(&self.file)?;
        let dump = source.dump(&self.file)?;
        if let Some(s) = super::symbols(&dump, &self.elfs)? {
            render::set_function_names(s.names());
        }
        let filter = Filter {
            cpus: self.cpus.clone(),
            kinds: self.kind.clone().map(|k| k.0).unwrap_or_default(),
            from: self.from,
            to: self.to,
        };
        let mut warnings = source.warnings.clone();
        let mut dump_warnings = dump.warnings.clone();
        dump_warnings.extend(write_records(
            &dump,
            &filter,
            self.format,
            self.threads.unwrap_or_else(super::threads),
            out,
        )?);
        dump_warnings.sort_by_key(|w| w.offset);
        warnings.extend(dump_warnings);
        out.flush()?;
        super::report(&self.file, &warnings, self.verbose)
    }
}

/// Writes the wanted records with the parallel engine of [`pipeline`].
fn write_records(
    dump: &Dump<'_>,
    filter: &Filter,
    format: Format,
    threads: usize,
    out: &mut dyn Write,
) -> anyhow::Result<Vec<Warning>> {
    let ring_filters: Vec<_> = dump
        .rings
        .iter()
        .map(|r| filter.for_ring(r.clock_hz))
        .collect();
    let selected: Vec<u32> = (0..dump.rings.len() as u32)
        .filter(|&i| filter.wants_cpu(dump.rings[i as usize].cpu))
        .collect();
    let total: u64 = selected
        .iter()
        .flat_map(|&i| &dump.rings[i as usize].blocks)
        .map(|b| u64::from(b.header_records))
        .sum();
    let bar = super::progress(total, 4 << 20, false);
    if format == Format::Csv {
        out.write_all(render::CSV_HEADER)?;
    }
    let inc = |n: u64| {
        if let Some(b) = &bar {
            b.inc(n);
        }
    };
    let warnings =
        pipeline::write_records(dump, &selected, &ring_filters, format, threads, out, &inc)?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    Ok(warnings)
}
