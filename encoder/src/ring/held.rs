//! Held deferred kernel entries (FORMAT.md 9.5): a single-context writer may hold a
//! deferred entry back instead of writing its placeholder, and write it once, with its
//! real word, when the information comes. Any other write made while an entry is held
//! writes the entry (with the placeholder) first, so records stay in time order.
//!
//! While an entry is held, `pending_pos` is `1 + slot` (`1..=HELD_ENTRY_MAX`), the
//! entry's time is in `entry_stack[slot]`, and `last_pos` matches no position, so every
//! write leaves the fast path and reaches the general path, which calls
//! [`Ring::write_held_entry`] before anything else. Nothing is written between the hold
//! and that call, so `last_ts` still belongs to the record just before `write_pos`.

use tracemark_format::record::{Fields, Kind};
use tracemark_format::ring::{offsets, HELD_ENTRY_MAX};
use tracemark_format::KernelEntry;

use crate::sync::{local_cas, Ordering};

use super::fast::{enter, exit};
use super::{Outcome, Ring};

/// The `pending_pos` value that says the deferred entry was dropped (drop mode, no
/// room): `HELD_ENTRY_MAX + 1`, never a record's end (an offset inside a block header)
/// nor a held entry, so that filling in its information reports the drop, which the
/// ring counted, rather than "nothing pending".
pub(crate) const DROPPED_ENTRY: u32 = HELD_ENTRY_MAX + 1;

/// Whether the `pending_pos` value `pending` says a deferred entry is held.
#[inline(always)]
pub(crate) fn is_held(pending: u32) -> bool {
    pending.wrapping_sub(1) < HELD_ENTRY_MAX
}

impl Ring<'_> {
    /// Holds back the deferred kernel entry whose time `ts` the caller has pushed to
    /// entry-stack slot `slot` (below `HELD_ENTRY_MAX`).
    ///
    /// # Safety
    ///
    /// The single-context contract (`Tracer::masked`): no other write to this ring runs
    /// or starts during the call.
    #[inline(always)]
    pub(crate) unsafe fn hold_entry(&self, slot: u32) {
        let mem = self.mem();
        let write = mem.hdr(offsets::WRITE_POS).load(Ordering::Relaxed);
        // Every later write now fails the fast path's `last_pos == write_pos` check.
        mem.hdr(offsets::LAST_POS)
            .store(write ^ 1, Ordering::Relaxed);
        mem.hdr(offsets::PENDING_POS)
            .store(slot + 1, Ordering::Relaxed);
    }

    /// Takes the held entry, if there is one: returns its time, with `last_pos` pointing
    /// at `write_pos` again (nothing was written since the hold) and `pending_pos` 0.
    /// Nested writers may race for it; one wins.
    #[inline(always)]
    pub(crate) fn take_held_entry(&self) -> Option<u64> {
        let mem = self.mem();
        let pending = mem.hdr(offsets::PENDING_POS);
        let held = pending.load(Ordering::Relaxed);
        if !is_held(held) || !local_cas(pending, held, 0) {
            return None;
        }
        // SAFETY: `is_held(held)`: `held - 1 < HELD_ENTRY_MAX == ENTRY_STACK_DEPTH`.
        let ts = unsafe { mem.entry_slot(held as usize - 1) };
        let write = mem.hdr(offsets::WRITE_POS).load(Ordering::Relaxed);
        mem.hdr(offsets::LAST_POS).store(write, Ordering::Relaxed);
        Some(ts)
    }

    /// Writes the held entry, if there is one, as a KENTRY holding the placeholder at its
    /// time, and makes it the pending entry (as an entry that was never held). Called
    /// first by every write that reaches the general path.
    #[cold]
    #[inline(never)]
    pub(crate) fn write_held_entry(&self) {
        let Some(ts) = self.take_held_entry() else {
            return;
        };
        let mem = self.mem();
        let nest = enter(mem);
        let placeholder = Fields::varint(Kind::KernelEntry, u64::from(KernelEntry::PENDING.0));
        let (outcome, _, end) = self.write_general_loop(None, &|| ts, &placeholder, true);
        let pending = match outcome {
            Outcome::Written => end,
            Outcome::Dropped => DROPPED_ENTRY,
        };
        mem.hdr(offsets::PENDING_POS)
            .store(pending, Ordering::Relaxed);
        exit(mem, nest);
    }
}
