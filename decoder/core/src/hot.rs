//! The hottest functions of a dump: calls and inclusive time per function id, for
//! `tracemark stats`.
//!
//! Each ring is walked in order (rings in parallel) with a stack of open function
//! entries. An exit closes the innermost entry of the same function, dropping the
//! entries left open above it (their exits were lost); an exit with no entry is not
//! timed. Inclusive time is counted once per outermost activation, so a recursive
//! function's time is not counted twice. Memory is bounded: at most [`MAX_FUNCTIONS`]
//! distinct functions are tracked (the rest are counted in
//! [`HotFunctions::untracked_calls`]) and the stack is at most [`MAX_STACK`] deep.

use std::collections::HashMap;

use serde::Serialize;
use tracemark_format::scan::{scan_block, Visitor};

use crate::dump::Dump;
use crate::time::ticks_to_ns;

/// Distinct functions tracked.
pub const MAX_FUNCTIONS: usize = 1 << 20;
/// Deepest stack of open entries kept per ring.
pub const MAX_STACK: usize = 1024;
/// Functions listed per ranking.
pub const TOP: usize = 10;

/// One function's heat.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct FunctionHeat {
    /// The function id or address.
    pub func: u64,
    /// Its name, from `--elf` files.
    pub name: Option<String>,
    /// Source file and line, from `--elf` files.
    pub location: Option<String>,
    /// Entries.
    pub calls: u64,
    /// Time between entries and their exits, outermost activations only, in ns (ticks
    /// when the clock frequency is unknown).
    pub inclusive_ns: u64,
}

/// The rankings.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HotFunctions {
    /// The [`TOP`] functions with the most calls.
    pub by_calls: Vec<FunctionHeat>,
    /// The [`TOP`] functions with the most inclusive time.
    pub by_inclusive_time: Vec<FunctionHeat>,
    /// Calls of functions beyond the [`MAX_FUNCTIONS`] tracked.
    pub untracked_calls: u64,
}

/// Entries of the direct-mapped cache in front of the hash map.
const CACHE: usize = 4096;

struct Acc {
    /// (calls, inclusive ns) per function, by index.
    heat: Vec<(u64, u64, u64)>,
    /// Function id to index in `heat`.
    map: HashMap<u64, u32>,
    /// (function id, index + 1) by a hash of the id: most lookups stop here.
    cache: Vec<(u64, u32)>,
    untracked: u64,
}

impl Default for Acc {
    fn default() -> Self {
        Acc {
            heat: Vec::new(),
            map: HashMap::new(),
            cache: vec![(0, 0); CACHE],
            untracked: 0,
        }
    }
}

impl Acc {
    #[inline]
    fn slot(&mut self, f: u64) -> Option<&mut (u64, u64, u64)> {
        let c = (f ^ (f >> 12) ^ (f >> 24)) as usize % CACHE;
        let (cf, ci) = self.cache[c];
        if ci != 0 && cf == f {
            return self.heat.get_mut(ci as usize - 1);
        }
        let i = match self.map.get(&f) {
            Some(&i) => i,
            None => {
                if self.heat.len() >= MAX_FUNCTIONS {
                    return None;
                }
                let i = self.heat.len() as u32;
                self.heat.push((f, 0, 0));
                self.map.insert(f, i);
                i
            }
        };
        self.cache[c] = (f, i + 1);
        self.heat.get_mut(i as usize)
    }
}

struct Walk {
    acc: Acc,
    stack: Vec<(u64, u64)>,
    hz: u64,
}

impl Visitor for Walk {
    #[inline]
    fn function_entry(&mut self, ts: u64, func: u64) {
        match self.acc.slot(func) {
            Some(s) => s.1 += 1,
            None => self.acc.untracked += 1,
        }
        if self.stack.len() < MAX_STACK {
            self.stack.push((func, ts));
        }
    }

