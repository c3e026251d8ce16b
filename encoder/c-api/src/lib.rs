//! C ABI of the tracemark encoder, for kernels written in C (seL4) and other C firmware.
//!
//! Built as a static library (`libtracemark_c.a`) with the header
//! `encoder/include/tracemark.h`, generated from this file by `cbindgen`
//! (`encoder/c-api/check-header.sh` regenerates it and fails if the committed one differs).
//!
//! # Model
//!
//! A table of [`TM_MAX_CPUS`] per-CPU tracers lives in this library's static memory. The
//! kernel hands each CPU's ring memory to [`tm_init`] once; afterwards any context of that
//! CPU (thread, interrupt, nested interrupt, signal handler) records with the `tm_*`
//! functions, passing its CPU number. Recording is lock-free and allocation-free, and never
//! panics: a bad CPU number or an uninitialised slot returns an error code.
//!
//! Every recording function returns [`TM_OK`] when the record is in the ring,
//! [`TM_DROPPED`] when the ring (drop mode) was full, or a negative `TM_ERR_*` code.
//!
//! The rules the C caller must keep (they are the encoder's):
//! - only CPU `cpu` records into slot `cpu` (other CPUs may dump or read it);
//! - the ring memory stays valid, and is not otherwise written, until [`tm_release`];
//! - [`tm_release`] does not run while anything still records into that slot.
//!
//! # `-finstrument-functions`
//!
//! With the default `cyg-profile` feature the library defines `__cyg_profile_func_enter`
//! and `__cyg_profile_func_exit`, so C compiled with `-finstrument-functions` records a
//! function entry and exit for every instrumented call, with no other change. They record
//! on the CPU that the function set by [`tm_set_cpu_fn`] returns (CPU 0 by default), and
//! record the function's address minus the base set by [`tm_set_function_base`].
//!
//! The hooks are safe against re-entry: when the clock or the cpu function is itself
//! compiled with `-finstrument-functions` (the whole program built with the flag), the
//! hook calls they make are skipped and counted ([`tm_hook_skipped`]) instead of
//! recursing until the stack overflows. Mark both functions
//! `__attribute__((no_instrument_function))` so that nothing is skipped.
//!
//! # Kernels that learn why they were entered late (seL4)
//!
//! seL4 knows a syscall's number, cap type and label only after its entry hook. Such a
//! kernel calls [`tm_kernel_entry_deferred`] in the entry hook (the entry keeps its true
//! time and stays before the records written while the kernel decodes the syscall),
//! [`tm_kernel_entry_info`] with the entry word once it is known (tracemark's wire word,
//! built with the header's `tm_entry_word_syscall`/`tm_entry_word_other`), then
//! [`tm_thread_switch`] if the scheduler picked another thread, and [`tm_kernel_exit`]
//! (FORMAT.md section 9.5). A kernel built with `-nostdinc` includes `tracemark.h` with
//! `TM_NO_STDINC` defined (the header then includes nothing and uses the kernel's own
//! exact-width types), as the seL4 example's
//! `examples/sel4/kernel/files/include/benchmark/tracemark.h` does; such a kernel also
//! defines the `-finstrument-functions` hooks itself (build without the `cyg-profile`
//! feature) so that they can skip its own tracing code.
#![cfg_attr(target_os = "none", no_std)]

use core::cell::UnsafeCell;
use core::ffi::{c_int, c_void};
use core::mem::MaybeUninit;

use tracemark::format::ring::offsets;
use tracemark::format::Sel4EntryNumbering;
use tracemark::{Config, EntryInfo, FnClock, InitError, KernelEntry, Mode, Outcome, SyscallAbi};

#[cfg(target_has_atomic = "8")]
use core::sync::atomic::{AtomicU32 as CountU32, AtomicU8};
#[cfg(not(target_has_atomic = "8"))]
use portable_atomic::{AtomicU32 as CountU32, AtomicU8};

use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

type CTracer = tracemark::Tracer<'static, FnClock>;

mod owned;
pub use owned::*;

#[cfg(not(target_os = "none"))]
pub mod inline_header;

// ---------------------------------------------------------------------------------------
// Constants (exported to the header as #defines)
// ---------------------------------------------------------------------------------------

/// Number of CPU slots in the tracer table.
pub const TM_MAX_CPUS: u32 = 8;

/// Success; for a recording function: the record is in the ring.
pub const TM_OK: c_int = 0;
/// `tm_init_recover`: the memory held an earlier session's ring, which went to the sink;
/// a new session started.
pub const TM_RECOVERED: c_int = 2;
/// The ring had no room (drop mode); the record was counted as dropped.
pub const TM_DROPPED: c_int = 1;
/// The CPU number is not below `TM_MAX_CPUS`.
pub const TM_ERR_BAD_CPU: c_int = -1;
/// No ring was initialised for this CPU (or it was released).
pub const TM_ERR_NOT_INIT: c_int = -2;
/// The slot, or the ring memory, is already owned by a tracing session, or the memory
/// overlaps the memory of a ring in use (in any slot, or a Rust ring in the program).
pub const TM_ERR_IN_USE: c_int = -3;
/// The ring memory is not 8-byte aligned.
pub const TM_ERR_MISALIGNED: c_int = -4;
/// The ring memory holds fewer than two blocks after the 192-byte header.
pub const TM_ERR_TOO_SMALL: c_int = -5;
/// The block size is not a power of two from 256 to 65536.
pub const TM_ERR_BAD_BLOCK_SIZE: c_int = -6;
/// A NULL pointer, an unknown mode or syscall ABI, or another invalid argument.
pub const TM_ERR_BAD_ARG: c_int = -7;
/// The sink callback returned non-zero; the dump stopped there.
pub const TM_ERR_SINK: c_int = -8;
/// The ring changed during every snapshot attempt; try again.
pub const TM_ERR_BUSY: c_int = -9;
/// A field does not fit its bits (syscall above 15, cap type above 31, label above
/// 2^19 - 1, core above 7, word above 2^26 - 1, an unknown path, `TM_PATH_SYSCALL` given
/// to `tm_kernel_entry_other`); nothing was recorded.
pub const TM_ERR_RANGE: c_int = -10;
/// `tm_init`: the memory holds the ring a session left there (an earlier boot's, kept
/// across a reset) and no ring of this program uses; read it and start a new session
/// with `tm_init_recover`.
pub const TM_ERR_PREVIOUS: c_int = -11;
/// `tm_kernel_entry_info`: no deferred entry is pending on this CPU (none was recorded,
/// its information was already filled in, or a deferred entry recorded by a nested
/// context in between replaced it and was filled in: one deferred entry per CPU is
/// pending at a time); nothing was recorded.
pub const TM_ERR_NO_PENDING: c_int = -12;

/// Flight recorder: reclaim the oldest block when full.
pub const TM_MODE_OVERWRITE: u32 = 0;
/// Stop when full and count what is dropped.
pub const TM_MODE_DROP: u32 = 1;

/// Syscall numbers are shown as numbers only.
pub const TM_ABI_RAW: u32 = 0;
/// seL4 syscall numbering without MCS.
pub const TM_ABI_SEL4: u32 = 1;
/// seL4 syscall numbering with MCS.
pub const TM_ABI_SEL4_MCS: u32 = 2;
/// As `TM_ABI_SEL4`, for seL4 releases whose `entry_type_t` starts at
/// `Entry_Interrupt = 0` (with `Entry_UnimplementedDevice = 6`): `tm_kernel_entry_raw`
/// renumbers their entry paths. The ring header says `TM_ABI_SEL4`.
pub const TM_ABI_SEL4_LEGACY: u32 = 3;
/// As `TM_ABI_SEL4_MCS`, with the entry-path numbering of `TM_ABI_SEL4_LEGACY`.
pub const TM_ABI_SEL4_LEGACY_MCS: u32 = 4;

