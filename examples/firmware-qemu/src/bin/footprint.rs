//! Footprint probe: the encoder's recording paths as separate, non-inlined functions
//! (`fp_*`), so `footprint.sh` can measure their code size and count their instructions
//! in the disassembly, and, run under QEMU with `-icount shift=0` (one instruction per
//! virtual nanosecond, 80 per SysTick tick at 12.5 MHz), how many instructions a call
//! executes.
//!
//! The clock is the cheapest a real target has: one volatile 32-bit load (as reading DWT
//! CYCCNT or a free-running timer would be; volatile, so the compiler cannot fold the
//! value into constants as it would a static nobody stores). Here it reads a static the
//! probe never changes, so every record takes the common path (a delta from the previous
//! record, no timestamp marker); block switches are included, amortised.
//!
//! Prints `footprint: ...` lines on UART0 and exits 0.

#![no_std]
#![no_main]

use core::fmt::Write as _;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::SYST;
use cortex_m_rt::entry;
use firmware_qemu::platform::{self, Uart};
use tracemark::{Clock, Config, KernelEntry, Mode, Outcome, RingMemory, Tracer};

/// The time source: one load from memory, like a memory-mapped cycle counter.
static TIME: AtomicU32 = AtomicU32::new(1000);

/// A 32-bit counter clock.
pub struct CounterClock;

impl Clock for CounterClock {
    #[inline(always)]
    fn now(&self) -> u64 {
        // SAFETY: `TIME` is a valid, aligned, initialised `u32` static (an atomic's
        // storage has the layout of its integer), only ever read.
        u64::from(unsafe { core::ptr::read_volatile(TIME.as_ptr()) })
    }
}

/// The tracer type whose paths are measured.
pub type FpTracer = Tracer<'static, CounterClock>;

/// Records a syscall kernel entry (the seL4 packed word).
#[no_mangle]
#[inline(never)]
pub extern "C" fn fp_kernel_entry(t: &FpTracer, word: u32) -> bool {
    t.kernel_entry(KernelEntry(word)) == Outcome::Written
}

/// Records a kernel exit with its measured duration.
#[no_mangle]
#[inline(never)]
pub extern "C" fn fp_kernel_exit(t: &FpTracer) -> bool {
    t.kernel_exit() == Outcome::Written
}

/// Records an interrupt.
#[no_mangle]
#[inline(never)]
pub extern "C" fn fp_interrupt(t: &FpTracer, irq: u32) -> bool {
    t.interrupt(irq) == Outcome::Written
}

/// Records a function entry.
#[no_mangle]
#[inline(never)]
pub extern "C" fn fp_function_entry(t: &FpTracer, func: u32) -> bool {
    t.function_entry(u64::from(func)) == Outcome::Written
}

/// Records a user event with an 8-byte payload.
#[no_mangle]
#[inline(never)]
pub extern "C" fn fp_user(t: &FpTracer, id: u32, data: &[u8; 8]) -> bool {
    t.user(id, data) == Outcome::Written
}

/// Records an interrupt through the single-context calls (`Tracer::masked`).
#[no_mangle]
#[inline(never)]
pub extern "C" fn fp_masked_interrupt(t: &FpTracer, irq: u32) -> bool {
    // SAFETY: this firmware records from its main loop only (no interrupt records), so
    // no write to the ring can run while this one does.
    unsafe { t.masked() }.interrupt(irq) == Outcome::Written
}

/// Records an interrupt through the single-owner calls (`Tracer::owned`): the caller
/// reads the clock and passes the time, as seL4's hooks do.
#[no_mangle]
#[inline(never)]
pub extern "C" fn fp_owned_interrupt(t: &FpTracer, irq: u32) -> bool {
    let ts = CounterClock.now();
    // SAFETY: as in `fp_masked_interrupt`; no entry is held.
    unsafe { t.owned() }.interrupt(irq, ts) == Outcome::Written
}

/// Records a kernel entry through the single-context calls.
#[no_mangle]
#[inline(never)]
pub extern "C" fn fp_masked_kernel_entry(t: &FpTracer, word: u32) -> bool {
    // SAFETY: as in `fp_masked_interrupt`.
    unsafe { t.masked() }.kernel_entry(KernelEntry(word)) == Outcome::Written
}

