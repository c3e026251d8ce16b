//! Platform pieces for QEMU's `lm3s6965evb` (Cortex-M3).
//!
//! * A monotonic 64-bit tick clock built from SysTick ([`start_tick_clock`],
//!   [`now`], [`TICK_HZ`]).
//! * A hook that runs inside the SysTick exception ([`set_tick_hook`]).
//! * Semihosting host-file output and exit ([`semihosting_write_file`], [`HostFile`],
//!   [`exit`], [`semihosting_elapsed_ns`]).
//! * A polled byte sink for the Stellaris UART0 ([`uart_init`],
//!   [`uart_write`], [`Uart`]).
//!
//! # Priority requirement for the clock
//!
//! [`now`] may be called from thread mode, from the SysTick handler (including
//! the tick hook) and from any other exception handler whose priority is *not
//! higher* (numerically not lower) than SysTick's. At reset every configurable
//! priority is 0, so this holds unless the application raises another
//! handler above SysTick. A handler that could preempt SysTick between
//! exception entry and the wrap-counter increment would see the pending bit
//! already cleared but the counter not yet incremented, i.e. one period less.
//! NMI and HardFault are therefore not supported callers.
//!
//! # Lost wraps
//!
//! Wraps are counted by the SysTick exception, and the pending bit can only
//! remember one. If two wraps happen before the handler runs (interrupts
//! masked for more than a period, a hook that runs longer than a period, or, under
//! QEMU, host scheduling delays), one period is lost and [`now`] can step
//! back by up to one period. Keep the period well above the longest
//! interrupt-masked section. Under QEMU on a loaded 2-core host a 40 µs period
//! (`reload = 499`) lost wraps, while 160 µs (`1_999`) and the default 8 ms
//! ([`DEFAULT_RELOAD`]) did not.

use core::cell::Cell;
use core::fmt;

use cortex_m::peripheral::{syst::SystClkSource, SCB, SYST};
use cortex_m_rt::exception;
use cortex_m_semihosting::{debug, nr, syscall};
use critical_section::Mutex;

// ---------------------------------------------------------------------------
// SysTick clock
// ---------------------------------------------------------------------------

/// Frequency, in Hz, of the clock that [`now`] counts: the core clock
/// (SysTick is configured with `CLKSOURCE = core`).
///
/// QEMU (checked with 7.2) derives the LM3S6965 system clock from the SYSCTL
/// `RCC` register: period = `5 ns * (SYSDIV + 1)`. `RCC` reads `0x078E_3AC0`
/// after reset (`RCC2.USERCC2` clear), SYSDIV = 15, so 80 ns = **12.5 MHz**
/// (not 12 MHz). Measured against the host wall clock (`SYS_ELAPSED`) the demo
/// sees 12.49 MHz over 1 s. The firmware never reprograms `RCC`; doing so would
/// change the rate. The board has no SysTick reference clock in QEMU
/// (`SYST_CALIB` reads `0x8000_0000`, NOREF, and CLKSOURCE is forced to 1), so
/// the core clock is the only choice anyway.
pub const TICK_HZ: u32 = 12_500_000;

/// A reasonable default SysTick reload value: the counter counts
/// `RELOAD + 1 = 100_000` core cycles per wrap, i.e. 125 interrupts per second
/// at [`TICK_HZ`].
pub const DEFAULT_RELOAD: u32 = 99_999;

/// Largest reload value SysTick accepts (24-bit counter).
pub const MAX_RELOAD: u32 = 0x00FF_FFFF;

/// Clock state shared between thread mode and the SysTick handler.
#[derive(Clone, Copy)]
struct ClockState {
    /// Number of SysTick wraps handled so far.
    wraps: u64,
    /// Cycles per wrap, `reload + 1`; 0 while the clock is not started.
    period: u64,
}

static CLOCK: Mutex<Cell<ClockState>> = Mutex::new(Cell::new(ClockState {
    wraps: 0,
    period: 0,
}));

/// Signature of the function run inside the SysTick handler; see
/// [`set_tick_hook`].
pub type TickHook = fn();

static TICK_HOOK: Mutex<Cell<Option<TickHook>>> = Mutex::new(Cell::new(None));

