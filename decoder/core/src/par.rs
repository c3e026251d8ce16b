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

/// A [`UnitStack`] whose kernel entries and exits are taken without a branch on the
/// record's kind ([`FlatStack::record`]): the kind is random from record to record,
/// and a mispredicted branch per kernel record cost the index pass about a fifth of
/// its time. The open entries live in a circular array of [`MAX_STACK`] slots whose
/// oldest is overwritten when full, as [`UnitStack::push`] drops it. It pays only
/// where its fields stay in registers (a local of the function that runs the scan
/// loop, see [`tracemark_format::scan::scan_with`]); through a pointer, the
/// read-modify-write of its depth on every record costs more than the branches.
#[derive(Debug, Clone)]
pub struct FlatStack {
    slots: Box<[u32; MAX_STACK]>,
    /// Slot of the outermost open entry.
    base: usize,
    /// Open entries.
    depth: usize,
    /// As [`UnitStack::pending`].
    pending: Vec<u64>,
}

impl Default for FlatStack {
    fn default() -> Self {
        FlatStack {
            slots: Box::new([0; MAX_STACK]),
            base: 0,
            depth: 0,
            pending: Vec::new(),
        }
    }
}

const _: () = assert!(MAX_STACK.is_power_of_two());

impl FlatStack {
    /// A record of kind code `code` (0 to 4) with value `value`: a kernel entry (0) is
    /// pushed, a kernel exit (1) pops, the others leave the stack as it is.
    #[inline(always)]
    pub fn record(&mut self, code: u8, value: u64) {
        let entry = code == tracemark_format::Kind::KernelEntry as u8;
        let exit = code == tracemark_format::Kind::KernelExit as u8;
        if self.depth == MAX_STACK {
            return self.record_full(entry, exit, value);
        }
        // Every record writes the free slot above the top (a store that nothing
        // reads back, so no chain from record to record); only an entry keeps it.
        self.slots[(self.base + self.depth) % MAX_STACK] = value as u32;
        let underflow = exit & (self.depth == 0);
        self.depth = self.depth + usize::from(entry) - usize::from(exit & !underflow);
        if underflow {
            self.pending.push(value);
        }
    }

    /// [`Self::record`] on a full stack: an entry replaces the oldest.
    #[cold]
    #[inline(never)]
    fn record_full(&mut self, entry: bool, exit: bool, value: u64) {
        if entry {
            self.slots[self.base] = value as u32;
            self.base = (self.base + 1) % MAX_STACK;
        } else if exit {
            self.depth -= 1;
        }
    }

    /// Open entries.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Exits that found the stack empty so far.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The innermost `n` (at most [`Self::depth`]) open entries, outermost first.
    pub fn top(&self, n: usize) -> impl Iterator<Item = u32> + '_ {
        let n = n.min(self.depth);
        (self.depth - n..self.depth).map(|i| self.slots[(self.base + i) % MAX_STACK])
    }

    /// The same stack as a [`UnitStack`].
    pub fn to_unit_stack(&self) -> UnitStack {
        UnitStack {
            open: self.top(self.depth).collect(),
            pending: self.pending.clone(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any sequence of records leaves a `FlatStack` as it leaves a `UnitStack`,
        /// including past `MAX_STACK` open entries and exits on an empty stack.
        #[test]
        fn flat_stack_agrees_with_unit_stack(
            records in proptest::collection::vec((0u8..5, any::<u32>()), 0..2000),
            deep in 0usize..600,
        ) {
            let mut flat = FlatStack::default();
            let mut unit = UnitStack::default();
            let deep = (0..deep).map(|i| (0u8, i as u32));
            for (code, value) in deep.chain(records) {
                let wire = u64::from(value) | 7 << 40;
                flat.record(code, wire);
                match code {
                    0 => unit.push(value),
                    1 => {
                        unit.pop(wire);
                    }
                    _ => {}
                }
                prop_assert_eq!(flat.depth(), unit.open.len());
                prop_assert_eq!(flat.pending_len(), unit.pending.len());
            }
            let u = flat.to_unit_stack();
            prop_assert_eq!(&u.open, &unit.open);
            prop_assert_eq!(&u.pending, &unit.pending);
            let top: Vec<u32> = flat.top(8).collect();
            prop_assert_eq!(&top[..], &unit.open[unit.open.len().saturating_sub(8)..]);
        }
    }
}
