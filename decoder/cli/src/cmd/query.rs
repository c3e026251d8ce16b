//! `tracemark query`: answers from an index, decoding only the blocks that hold them.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use tracemark_decoder::dump::{Dump, Warning};
use tracemark_decoder::filter::{parse_kinds, Filter, Kinds, TimeSpec};
use tracemark_decoder::index::Index;
use tracemark_decoder::input::Input;
use tracemark_decoder::merge::{Item, Merged, RingCursor};
use tracemark_decoder::render::{self, Format, RingCtx};
use tracemark_format::Kind;

/// Answer a query from an index (built by `tracemark index`).
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["record", "kind", "from", "summary"])))]
pub struct Cmd {
    /// The index file.
    index: PathBuf,
    /// The dump (default: the path recorded in the index).
    #[arg(long)]
    source: Option<PathBuf>,
    /// The record with this number (on each CPU, or on `--cpu`).
    #[arg(long)]
    record: Option<u64>,
    /// With `--record`: also this many records before and after.
    #[arg(long, default_value_t = 0, requires = "record")]
    context: u64,
    /// Only this CPU (repeatable).
    #[arg(long = "cpu")]
    cpus: Vec<u32>,
    /// The first records of these kinds, in time order (comma-separated).
    #[arg(long, value_parser = parse_kinds)]
    kind: Option<Kinds>,
    /// At most this many records (`--kind`, `--from`).
    #[arg(long)]
    limit: Option<u64>,
    /// Records from this time (seconds like 12.5, or ticks like 1000t)...
    #[arg(long, requires = "to")]
    from: Option<TimeSpec>,
    /// ...to this time.
    #[arg(long, requires = "from")]
    to: Option<TimeSpec>,
    /// Totals per CPU and kind, from the index alone.
    #[arg(long)]
    summary: bool,
    /// Output format for records.
    #[arg(long, value_enum, default_value_t)]
    format: super::OutputFormat,
}

/// What every query over the source needs: the index, the source bytes, the rings
/// wanted and their output contexts (read from the source).
struct Query<'a> {
    index: &'a Index<'a>,
    source: &'a [u8],
    rings: Vec<usize>,
    ctxs: Vec<RingCtx<'static>>,
    format: Format,
}

impl Cmd {
    /// Runs the command: opens and checks the index, then answers in the mode asked.
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<()> {
        let name = self.index.display().to_string();
        let idx_input = Input::open(&self.index).with_context(|| name.clone())?;
        let index = Index::parse(idx_input.bytes()).with_context(|| name.clone())?;
        if self.summary {
            return summary(&index, out).with_context(|| name.clone());
        }
        let source_path = self
            .source
            .clone()
            .unwrap_or_else(|| index.source_path.clone());
        let src = super::open(&source_path)
            .with_context(|| format!("{name}: source {} (use --source)", source_path.display()))?;
        let source = src.input.bytes();
        index.check_source(source).with_context(|| name.clone())?;
        let ctxs = index.source_ctxs(source).with_context(|| name.clone())?;
        let q = Query {
            index: &index,
            source,
            rings: (0..index.rings.len())
                .filter(|&ri| {
                    self.cpus.is_empty() || self.cpus.contains(&index.rings[ri].cpu.get())
                })
                .collect(),
            ctxs,
            format: Format::from(self.format),
        };
        let filter = Filter {
            cpus: self.cpus.clone(),
            from: self.from,
            to: self.to,
            ..Filter::default()
        };
        let rings: Vec<(u32, u64)> = q.ctxs.iter().map(|c| (c.cpu, c.clock_hz)).collect();
        filter.check(&rings).with_context(|| name.clone())?;
        if Format::from(self.format) == Format::Csv {
            out.write_all(render::CSV_HEADER)?;
        }
        let answer = if let Some(n) = self.record {
            by_record(&q, n, self.context, out)
        } else if let Some(Kinds(kinds)) = &self.kind {
            by_kind(&q, kinds, self.limit.unwrap_or(u64::MAX), out)
        } else if let (Some(from), Some(to)) = (self.from, self.to) {
            let dump = Dump::parse(source).with_context(|| name.clone())?;
            let mut warnings = dump.warnings.clone();
            let limit = self.limit.unwrap_or(u64::MAX);
            stream(
                &dump,
                &q,
                Some((from, to)),
                limit,
                out,
                |_| true,
                &mut warnings,
            )
            .and_then(|()| {
                // Damage the source shows (the same checks as `decode`): exit 1 after
                // printing what decodes.
                out.flush()?;
                warnings.sort_by_key(|w| w.offset);
                super::report(&source_path, &warnings, false)
            })
        } else {
            Ok(())
        };
        answer.with_context(|| name.clone())
    }
}