/// Starts the monotonic tick clock.
///
/// Configures SysTick to count core-clock cycles ([`TICK_HZ`]) with the given
/// `reload` value (clamped to `1..=MAX_RELOAD`) and enables its interrupt, so
/// the SysTick exception fires every `reload + 1` cycles. Taking `SYST` by
/// value guarantees nobody else reconfigures the timer afterwards.
///
/// Resets [`now`] to 0. Register a hook with [`set_tick_hook`] before calling
/// this if it must see the first interrupt.
pub fn start_tick_clock(mut syst: SYST, reload: u32) {
    let reload = reload.clamp(1, MAX_RELOAD);
    syst.disable_interrupt();
    syst.disable_counter();
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(reload);
    // Any write clears CVR to 0 (and COUNTFLAG).
    syst.clear_current();
    // Drop a stale pending SysTick so it is not counted as a wrap.
    SCB::clear_pendst();
    critical_section::with(|cs| {
        syst.enable_interrupt();
        syst.enable_counter();
        // After enabling, the counter loads RVR on the next clock edge; until
        // then CVR reads 0, which `now` would take for "end of a period". That
        // first load is not a wrap (no COUNTFLAG, no interrupt). On silicon it
        // takes one cycle; QEMU only does it when its timer callback runs,
        // which can be thousands of instructions later. So wait for it before
        // publishing the clock (the epoch starts at that load).
        while SYST::get_current() == 0 {
            core::hint::spin_loop();
        }
        CLOCK.borrow(cs).set(ClockState {
            wraps: 0,
            period: u64::from(reload) + 1,
        });
    });
}

/// Returns the current time in core-clock ticks ([`TICK_HZ`]) since
/// [`start_tick_clock`], or 0 if the clock was never started.
///
/// The value is `wraps * (reload + 1) + (reload - SYST_CVR)`. It is read in a
/// short critical section so the wrap counter cannot change underneath; a wrap
/// that happened but whose exception has not run yet (we are masking it, or we
/// *are* the SysTick handler and another wrap occurred) is detected through
/// the SysTick pending bit (ICSR.PENDSTSET), in which case the counter is
/// re-read so it is guaranteed to be a post-wrap value. This keeps the result
/// monotonic non-decreasing across all callers allowed by the module-level
/// priority requirement (see also "Lost wraps" in the module docs).
///
/// At the end of a period CVR may read 0 for a while: on silicon for one
/// cycle, on QEMU until its timer callback reloads the counter and pends the
/// exception. That reads as `wraps * period + reload`, the last tick of the
/// period, which is still monotonic.
#[inline]
pub fn now() -> u64 {
    critical_section::with(|cs| {
        let st = CLOCK.borrow(cs).get();
        if st.period == 0 {
            return 0;
        }
        let reload = st.period - 1;
        let mut cvr = u64::from(SYST::get_current());
        let mut wraps = st.wraps;
        if SCB::is_pendst_pending() {
            // A wrap happened that the handler has not accounted for yet. It
            // may have happened after the first CVR read, so read again: this
            // value is certainly from the new period.
            cvr = u64::from(SYST::get_current());
            wraps += 1;
        }
        // CVR <= reload always; `min` guards against a reload change.
        wraps * st.period + (reload - cvr.min(reload))
    })
}

/// Number of SysTick wraps (= SysTick interrupts handled) since
/// [`start_tick_clock`].
pub fn tick_wraps() -> u64 {
    critical_section::with(|cs| CLOCK.borrow(cs).get().wraps)
}

/// Number of clock ticks per SysTick wrap (`reload + 1`), 0 if not started.
pub fn tick_period() -> u64 {
    critical_section::with(|cs| CLOCK.borrow(cs).get().period)
}

/// Registers (or with `None`, removes) a function called from the SysTick
/// exception handler on every wrap, after the wrap counter was incremented
/// (so [`now`] is already consistent inside the hook).
///
/// The hook runs in handler mode with interrupts enabled; it preempts thread
/// mode at arbitrary instruction boundaries. It should be short: if it takes
/// longer than one SysTick period, wraps are merged and lost.
pub fn set_tick_hook(hook: Option<TickHook>) {
    critical_section::with(|cs| TICK_HOOK.borrow(cs).set(hook));
}

#[exception]
fn SysTick() {
    let hook = critical_section::with(|cs| {
        let clock = CLOCK.borrow(cs);
        let mut st = clock.get();
        st.wraps += 1;
        clock.set(st);
        TICK_HOOK.borrow(cs).get()
    });
    if let Some(hook) = hook {
        hook();
    }
}

// ---------------------------------------------------------------------------
// Semihosting
// ---------------------------------------------------------------------------

/// Maximum path length (bytes, without the NUL terminator) accepted by
/// [`semihosting_write_file`].
pub const MAX_PATH_LEN: usize = 255;

