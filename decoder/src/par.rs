//! Work over blocks in parallel: each ring's blocks are cut into runs ("units") that
//! workers (a rayon pool) take in turn, so that two cores share even a single-ring dump.
//!
//! Blocks are independent (each carries an absolute base time) except for the stack of
//! open kernel entries, which matches a kernel exit with its entry across block
//! boundaries. A unit therefore starts with an empty stack; the exits that find it empty
//! are kept in order ([`UnitStack::pending`]), and the entries still open at the end
//! ([`UnitStack::open`]). A cheap sequential pass over the units of a ring
//! ([`Carry`]) then pops the pending exits from the entries the earlier units left
//! open: the same matching as one pass in order, as long as nesting stays within
//! [`MAX_STACK`] (deeper nesting is not seen in practice).

use std::ops::Range;

use crate::dump::Dump;
use crate::merge::MAX_STACK;

/// A run of consecutive blocks of one ring.
#[derive(Debug, Clone)]
pub struct Unit {
    /// Index of the ring in [`Dump::rings`].
    pub ring: usize,
    /// Indices into the ring's [`crate::dump::Ring::blocks`].
    pub blocks: Range<usize>,
}

/// Cuts the rings of `dump` into about `8 * threads` units of similar size (at least
/// 64 blocks each), in ring order then block order.
pub fn units(dump: &Dump<'_>, threads: usize) -> Vec<Unit> {
    let total: usize = dump.block_count();
    let per = (total / (8 * threads.max(1))).max(64);
    let mut out = Vec::new();
    for (ri, r) in dump.rings.iter().enumerate() {
        let n = r.blocks.len();
        let mut a = 0;
        while a < n {
            let b = (a + per).min(n);
            out.push(Unit {
                ring: ri,
                blocks: a..b,
            });
            a = b;
        }
    }
    out
}

/// Runs `f` on every unit with up to `threads` workers (a rayon pool of that size),
/// each run of units with its own state from `init`. Returns the states and the results
/// in unit order. A panic in `f` is re-raised here.
pub fn run<S: Send, T: Send>(
    units: &[Unit],
    threads: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, &Unit) -> T + Sync,
) -> (Vec<S>, Vec<T>) {
    use rayon::prelude::*;
    let threads = threads.clamp(1, units.len().max(1));
    let work = || {
        units
            .par_iter()
            .enumerate()
            // Few, large pieces: a state per piece (the stats accumulator is ~150 KB).
            .with_min_len(units.len().div_ceil(4 * threads).max(1))
            .fold(
                || (init(), Vec::new()),
                |(mut state, mut done), (k, u)| {
                    done.push((k, f(&mut state, u)));
                    (state, done)
                },
            )
            .collect::<Vec<_>>()
    };
    let pieces = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool.install(work),
        // No threads to be had: the caller's thread does it all.
        Err(_) => {
            let mut state = init();
            let done = units
                .iter()
                .enumerate()
                .map(|(k, u)| (k, f(&mut state, u)))
                .collect();
            vec![(state, done)]
        }
    };
    let mut states = Vec::with_capacity(pieces.len());
    let mut all = Vec::with_capacity(units.len());
    for (state, done) in pieces {
        states.push(state);
        all.extend(done);
    }
    all.sort_unstable_by_key(|(k, _)| *k);
    (states, all.into_iter().map(|(_, t)| t).collect())
}

/// The open-entry stack of one unit, started empty.
#[derive(Debug, Clone, Default)]
pub struct UnitStack {
    /// Open entries (packed words), innermost last, at most [`MAX_STACK`].
    pub open: Vec<u32>,
    /// Kernel-exit wire durations of exits that found the stack empty, in order: they
    /// close entries left open by earlier units.
    pub pending: Vec<u64>,
}

impl UnitStack {
    /// A kernel entry.
    #[inline(always)]
    pub fn push(&mut self, word: u32) {
        if self.open.len() == MAX_STACK {
            self.open.remove(0);
        }
        self.open.push(word);
    }

    /// A kernel exit: the entry it closes, or `None` if that is left to earlier units
    /// (then the exit is kept in [`UnitStack::pending`]).
    #[inline(always)]
    pub fn pop(&mut self, wire: u64) -> Option<u32> {
        let e = self.open.pop();
        if e.is_none() {
            self.pending.push(wire);
        }
        e
    }
}

/// The entries left open by the units of a ring seen so far.
#[derive(Debug, Clone, Default)]
pub struct Carry {
    /// Open entries, innermost last.
    pub open: Vec<u32>,
}

impl Carry {
    /// Matches the pending exits of the next unit (calling `f` with each exit's wire
    /// duration and the entry it closes, if any), then takes on its open entries.
    pub fn apply(&mut self, unit: &UnitStack, mut f: impl FnMut(u64, Option<u32>)) {
        for &wire in &unit.pending {
            f(wire, self.open.pop());
        }
        self.open.extend_from_slice(&unit.open);
        let excess = self.open.len().saturating_sub(MAX_STACK);
        self.open.drain(..excess);
    }
}
