//! An [`rtos_trace::RtosTrace`] implementation: embassy's executor (feature
//! `rtos-trace` of `embassy-executor` 0.10) traced into a tracemark ring.
//!
//! The firmware publishes its tracer once and names this module's [`Embassy`] as the
//! global trace implementation:
//!
//! ```ignore
//! // `global_trace!` takes an identifier, not a path: name the type locally.
//! rtos_trace::global_trace!(TraceImpl);
//! type TraceImpl = tracemark::rtos_trace::Embassy;
//! // in main, once the tracer exists (a `&'static Tracer<'static, C>`), before spawning:
//! tracemark::rtos_trace::set_tracer(tracer).unwrap();
//! ```
//!
//! What the executor reports, and what it becomes in the ring:
//!
//! | `rtos-trace` call             | record                                                   |
//! |-------------------------------|----------------------------------------------------------|
//! | `task_send_info(id, info)`    | THREAD naming task `id` (`info.name`, `info.priority`)   |
//! | `task_new_stackless(id, ..)`  | the same                                                  |
//! | `task_exec_begin(id)`         | switch to thread `id` (a poll of the task)               |
//! | `task_exec_end()`             | switch to [`EXECUTOR_THREAD`] (`executor`, scheduling)   |
//! | `system_idle()`               | switch to [`IDLE_THREAD`] (`IDLE`, waiting for an event), unless already idle |
//! | `marker(id)`                  | USER event `id`, empty payload                           |
//! | `start()` / `stop()`          | resume / pause recording                                 |
//!
//! So a task's "times switched in" in `tracemark stats` is its poll count, its running
//! time is the time spent in its polls, the executor's own scheduling time is the
//! `executor` thread's, and the time between `system_idle` and the next poll (the
//! executor's `WFE`, and the scheduling after a wake-up, which `rtos-trace` does not
//! report) is idle time. A `system_idle` while idle (a wake-up that readied no task) is
//! not recorded. Every switch re-emits the thread's name once per
//! block ([`Tracer::thread_switch_named`]), so an overwritten ring still names its tasks;
//! names are remembered for the first [`MAX_NAMED`] tasks (later ones are switched to
//! but named only by their `task_send_info` record).
//!
//! Task ids are the executor's (`TaskRef::id()`, the task header's address): 4-aligned,
//! so they never equal the two pseudo-thread ids 1 and 2. embassy-executor gives every
//! task priority 0, and the name the firmware set in the task's metadata
//! (`SpawnToken::metadata().set_name("name\0")` before spawning; `unnamed task`
//! without one).
//!
//! Not recorded: `task_new` (the name record follows it), `task_ready_begin`/`_end`,
//! `task_terminate`, `isr_*` (embassy does not call them; interrupts are the firmware's
//! to record with [`Tracer::interrupt`]), `marker_begin`/`_end` and `name_marker`.
//! Exact for one executor: `task_exec_end` does not say which executor ended a poll, so
//! with an interrupt-mode executor preempting a thread-mode one, the preempted task's
//! remaining poll time is attributed to `executor`.

use core::cell::UnsafeCell;

use crate::{Clock, Outcome, Tracer};
// Not `crate::sync`: these statics need `const` constructors, which its test doubles lack,
// and no test injects preemption here (the tracer's own calls have that coverage).
#[cfg(target_has_atomic = "32")]
use core::sync::atomic::{AtomicU32, AtomicU8, AtomicUsize, Ordering};
#[cfg(not(target_has_atomic = "32"))]
use portable_atomic::{AtomicU32, AtomicU8, AtomicUsize, Ordering};

/// Thread id of the executor's own scheduling time (between polls).
pub const EXECUTOR_THREAD: u64 = 1;
/// Thread id of the executor's idle time (from `system_idle` to the next poll); named
/// `IDLE` so that `tracemark stats` counts it as idle.
pub const IDLE_THREAD: u64 = 2;
/// How many task names are remembered for re-emission once per block.
pub const MAX_NAMED: usize = 32;

/// What the adapter needs of a tracer, object-safe so that one global can hold a
/// tracer of any clock type.
trait Sink: Sync {
    fn thread_name(&self, thread: u64, prio: u32, name: &[u8]) -> Outcome;
    fn thread_switch_named(&self, thread: u64, prio: u32, name: &[u8], stamp: &mut u32) -> Outcome;
    fn thread_switch(&self, thread: u64) -> Outcome;
    fn user(&self, id: u32, payload: &[u8]) -> Outcome;
    fn block_stamp(&self) -> u32;
}

