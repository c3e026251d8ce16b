//! tracemark's target-side encoder: `no_std`, allocation-free and lock-free.
//!
//! A kernel or firmware gives each CPU a ring in static memory and records into it from
//! any context of that CPU (thread, interrupt, nested interrupt):
//!
//! ```
//! use tracemark::{Config, Mode, Tracer, KernelEntry};
//! # let mut memory = tracemark::RingMemory::<{ 192 + 4 * 4096 }>::new();
//! # let memory = memory.get_mut();
//! let clock = || 42u64; // the platform's cycle counter
//! let config = Config { mode: Mode::Overwrite, clock_hz: 1_000_000_000, ..Config::new() };
//! let tracer = Tracer::new(memory, &config, clock).unwrap();
//! tracer.kernel_entry(KernelEntry::syscall(1, 10, false, 42));
//! tracer.interrupt(27);
//! tracer.kernel_exit(); // carries exit - entry in clock ticks
//! ```
//!
//! The byte layout is defined by [`tracemark_format`]; the ring memory is self-describing,
//! so a debugger's raw dump of it decodes on the host with no side file.
#![cfg_attr(not(any(test, loom)), no_std)]

#[cfg(target_endian = "big")]
compile_error!("tracemark's wire format is little-endian; big-endian targets are not supported");

mod clock;
#[cfg(not(loom))]
mod live;
mod mem;
mod pos;
mod ring;
#[cfg(all(feature = "rtos-trace", not(loom)))]
pub mod rtos_trace;
mod snapshot;
mod static_mem;
pub(crate) mod sync;
mod tracer;

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(all(test, not(loom)))]
mod preempt_tests;

pub use clock::{Clock, FnClock};
pub use ring::{Config, InitError, Outcome, Ring, ShortPairCursor, ShortPairPlace};
pub use snapshot::SnapshotError;
pub use static_mem::RingMemory;
pub use tracemark_format::{
    self as format, EntryPath, Event, ExitDuration, KernelEntry, Mode, SyscallAbi,
};
pub use tracer::{EntryInfo, Masked, Owned, Tracer};
