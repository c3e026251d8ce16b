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
    #[command(flatten)]
    input: super::InputArgs,
    /// Only this CPU (repeatable).
    #[arg(long = "cpu")]
    cpus: Vec<u32>,
    /// Only these kinds (comma-separated: KENTRY,KEXIT,IRQ,FENTRY,FEXIT,USER,IMAGE,LOST,SWITCH,THREAD,CLOCKBACK).
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
    format: super::OutputFormat,
    /// An ELF file of the traced code (repeatable): FENTRY/FEXIT show function names.
    /// Matched to the dump's IMAGE records by build id, or by load address or size.
    #[arg(long = "elf", value_name = "FILE")]
    elfs: Vec<PathBuf>,
}

impl Cmd {
    /// Runs the command.
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<()> {
        let filter = Filter {
            cpus: self.cpus.clone(),
            kinds: self.kind.clone().map(|k| k.0).unwrap_or_default(),
            from: self.from,
            to: self.to,
        };
        let threads = self.input.threads();
        let format = Format::from(self.format);
        let wanted = |dump: &Dump<'_>| -> u64 {
            dump.rings
                .iter()
                .filter(|r| filter.wants_cpu(r.cpu))
                .flat_map(|r| &r.blocks)
                .map(|b| u64::from(b.header_records))
                .sum()
        };
        self.input
            .with_dump(wanted, 4 << 20, false, |dump, progress| {
                if let Some(s) = super::symbols(dump, &self.elfs)? {
                    render::set_function_names(s.names());
                }
                let names = tracemark_decoder::threads::names(dump);
                if !names.is_empty() {
                    render::set_thread_names(
                        names.into_iter().map(|(id, n)| (id, n.name)).collect(),
                    );
                }
                let warnings = write_records(dump, &filter, format, threads, out, progress)?;
                out.flush()?;
                Ok(warnings)
            })
    }
}

/// Writes the wanted records with the parallel engine of [`pipeline`].
fn write_records(
    dump: &Dump<'_>,
    filter: &Filter,
    format: Format,
    threads: usize,
    out: &mut dyn Write,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<Vec<Warning>> {
    let ring_filters: Vec<_> = dump
        .rings
        .iter()
        .map(|r| filter.for_ring(r.clock_hz))
        .collect();
    let selected: Vec<u32> = (0..dump.rings.len() as u32)
        .filter(|&i| filter.wants_cpu(dump.rings[i as usize].cpu))
        .collect();
    if format == Format::Csv {
        out.write_all(render::CSV_HEADER)?;
    }
    Ok(pipeline::write_records(
        dump,
        &selected,
        &ring_filters,
        format,
        threads,
        out,
        progress,
    )?)
}