impl<C: Clock + Sync> Sink for Tracer<'static, C> {
    fn thread_name(&self, thread: u64, prio: u32, name: &[u8]) -> Outcome {
        Tracer::thread_name(self, thread, prio, name)
    }
    fn thread_switch_named(&self, thread: u64, prio: u32, name: &[u8], stamp: &mut u32) -> Outcome {
        Tracer::thread_switch_named(self, thread, prio, name, stamp)
    }
    fn thread_switch(&self, thread: u64) -> Outcome {
        Tracer::thread_switch(self, thread)
    }
    fn user(&self, id: u32, payload: &[u8]) -> Outcome {
        Tracer::user(self, id, payload)
    }
    fn block_stamp(&self) -> u32 {
        Tracer::block_stamp(self)
    }
}

const UNSET: u8 = 0;
const SETTING: u8 = 1;
const SET: u8 = 2;

/// The global tracer: written once, then only read.
struct Global {
    // INVARIANTS: `sink` is written only by the one `set_tracer` call that moved `state`
    // from UNSET to SETTING, and read only after `state` was seen SET (Acquire), which
    // that call stores (Release) after the write.
    state: AtomicU8,
    sink: UnsafeCell<Option<&'static dyn Sink>>,
    enabled: AtomicU8,
}

// SAFETY: `sink` is written once, before `state` is published as SET with Release, and
// read only after an Acquire load of SET (see the invariant): no access races.
unsafe impl Sync for Global {}

static GLOBAL: Global = Global {
    state: AtomicU8::new(UNSET),
    sink: UnsafeCell::new(None),
    enabled: AtomicU8::new(1),
};

/// The error of a second [`set_tracer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlreadySet;

/// Publishes the tracer the executor's callbacks record into. Call it once, before the
/// executor spawns its first task (tasks spawned earlier are switched to unnamed).
///
/// # Errors
///
/// [`AlreadySet`] if a tracer was published already (the first one stays).
pub fn set_tracer<C: Clock + Sync>(tracer: &'static Tracer<'static, C>) -> Result<(), AlreadySet> {
    GLOBAL
        .state
        .compare_exchange(UNSET, SETTING, Ordering::Acquire, Ordering::Relaxed)
        .map_err(|_| AlreadySet)?;
    // SAFETY: the compare-exchange above made this call the only writer, and no reader
    // reads `sink` before `state` is SET (the invariant of `Global`).
    unsafe { *GLOBAL.sink.get() = Some(tracer) };
    GLOBAL.state.store(SET, Ordering::Release);
    Ok(())
}

fn sink() -> Option<&'static dyn Sink> {
    if GLOBAL.state.load(Ordering::Acquire) != SET || GLOBAL.enabled.load(Ordering::Relaxed) == 0 {
        return None;
    }
    // SAFETY: `state` is SET (Acquire): the one write happened before, none follows.
    unsafe { *GLOBAL.sink.get() }
}

/// A remembered task name. `id` 0 is a free slot; a slot is claimed by a
/// compare-exchange on `id`, then `name`/`len` are written and published by `ready`
/// (Release).
// INVARIANTS: once `ready` is 1, `name` and `len` never change (a slot is written once):
// they hold a `&'static [u8]`. A task re-named (re-spawned at the same address with
// another name) gets a new slot, and its old slot's `id` becomes `RETIRED`.
struct Slot {
    id: AtomicU32,
    name: AtomicUsize,
    len: AtomicUsize,
    ready: AtomicU8,
    // The block stamp the name was last written in (`Tracer::thread_switch_named`). Only
    // the executor that polls the task touches it.
    stamp: AtomicU32,
}

#[allow(clippy::declare_interior_mutable_const)] // the array initialiser only
const FREE: Slot = Slot {
    id: AtomicU32::new(0),
    name: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    ready: AtomicU8::new(0),
    stamp: AtomicU32::new(0),
};

static NAMES: [Slot; MAX_NAMED] = [FREE; MAX_NAMED];
static EXECUTOR_STAMP: AtomicU32 = AtomicU32::new(0);
/// Whether the last switch recorded was to [`IDLE_THREAD`]: an executor woken by an
/// event that readied no task calls `system_idle` again (under QEMU, whose `WFE` does
/// not sleep, thousands of times), and idle to idle is no switch.
static IN_IDLE: AtomicU8 = AtomicU8::new(0);
static IDLE_STAMP: AtomicU32 = AtomicU32::new(0);

/// The `id` of a slot whose name was replaced. Task ids are 4-aligned addresses: never
/// this.
const RETIRED: u32 = u32::MAX;

