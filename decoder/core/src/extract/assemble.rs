//! Dump assembly: decides each dump's geometry, grants the reassembly budget
//! (dumps with the most verified data first) and reassembles every granted dump
//! from its chunks, choosing among copies and listing missing, corrupt and
//! conflicting chunks.

use std::cmp::Reverse;
use std::ops::Range;

use tracemark_format::uart::{self, ChunkError};

use super::scan::{ChunkLine, Collected, Pending};
use super::{Dump, ExtractError, ExtractLimits, ExtractReport, Issues, BUDGET_PER_CHUNK};

/// The geometry a dump is reassembled with.
struct Geometry {
    total_len: u64,
    chunk_len: u32,
    payload_crc: u32,
    payload_changed: bool,
}

/// Byte range of chunk `seq` in a payload of `total_len` bytes.
pub(super) fn chunk_byte_range(total_len: u64, chunk_len: u32, seq: u64) -> Option<Range<usize>> {
    if seq >= uart::chunk_count(total_len, chunk_len) {
        return None;
    }
    let start = seq.checked_mul(u64::from(chunk_len))?;
    let end = start.saturating_add(u64::from(chunk_len)).min(total_len);
    Some(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
}

/// The geometry of a dump: its begin and end lines when they agree, otherwise
/// whichever of them there is (the begin line first); `None` without either.
fn geometry(p: &Pending) -> Option<Geometry> {
    match (p.begin, p.end) {
        (Some((_, b)), Some((_, e))) if !p.end_mismatch => Some(Geometry {
            total_len: b.total_len,
            chunk_len: b.chunk_len,
            payload_crc: e.payload_crc,
            payload_changed: b.payload_crc != e.payload_crc,
        }),
        (Some((_, b)), _) => Some(Geometry {
            total_len: b.total_len,
            chunk_len: b.chunk_len,
            payload_crc: b.payload_crc,
            payload_changed: false,
        }),
        (None, Some((_, e))) => Some(Geometry {
            total_len: e.total_len,
            chunk_len: e.chunk_len,
            payload_crc: e.payload_crc,
            payload_changed: false,
        }),
        (None, None) => None,
    }
}

/// Grants the reassembly budget, dumps with the most verified data first. For
/// each dump, `Some(budget left)` if it was refused.
fn grant_budget(
    pending: &[Pending],
    geometry: &[Option<Geometry>],
    max_total_bytes: usize,
) -> Vec<Option<u64>> {
    let mut order: Vec<usize> = (0..pending.len())
        .filter(|&i| geometry[i].is_some())
        .collect();
    order.sort_by_key(|&i| Reverse(pending[i].good_bytes));
    let mut budget_left = max_total_bytes as u64;
    let mut refused: Vec<Option<u64>> = vec![None; pending.len()];
    for &i in &order {
        if let Some(g) = &geometry[i] {
            let count = uart::chunk_count(g.total_len, g.chunk_len);
            let cost = g
                .total_len
                .saturating_add(count.saturating_mul(BUDGET_PER_CHUNK));
            if cost <= budget_left {
                budget_left -= cost;
            } else {
                refused[i] = Some(budget_left);
            }
        }
    }
    refused
}

/// Turns what the scan collected into the report.
pub(super) fn finish(collected: Collected, limits: &ExtractLimits) -> ExtractReport {
    let Collected {
        pending,
        arena,
        mut issues,
        framing_lines,
    } = collected;
    let geometry: Vec<Option<Geometry>> = pending.iter().map(geometry).collect();
    let refused = grant_budget(&pending, &geometry, limits.max_total_bytes);

    let mut dumps = Vec::new();
    for ((p, g), refused) in pending.into_iter().zip(geometry).zip(refused) {
        let Some(g) = g else {
            issues.push(ExtractError::NoHeader {
                at: p.first,
                dump_id: p.dump_id,
                lines: p.lines.len(),
            });
            continue;
        };
        let at = p.begin.map_or(p.first, |(at, _)| at);
        let mut dump = Dump {
            dump_id: p.dump_id,
            begin: p.begin.map(|(at, _)| at),
            end: p.end.map(|(at, _)| at),
            declared_len: g.total_len,
            chunk_len: g.chunk_len,
            chunk_count: uart::chunk_count(g.total_len, g.chunk_len),
            payload_crc: g.payload_crc,
            payload_changed: g.payload_changed,
            data: Vec::new(),
            missing: Vec::new(),
            corrupt: Vec::new(),
            conflicting: Vec::new(),
            duplicates: 0,
            payload_crc_ok: false,
            valid: Vec::new(),
            error: None,
        };
        match refused {
            Some(budget_left) => {
                let error = ExtractError::TooLarge {
                    at,
                    dump_id: p.dump_id,
                    declared_len: g.total_len,
                    budget_left,
                };
                issues.push(error.clone());
                dump.error = Some(error);
            }
            None => assemble(&mut dump, p.lines, &arena, &mut issues),
        }
        dumps.push(dump);
    }

    let mut kept = issues.kept;
    kept.sort_by_key(|issue| issue.location().offset);
    ExtractReport {
        dumps,
        issues: kept,
        issues_dropped: issues.dropped,
        framing_lines,
    }
}

/// Chunk reassembly: fills `dump.data` and the chunk lists from `lines`, whose
/// verified bytes are in `arena`; the dump's budget was granted, so its length
/// fits in memory.
fn assemble(dump: &mut Dump, mut lines: Vec<ChunkLine>, arena: &[u8], issues: &mut Issues) {
    let Ok(total) = usize::try_from(dump.declared_len) else {
        return;
    };
    dump.data = vec![0; total];
    // Stable: copies of one chunk stay in log order.
    lines.sort_by_key(|l| l.seq);
    let mut next_seq = 0;
    let mut rest = &lines[..];
    while let Some(first) = rest.first() {
        let seq = first.seq;
        let same = rest.iter().take_while(|l| l.seq == seq).count();
        let (group, tail) = rest.split_at(same);
        rest = tail;

        let Some(range) = dump.chunk_range(seq) else {
            for line in group.iter().filter(|l| l.good.is_some()) {
                issues.push(ExtractError::SeqOutOfRange {
                    at: line.at,
                    dump_id: dump.dump_id,
                    seq,
                    chunk_count: dump.chunk_count,
                });
            }
            continue;
        };
        dump.missing.extend(next_seq..seq);
        next_seq = seq + 1;

        let mut chosen: Option<&Range<usize>> = None;
        let mut conflict = false;
        for line in group {
            let Some(good) = &line.good else { continue };
            if good.len() != range.len() {
                issues.push(ExtractError::CorruptChunk {
                    at: line.at,
                    dump_id: dump.dump_id,
                    seq,
                    error: ChunkError::LengthMismatch {
                        expected: range.len(),
                        found: good.len(),
                    },
                });
                continue;
            }
            match chosen {
                None => chosen = Some(good),
                Some(first) if arena[first.clone()] == arena[good.clone()] => {
                    dump.duplicates += 1;
                }
                Some(_) => {
                    conflict = true;
                    issues.push(ExtractError::ConflictingChunk {
                        at: line.at,
                        dump_id: dump.dump_id,
                        seq,
                    });
                }
            }
        }
        match chosen {
            _ if conflict => dump.conflicting.push(seq),
            Some(good) => {
                dump.data[range.clone()].copy_from_slice(&arena[good.clone()]);
                match dump.valid.last_mut() {
                    Some(last) if last.end == range.start => last.end = range.end,
                    _ => dump.valid.push(range),
                }
            }
            None => dump.corrupt.push(seq),
        }
    }
    dump.missing.extend(next_seq..dump.chunk_count);
    dump.payload_crc_ok = uart::payload_crc(&dump.data) == dump.payload_crc;
}