/// Errors from [`semihosting_write_file`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SemihostingError {
    /// The path is longer than [`MAX_PATH_LEN`] bytes.
    PathTooLong,
    /// The path contains a NUL byte.
    PathContainsNul,
    /// `SYS_OPEN` failed (host could not create the file).
    Open,
    /// `SYS_WRITE` did not write everything; holds the number of bytes left.
    Write {
        /// Bytes the host reported as not written.
        not_written: usize,
    },
    /// `SYS_CLOSE` failed.
    Close,
}

impl fmt::Display for SemihostingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PathTooLong => write!(f, "path longer than {MAX_PATH_LEN} bytes"),
            Self::PathContainsNul => f.write_str("path contains NUL"),
            Self::Open => f.write_str("SYS_OPEN failed"),
            Self::Write { not_written } => write!(f, "SYS_WRITE left {not_written} bytes"),
            Self::Close => f.write_str("SYS_CLOSE failed"),
        }
    }
}

/// Creates (or truncates) the host file `path` and writes `bytes` to it via
/// semihosting (`SYS_OPEN` mode `"wb"`, `SYS_WRITE`, `SYS_CLOSE`).
///
/// A relative `path` is resolved by the host against the directory QEMU was
/// started in. Requires a semihosting host (QEMU with
/// `-semihosting-config enable=on`); without one, the `BKPT 0xAB` faults.
pub fn semihosting_write_file(path: &str, bytes: &[u8]) -> Result<(), SemihostingError> {
    let mut file = HostFile::create(path)?;
    let written = file.write_all(bytes);
    let closed = file.close();
    written.and(closed)
}

/// A host file opened for writing through semihosting, for output written in
/// pieces (for example a trace ring streamed chunk by chunk).
#[derive(Debug)]
pub struct HostFile {
    /// The semihosting handle from a successful `SYS_OPEN`.
    fd: isize,
}

impl HostFile {
    /// Creates (or truncates) the host file `path` (`SYS_OPEN` mode `"wb"`).
    pub fn create(path: &str) -> Result<Self, SemihostingError> {
        let path = path.as_bytes();
        if path.len() > MAX_PATH_LEN {
            return Err(SemihostingError::PathTooLong);
        }
        if path.contains(&0) {
            return Err(SemihostingError::PathContainsNul);
        }
        // SYS_OPEN wants a NUL-terminated string (QEMU reads up to the NUL).
        let mut cpath = [0u8; MAX_PATH_LEN + 1];
        cpath[..path.len()].copy_from_slice(path);

        // SAFETY: SYS_OPEN takes (pointer to NUL-terminated name, mode, name length
        // without NUL). `cpath` is NUL-terminated (checked length and no interior
        // NUL, rest zero-filled) and lives until the call returns; the host only
        // reads it.
        let fd = unsafe { syscall!(OPEN, cpath.as_ptr(), nr::open::W_TRUNC_BINARY, path.len()) }
            as isize;
        if fd == -1 {
            return Err(SemihostingError::Open);
        }
        Ok(HostFile { fd })
    }

    /// Appends `bytes` to the file (`SYS_WRITE`).
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), SemihostingError> {
        // SAFETY: SYS_WRITE takes (handle, pointer, length); `bytes` is a valid
        // readable slice for the duration of the call and the host only reads it.
        let not_written = unsafe { syscall!(WRITE, self.fd, bytes.as_ptr(), bytes.len()) };
        if not_written != 0 {
            return Err(SemihostingError::Write { not_written });
        }
        Ok(())
    }

    /// Closes the file (`SYS_CLOSE`).
    pub fn close(self) -> Result<(), SemihostingError> {
        // SAFETY: SYS_CLOSE takes (handle); `fd` came from a successful SYS_OPEN
        // and is closed exactly once (`self` is consumed).
        let closed = unsafe { syscall!(CLOSE, self.fd) };
        if closed != 0 {
            return Err(SemihostingError::Close);
        }
        Ok(())
    }
}

/// `SYS_ELAPSED` (semihosting v2): 64-bit host tick count since start.
const SYS_ELAPSED: usize = 0x30;
/// `SYS_TICKFREQ` (semihosting v2): frequency of the `SYS_ELAPSED` ticks.
const SYS_TICKFREQ: usize = 0x31;