fn remember(id: u32, name: &'static [u8]) {
    if let Some((slot, old)) = lookup(id) {
        if core::ptr::eq(old, name) {
            return;
        }
        slot.id.store(RETIRED, Ordering::Relaxed);
    }
    for slot in &NAMES {
        let claimed = slot
            .id
            .compare_exchange(0, id, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok();
        if claimed {
            slot.name.store(name.as_ptr() as usize, Ordering::Relaxed);
            slot.len.store(name.len(), Ordering::Relaxed);
            slot.stamp.store(0, Ordering::Relaxed);
            slot.ready.store(1, Ordering::Release);
            return;
        }
    }
}

fn lookup(id: u32) -> Option<(&'static Slot, &'static [u8])> {
    let slot = NAMES
        .iter()
        .find(|s| s.id.load(Ordering::Relaxed) == id && s.ready.load(Ordering::Acquire) == 1)?;
    let ptr = slot.name.load(Ordering::Relaxed) as *const u8;
    let len = slot.len.load(Ordering::Relaxed);
    // SAFETY: `ptr`/`len` were stored from one `&'static [u8]` in `remember` before
    // `ready`'s Release, which the Acquire above saw, and are never written again (the
    // invariant of `Slot`): they make that slice, valid and immutable forever.
    Some((slot, unsafe { core::slice::from_raw_parts(ptr, len) }))
}

/// A task name as embassy passes it: `&'static str`, NUL-terminated for SystemView.
fn trim(name: &'static str) -> &'static [u8] {
    let b = name.as_bytes();
    b.strip_suffix(b"\0").unwrap_or(b)
}

fn switch_pseudo(sink: &dyn Sink, thread: u64, name: &[u8], stamp: &AtomicU32) {
    let mut s = stamp.load(Ordering::Relaxed);
    sink.thread_switch_named(thread, 0, name, &mut s);
    stamp.store(s, Ordering::Relaxed);
}

fn name_task(id: u32, name: &'static str, priority: u32) {
    let name = trim(name);
    remember(id, name);
    if let Some(sink) = sink() {
        sink.thread_name(u64::from(id), priority, name);
        if let Some((slot, _)) = lookup(id) {
            // Named in this block now; the first poll need not repeat it.
            slot.stamp.store(sink.block_stamp(), Ordering::Relaxed);
        }
    }
}

/// The `rtos-trace` implementation; name it in `rtos_trace::global_trace!`.
pub struct Embassy;

impl rtos_trace::RtosTrace for Embassy {
    fn start() {
        IN_IDLE.store(0, Ordering::Relaxed);
        GLOBAL.enabled.store(1, Ordering::Relaxed);
    }
    fn stop() {
        GLOBAL.enabled.store(0, Ordering::Relaxed);
    }
    fn task_new(_id: u32) {}
    fn task_send_info(id: u32, info: rtos_trace::TaskInfo) {
        name_task(id, info.name, info.priority);
    }
    fn task_new_stackless(id: u32, name: &'static str, priority: u32) {
        name_task(id, name, priority);
    }
    fn task_terminate(_id: u32) {}
    fn task_exec_begin(id: u32) {
        let Some(sink) = sink() else { return };
        IN_IDLE.store(0, Ordering::Relaxed);
        match lookup(id) {
            Some((slot, name)) => {
                let mut s = slot.stamp.load(Ordering::Relaxed);
                sink.thread_switch_named(u64::from(id), 0, name, &mut s);
                slot.stamp.store(s, Ordering::Relaxed);
            }
            None => {
                sink.thread_switch(u64::from(id));
            }
        }
    }
    fn task_exec_end() {
        if let Some(sink) = sink() {
            switch_pseudo(sink, EXECUTOR_THREAD, b"executor", &EXECUTOR_STAMP);
        }
    }
    fn task_ready_begin(_id: u32) {}
    fn task_ready_end(_id: u32) {}
    fn system_idle() {
        if let Some(sink) = sink() {
            if IN_IDLE.swap(1, Ordering::Relaxed) == 0 {
                switch_pseudo(sink, IDLE_THREAD, b"IDLE", &IDLE_STAMP);
            }
        }
    }
    fn isr_enter() {}
    fn isr_exit() {}
    fn isr_exit_to_scheduler() {}
    fn name_marker(_id: u32, _name: &'static str) {}
    fn marker(id: u32) {
        if let Some(sink) = sink() {
            sink.user(id, &[]);
        }
    }
    fn marker_begin(_id: u32) {}
    fn marker_end(_id: u32) {}
}
