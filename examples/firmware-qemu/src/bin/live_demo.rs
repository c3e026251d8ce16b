//! A firmware for live capture (issue 18): it records a user event (`id 1`) holding a
//! sequence counter that goes up by one per event, at a steady rate, while
//! `tracemark capture --gdb` reads its ring through QEMU's GDB stub. At the end it
//! sends its ring over UART0 framed as dump `0x4c` (the truth the capture's overlap
//! must match byte for byte, record for record) and exits. `check-live.sh` runs it.
//!
//! Every 40 events it also records a deferred kernel entry as a single-context kernel
//! does (FORMAT.md 9.5): held at event `40k`, written with its placeholder by an
//! interrupt record, filled in after event `40k + 30` (a syscall whose label is `40k`)
//! and closed by its exit, so entries are outstanding while their block closes and a
//! poll comes. Records: KENTRY, IRQ before event `40k`; KEXIT after event `40k + 30`.
//!
//! The ring is the symbol `TRACEMARK_LIVE_RING` (found by `--elf --symbol`).
#![no_std]
#![no_main]

use core::fmt::Write as _;

use cortex_m_rt::entry;
use firmware_qemu::platform::{self, Uart};
use tracemark::{Config, KernelEntry, Mode, Tracer};

/// 16 blocks of 1 KiB.
const RING_LEN: usize = 192 + 16 * 1024;
/// Events recorded.
const EVENTS: u32 = 60_000;
/// Busy-loop iterations between two events: sets the write rate.
const SPIN: u32 = 1_500;
/// Busy-loop iterations after the last event (about half a second), so that the
/// capture polls at least once more and its records overlap the final dump.
const END_SPIN: u32 = 50_000_000;

/// The ring memory, read by the debugger while the firmware runs.
#[no_mangle]
static mut TRACEMARK_LIVE_RING: [u64; RING_LEN / 8] = [0; RING_LEN / 8];

#[entry]
fn main() -> ! {
    platform::uart_init();
    let _ = writeln!(Uart, "live_demo: {EVENTS} events");
    // SAFETY: the ring memory is used only through this one slice, created once; the
    // debugger reads it from outside the program, which the writer's protocol allows.
    let memory: &'static mut [u8] = unsafe {
        core::slice::from_raw_parts_mut(
            core::ptr::addr_of_mut!(TRACEMARK_LIVE_RING).cast::<u8>(),
            RING_LEN,
        )
    };
    let config = Config {
        block_size: 1024,
        mode: Mode::Overwrite,
        clock_hz: u64::from(platform::TICK_HZ),
        producer_id: 0x4c,
        ..Config::new()
    };
    // Time stamps from SysTick at TICK_HZ of the emulated core: under QEMU's `-icount`
    // they are exact instruction time, so the capture's records give the target's
    // write rate (bench-live.sh).
    let cp = cortex_m::Peripherals::take().expect("peripherals taken once");
    platform::start_tick_clock(cp.SYST, platform::DEFAULT_RELOAD);
    let tracer = Tracer::new(memory, &config, platform::now).expect("ring set up");
    let start = platform::now();
    // SAFETY: nothing else writes this ring: no interrupt handler records, one CPU,
    // and no call is made from inside another.
    let kernel = unsafe { tracer.masked() };
    for i in 0..EVENTS {
        if i % 40 == 0 {
            kernel.kernel_entry_deferred();
            kernel.interrupt(7);
        }
        tracer.user(1, &i.to_le_bytes());
        if i % 40 == 30 {
            kernel.kernel_entry_info(KernelEntry::syscall(1, 0, false, i - 30));
            kernel.kernel_exit();
        }
        for _ in 0..SPIN {
            cortex_m::asm::nop();
        }
    }
    let ticks = platform::now() - start;
    let _ = writeln!(
        Uart,
        "live_demo: {EVENTS} events in {ticks} ticks of {} Hz",
        platform::TICK_HZ
    );
    for _ in 0..END_SPIN {
        cortex_m::asm::nop();
    }
    let ring = tracer.ring();
    let _ = writeln!(Uart, "live_demo: the final ring follows");
    let _ = tracemark::format::uart::write_framed_with(
        0x4c,
        ring.len(),
        0,
        |offset, buf| ring.read_at(offset, buf),
        &mut |line| {
            platform::uart_write(line);
            Ok::<(), ()>(())
        },
    );
    let _ = writeln!(Uart, "live_demo: done");
    platform::exit(0)
}
