//! The atomics the encoder is built on, in one place.
//!
//! - Under `cfg(loom)` these are loom's model-checked types.
//! - On targets with compare-and-swap they are `core`'s.
//! - On targets without it (thumbv6m) they are `portable-atomic`'s, whose read-modify-write
//!   operations run in a `critical-section` (the platform provides the implementation,
//!   for example `cortex-m`'s `critical-section-single-core`).
//!
//! Every ring has exactly one writing CPU; other cores only read it. Writers on that CPU
//! nest (thread, interrupt, nested interrupt) but never run in parallel, so the
//! read-modify-writes below only need to be atomic against interrupts on the same CPU,
//! like Linux's `local_t`. [`local_cas`] and [`local_add`] use the cheapest such sequence
//! per architecture: on x86-64 an unlocked `cmpxchg`/`xadd` (one instruction, so an
//! interrupt or signal cannot split it, and no bus lock); elsewhere the ordinary relaxed
//! atomic (LDREX/STREX, LDXR/STXR, LR/SC, none of which fence).

mod imp {
    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU8, Ordering};

    #[cfg(all(not(loom), target_has_atomic = "32"))]
    pub(crate) use core::sync::atomic::{
        fence, AtomicBool, AtomicU32, AtomicU8, AtomicUsize, Ordering,
    };

    #[cfg(all(not(loom), not(target_has_atomic = "32")))]
    pub(crate) use portable_atomic::{
        fence, AtomicBool, AtomicU32, AtomicU8, AtomicUsize, Ordering,
    };
}

/// Plain (not preemptible, not model-checked) atomics for process-wide bookkeeping.
#[cfg(not(loom))]
pub(crate) use imp::AtomicUsize;
pub(crate) use imp::{fence, AtomicBool, Ordering};

#[cfg(not(test))]
pub(crate) use imp::{AtomicU32, AtomicU8};

#[cfg(test)]
pub(crate) use preemptible::{AtomicU32, AtomicU8};

/// Test builds: the atomics with a preemption point before every access, so that tests
/// can run a nested writer between any two atomic operations of another.
#[cfg(test)]
mod preemptible {
    use super::{imp, preempt_point, Ordering};

    /// An `AtomicU32` whose every access is a preemption point.
    #[repr(transparent)]
    pub(crate) struct AtomicU32(imp::AtomicU32);

    #[allow(dead_code)]
    impl AtomicU32 {
        pub(crate) fn new(v: u32) -> Self {
            AtomicU32(imp::AtomicU32::new(v))
        }
        pub(crate) fn load(&self, o: Ordering) -> u32 {
            preempt_point();
            self.0.load(o)
        }
        pub(crate) fn store(&self, v: u32, o: Ordering) {
            preempt_point();
            self.0.store(v, o)
        }
        pub(crate) fn compare_exchange(
            &self,
            c: u32,
            n: u32,
            s: Ordering,
            f: Ordering,
        ) -> Result<u32, u32> {
            preempt_point();
            self.0.compare_exchange(c, n, s, f)
        }
        pub(crate) fn fetch_add(&self, v: u32, o: Ordering) -> u32 {
            preempt_point();
            self.0.fetch_add(v, o)
        }
        #[cfg(not(loom))]
        pub(crate) fn as_ptr(&self) -> *mut u32 {
            self.0.as_ptr()
        }
    }

    /// An `AtomicU8` whose every access is a preemption point.
    #[repr(transparent)]
    pub(crate) struct AtomicU8(imp::AtomicU8);

    #[allow(dead_code)]
    impl AtomicU8 {
        pub(crate) fn new(v: u8) -> Self {
            AtomicU8(imp::AtomicU8::new(v))
        }
        pub(crate) fn load(&self, o: Ordering) -> u8 {
            preempt_point();
            self.0.load(o)
        }
        pub(crate) fn store(&self, v: u8, o: Ordering) {
            preempt_point();
            self.0.store(v, o)
        }
    }
}