/// `--record N [--context C]`: records N-C..=N+C of each wanted ring.
fn by_record(q: &Query<'_>, n: u64, context: u64, out: &mut dyn Write) -> anyhow::Result<()> {
    let index = q.index;
    let mut buf = Vec::with_capacity(1 << 16);
    let mut found = false;
    let lo = n.saturating_sub(context);
    let hi = n.saturating_add(context);
    for &ri in &q.rings {
        let c = q.ctxs[ri];
        let mut first = None;
        for m in lo..=n {
            first = index.find_record(ri, m)?;
            if first.is_some() {
                break;
            }
        }
        let Some(mut bi) = first else {
            continue;
        };
        found |= index.find_record(ri, n)?.is_some();
        let blocks = index.ring_blocks(ri);
        let mut done = false;
        while !done && bi < blocks.len() {
            index.decode(q.source, ri, &blocks[bi], |item| {
                match item.number {
                    Some(m) if m > hi => done = true,
                    Some(m) if m >= lo => render::record(&mut buf, q.format, &item, &c),
                    _ => {}
                }
                !done
            })?;
            bi += 1;
        }
    }
    out.write_all(&buf)?;
    if found {
        return Ok(());
    }
    let mut ranges = Vec::new();
    for &ri in &q.rings {
        let b = index.ring_blocks(ri);
        let cpu = q.ctxs[ri].cpu;
        ranges.push(match (b.first(), b.last()) {
            (Some(f), Some(l)) => {
                index.check_entry(f)?;
                index.check_entry(l)?;
                format!(
                    "cpu{cpu} #{}..#{}",
                    f.first_record.get(),
                    l.first_record
                        .get()
                        .saturating_add(u64::from(l.events.get()))
                        .saturating_sub(1)
                )
            }
            _ => format!("cpu{cpu} none"),
        });
    }
    bail!(
        "record #{n} is not in the dump (it holds {})",
        ranges.join(", ")
    )
}

/// `--kind K [--limit L]`: the first L records of these kinds, in time order.
fn by_kind(q: &Query<'_>, kinds: &[Kind], limit: u64, out: &mut dyn Write) -> anyhow::Result<()> {
    let index = q.index;
    let mask = kinds.iter().fold(0u16, |m, k| m | 1 << (*k as u8));
    if limit == u64::MAX {
        let dump = Dump::parse(q.source)?;
        return stream(
            &dump,
            q,
            None,
            u64::MAX,
            out,
            |i| mask & (1 << (i.event.kind() as u8)) != 0,
            &mut Vec::new(),
        );
    }
    let mut found: Vec<Item> = Vec::new();
    for &ri in &q.rings {
        let mut got = 0u64;
        for e in index.ring_blocks(ri) {
            if got >= limit {
                break;
            }
            index.check_entry(e)?;
            // The index counts kinds 0..8 only; a block may hold a later kind (SWITCH,
            // CLOCKBACK) wherever it holds more events than its first seven columns.
            let counted: u32 = e.kinds[..7].iter().map(|c| c.get()).sum();
            let has = e
                .kinds
                .iter()
                .enumerate()
                .any(|(k, c)| mask & (1 << k) != 0 && c.get() > 0)
                || (mask >> 8 != 0 && e.events.get() > counted);
            if !has {
                continue;
            }
            index.decode(q.source, ri, e, |item| {
                if mask & (1 << (item.event.kind() as u8)) != 0 {
                    found.push(item);
                    got += 1;
                }
                got < limit
            })?;
        }
    }
    found.sort_by_key(|i| (i.ts, i.ring));
    let mut buf = Vec::with_capacity(1 << 16);
    for item in found
        .iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
    {
        render::record(&mut buf, q.format, item, &q.ctxs[item.ring as usize]);
    }
    out.write_all(&buf)?;
    Ok(())
}

