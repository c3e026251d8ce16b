//! The process-wide table of ring memory in use, so that a ring is never set up in memory
//! that overlaps a live one (the C ABI and `unsafe` Rust can hand out such memory; the
//! owner token in the ring header only catches the same start address).
//!
//! [`LIVE_RINGS`] spans of `start..end` addresses. Registering claims a free entry, then
//! checks every other entry; with sequentially consistent stores and loads, of two rings
//! registered at the same time at least one sees the other (and both may refuse, which
//! is safe). A span is removed when its ring is dropped; a ring that is leaked
//! (`mem::forget`, a kernel that never stops) keeps its entry.

use crate::sync::{AtomicUsize, Ordering};

/// How many rings can be live at once with their overlap checked. Beyond it, a new ring
/// is set up without the check (it cannot be refused for a full table: a system with
/// more CPUs than entries must still trace); [`register`] says so.
pub const LIVE_RINGS: usize = 16;

struct Span {
    /// First address; 0 while the entry is free.
    start: AtomicUsize,
    /// One past the last address; 0 while the entry is being set up or freed.
    end: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)] // used only to initialise the table
const FREE: Span = Span {
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
};

static SPANS: [Span; LIVE_RINGS] = [FREE; LIVE_RINGS];

/// What registering a span did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Registered {
    /// Registered in entry `.0`; release it with [`unregister`].
    Entry(u8),
    /// The table is full: not registered, not checked.
    Unchecked,
}

/// Registers `start..end` (`start > 0`, `end > start`), or returns `Err(())` if it
/// overlaps a registered span.
pub(crate) fn register(start: usize, end: usize) -> Result<Registered, ()> {
    let Some(i) = SPANS.iter().position(|s| {
        s.start
            .compare_exchange(0, start, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
    }) else {
        return Ok(Registered::Unchecked);
    };
    SPANS[i].end.store(end, Ordering::SeqCst);
    let overlaps = SPANS.iter().enumerate().any(|(j, s)| {
        if j == i {
            return false;
        }
        let (s0, s1) = (s.start.load(Ordering::SeqCst), s.end.load(Ordering::SeqCst));
        s1 != 0 && s0 < end && start < s1
    });
    if overlaps {
        unregister(i as u8);
        return Err(());
    }
    Ok(Registered::Entry(i as u8))
}

/// Whether `start..end` overlaps a registered span (a ring in use in this program).
pub(crate) fn overlaps(start: usize, end: usize) -> bool {
    SPANS.iter().any(|s| {
        let (s0, s1) = (s.start.load(Ordering::SeqCst), s.end.load(Ordering::SeqCst));
        s1 != 0 && s0 < end && start < s1
    })
}

/// Frees entry `i`.
pub(crate) fn unregister(i: u8) {
    if let Some(s) = SPANS.get(usize::from(i)) {
        s.end.store(0, Ordering::SeqCst);
        s.start.store(0, Ordering::SeqCst);
    }
}