/// Kernel entry path: unknown.
pub const TM_PATH_UNKNOWN: u32 = 0;
/// Kernel entry path: hardware interrupt.
pub const TM_PATH_INTERRUPT: u32 = 1;
/// Kernel entry path: unknown syscall.
pub const TM_PATH_UNKNOWN_SYSCALL: u32 = 2;
/// Kernel entry path: user-level fault.
pub const TM_PATH_USER_LEVEL_FAULT: u32 = 3;
/// Kernel entry path: debug fault.
pub const TM_PATH_DEBUG_FAULT: u32 = 4;
/// Kernel entry path: virtual-memory fault.
pub const TM_PATH_VM_FAULT: u32 = 5;
/// Kernel entry path: syscall (use `tm_kernel_entry_syscall` for its fields).
pub const TM_PATH_SYSCALL: u32 = 6;
/// Kernel entry path: VCPU fault or VM exit.
pub const TM_PATH_VCPU_FAULT: u32 = 7;

/// Default block size for `tm_config.block_size == 0`.
pub const TM_DEFAULT_BLOCK_SIZE: u32 = 4096;
/// Bytes of ring header before the first block.
pub const TM_RING_HEADER_LEN: u32 = 192;
/// Kernel entries open at once whose times are kept for their exits' durations: a
/// deeper entry is recorded, and its exit says `NestingOverflow` instead of a duration.
pub const TM_ENTRY_STACK_DEPTH: u32 = 8;

// The entry word of `tm_kernel_entry_info` and `tm_masked_kernel_exit_deferred`
// (tracemark's wire word, FORMAT.md section 9; not seL4's `kernel_entry_t`, which
// `tm_kernel_entry_raw` takes): build it with `tm_entry_word_syscall` or
// `tm_entry_word_other`.

/// Entry word: bits 0..3 are the path (`TM_PATH_*`).
pub const TM_ENTRY_PATH_MASK: u32 = 0x7;
/// Syscall entry word: the syscall number (0 to `TM_ENTRY_MAX_SYSCALL`) from this bit.
pub const TM_ENTRY_SYSCALL_SHIFT: u32 = 3;
/// Syscall entry word: the cap type (0 to `TM_ENTRY_MAX_CAP_TYPE`) from this bit.
pub const TM_ENTRY_CAP_TYPE_SHIFT: u32 = 7;
/// Syscall entry word: the fastpath flag at this bit.
pub const TM_ENTRY_FASTPATH_SHIFT: u32 = 12;
/// Syscall entry word: the invocation label (0 to `TM_ENTRY_MAX_LABEL`) from this bit.
pub const TM_ENTRY_LABEL_SHIFT: u32 = 13;
/// Other entry word: the core (0 to `TM_ENTRY_MAX_CORE`) from this bit.
pub const TM_ENTRY_CORE_SHIFT: u32 = 3;
/// Other entry word: the word (0 to `TM_ENTRY_MAX_WORD`) from this bit.
pub const TM_ENTRY_WORD_SHIFT: u32 = 6;
/// The largest syscall number of an entry word.
pub const TM_ENTRY_MAX_SYSCALL: u32 = 0xf;
/// The largest cap type of an entry word.
pub const TM_ENTRY_MAX_CAP_TYPE: u32 = 0x1f;
/// The largest invocation label of an entry word.
pub const TM_ENTRY_MAX_LABEL: u32 = 0x7_ffff;
/// The largest core of an entry word.
pub const TM_ENTRY_MAX_CORE: u32 = 7;
/// The largest word of a non-syscall entry word.
pub const TM_ENTRY_MAX_WORD: u32 = 0x3ff_ffff;

// Every constant the header gives as a literal is the format crate's value (issue 19,
// point 9): a change there fails the build here, not a C program at run time.
const _: () = {
    use tracemark::format::ring::{ENTRY_STACK_DEPTH, RING_HEADER_LEN};
    use tracemark::format::EntryPath as P;
    assert!(TM_RING_HEADER_LEN as usize == RING_HEADER_LEN);
    assert!(TM_ENTRY_STACK_DEPTH as usize == ENTRY_STACK_DEPTH);
    assert!(TM_MODE_OVERWRITE == Mode::Overwrite as u32);
    assert!(TM_MODE_DROP == Mode::Drop as u32);
    assert!(TM_ABI_RAW == SyscallAbi::Raw as u32);
    assert!(TM_ABI_SEL4 == SyscallAbi::Sel4 as u32);
    assert!(TM_ABI_SEL4_MCS == SyscallAbi::Sel4Mcs as u32);
    // The legacy settings are this library's own, not wire values: they must not be
    // taken for one.
    assert!(SyscallAbi::from_u8(TM_ABI_SEL4_LEGACY as u8).is_none());
    assert!(SyscallAbi::from_u8(TM_ABI_SEL4_LEGACY_MCS as u8).is_none());
    assert!(TM_PATH_UNKNOWN == P::Unknown as u32);
    assert!(TM_PATH_INTERRUPT == P::Interrupt as u32);
    assert!(TM_PATH_UNKNOWN_SYSCALL == P::UnknownSyscall as u32);
    assert!(TM_PATH_USER_LEVEL_FAULT == P::UserLevelFault as u32);
    assert!(TM_PATH_DEBUG_FAULT == P::DebugFault as u32);
    assert!(TM_PATH_VM_FAULT == P::VmFault as u32);
    assert!(TM_PATH_SYSCALL == P::Syscall as u32);
    assert!(TM_PATH_VCPU_FAULT == P::VcpuFault as u32);
    assert!(TM_ENTRY_MAX_SYSCALL == KernelEntry::MAX_SYSCALL);
    assert!(TM_ENTRY_MAX_CAP_TYPE == KernelEntry::MAX_CAP_TYPE);
    assert!(TM_ENTRY_MAX_LABEL == KernelEntry::MAX_LABEL);
    assert!(TM_ENTRY_MAX_CORE == KernelEntry::MAX_CORE);
    assert!(TM_ENTRY_MAX_WORD == KernelEntry::MAX_WORD);
    // Each field at its largest value lands where the shifts say, and nowhere else.
    const fn sys(s: u8, c: u8, f: bool, l: u32) -> u32 {
        KernelEntry::syscall(s, c, f, l).0
    }
    assert!(sys(0, 0, false, 0) == TM_PATH_SYSCALL);
    assert!(sys(0xf, 0, false, 0) == TM_PATH_SYSCALL | 0xf << TM_ENTRY_SYSCALL_SHIFT);
    assert!(sys(0, 0x1f, false, 0) == TM_PATH_SYSCALL | 0x1f << TM_ENTRY_CAP_TYPE_SHIFT);
    assert!(sys(0, 0, true, 0) == TM_PATH_SYSCALL | 1 << TM_ENTRY_FASTPATH_SHIFT);
    assert!(sys(0, 0, false, 0x7_ffff) == TM_PATH_SYSCALL | 0x7_ffff << TM_ENTRY_LABEL_SHIFT);
    let other = KernelEntry::other(P::VmFault, 7, 0x3ff_ffff).0;
    assert!(
        other == TM_PATH_VM_FAULT | 7 << TM_ENTRY_CORE_SHIFT | 0x3ff_ffff << TM_ENTRY_WORD_SHIFT
    );
    assert!(KernelEntry::other(P::VmFault, 0, 0).0 & TM_ENTRY_PATH_MASK == TM_PATH_VM_FAULT);
};

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

/// A clock: returns the current time in ticks of `tm_config.clock_hz`. Called at every
/// record, from every context that records; should be monotonic on its CPU (a step back
/// is recorded as a CLOCKBACK record). Mark it `__attribute__((no_instrument_function))`
/// when compiling with `-finstrument-functions`: otherwise every hook call re-enters the
/// hooks through it, and those calls are skipped and counted by `tm_hook_skipped`.
pub type TmClockFn = Option<extern "C" fn() -> u64>;