/// Host wall-clock time in nanoseconds since QEMU started executing the
/// target, from `SYS_ELAPSED` / `SYS_TICKFREQ`; `None` if the host does not
/// support them.
///
/// Use this (not `SYS_CLOCK`) to relate target time to real time: QEMU
/// implements `SYS_CLOCK` with `clock()`, i.e. QEMU's *CPU* time, which runs
/// slow when the host is loaded.
pub fn semihosting_elapsed_ns() -> Option<u64> {
    // SAFETY: SYS_TICKFREQ takes no argument (r1 = 0) and returns a value.
    let freq = unsafe { cortex_m_semihosting::syscall1(SYS_TICKFREQ, 0) } as isize;
    let freq = u64::try_from(freq).ok().filter(|&f| f > 0)?;
    let mut block = [0usize; 2];
    // SAFETY: on 32-bit targets SYS_ELAPSED takes a pointer to two writable
    // words, which the host fills with the low and high halves of the count.
    // `block` is a live, exclusively borrowed local of exactly that size.
    let rc = unsafe { cortex_m_semihosting::syscall1(SYS_ELAPSED, block.as_mut_ptr() as usize) };
    if rc != 0 {
        return None;
    }
    let ticks = (block[0] as u64 & 0xFFFF_FFFF) | ((block[1] as u64) << 32);
    u64::try_from(u128::from(ticks) * 1_000_000_000 / u128::from(freq)).ok()
}

/// `SYS_EXIT_EXTENDED` (semihosting v2); not listed in `cortex_m_semihosting::nr`.
const SYS_EXIT_EXTENDED: usize = 0x20;
/// `ADP_Stopped_ApplicationExit` reason code.
const ADP_STOPPED_APPLICATION_EXIT: usize = 0x20026;

/// Terminates the program via semihosting; QEMU exits with status `code`.
///
/// Uses `SYS_EXIT_EXTENDED` so arbitrary codes reach the host (QEMU supports
/// it for 32-bit ARM). If the host ignores that, falls back to plain
/// `SYS_EXIT` (status 0 for `code == 0`, else 1). Never returns: if no host
/// reacts at all, it spins.
pub fn exit(code: u32) -> ! {
    let block = [ADP_STOPPED_APPLICATION_EXIT, code as usize];
    // SAFETY: SYS_EXIT_EXTENDED takes a pointer to a two-word parameter block
    // (reason, subcode); `block` is valid for the call and only read.
    unsafe { cortex_m_semihosting::syscall(SYS_EXIT_EXTENDED, &block) };
    debug::exit(if code == 0 {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

// ---------------------------------------------------------------------------
// UART0 (Stellaris / PL011-like, as modelled by QEMU)
// ---------------------------------------------------------------------------

const UART0_BASE: usize = 0x4000_C000;
/// Data register.
const UART_DR: usize = UART0_BASE;
/// Flag register.
const UART_FR: usize = UART0_BASE + 0x18;
/// Control register.
const UART_CTL: usize = UART0_BASE + 0x30;
/// FR: transmit FIFO full.
const FR_TXFF: u32 = 1 << 5;
/// CTL: UART enable, transmit enable, receive enable.
const CTL_UARTEN_TXE_RXE: u32 = (1 << 0) | (1 << 8) | (1 << 9);

/// Reads a UART0 register.
fn uart_reg_read(addr: usize) -> u32 {
    // SAFETY: `addr` is one of the word-aligned UART0 register constants above,
    // a memory-mapped device always present on the LM3S6965; reads of DR/FR/CTL
    // have no memory-safety side effects.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

/// Writes a UART0 register.
fn uart_reg_write(addr: usize, value: u32) {
    // SAFETY: as for `uart_reg_read`; writing DR/CTL only affects the UART
    // device, never Rust-visible memory.
    unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
}

/// Enables UART0 for transmission (sets UARTEN/TXE/RXE in `UARTCTL`).
///
/// Enough for QEMU, which does not model clock gating, pin muxing or baud
/// rate. On real silicon you would also enable the UART0 clock in `RCGC1` and
/// route PA0/PA1 in the GPIO block.
pub fn uart_init() {
    uart_reg_write(UART_CTL, uart_reg_read(UART_CTL) | CTL_UARTEN_TXE_RXE);
}

/// Writes `bytes` to UART0, busy-waiting while the transmit FIFO is full.
///
/// Not synchronised: output from an interrupt may interleave with output
/// from thread mode at byte granularity.
pub fn uart_write(bytes: &[u8]) {
    for &b in bytes {
        while uart_reg_read(UART_FR) & FR_TXFF != 0 {}
        uart_reg_write(UART_DR, u32::from(b));
    }
}

/// Zero-sized [`core::fmt::Write`] adapter over [`uart_write`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Uart;

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        uart_write(s.as_bytes());
        Ok(())
    }
}
