//! The time source: supplied by the platform.

/// A monotonic clock on the recording CPU, read at every record.
///
/// Implement it for a cycle counter, the TSC, `CNTVCT_EL0`, a SysTick-based counter, or
/// use any `Fn() -> u64` closure. It must not go backwards on one CPU (a step backwards
/// costs an absolute timestamp, nothing more). Its frequency goes in [`crate::Config`].
pub trait Clock {
    /// The current time in ticks.
    fn now(&self) -> u64;
}

impl<F: Fn() -> u64> Clock for F {
    #[inline(always)]
    fn now(&self) -> u64 {
        self()
    }
}

/// A C function pointer clock (the C ABI uses it).
#[derive(Clone, Copy)]
pub struct FnClock(pub extern "C" fn() -> u64);

impl Clock for FnClock {
    #[inline(always)]
    fn now(&self) -> u64 {
        (self.0)()
    }
}