/// How to set up one CPU's ring (`tm_init`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TmConfig {
    /// Bytes per block: a power of two from 256 to 65536; 0 for `TM_DEFAULT_BLOCK_SIZE`.
    pub block_size: u32,
    /// `TM_MODE_OVERWRITE` or `TM_MODE_DROP`.
    pub mode: u32,
    /// The clock (required).
    pub clock: TmClockFn,
    /// The clock's frequency in Hz, written into the ring header (0 if unknown).
    pub clock_hz: u64,
    /// A producer or build id the host shows.
    pub producer_id: u64,
    /// `TM_ABI_RAW`, `TM_ABI_SEL4`, `TM_ABI_SEL4_MCS`, `TM_ABI_SEL4_LEGACY` or
    /// `TM_ABI_SEL4_LEGACY_MCS`.
    pub syscall_abi: u32,
}

/// Receives dump bytes: `len` bytes at `data`. Returns 0 to continue, non-zero to stop.
pub type TmSinkFn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, data: *const u8, len: usize) -> c_int>;

/// A sink as the dump calls take it once checked non-NULL (a [`TmSinkFn`] that is `Some`;
/// `TmSinkFn` spells the type out for cbindgen).
type Sink = unsafe extern "C" fn(ctx: *mut c_void, data: *const u8, len: usize) -> c_int;

/// Hands `bytes` to `sink`: `Ok` when it returns 0 (go on), `Err` when it asks to stop.
///
/// # Safety
///
/// `sink` must be safe to call with `ctx` and a valid buffer.
unsafe fn feed(sink: Sink, ctx: *mut c_void, bytes: &[u8]) -> Result<(), ()> {
    // SAFETY: `bytes` is a valid buffer for the call; the caller vouches for `sink` and
    // `ctx`.
    match unsafe { sink(ctx, bytes.as_ptr(), bytes.len()) } {
        0 => Ok(()),
        _ => Err(()),
    }
}

/// What a dump through a sink returns: `TM_OK`, or `TM_ERR_SINK` if the sink stopped it.
fn sink_result(r: Result<(), ()>) -> c_int {
    match r {
        Ok(()) => TM_OK,
        Err(()) => TM_ERR_SINK,
    }
}

/// Sends `len` bytes, read by `read`, to `sink` as a UART dump (FORMAT.md section 17):
/// the framing behind [`tm_dump_uart`] and [`tm_frame_uart`]. `TM_OK`, or
/// `TM_ERR_SINK` once `sink` returns non-zero.
///
/// # Safety
///
/// `sink` must be safe to call with `ctx` and a valid buffer.
unsafe fn frame_to_sink(
    dump_id: u32,
    len: usize,
    read: impl FnMut(usize, &mut [u8]),
    sink: Sink,
    ctx: *mut c_void,
) -> c_int {
    sink_result(tracemark::format::uart::write_framed_with(
        dump_id,
        len,
        0,
        read,
        // SAFETY: the caller vouches for `sink` and `ctx`.
        &mut |line: &[u8]| unsafe { feed(sink, ctx, line) },
    ))
}

/// Returns the number of the CPU the caller runs on (for the `-finstrument-functions` hooks).
/// Mark it `__attribute__((no_instrument_function))`, as the clock (see `tm_clock_fn`).
pub type TmCpuFn = Option<extern "C" fn() -> u32>;

// ---------------------------------------------------------------------------------------
// The tracer table
// ---------------------------------------------------------------------------------------

/// The slot holds nothing.
const FREE: u8 = 0;
/// `tm_init` or `tm_release` is working on the slot.
const BUSY: u8 = 1;
/// The slot holds an initialised tracer.
const READY: u8 = 2;

struct Slot {
    // INVARIANTS: `tracer` is initialised exactly while `state == READY`. Only the context
    // that moved `state` from FREE (tm_init) or from READY (tm_release) to BUSY writes or
    // drops `tracer`; everybody else only takes `&CTracer` after an Acquire load of READY.
    state: AtomicU8,
    /// The [`Sel4EntryNumbering`] of `tm_kernel_entry_raw` (0 current, 1 legacy), set
    /// before `state` becomes READY.
    numbering: AtomicU8,
    tracer: UnsafeCell<MaybeUninit<CTracer>>,
}

// SAFETY: `tracer` is written only by the one context that won the FREE -> BUSY (or
// READY -> BUSY) compare-and-swap, and published with a Release store of READY; readers
// take only shared references after an Acquire load of READY, and `Tracer` is `Sync`
// (its methods take `&self` and are designed for concurrent nested writers and remote
// readers). Dropping it in `tm_release` while others still use it is excluded by
// `tm_release`'s documented contract.
unsafe impl Sync for Slot {}

#[allow(clippy::declare_interior_mutable_const)] // used only to initialise the table
const EMPTY_SLOT: Slot = Slot {
    state: AtomicU8::new(FREE),
    numbering: AtomicU8::new(0),
    tracer: UnsafeCell::new(MaybeUninit::uninit()),
};

static TRACERS: [Slot; TM_MAX_CPUS as usize] = [EMPTY_SLOT; TM_MAX_CPUS as usize];

/// The tracer of `cpu`, or the error code to return.
#[inline(always)]
fn tracer(cpu: u32) -> Result<&'static CTracer, c_int> {
    let slot = TRACERS.get(cpu as usize).ok_or(TM_ERR_BAD_CPU)?;
    if slot.state.load(Ordering::Acquire) != READY {
        return Err(TM_ERR_NOT_INIT);
    }
    // SAFETY: `state == READY` (Acquire, pairing with the Release in `tm_init`) means
    // `tracer` is initialised and stays so until `tm_release`, which by contract does not
    // run concurrently with users of the slot. Only shared references are created.
    Ok(unsafe { (*slot.tracer.get()).assume_init_ref() })
}

/// `err`, unless `cpu` itself is wrong (then that error: it is the first thing to fix).
#[cold]
fn checked_cpu(cpu: u32, err: c_int) -> c_int {
    match tracer(cpu) {
        Ok(_) => err,
        Err(e) => e,
    }
}

#[inline(always)]
fn outcome(o: Outcome) -> c_int {
    match o {
        Outcome::Written => TM_OK,
        Outcome::Dropped => TM_DROPPED,
    }
}

#[inline(always)]
fn with(cpu: u32, f: impl FnOnce(&CTracer) -> Outcome) -> c_int {
    match tracer(cpu) {
        Ok(t) => outcome(f(t)),
        Err(e) => e,
    }
}

/// The ring header's ABI and the entry-path numbering of a `tm_config.syscall_abi`:
/// only the `TM_ABI_*` values the header lists (the format crate knows more ABIs, such
/// as the Linux numbering `tracemark import` writes, which a C kernel has no use for).
fn abi_setting(v: u32) -> Option<(SyscallAbi, Sel4EntryNumbering)> {
    use Sel4EntryNumbering::{Current, Legacy};
    Some(match v {
        TM_ABI_RAW => (SyscallAbi::Raw, Current),
        TM_ABI_SEL4 => (SyscallAbi::Sel4, Current),
        TM_ABI_SEL4_MCS => (SyscallAbi::Sel4Mcs, Current),
        TM_ABI_SEL4_LEGACY => (SyscallAbi::Sel4, Legacy),
        TM_ABI_SEL4_LEGACY_MCS => (SyscallAbi::Sel4Mcs, Legacy),
        _ => return None,
    })
}