    #[inline]
    fn function_exit(&mut self, ts: u64, func: u64) {
        let Some(at) = self.stack.iter().rposition(|&(f, _)| f == func) else {
            return;
        };
        let (_, t0) = self.stack[at];
        self.stack.truncate(at);
        if !self.stack.iter().any(|&(f, _)| f == func) {
            let ns = ticks_to_ns(ts.saturating_sub(t0), self.hz);
            if let Some(s) = self.acc.slot(func) {
                s.2 = s.2.saturating_add(ns);
            }
        }
    }
}

/// One ring, with the format crate's fast scanner (no `Event` built); a block's
/// undecodable tail is skipped (the main pass of `stats` reports it).
fn ring_heat(dump: &Dump<'_>, ring: u32) -> Acc {
    let r = &dump.rings[ring as usize];
    let mut w = Walk {
        acc: Acc::default(),
        stack: Vec::new(),
        hz: r.clock_hz,
    };
    for b in &r.blocks {
        scan_block(b.records, b.base_ts, &mut w);
    }
    w.acc
}

/// Calls and inclusive time per function of `dump`, with up to `threads` rings walked
/// at once. `name` names a function id (from `--elf` files): (name, "file:line").
pub fn compute(
    dump: &Dump<'_>,
    threads: usize,
    name: &mut dyn FnMut(u64) -> (Option<String>, Option<String>),
) -> HotFunctions {
    let rings: Vec<u32> = (0..dump.rings.len() as u32).collect();
    let mut accs = Vec::new();
    for chunk in rings.chunks(threads.max(1)) {
        std::thread::scope(|s| {
            let hs: Vec<_> = chunk
                .iter()
                .map(|&r| s.spawn(move || ring_heat(dump, r)))
                .collect();
            for h in hs {
                if let Ok(a) = h.join() {
                    accs.push(a);
                }
            }
        });
    }
    let mut total = Acc::default();
    for a in accs {
        total.untracked += a.untracked;
        for (f, c, t) in a.heat {
            match total.slot(f) {
                Some(s) => {
                    s.1 += c;
                    s.2 = s.2.saturating_add(t);
                }
                None => total.untracked += c,
            }
        }
    }
    let all: Vec<FunctionHeat> = total
        .heat
        .into_iter()
        .map(|(func, calls, inclusive_ns)| FunctionHeat {
            func,
            calls,
            inclusive_ns,
            ..Default::default()
        })
        .collect();
    let top = |key: &dyn Fn(&FunctionHeat) -> u64| {
        let mut v = all.clone();
        // Ties: lower id first, so the output is stable.
        v.sort_unstable_by(|a, b| key(b).cmp(&key(a)).then(a.func.cmp(&b.func)));
        v.truncate(TOP);
        v.retain(|h| key(h) > 0);
        v
    };
    let mut hot = HotFunctions {
        by_calls: top(&|h| h.calls),
        by_inclusive_time: top(&|h| h.inclusive_ns),
        untracked_calls: total.untracked,
    };
    for h in hot.by_calls.iter_mut().chain(&mut hot.by_inclusive_time) {
        (h.name, h.location) = name(h.func);
    }
    hot
}

impl HotFunctions {
    /// Writes the two rankings as text (nothing when the dump has no function record).
    pub fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        if self.by_calls.is_empty() {
            return Ok(());
        }
        for (title, list) in [
            ("Hottest functions by calls", &self.by_calls),
            (
                "Hottest functions by inclusive time",
                &self.by_inclusive_time,
            ),
        ] {
            writeln!(out, "\n{title}:")?;
            writeln!(
                out,
                "  {:>18}  {:>12}  {:>16}  name",
                "function", "calls", "inclusive ns"
            )?;
            for h in list {
                write!(
                    out,
                    "  {:>#18x}  {:>12}  {:>16}  {}",
                    h.func,
                    h.calls,
                    h.inclusive_ns,
                    h.name.as_deref().unwrap_or("?")
                )?;
                match &h.location {
                    Some(l) => writeln!(out, " ({l})")?,
                    None => writeln!(out)?,
                }
            }
        }
        if self.untracked_calls > 0 {
            writeln!(
                out,
                "  ({} calls of functions beyond the {MAX_FUNCTIONS} tracked)",
                self.untracked_calls
            )?;
        }
        Ok(())
    }
}