/// Streams at most `limit` records of `rings` in time order, starting each ring at the
/// block the index says holds `from`, with the index's open-entry stack.
fn stream(
    dump: &Dump<'_>,
    q: &Query<'_>,
    window: Option<(TimeSpec, TimeSpec)>,
    limit: u64,
    out: &mut dyn Write,
    wants: impl Fn(&Item) -> bool,
    warnings: &mut Vec<Warning>,
) -> anyhow::Result<()> {
    let (index, rings, ctxs, format) = (q.index, &q.rings, &q.ctxs, q.format);
    if dump.rings.len() != index.rings.len() {
        bail!(
            "index is stale: the source has {} rings, the index {}",
            dump.rings.len(),
            index.rings.len()
        );
    }
    let mut bounds = vec![(0u64, u64::MAX); dump.rings.len()];
    let cursors = rings
        .iter()
        .map(|&ri| {
            let hz = ctxs[ri].clock_hz;
            let (first, stack) = match window {
                Some((from, to)) => {
                    let (f, t) = (from.ticks(hz), to.ticks(hz));
                    bounds[ri] = (f, t);
                    let bi = index.find_time_unordered(ri, f)?;
                    let stack = index
                        .ring_blocks(ri)
                        .get(bi)
                        .map(Index::stack)
                        .unwrap_or_default();
                    (bi, stack)
                }
                None => (0, Default::default()),
            };
            // The blocks this ring's cursor reads are checked against their index
            // entries first (sequence number, base time, hash of their bytes).
            let entries = index.ring_blocks(ri);
            if dump.rings[ri].blocks.len() != entries.len() {
                bail!(
                    "index is stale: cpu{} has {} blocks in the source, {} in the index; \
                     rebuild it with `tracemark index`",
                    ctxs[ri].cpu,
                    dump.rings[ri].blocks.len(),
                    entries.len()
                );
            }
            let until = bounds[ri].1;
            // Through the last block that starts by the window's end: a block out of
            // time order (clock step back, damaged `base_ts`) may follow later ones, and
            // `decode --from/--to` reads it too. In a ring in time order this is the
            // block the cursor would stop in.
            let end = entries
                .iter()
                .rposition(|e| e.base_ts.get() <= until)
                .map_or(first, |i| (i + 1).max(first));
            for e in entries.get(first..end).unwrap_or_default() {
                index.block(dump.bytes, e)?;
            }
            let c = RingCursor::new(dump, ri as u32, first)
                .with_stack(stack)
                .with_end(end);
            Ok(c)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut buf = Vec::with_capacity(1 << 20);
    let mut printed = 0u64;
    let mut merged = Merged::new(cursors);
    for item in merged.by_ref() {
        let (f, t) = bounds[item.ring as usize];
        if item.ts < f || item.ts > t || !wants(&item) {
            continue;
        }
        if printed == limit {
            break;
        }
        printed += 1;
        render::record(&mut buf, format, &item, &ctxs[item.ring as usize]);
        if buf.len() > 1 << 20 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    for c in merged.cursors() {
        warnings.extend(c.warnings.iter().cloned());
    }
    Ok(())
}

fn summary(index: &Index<'_>, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut per_kind = [0u64; 8];
    // Records of the kinds the index has no column for (SWITCH, CLOCKBACK).
    let mut other = 0u64;
    let (mut first, mut last) = (u64::MAX, 0u64);
    writeln!(
        out,
        "{:>4} {:>12} {:>8} {:>12} {:>10} {:>6} {:>20} {:>20}",
        "cpu", "records", "blocks", "overwritten", "dropped", "torn", "first_ts", "last_ts"
    )?;
    for (ri, r) in index.rings.iter().enumerate() {
        let blocks = index.ring_blocks(ri);
        let mut n = 0u64;
        for b in blocks {
            index.check_entry(b)?;
            for (k, c) in b.kinds.iter().enumerate() {
                per_kind[k] += u64::from(c.get());
                n += u64::from(c.get());
            }
            let counted: u32 = b.kinds[..7].iter().map(|c| c.get()).sum();
            let more = u64::from(b.events.get().saturating_sub(counted));
            other += more;
            n += more;
        }
        let f = blocks
            .iter()
            .find(|b| b.kinds.iter().any(|c| c.get() > 0))
            .map_or(0, |b| b.first_ts.get());
        let l = blocks
            .iter()
            .rev()
            .find(|b| b.kinds.iter().any(|c| c.get() > 0))
            .map_or(0, |b| b.last_ts.get());
        if n > 0 {
            first = first.min(f);
            last = last.max(l);
        }
        writeln!(
            out,
            "{:>4} {:>12} {:>8} {:>12} {:>10} {:>6} {:>20} {:>20}",
            r.cpu.get(),
            n,
            blocks.len(),
            r.overwritten.get(),
            r.dropped.get(),
            r.torn_blocks.get(),
            f,
            l
        )?;
    }
    let total: u64 = per_kind.iter().sum::<u64>() + other;
    writeln!(out, "total records: {total}")?;
    for k in Kind::EVENTS
        .iter()
        .filter(|k| (**k as usize) < per_kind.len())
    {
        writeln!(out, "  {:<8} {:>12}", k.name(), per_kind[*k as usize])?;
    }
    if other > 0 {
        // One count for both: the index does not tell them apart.
        writeln!(out, "  {:<8} {:>12}", "SWITCH/THREAD/CLOCKBACK", other)?;
    }
    let hz = index.rings.first().map_or(0, |r| r.clock_hz.get());
    let mut span = Vec::new();
    if first <= last {
        render::seconds(&mut span, last - first, hz);
    } else {
        span.push(b'0');
    }
    writeln!(
        out,
        "time span: {} {}",
        String::from_utf8_lossy(&span),
        if hz == 0 { "ticks" } else { "s" }
    )?;
    let _ = Path::new("");
    Ok(())
}