fn init_error(e: InitError) -> c_int {
    match e {
        InitError::Misaligned => TM_ERR_MISALIGNED,
        InitError::TooSmall { .. } => TM_ERR_TOO_SMALL,
        InitError::BadBlockSize => TM_ERR_BAD_BLOCK_SIZE,
        InitError::InUse => TM_ERR_IN_USE,
        InitError::PreviousSession => TM_ERR_PREVIOUS,
    }
}

/// Initialises CPU `cpu`'s ring in `len` bytes at `mem` and claims it.
///
/// Returns `TM_OK`, `TM_ERR_BAD_CPU`, `TM_ERR_IN_USE` (the slot is initialised, the
/// memory holds a ring another session owns, or it overlaps a ring in use),
/// `TM_ERR_PREVIOUS` (the memory holds an earlier boot's ring: see `tm_init_recover`), `TM_ERR_MISALIGNED`, `TM_ERR_TOO_SMALL`,
/// `TM_ERR_BAD_BLOCK_SIZE` or `TM_ERR_BAD_ARG`.
///
/// # Safety
///
/// `mem` must be valid for reads and writes of `len` bytes, and nothing else may read or
/// write that memory through other means than this library (of which the inline writer
/// of `tracemark_inline.h` is part) until `tm_release(cpu)` returns (a debugger or
/// another core reading it is fine). `config` must point to a
/// valid `tm_config` (it is only read during the call).
#[no_mangle]
pub unsafe extern "C" fn tm_init(
    cpu: u32,
    mem: *mut c_void,
    len: usize,
    config: *const TmConfig,
) -> c_int {
    // SAFETY: the caller's guarantees are `init_with`'s.
    unsafe { init_with(cpu, mem, len, config, tracemark::Tracer::new) }
}

/// Like `tm_init`, for ring memory that survives a reset (a `.noinit` section): if `mem`
/// holds a valid ring that a session left there (an earlier boot's) and no ring of this
/// program uses, `sink` receives its bytes (header and blocks, in chunks of at most 256
/// bytes: a ring image `tracemark` decodes) before a new session starts in the same
/// memory. `sink` may be NULL to discard the old records.
///
/// Returns `TM_OK` (no earlier ring: a new session started), `TM_RECOVERED` (the earlier
/// ring went to the sink, a new session started), `TM_ERR_SINK` (the sink returned
/// non-zero: nothing started, the memory is untouched), or `tm_init`'s errors.
///
/// # Safety
///
/// As `tm_init`; `sink` must be safe to call with `ctx` and a valid buffer.
#[no_mangle]
pub unsafe extern "C" fn tm_init_recover(
    cpu: u32,
    mem: *mut c_void,
    len: usize,
    config: *const TmConfig,
    sink: TmSinkFn,
    ctx: *mut c_void,
) -> c_int {
    let mut found = false;
    let mut sink_failed = false;
    let make = |memory: &'static mut [u8], config: &Config, clock: FnClock| {
        tracemark::Tracer::recover(memory, config, clock, |old: &[u8]| {
            found = true;
            let Some(sink) = sink else { return true };
            for chunk in old.chunks(256) {
                // SAFETY: the caller vouches for `sink` and `ctx`.
                if unsafe { feed(sink, ctx, chunk) }.is_err() {
                    sink_failed = true;
                    return false;
                }
            }
            true
        })
    };
    // SAFETY: the caller's guarantees are `init_with`'s.
    let rc = hooks_quiet(|| unsafe { init_with(cpu, mem, len, config, make) });
    match rc {
        TM_ERR_PREVIOUS if sink_failed => TM_ERR_SINK,
        TM_OK if found => TM_RECOVERED,
        rc => rc,
    }
}

