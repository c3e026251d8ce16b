//! The single-owner C calls (`tm_owned_*`, issue 15): for a kernel that records with
//! interrupts masked, keeps its per-CPU tracing state itself and reads its clock inline
//! (seL4's hooks). See `tracemark::Owned`.
//!
//! The caller takes its CPU's handle once ([`tm_owned_ring`]) and keeps it in its per-CPU
//! data with the time of the kernel entry in progress. The entry hook only reads the
//! clock; the exit hook reads it again and calls [`tm_owned_kernel_pair`], which writes
//! the entry and the exit as one reservation. No slot lookup, no clock call through a
//! pointer, no nest counter or atomics, no entry stack on that path.

use core::ffi::c_int;

use tracemark::KernelEntry;

use super::{outcome, tracer, CTracer};

/// One CPU's ring as the single-owner calls take it (`tm_owned_ring`): opaque.
pub struct TmOwned {
    _opaque: [u8; 0],
}

/// The tracer behind `t`.
///
/// # Safety
///
/// `t` came from [`tm_owned_ring`] and its slot was not released since.
#[inline(always)]
unsafe fn owned<'t>(t: *const TmOwned) -> &'t CTracer {
    // SAFETY: the caller's contract: `t` is `tm_owned_ring`'s pointer to an initialised
    // tracer in the static table, which stays initialised until `tm_release`.
    unsafe { &*t.cast::<CTracer>() }
}

/// The single-owner handle of `cpu`'s ring, for the `tm_owned_*` calls; NULL if `cpu` is
/// not below `TM_MAX_CPUS` or its ring is not initialised. Valid until `tm_release(cpu)`.
#[no_mangle]
pub extern "C" fn tm_owned_ring(cpu: u32) -> *const TmOwned {
    match tracer(cpu) {
        Ok(t) => (t as *const CTracer).cast(),
        Err(_) => core::ptr::null(),
    }
}

/// A kernel entry that the caller held since `entry_ts` (nothing was recorded into this
/// ring since) ends at `exit_ts`: writes the KENTRY with `word` (the entry word, as for
/// `tm_kernel_entry_info`) at `entry_ts`, a thread switch to `next_thread` unless it is 0,
/// and the KEXIT (`exit_ts - entry_ts` ticks) at `exit_ts`. Without a switch the two are
/// one reservation. Times are ticks of the ring's clock (`tm_config.clock`), read by the
/// caller. Returns `TM_OK` or `TM_DROPPED` (the exit's).
///
/// # Safety
///
/// `t` came from [`tm_owned_ring`] and its slot was not released since; and the contract
/// of `tm_masked_kernel_entry_deferred`: nothing else records into this ring until the
/// call returns. While the caller holds an entry, nothing may record into the ring before
/// [`tm_owned_kernel_entry`] wrote it.
#[no_mangle]
pub unsafe extern "C" fn tm_owned_kernel_pair(
    t: *const TmOwned,
    entry_ts: u64,
    word: u32,
    next_thread: u64,
    exit_ts: u64,
) -> c_int {
    // SAFETY: the caller's contract (both halves).
    let o = unsafe { owned(t).owned() };
    outcome(o.kernel_pair(entry_ts, KernelEntry(word), next_thread, exit_ts))
}

/// Writes the kernel entry the caller has held since `entry_ts` (with the placeholder
/// word, made the pending deferred entry), before anything is recorded inside it: an
/// interrupt, a function record. End it with [`tm_owned_kernel_exit`].
///
/// # Safety
///
/// As [`tm_owned_kernel_pair`].
#[no_mangle]
pub unsafe extern "C" fn tm_owned_kernel_entry(t: *const TmOwned, entry_ts: u64) -> c_int {
    // SAFETY: the caller's contract.
    outcome(unsafe { owned(t).owned() }.kernel_entry(entry_ts))
}

/// The exit, at `exit_ts`, of an entry written by [`tm_owned_kernel_entry`]: fills in its
/// `word`, records a switch to `next_thread` unless it is 0, then the KEXIT with the
/// duration since the entry. Returns the exit's `TM_OK` or `TM_DROPPED`.
///
/// # Safety
///
/// As [`tm_owned_kernel_pair`].
#[no_mangle]
pub unsafe extern "C" fn tm_owned_kernel_exit(
    t: *const TmOwned,
    word: u32,
    next_thread: u64,
    exit_ts: u64,
) -> c_int {
    // SAFETY: the caller's contract.
    let o = unsafe { owned(t).owned() };
    outcome(o.kernel_exit(KernelEntry(word), next_thread, exit_ts))
}

