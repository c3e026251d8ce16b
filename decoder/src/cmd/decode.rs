//! `tracemark decode`: records in time order across CPUs.

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::sync_channel;

use anyhow::Context;
use tracemark_decoder::dump::{Dump, Warning};
use tracemark_decoder::filter::{parse_kinds, Filter, Kinds, TimeSpec};
use tracemark_decoder::merge::{Item, Merged, RingCursor};
use tracemark_decoder::render::{self, Format, RingCtx};

/// Records per batch handed from the decoding thread to a formatting thread.
const BATCH: usize = 16 * 1024;

/// Print records in time order across CPUs.
#[derive(Debug, clap::Args)]
pub struct Cmd {
    /// A dump file or raw memory image.
    file: PathBuf,
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
}

impl Cmd {
    /// Runs the command.
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<()> {
        let input = super::open(&self.file)?;
        let dump = Dump::parse(input.bytes()).with_context(|| self.file.display().to_string())?;
        let filter = Filter {
            cpus: self.cpus.clone(),
            kinds: self.kind.clone().map(|k| k.0).unwrap_or_default(),
            from: self.from,
            to: self.to,
        };
        let mut warnings = dump.warnings.clone();
        warnings.extend(write_records(&dump, &filter, self.format, out)?);
        warnings.sort_by_key(|w| w.offset);
        out.flush()?;
        super::report(&self.file, &warnings)
    }
}

/// Decodes on one thread, formats on two, writes in order on the calling thread.
fn write_records(
    dump: &Dump<'_>,
    filter: &Filter,
    format: Format,
    out: &mut dyn Write,
) -> anyhow::Result<Vec<Warning>> {
    let ctxs: Vec<RingCtx> = dump.rings.iter().map(RingCtx::of).collect();
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
    let (ctxs, ring_filters) = (&ctxs, &ring_filters);
    std::thread::scope(|s| -> anyhow::Result<Vec<Warning>> {
        let (tx0, rx0) = sync_channel::<Vec<Item>>(2);
        let (tx1, rx1) = sync_channel::<Vec<Item>>(2);
        let (otx0, orx0) = sync_channel::<Vec<u8>>(2);
        let (otx1, orx1) = sync_channel::<Vec<u8>>(2);
        let bar_ref = bar.as_ref();
        let producer = s.spawn(move || {
            let cursors = selected
                .iter()
                .map(|&ri| {
                    let mut c = RingCursor::new(dump, ri, 0);
                    c.until = ring_filters[ri as usize].to;
                    c
                })
                .collect();
            let mut merged = Merged::new(cursors);
            let txs = [tx0, tx1];
            let mut k = 0usize;
            'outer: loop {
                let mut batch = Vec::with_capacity(BATCH);
                let mut seen = 0u64;
                while batch.len() < BATCH {
                    let Some(item) = merged.next() else {
                        if !batch.is_empty() {
                            let _ = txs[k % 2].send(batch);
                        }
                        break 'outer;
                    };
                    seen += 1;
                    if ring_filters[item.ring as usize].wants(&item) {
                        batch.push(item);
                    }
                }
                if let Some(b) = bar_ref {
                    b.inc(seen);
                }
                if txs[k % 2].send(batch).is_err() {
                    break;
                }
                k += 1;
            }
            merged
                .cursors()
                .iter()
                .flat_map(|c| c.warnings.iter().cloned())
                .collect::<Vec<Warning>>()
        });
        for (rx, otx) in [(rx0, otx0), (rx1, otx1)] {
            s.spawn(move || {
                for batch in rx {
                    let mut buf = Vec::with_capacity(batch.len() * 96);
                    for item in &batch {
                        render::record(&mut buf, format, item, &ctxs[item.ring as usize]);
                    }
                    if otx.send(buf).is_err() {
                        break;
                    }
                }
            });
        }
        let written = {
            let orxs = [orx0, orx1];
            let mut k = 0usize;
            let mut result = Ok(());
            while let Ok(buf) = orxs[k % 2].recv() {
                if let Err(e) = out.write_all(&buf) {
                    result = Err(e);
                    break;
                }
                k += 1;
            }
            result
        };
        let warnings = producer
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        written?;
        Ok(warnings)
    })
}