/// `tm_init` with `make` setting up the tracer in the checked memory.
///
/// # Safety
///
/// As `tm_init`.
unsafe fn init_with(
    cpu: u32,
    mem: *mut c_void,
    len: usize,
    config: *const TmConfig,
    make: impl FnOnce(&'static mut [u8], &Config, FnClock) -> Result<CTracer, InitError>,
) -> c_int {
    let Some(slot) = TRACERS.get(cpu as usize) else {
        return TM_ERR_BAD_CPU;
    };
    if mem.is_null() || config.is_null() {
        return TM_ERR_BAD_ARG;
    }
    // SAFETY: the caller guarantees `config` points to a valid `tm_config`; it is `Copy`.
    let c = unsafe { *config };
    let (Some(clock), Some(mode), Some((abi, numbering))) = (
        c.clock,
        u8::try_from(c.mode).ok().and_then(Mode::from_u8),
        abi_setting(c.syscall_abi),
    ) else {
        return TM_ERR_BAD_ARG;
    };
    if slot
        .state
        .compare_exchange(FREE, BUSY, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return TM_ERR_IN_USE;
    }
    // SAFETY: the caller guarantees `mem` is valid for `len` bytes and reserved for this
    // library until `tm_release`; the tracer stored below is dropped there, so the
    // `'static` borrow never outlives the caller's promise.
    let memory: &'static mut [u8] = unsafe { core::slice::from_raw_parts_mut(mem.cast(), len) };
    let config = Config {
        block_size: if c.block_size == 0 {
            TM_DEFAULT_BLOCK_SIZE
        } else {
            c.block_size
        },
        mode,
        clock_hz: c.clock_hz,
        cpu_id: cpu,
        producer_id: c.producer_id,
        syscall_abi: abi,
    };
    match make(memory, &config, FnClock(clock)) {
        Ok(t) => {
            // SAFETY: we moved `state` FREE -> BUSY, so no one else touches `tracer`
            // (Slot invariant); it is uninitialised (state was FREE).
            unsafe { (*slot.tracer.get()).write(t) };
            slot.numbering.store(numbering as u8, Ordering::Relaxed);
            slot.state.store(READY, Ordering::Release);
            TM_OK
        }
        Err(e) => {
            slot.state.store(FREE, Ordering::Release);
            init_error(e)
        }
    }
}

/// Releases CPU `cpu`'s ring: its memory is no longer used by the library (its contents
/// stay, and decode) and the slot may be initialised again.
///
/// Returns `TM_OK`, `TM_ERR_BAD_CPU` or `TM_ERR_NOT_INIT`.
///
/// # Safety
///
/// No context (interrupt, other CPU, signal handler) may be recording into, dumping or
/// reading this slot while `tm_release` runs.
#[no_mangle]
pub unsafe extern "C" fn tm_release(cpu: u32) -> c_int {
    let Some(slot) = TRACERS.get(cpu as usize) else {
        return TM_ERR_BAD_CPU;
    };
    if slot
        .state
        .compare_exchange(READY, BUSY, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return TM_ERR_NOT_INIT;
    }
    // SAFETY: we moved `state` READY -> BUSY, so the tracer is initialised and, by the
    // caller's contract, no one else uses it; it is dropped exactly once (the slot becomes
    // FREE, i.e. uninitialised, below).
    unsafe { (*slot.tracer.get()).assume_init_drop() };
    slot.state.store(FREE, Ordering::Release);
    TM_OK
}

// ---------------------------------------------------------------------------------------
// Recording
// ---------------------------------------------------------------------------------------

/// Records a syscall kernel entry with seL4's fields and remembers its time for
/// `tm_kernel_exit`: the syscall number as seL4 stores it (`-syscall`, 0 to 15), the cap
/// type (`cap_tag_t`, 0 to 31), the fastpath flag and the invocation label (0 to
/// 2^19 - 1). A field out of its range returns `TM_ERR_RANGE` and records nothing (pass
/// seL4's negative `syscall_t` negated).
#[no_mangle]
pub extern "C" fn tm_kernel_entry_syscall(
    cpu: u32,
    syscall: u32,
    cap_type: u32,
    fastpath: bool,
    label: u32,
) -> c_int {
    match KernelEntry::try_syscall(syscall, cap_type, fastpath, label) {
        Ok(entry) => with(cpu, |t| t.kernel_entry(entry)),
        Err(_) => checked_cpu(cpu, TM_ERR_RANGE),
    }
}

/// Records any other kernel entry: `path` is a `TM_PATH_*` value other than
/// `TM_PATH_SYSCALL`, `core` the core that took it (0 to 7), `word` the IRQ number, fault
/// type or other word (0 to 2^26 - 1). Anything out of range returns `TM_ERR_RANGE` and
/// records nothing.
#[no_mangle]
pub extern "C" fn tm_kernel_entry_other(cpu: u32, path: u32, core: u32, word: u32) -> c_int {
    match KernelEntry::try_other(path, core, word) {
        Ok(entry) => with(cpu, |t| t.kernel_entry(entry)),
        Err(_) => checked_cpu(cpu, TM_ERR_RANGE),
    }
}

/// Records a kernel entry from seL4's own `kernel_entry_t` (as `ksKernelEntry` holds
/// it), given as its first bytes read as a little-endian integer: `tm_sel4_entry_bits(
/// &ksKernelEntry, sizeof ksKernelEntry)`. seL4 packs it as `path:3` in the first byte
/// and the union (`core:3 word:26`, or `syscall_no:4 cap_type:5 is_fastpath:1
/// invocation_tag:19`) from the second (5 bytes on 32-bit, 9 on 64-bit); padding bits
/// are ignored. The path is numbered as the seL4 release `tm_config.syscall_abi` names:
/// `TM_ABI_SEL4`, `TM_ABI_SEL4_MCS` and `TM_ABI_RAW` as the seL4 this project pins
/// (`Entry_Unknown = 0` ... `Entry_Syscall = 6`, `Entry_VCPUFault`/`Entry_VMExit = 7`),
/// `TM_ABI_SEL4_LEGACY*` as releases starting at `Entry_Interrupt = 0`.
#[no_mangle]
pub extern "C" fn tm_kernel_entry_raw(cpu: u32, entry: u64) -> c_int {
    let Some(slot) = TRACERS.get(cpu as usize) else {
        return TM_ERR_BAD_CPU;
    };
    let numbering = match slot.numbering.load(Ordering::Relaxed) {
        0 => Sel4EntryNumbering::Current,
        _ => Sel4EntryNumbering::Legacy,
    };
    let entry = KernelEntry::from_sel4_packed(entry, numbering);
    with(cpu, |t| t.kernel_entry(entry))
}

/// Records a kernel exit; the encoder measures `exit - entry` in clock ticks from the
/// matching kernel entry on this CPU.
#[no_mangle]
pub extern "C" fn tm_kernel_exit(cpu: u32) -> c_int {
    with(cpu, |t| t.kernel_exit())
}

/// Records a kernel entry now whose information is filled in later by
/// `tm_kernel_entry_info` (seL4 fills `ksKernelEntry` only after its entry hook), and
/// remembers its time for `tm_kernel_exit`. Records written in between stay after it in
/// time order; the entry's time is the time of this call.
#[no_mangle]
pub extern "C" fn tm_kernel_entry_deferred(cpu: u32) -> c_int {
    with(cpu, |t| t.kernel_entry_deferred())
}

/// Fills in the pending deferred kernel entry of CPU `cpu` with `word`, tracemark's
/// entry word (FORMAT.md section 9): bits 0..3 the path (`TM_PATH_*`), then for a
/// syscall the syscall number (4 bits), cap type (5), fastpath flag (1) and label (19),
/// for any other path the core (3 bits) and a word (26); see the `TM_ENTRY_*` constants.
/// Build it with `tm_entry_word_syscall` or `tm_entry_word_other`. It is *not* seL4's
/// packed `kernel_entry_t`, whose union starts at bit 8 (`tm_kernel_entry_raw` takes
/// that; passed here it records wrong fields).
///
/// Returns `TM_OK` if the entry now carries `word`; `TM_DROPPED` if the entry was lost
/// (dropped when the ring was full, or its block was overwritten since: `tm_lost` counts
/// it); `TM_ERR_NO_PENDING` if no deferred entry is pending (one is pending per CPU at a
/// time; see `TM_ERR_NO_PENDING`); or `TM_ERR_BAD_CPU`, `TM_ERR_NOT_INIT`.
///
/// Records written by nested contexts (interrupts, signal handlers) between
/// `tm_kernel_entry_deferred` and this call are fine, as long as they do not record a
/// deferred entry of their own.
#[no_mangle]
pub extern "C" fn tm_kernel_entry_info(cpu: u32, word: u32) -> c_int {
    match tracer(cpu) {
        Ok(t) => match t.fill_entry_info(KernelEntry(word)) {
            EntryInfo::Filled => TM_OK,
            EntryInfo::Lost => TM_DROPPED,
            EntryInfo::NotPending => TM_ERR_NO_PENDING,
        },
        Err(e) => e,
    }
}

/// [`tm_kernel_entry_deferred`] for a kernel that records with interrupts masked (seL4):
/// the same record, without what nesting safety costs (see `tracemark::Tracer::masked`).
/// The entry is *held*: its time is taken now, and it is written once, with its word,
/// by [`tm_masked_kernel_exit_deferred`] or [`tm_kernel_entry_info`] (FORMAT.md 9.5).
/// Any other record of this CPU made meanwhile writes the entry first, with the
/// placeholder word, which the information then patches in place. Returns `TM_OK` for a
/// held entry: if there is no room when it is written, the call that writes it reports
/// the drop. A ring dumped while an entry is held does not contain it.
///
/// # Safety
///
/// Until this call returns, nothing else may record into slot `cpu`: interrupts and
/// exceptions that record are masked on that CPU, no other CPU records into the slot, and
/// the call is not made from inside another `tm_*` call on it (a `-finstrument-functions`
/// hook of the caller's tracing code, for example). Breaking this can lose or garble
/// records, not memory.
#[no_mangle]
pub unsafe extern "C" fn tm_masked_kernel_entry_deferred(cpu: u32) -> c_int {
    // SAFETY: the caller's contract is `Tracer::masked`'s.
    with(cpu, |t| unsafe { t.masked() }.kernel_entry_deferred())
}

/// The exit of a deferred kernel entry, in one call, for a kernel that records with
/// interrupts masked (seL4's exit hook): fills in the pending entry with `word` (as
/// [`tm_kernel_entry_info`]), records a thread switch to `next_thread` unless it is 0
/// (as [`tm_thread_switch`]), then the kernel exit (as [`tm_kernel_exit`]). Returns the
/// exit's result.
///
/// # Safety
///
/// As [`tm_masked_kernel_entry_deferred`].
#[no_mangle]
pub unsafe extern "C" fn tm_masked_kernel_exit_deferred(
    cpu: u32,
    word: u32,
    next_thread: u64,
) -> c_int {
    with(cpu, |t| {
        // SAFETY: the caller's contract is `Tracer::masked`'s.
        let m = unsafe { t.masked() };
        m.kernel_exit_deferred(KernelEntry(word), next_thread)
    })
}

/// [`tm_interrupt`] for a kernel that records with interrupts masked.
///
/// # Safety
///
/// As [`tm_masked_kernel_entry_deferred`].
#[no_mangle]
pub unsafe extern "C" fn tm_masked_interrupt(cpu: u32, irq: u32) -> c_int {
    // SAFETY: the caller's contract is `Tracer::masked`'s.
    with(cpu, |t| unsafe { t.masked() }.interrupt(irq))
}

/// Records a thread switch: `thread` (seL4: the TCB address) runs next.
#[no_mangle]
pub extern "C" fn tm_thread_switch(cpu: u32, thread: u64) -> c_int {
    with(cpu, |t| t.thread_switch(thread))
}

/// Records an interrupt.
#[no_mangle]
pub extern "C" fn tm_interrupt(cpu: u32, irq: u32) -> c_int {
    with(cpu, |t| t.interrupt(irq))
}

/// Records a function entry (a compact id or a code address).
#[no_mangle]
pub extern "C" fn tm_function_entry(cpu: u32, func: u64) -> c_int {
    with(cpu, |t| t.function_entry(func))
}

/// Records a function exit.
#[no_mangle]
pub extern "C" fn tm_function_exit(cpu: u32, func: u64) -> c_int {
    with(cpu, |t| t.function_exit(func))
}

/// Records a user event `id` with `len` bytes of `data` (cut to 32 bytes; `data` may be
/// NULL when `len` is 0). NULL `data` with a non-zero `len` returns `TM_ERR_BAD_ARG` and
/// records nothing.
///
/// # Safety
///
/// `data` must be valid for reads of `len` bytes, or `len` must be 0.
#[no_mangle]
pub unsafe extern "C" fn tm_user(cpu: u32, id: u32, data: *const c_void, len: usize) -> c_int {
    let bytes: &[u8] = if len == 0 {
        &[]
    } else if data.is_null() {
        return checked_cpu(cpu, TM_ERR_BAD_ARG);
    } else {
        // SAFETY: the caller guarantees `data` is valid for `len` bytes; we read at most
        // 32 of them and only during this call.
        unsafe {
            core::slice::from_raw_parts(
                data.cast::<u8>(),
                len.min(tracemark::format::record::MAX_USER_PAYLOAD),
            )
        }
    };
    with(cpu, |t| t.user(id, bytes))
}

/// Records that an image (binary, module, mapping) of `size` bytes was loaded at `base`;
/// `id` names it (build id, hash or name id) for symbolisation on the host.
#[no_mangle]
pub extern "C" fn tm_image(cpu: u32, base: u64, size: u64, id: u64) -> c_int {
    with(cpu, |t| t.image(base, size, id))
}

// ---------------------------------------------------------------------------------------
// -finstrument-functions
// ---------------------------------------------------------------------------------------

/// The `TmCpuFn` as a data pointer; null means CPU 0.
static CPU_FN: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());
/// Subtracted from function addresses before they are recorded.
static FUNCTION_BASE: AtomicUsize = AtomicUsize::new(0);