/// Records a kernel exit through the single-context calls.
#[no_mangle]
#[inline(never)]
pub extern "C" fn fp_masked_kernel_exit(t: &FpTracer) -> bool {
    // SAFETY: as in `fp_masked_interrupt`.
    unsafe { t.masked() }.kernel_exit() == Outcome::Written
}

/// An empty function with the same signature as `fp_interrupt`: the loop baseline.
#[no_mangle]
#[inline(never)]
pub extern "C" fn fp_baseline(t: &FpTracer, irq: u32) -> bool {
    core::hint::black_box((t, irq));
    true
}

static RING: RingMemory<{ 192 + 32 * 1024 }> = RingMemory::new();

const CALLS: u32 = 20_000;
/// Instructions per SysTick tick under `-icount shift=0` at 12.5 MHz.
const INSNS_PER_TICK: u64 = 80;

/// SysTick ticks `f` takes for [`CALLS`] calls (SysTick counts down, no interrupt).
fn measure(mut f: impl FnMut(u32)) -> u64 {
    let start = SYST::get_current();
    for i in 0..CALLS {
        f(i);
    }
    let end = SYST::get_current();
    u64::from(start.wrapping_sub(end) & 0x00FF_FFFF)
}

#[entry]
fn main() -> ! {
    let mut cp = cortex_m::Peripherals::take().expect("peripherals taken once");
    platform::uart_init();
    let memory = RING.take().expect("ring memory taken once");
    let config = Config {
        block_size: 1024,
        mode: Mode::Overwrite,
        ..Config::new()
    };
    let t: &FpTracer = cortex_m::singleton!(
        : FpTracer = Tracer::new(memory, &config, CounterClock).expect("ring set up")
    )
    .expect("tracer created once");

    cp.SYST
        .set_clock_source(cortex_m::peripheral::syst::SystClkSource::Core);
    cp.SYST.set_reload(0x00FF_FFFF);
    cp.SYST.clear_current();
    cp.SYST.enable_counter();
    while SYST::get_current() == 0 {}

    let _ = writeln!(
        Uart,
        "footprint: size_of Tracer<CounterClock> = {} bytes, ring header = 192 bytes",
        core::mem::size_of::<FpTracer>()
    );
    let base = measure(|i| {
        fp_baseline(t, i);
    });
    let payload = [1u8, 2, 3, 4, 5, 6, 7, 8];
    let runs: [(&str, u64); 9] = [
        (
            "interrupt",
            measure(|i| {
                fp_interrupt(t, i & 63);
            }),
        ),
        (
            "kernel_entry",
            measure(|i| {
                fp_kernel_entry(t, 0x0000_100e | (i & 7) << 3);
                fp_kernel_exit(t);
            }),
        ),
        (
            "kernel_exit",
            measure(|_| {
                fp_kernel_exit(t);
            }),
        ),
        (
            "function_entry",
            measure(|i| {
                fp_function_entry(t, 0x100 + (i & 15));
            }),
        ),
        (
            "user",
            measure(|i| {
                fp_user(t, i & 7, &payload);
            }),
        ),
        (
            "masked_interrupt",
            measure(|i| {
                fp_masked_interrupt(t, i & 63);
            }),
        ),
        (
            "owned_interrupt",
            measure(|i| {
                fp_owned_interrupt(t, i & 63);
            }),
        ),
        (
            "masked_kernel_entry",
            measure(|i| {
                fp_masked_kernel_entry(t, 0x0000_100e | (i & 7) << 3);
                fp_masked_kernel_exit(t);
            }),
        ),
        (
            "masked_kernel_exit",
            measure(|_| {
                fp_masked_kernel_exit(t);
            }),
        ),
    ];
    let _ = writeln!(Uart, "footprint: baseline {base} ticks for {CALLS} calls");
    for (name, ticks) in runs {
        // instructions per call = (ticks - baseline) * 80 / CALLS, shown with one decimal
        let tenths = ticks.saturating_sub(base) * INSNS_PER_TICK * 10 / u64::from(CALLS);
        let _ = writeln!(
            Uart,
            "footprint: {name}: {ticks} ticks for {CALLS} calls = {}.{} instructions/call (icount shift=0)",
            tenths / 10,
            tenths % 10
        );
    }
    let _ = writeln!(
        Uart,
        "footprint: note kernel_entry = entry + exit pair, minus kernel_exit alone gives entry"
    );
    platform::exit(0)
}
