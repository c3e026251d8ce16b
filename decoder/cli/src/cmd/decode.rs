//! `tracemark decode`: records in time order across CPUs.

use std::io::Write;
use std::path::PathBuf;

use tracemark_decoder::dump::{Dump, Warning};
use tracemark_decoder::filter::{parse_kinds, Filter, Kinds, TimeSpec};
use tracemark_decoder::pipeline;
use tracemark_decoder::render::{self, Format, FunctionNames, ThreadNames};

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
    /// Use an `--elf` whose build id no IMAGE record of the dump carries by its address
    /// anyway (else refused: another build's names would be wrong).
    #[arg(long, requires = "elfs")]
    elf_ignore_build_id: bool,
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
                let names =
                    super::symbols(dump, &self.elfs, self.elf_ignore_build_id)?.map(|s| s.names());
                let thread_names: ThreadNames = tracemark_decoder::threads::names(dump)
                    .into_iter()
                    .map(|(id, n)| (id, n.name))
                    .collect();
                let warnings = write_records(
                    dump,
                    &filter,
                    format,
                    Names {
                        functions: names.as_ref(),
                        threads: Some(&thread_names),
                    },
                    threads,
                    out,
                    progress,
                )?;
                out.flush()?;
                Ok(warnings)
            })
    }
}

/// The names decode shows: functions from `--elf`, threads from THREAD records.
struct Names<'a> {
    functions: Option<&'a FunctionNames>,
    threads: Option<&'a ThreadNames>,
}

/// Writes the wanted records with the parallel engine of [`pipeline`].
fn write_records(
    dump: &Dump<'_>,
    filter: &Filter,
    format: Format,
    names: Names<'_>,
    threads: usize,
    out: &mut dyn Write,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<Vec<Warning>> {
    let rings: Vec<(u32, u64)> = dump.rings.iter().map(|r| (r.cpu, r.clock_hz)).collect();
    filter.check(&rings)?;
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
    let selection = pipeline::Selection {
        rings: &selected,
        filters: &ring_filters,
        format,
        names: names.functions,
        thread_names: names.threads,
    };
    Ok(pipeline::write(dump, &selection, threads, out, progress)?)
}