/// Sets the function the `-finstrument-functions` hooks call to learn the current CPU;
/// NULL restores the default (always CPU 0).
#[no_mangle]
pub extern "C" fn tm_set_cpu_fn(f: TmCpuFn) {
    let p = f.map_or(core::ptr::null_mut(), |f| f as *mut ());
    CPU_FN.store(p, Ordering::Release);
}

/// Sets the value subtracted from function addresses recorded by the
/// `-finstrument-functions` hooks (for example the kernel's load address), default 0.
#[no_mangle]
pub extern "C" fn tm_set_function_base(base: usize) {
    FUNCTION_BASE.store(base, Ordering::Relaxed);
}

/// The current CPU as the `-finstrument-functions` hooks see it.
#[no_mangle]
pub extern "C" fn tm_current_cpu() -> u32 {
    current_cpu()
}

#[inline(always)]
fn current_cpu() -> u32 {
    let p = CPU_FN.load(Ordering::Acquire);
    if p.is_null() {
        return 0;
    }
    // SAFETY: a non-null `CPU_FN` was stored by `tm_set_cpu_fn` from a valid `TmCpuFn`;
    // function pointers and data pointers have the same size on every supported target.
    let f = unsafe { core::mem::transmute::<*mut (), extern "C" fn() -> u32>(p) };
    f()
}

#[cfg(feature = "cyg-profile")]
#[inline(always)]
fn function_value(func: *mut c_void) -> u64 {
    (func as usize).wrapping_sub(FUNCTION_BASE.load(Ordering::Relaxed)) as u64
}

/// Hook calls skipped because they re-entered the hooks (see [`tm_hook_skipped`]).
static HOOK_SKIPPED: CountU32 = CountU32::new(0);

/// Returns how many `-finstrument-functions` hook calls recorded nothing, since the
/// program started, and are not counted by a ring: calls that re-entered the hooks (a
/// clock or cpu function compiled with `-finstrument-functions` calls the hooks from
/// inside them: mark those functions `__attribute__((no_instrument_function))`; or an
/// interrupt or signal handler's instrumented code ran while a hook was recording on the
/// same context), calls made while `tm_dump`, `tm_dump_uart` or `tm_init_recover`
/// runs on the same context (an instrumented sink would otherwise
/// record into the ring it is dumping), and calls for which the cpu function returned
/// a CPU not below `TM_MAX_CPUS`. (A CPU without a ring records nothing and is not
/// counted: tracing has not started there.) Non-zero means the trace lacks that many
/// function entries and exits. Wraps at 2^32.
#[no_mangle]
pub extern "C" fn tm_hook_skipped() -> u32 {
    HOOK_SKIPPED.load(Ordering::Relaxed)
}

/// Re-entry guards of the hooks: a hook that finds the guard of its context taken
/// skips and counts itself in [`HOOK_SKIPPED`], instead of recursing through an
/// instrumented clock or cpu function until the stack overflows.
#[cfg(feature = "cyg-profile")]
mod hook_guard {
    use super::{current_cpu, Ordering, HOOK_SKIPPED};

    /// On hosted systems each thread is a context: a thread-local flag covers the cpu
    /// function and the record (with its clock call) exactly.
    #[cfg(not(target_os = "none"))]
    mod imp {
        use core::cell::Cell;

        std::thread_local! {
            static IN_HOOK: Cell<bool> = const { Cell::new(false) };
        }

        /// Runs `f` with the CPU number unless this thread is already in a hook;
        /// returns what `f` returned, or `false` if it did not run.
        #[inline(always)]
        pub(super) fn with_cpu(f: impl FnOnce(u32) -> bool) -> bool {
            // NOTE: `try_with` fails only while the thread's TLS is being torn down;
            // skipping then is right (and counted).
            let entered = IN_HOOK.try_with(|g| !g.replace(true)).unwrap_or(false);
            if !entered {
                return false;
            }
            let recorded = f(super::current_cpu());
            let _ = IN_HOOK.try_with(|g| g.set(false));
            recorded
        }

        /// Runs `f` with this thread's hooks off (their calls skipped and counted).
        pub(crate) fn quiet<R>(f: impl FnOnce() -> R) -> R {
            let took = IN_HOOK.try_with(|g| !g.replace(true)).unwrap_or(false);
            let r = f();
            if took {
                let _ = IN_HOOK.try_with(|g| g.set(false));
            }
            r
        }
    }

    /// On bare metal there is no thread-local storage and the context is the CPU, which
    /// only the (maybe instrumented) cpu function knows. The cpu function's re-entry is
    /// bounded by a global depth (at most one legitimate call per CPU slot can be in
    /// progress at once, so a deeper call is a re-entry); the record, whose clock may
    /// re-enter, is guarded per CPU.
    #[cfg(target_os = "none")]
    mod imp {
        use super::super::{AtomicU8, CountU32, TM_MAX_CPUS};
        use core::sync::atomic::Ordering;

        static CPU_FN_DEPTH: CountU32 = CountU32::new(0);
        #[allow(clippy::declare_interior_mutable_const)] // used only to initialise the table
        const FREE: AtomicU8 = AtomicU8::new(0);
        static IN_HOOK: [AtomicU8; TM_MAX_CPUS as usize] = [FREE; TM_MAX_CPUS as usize];

        /// The current CPU, unless the cpu function re-entered itself.
        #[inline(always)]
        fn cpu() -> Option<u32> {
            let depth = CPU_FN_DEPTH.fetch_add(1, Ordering::Acquire);
            let cpu = (depth < TM_MAX_CPUS).then(super::current_cpu);
            CPU_FN_DEPTH.fetch_sub(1, Ordering::Release);
            cpu
        }