/// Orders memory accesses against interrupts and signals on this CPU; no instruction.
#[inline(always)]
pub(crate) fn compiler_fence() {
    #[cfg(not(loom))]
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

/// Stores `new` into `a` if it holds `current`; returns whether it did.
///
/// Atomic against interrupts on this CPU and against readers on other CPUs; not against
/// a second writing CPU (a ring has one).
#[inline(always)]
pub(crate) fn local_cas(a: &AtomicU32, current: u32, new: u32) -> bool {
    preempt_point();
    #[cfg(all(
        target_arch = "x86_64",
        not(loom),
        not(miri),
        not(feature = "locked-rmw")
    ))]
    {
        let prev: u32;
        // SAFETY: `a.as_ptr()` is valid and 4-byte aligned for the lifetime of `a`. The
        // unlocked `cmpxchg` is a single instruction, so no interrupt or signal on this
        // CPU can come between its load and its store; the ring's single-writer invariant
        // means no other CPU stores to this word, and other CPUs' loads see either the old
        // or the new value because aligned 32-bit stores are single-copy atomic on x86.
        unsafe {
            core::arch::asm!(
                "cmpxchg dword ptr [{ptr}], {new:e}",
                ptr = in(reg) a.as_ptr(),
                new = in(reg) new,
                inout("eax") current => prev,
                options(nostack),
            );
        }
        prev == current
    }
    #[cfg(not(all(
        target_arch = "x86_64",
        not(loom),
        not(miri),
        not(feature = "locked-rmw")
    )))]
    {
        a.compare_exchange(current, new, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

/// Adds `v` to `a` (wrapping) and returns the previous value; same atomicity as [`local_cas`].
#[inline(always)]
pub(crate) fn local_add(a: &AtomicU32, v: u32) -> u32 {
    preempt_point();
    #[cfg(all(
        target_arch = "x86_64",
        not(loom),
        not(miri),
        not(feature = "locked-rmw")
    ))]
    {
        let mut prev = v;
        // SAFETY: as in `local_cas`: valid aligned pointer, one unlocked instruction that
        // interrupts cannot split, and no other CPU writes the word.
        unsafe {
            core::arch::asm!(
                "xadd dword ptr [{ptr}], {v:e}",
                ptr = in(reg) a.as_ptr(),
                v = inout(reg) prev,
                options(nostack),
            );
        }
        prev
    }
    #[cfg(not(all(
        target_arch = "x86_64",
        not(loom),
        not(miri),
        not(feature = "locked-rmw")
    )))]
    {
        a.fetch_add(v, Ordering::Relaxed)
    }
}

/// Test builds only: a hook run before every atomic access of the ring, so tests can
/// inject a nested writer (an "interrupt") at every point of another write.
#[cfg(test)]
// loom's `thread_local!` does not take `const` initialisers.
#[allow(clippy::missing_const_for_thread_local)]
pub(crate) mod preempt {
    use std::cell::{Cell, RefCell};

    type Hook = Box<dyn FnMut(u64)>;

    #[cfg(loom)]
    use loom::thread_local;
    #[cfg(not(loom))]
    use std::thread_local;

    thread_local! {
        static OPS: Cell<u64> = Cell::new(0);
        static HOOK: RefCell<Option<Hook>> = RefCell::new(None);
    }

    /// Installs `hook`, called with the running count of atomic accesses.
    pub(crate) fn set(hook: Option<Hook>) {
        OPS.with(|o| o.set(0));
        HOOK.with(|h| *h.borrow_mut() = hook);
    }

    /// Called before each atomic access. The hook is taken out while it runs, so the
    /// nested writer it starts is not itself interrupted by it.
    pub(crate) fn point() {
        let n = OPS.with(|o| {
            let n = o.get();
            o.set(n + 1);
            n
        });
        if let Some(mut hook) = HOOK.with(|h| h.borrow_mut().take()) {
            hook(n);
            HOOK.with(|h| {
                let mut slot = h.borrow_mut();
                if slot.is_none() {
                    *slot = Some(hook);
                }
            });
        }
    }
}

/// A preemption point: nothing outside test builds.
#[inline(always)]
pub(crate) fn preempt_point() {
    #[cfg(test)]
    preempt::point();
}