/// Records interrupt `irq` at `ts` (inside a held entry: [`tm_owned_kernel_entry`] first).
///
/// # Safety
///
/// As [`tm_owned_kernel_pair`].
#[no_mangle]
pub unsafe extern "C" fn tm_owned_interrupt(t: *const TmOwned, irq: u32, ts: u64) -> c_int {
    // SAFETY: the caller's contract.
    outcome(unsafe { owned(t).owned() }.interrupt(irq, ts))
}

/// Records a thread switch to `thread` at `ts`.
///
/// # Safety
///
/// As [`tm_owned_kernel_pair`].
#[no_mangle]
pub unsafe extern "C" fn tm_owned_thread_switch(t: *const TmOwned, thread: u64, ts: u64) -> c_int {
    // SAFETY: the caller's contract.
    outcome(unsafe { owned(t).owned() }.thread_switch(thread, ts))
}

/// What the inline pair writer of `tracemark_inline.h` (`tm_owned_inline_pair`) works
/// from: where one CPU's next short pair goes, filled in by [`tm_owned_inline_sync`] and
/// moved on by the inline writer past each pair it writes. The caller keeps it in its
/// per-CPU data beside the `tm_owned` handle, and takes it again after every pair the
/// inline writer could not write (`tm_owned_inline_kernel_pair` does both) and after
/// anything re-initialises the ring.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TmOwnedInline {
    /// The ring's memory (the first byte of its header).
    pub ring: *mut u8,
    /// Where the next pair's first byte goes.
    pub next: *mut u8,
    /// The last address a pair may start at; below `next` when no pair may be written
    /// inline until the state is taken again.
    pub last: *mut u8,
    /// The current block's record count (a 32-bit word).
    pub records: *mut u8,
    /// The ring's `write_pos` at `next`: the inline writer writes only while the ring's
    /// still equals it (nothing else recorded since).
    pub pos: u32,
    /// The time of the record that ends at `pos`.
    pub last_ts: u64,
}

/// Fills `*f` for the inline pair writer of `tracemark_inline.h` from the ring behind `t`
/// (at the start, after a pair the inline writer left to the library, and after the
/// ring is initialised again). Returns `TM_OK`, or `TM_ERR_BAD_ARG` (`*f` untouched) if
/// `t` or `f` is NULL.
///
/// # Safety
///
/// `t` is NULL or came from [`tm_owned_ring`] and its slot was not released since; `f` is
/// NULL or valid for a write of a `tm_owned_inline`. Nothing records into the ring while
/// the call runs (the owned calls' contract).
#[no_mangle]
pub unsafe extern "C" fn tm_owned_inline_sync(t: *const TmOwned, f: *mut TmOwnedInline) -> c_int {
    if t.is_null() || f.is_null() {
        return crate::TM_ERR_BAD_ARG;
    }
    // SAFETY: the caller's contract (`t` is a live handle, nothing records meanwhile).
    let c = unsafe { owned(t).owned() }.short_pair_cursor();
    // No pair fits: `next` past `last`, both inside the ring (a relational comparison
    // of two pointers into one object).
    let (next, last, records) = match c.place {
        Some(p) => (p.start, p.last, p.records),
        None => (1, 0, 0),
    };
    let state = TmOwnedInline {
        ring: c.memory,
        // `wrapping_add`: plain address arithmetic; the offsets lie inside the ring's
        // memory (`short_pair_cursor`), which the caller only dereferences there.
        next: c.memory.wrapping_add(next),
        last: c.memory.wrapping_add(last),
        records: c.memory.wrapping_add(records),
        pos: c.pos,
        last_ts: c.last_ts,
    };
    // SAFETY: `f` is valid for a write (the caller's contract), checked non-NULL above.
    unsafe { f.write(state) };
    crate::TM_OK
}

/// The pair `tm_owned_inline_kernel_pair` (`tracemark_inline.h`) did not write inline:
/// writes it as [`tm_owned_kernel_pair`] does, then takes `*f` again (its lap may have
/// gone stale). Returns the pair's `TM_OK` or `TM_DROPPED`.
///
/// # Safety
///
/// As [`tm_owned_kernel_pair`]; `f` is valid for reads and writes of a `tm_owned_inline`.
#[no_mangle]
#[cold]
pub unsafe extern "C" fn tm_owned_inline_fallback(
    t: *const TmOwned,
    f: *mut TmOwnedInline,
    entry_ts: u64,
    word: u32,
    next_thread: u64,
    exit_ts: u64,
) -> c_int {
    // SAFETY: the caller's contract (both).
    unsafe {
        let r = tm_owned_kernel_pair(t, entry_ts, word, next_thread, exit_ts);
        tm_owned_inline_sync(t, f);
        r
    }
}