        #[inline(always)]
        pub(super) fn with_cpu(f: impl FnOnce(u32) -> bool) -> bool {
            let Some(cpu) = cpu() else { return false };
            let Some(flag) = IN_HOOK.get(cpu as usize) else {
                // A bad CPU number: the record fails (and is counted), nothing to guard.
                return f(cpu);
            };
            if flag.swap(1, Ordering::Acquire) != 0 {
                return false;
            }
            let recorded = f(cpu);
            flag.store(0, Ordering::Release);
            recorded
        }

        /// Runs `f` with the current CPU's hooks off (their calls skipped and counted).
        pub(crate) fn quiet<R>(f: impl FnOnce() -> R) -> R {
            let flag = cpu().and_then(|cpu| IN_HOOK.get(cpu as usize));
            let took = flag.is_some_and(|flag| flag.swap(1, Ordering::Acquire) == 0);
            let r = f();
            if let (true, Some(flag)) = (took, flag) {
                flag.store(0, Ordering::Release);
            }
            r
        }
    }

    pub(crate) use imp::quiet;

    /// Records with `f` on the current CPU (`f` returns whether the call counts as
    /// made), or counts a skipped hook call.
    #[inline(always)]
    pub(crate) fn guarded(f: impl FnOnce(u32) -> bool) {
        if !imp::with_cpu(f) {
            HOOK_SKIPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Runs `f` (a dump or a recovery calling the caller's sink) with the hooks of the
/// current context off: an instrumented sink must not record into the ring it reads.
#[inline(always)]
fn hooks_quiet<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(feature = "cyg-profile")]
    return hook_guard::quiet(f);
    #[cfg(not(feature = "cyg-profile"))]
    f()
}

/// Whether a hook's recording call counts as made: anything but a CPU number out of the
/// table (a ring that is full counts its drops itself; a CPU without a ring has not
/// started tracing).
#[cfg(feature = "cyg-profile")]
#[inline(always)]
fn hook_counted(rc: c_int) -> bool {
    rc != TM_ERR_BAD_CPU
}

/// Called by code compiled with `-finstrument-functions` at every function entry.
#[cfg(feature = "cyg-profile")]
#[no_mangle]
pub extern "C" fn __cyg_profile_func_enter(func: *mut c_void, call_site: *mut c_void) {
    let _ = call_site;
    hook_guard::guarded(|cpu| hook_counted(tm_function_entry(cpu, function_value(func))));
}

/// Called by code compiled with `-finstrument-functions` at every function exit.
#[cfg(feature = "cyg-profile")]
#[no_mangle]
pub extern "C" fn __cyg_profile_func_exit(func: *mut c_void, call_site: *mut c_void) {
    let _ = call_site;
    hook_guard::guarded(|cpu| hook_counted(tm_function_exit(cpu, function_value(func))));
}

// ---------------------------------------------------------------------------------------
// Reading and dumping
// ---------------------------------------------------------------------------------------

/// Stores the address and length of CPU `cpu`'s ring memory (header and blocks) in
/// `*ptr` and `*len`, for a debugger or a crash-dump routine that saves it raw.
///
/// # Safety
///
/// `ptr` and `len` must be valid for writes.
#[no_mangle]
pub unsafe extern "C" fn tm_memory_span(
    cpu: u32,
    ptr: *mut *const c_void,
    len: *mut usize,
) -> c_int {
    let t = match tracer(cpu) {
        Ok(t) => t,
        Err(e) => return e,
    };
    if ptr.is_null() || len.is_null() {
        return TM_ERR_BAD_ARG;
    }
    let (p, n) = t.ring().memory_span();
    // SAFETY: the caller guarantees both pointers are valid for writes (checked non-null).
    unsafe {
        *ptr = p.cast();
        *len = n;
    }
    TM_OK
}

/// Stores the records lost so far on CPU `cpu`: overwritten with reclaimed blocks
/// (overwrite mode) and dropped (drop mode). Either pointer may be NULL.
///
/// # Safety
///
/// Non-null pointers must be valid for writes.
#[no_mangle]
pub unsafe extern "C" fn tm_lost(cpu: u32, overwritten: *mut u64, dropped: *mut u64) -> c_int {
    let t = match tracer(cpu) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let (o, d) = t.ring().lost();
    // SAFETY: the caller guarantees non-null pointers are valid for writes.
    unsafe {
        if !overwritten.is_null() {
            *overwritten = o;
        }
        if !dropped.is_null() {
            *dropped = d;
        }
    }
    TM_OK
}

/// Returns 1 if a writer on CPU `cpu` is in the middle of a record (so a caller running
/// in an interrupt or signal handler knows it preempted one), 0 if not, or an error code.
#[no_mangle]
pub extern "C" fn tm_in_record(cpu: u32) -> c_int {
    let t = match tracer(cpu) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let (p, _) = t.ring().memory_span();
    // SAFETY: the ring memory is 8-byte aligned and at least a header long while the slot
    // is READY, so `p + NEST` is a valid, aligned 32-bit word of it; the encoder accesses
    // it only atomically, and this is an atomic load.
    let nest = unsafe { AtomicU32::from_ptr(p.add(offsets::NEST).cast::<u32>().cast_mut()) };
    c_int::from(nest.load(Ordering::Relaxed) != 0)
}

/// Calls `sink` with CPU `cpu`'s raw ring bytes (header and blocks, in chunks of at most
/// 256 bytes). The concatenation is a ring image `tracemark` decodes: the whole ring, or,
/// while the ring has not been round its blocks, only up to its last written byte
/// (FORMAT.md 7.3). Meant for a stopped or quiet ring; while the CPU records, use
/// `tm_snapshot`.
///
/// Returns `TM_OK`, `TM_ERR_SINK` if the sink returned non-zero, or an error code.
///
/// # Safety
///
/// `sink` must be safe to call with `ctx` and a valid buffer.
#[no_mangle]
pub unsafe extern "C" fn tm_dump(cpu: u32, sink: TmSinkFn, ctx: *mut c_void) -> c_int {
    let t = match tracer(cpu) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let Some(sink) = sink else {
        return TM_ERR_BAD_ARG;
    };
    sink_result(hooks_quiet(|| {
        t.ring().dump(|chunk| {
            // SAFETY: the caller vouches for `sink` and `ctx`.
            unsafe { feed(sink, ctx, chunk) }
        })
    }))
}

/// Calls `sink` with CPU `cpu`'s ring framed as printable text lines (`@TM:...`, each
/// ending in `\n`, with per-line CRCs) for a console that also carries log lines;
/// `tracemark extract` recovers the ring image from the captured log. `dump_id` names
/// the dump (for example a boot counter and the CPU number). Sends the bytes `tm_dump`
/// sends: only the used part of a ring not yet round its blocks.
///
/// Returns `TM_OK`, `TM_ERR_SINK` if the sink returned non-zero, or an error code.
///
/// # Safety
///
/// `sink` must be safe to call with `ctx` and a valid buffer.
#[no_mangle]
pub unsafe extern "C" fn tm_dump_uart(
    cpu: u32,
    dump_id: u32,
    sink: TmSinkFn,
    ctx: *mut c_void,
) -> c_int {
    let t = match tracer(cpu) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let Some(sink) = sink else {
        return TM_ERR_BAD_ARG;
    };
    let ring = t.ring();
    hooks_quiet(|| {
        // SAFETY: the caller vouches for `sink` and `ctx`.
        unsafe {
            frame_to_sink(
                dump_id,
                ring.used_len(),
                |offset, buf| ring.read_at(offset, buf),
                sink,
                ctx,
            )
        }
    })
}

/// Copies a consistent image of CPU `cpu`'s ring into `out` (capacity `cap` bytes) while
/// the CPU may still be recording, and stores its length in `*len`.
///
/// Returns `TM_OK`, `TM_ERR_TOO_SMALL` (then `*len` is the size needed), `TM_ERR_BUSY`,
/// or an error code. `out` may be NULL when `cap` is 0, to ask for the size:
/// `tm_snapshot(cpu, NULL, 0, &len)` returns `TM_ERR_TOO_SMALL` with `len` set.
///
/// # Safety
///
/// `out` must be valid for writes of `cap` bytes (or `cap` must be 0) and `len` valid
/// for a write.
#[no_mangle]
pub unsafe extern "C" fn tm_snapshot(cpu: u32, out: *mut u8, cap: usize, len: *mut usize) -> c_int {
    let t = match tracer(cpu) {
        Ok(t) => t,
        Err(e) => return e,
    };
    if len.is_null() || (out.is_null() && cap != 0) {
        return TM_ERR_BAD_ARG;
    }
    let out: &mut [u8] = if cap == 0 {
        &mut []
    } else {
        // SAFETY: the caller guarantees `out` is valid for writes of `cap` bytes, and it
        // is not ring memory (the ring's memory is reserved for this library).
        unsafe { core::slice::from_raw_parts_mut(out, cap) }
    };
    let r = t.ring().snapshot(out, 16);
    // SAFETY: the caller guarantees `len` is valid for a write (checked non-null).
    unsafe {
        match r {
            Ok(n) => {
                *len = n;
                TM_OK
            }
            Err(tracemark::SnapshotError::BufferTooSmall { needed }) => {
                *len = needed;
                TM_ERR_TOO_SMALL
            }
            Err(tracemark::SnapshotError::Busy) => TM_ERR_BUSY,
        }
    }
}

/// Bytes of this library's static state per CPU slot (beyond the ring memory itself).
#[no_mangle]
pub extern "C" fn tm_slot_size() -> usize {
    core::mem::size_of::<Slot>()
}

// ---------------------------------------------------------------------------------------
// Bare metal
// ---------------------------------------------------------------------------------------

/// Loops forever: no panic is reachable from the C ABI, but a `no_std` static library
/// needs a handler. Enabled by the `panic-handler` feature, for bare-metal builds of the
/// static library only (a Rust firmware linking the rlib brings its own).
#[cfg(all(target_os = "none", feature = "panic-handler"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

// ---------------------------------------------------------------------------------------
// Thread names (format version 3)
// ---------------------------------------------------------------------------------------

/// The first `len` bytes at `name` (at most 32), or `None` for NULL with a non-zero `len`.
///
/// # Safety
///
/// `name` must be valid for reads of `len` bytes, or `len` must be 0.
unsafe fn name_bytes<'n>(name: *const core::ffi::c_char, len: usize) -> Option<&'n [u8]> {
    if len == 0 {
        Some(&[])
    } else if name.is_null() {
        None
    } else {
        // SAFETY: the caller guarantees `name` is valid for `len` bytes; we read at most
        // 32 of them and only during the call that borrowed them.
        Some(unsafe {
            core::slice::from_raw_parts(
                name.cast::<u8>(),
                len.min(tracemark::format::record::MAX_USER_PAYLOAD),
            )
        })
    }
}

/// Names thread `thread` (the id `tm_thread_switch` records for it): its priority `prio`
/// and `len` bytes of `name` (cut to 32; not NUL-terminated, `name` may be NULL when
/// `len` is 0). Call it when the thread is created. NULL `name` with a non-zero `len`
/// returns `TM_ERR_BAD_ARG` and records nothing.
///
/// # Safety
///
/// `name` must be valid for reads of `len` bytes, or `len` must be 0.
#[no_mangle]
pub unsafe extern "C" fn tm_thread_name(
    cpu: u32,
    thread: u64,
    name: *const core::ffi::c_char,
    len: usize,
    prio: u32,
) -> c_int {
    // SAFETY: the caller's contract.
    let Some(name) = (unsafe { name_bytes(name, len) }) else {
        return checked_cpu(cpu, TM_ERR_BAD_ARG);
    };
    with(cpu, |t| t.thread_name(thread, prio, name))
}

/// Records a switch to `thread`, then names it (as `tm_thread_name`) in the same block if
/// it was not named there yet. `*named_in` is the thread's stamp, kept per thread by the
/// caller (0 at creation; FreeRTOS: the TCB's `uxTaskNumber`) and updated by this call;
/// see FORMAT.md section 8.4.1. NULL `named_in`, or NULL `name` with a non-zero `len`,
/// returns `TM_ERR_BAD_ARG` and records nothing.
///
/// # Safety
///
/// `name` must be valid for reads of `len` bytes (or `len` 0), and `named_in` valid for
/// reads and writes of a `uint32_t`, not accessed by another writer during the call.
#[no_mangle]
pub unsafe extern "C" fn tm_thread_switch_named(
    cpu: u32,
    thread: u64,
    name: *const core::ffi::c_char,
    len: usize,
    prio: u32,
    named_in: *mut u32,
) -> c_int {
    // SAFETY: the caller's contract.
    let Some(name) = (unsafe { name_bytes(name, len) }) else {
        return checked_cpu(cpu, TM_ERR_BAD_ARG);
    };
    if named_in.is_null() {
        return checked_cpu(cpu, TM_ERR_BAD_ARG);
    }
    // SAFETY: non-null, and the caller guarantees it is valid and not shared during the
    // call; the reference lives only for this call.
    let named_in = unsafe { &mut *named_in };
    with(cpu, |t| t.thread_switch_named(thread, prio, name, named_in))
}

// ---------------------------------------------------------------------------------------
// Shipping a ring image taken elsewhere (seL4_TracemarkSnapshot)
// ---------------------------------------------------------------------------------------

/// Calls `sink` with the *used part* (FORMAT.md 7.3) of the ring image at `image`
/// (`len` bytes: a snapshot another component took, such as the one seL4's
/// `seL4_TracemarkSnapshot` writes into a frame) framed as `tm_dump_uart` frames a ring:
/// printable `@TM:` lines with CRCs, named `dump_id`. Needs no `tm_init`: the image is
/// only read. A ring not yet round its blocks goes out up to its last written byte
/// (`RingView::dump_len`, the rule of `tm_dump_uart`), a wrapped one whole.
///
/// Returns `TM_OK`, `TM_ERR_SINK` if the sink returned non-zero, or `TM_ERR_BAD_ARG` if
/// `image` is NULL, `sink` is NULL, or the bytes do not start with a ring header this
/// library can read.
///
/// # Safety
///
/// `image` must be valid for reads of `len` bytes, not written during the call, and
/// `sink` safe to call with `ctx` and a valid buffer.
#[no_mangle]
pub unsafe extern "C" fn tm_frame_uart(
    image: *const u8,
    len: usize,
    dump_id: u32,
    sink: TmSinkFn,
    ctx: *mut c_void,
) -> c_int {
    let Some(sink) = sink else {
        return TM_ERR_BAD_ARG;
    };
    if image.is_null() {
        return TM_ERR_BAD_ARG;
    }
    // SAFETY: the caller guarantees `image` is valid for `len` bytes and not written
    // during the call; the slice lives only for this call.
    let image = unsafe { core::slice::from_raw_parts(image, len) };
    let Ok(view) = tracemark::format::ring::RingView::parse(image) else {
        return TM_ERR_BAD_ARG;
    };
    let used = view.dump_len().min(image.len());
    let read = |offset: usize, buf: &mut [u8]| {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = image.get(offset + i).copied().unwrap_or(0);
        }
    };
    // SAFETY: the caller vouches for `sink` and `ctx`.
    unsafe { frame_to_sink(dump_id, used, read, sink, ctx) }
}
