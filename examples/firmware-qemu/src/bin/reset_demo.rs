//! A warm reset with the trace ring kept, as a firmware keeps it in a `.noinit` section
//! to read what happened before a crash (issue 7, point 12).
//!
//! The ring and a boot counter live in cortex-m-rt's `.uninit` section (NOLOAD: neither
//! loaded nor zeroed at boot). Boot 1 finds no ring, records its events and resets the
//! core with SYSRESETREQ (QEMU keeps RAM across it). Boot 2 finds boot 1's ring:
//! `Tracer::recover` hands it over, and it goes out over UART0 framed as dump
//! `0x100 + 1` before boot 2 starts a new session in the same memory; boot 2 then records
//! its own events, dumps its ring as `0x200 + 2` and exits. `check-reset.sh` runs it and
//! checks both dumps on the host.
#![no_std]
#![no_main]

use core::cell::Cell;
use core::fmt::Write as _;
use core::mem::MaybeUninit;

use cortex_m_rt::entry;
use firmware_qemu::platform::{self, Uart};
use tracemark::{Config, Mode, Tracer};

const RING_LEN: usize = 192 + 8 * 1024;
const BOOT_MAGIC: u32 = 0x7e5e_7b00;
/// Events each boot records: user events `id = boot` and IRQs `100 * boot + i % 10`.
const EVENTS: u32 = 400;

#[link_section = ".uninit.TRACEMARK"]
static mut RING: MaybeUninit<[u64; RING_LEN / 8]> = MaybeUninit::uninit();
#[link_section = ".uninit.TRACEMARK"]
static mut BOOT: MaybeUninit<[u32; 2]> = MaybeUninit::uninit();

/// Sends `len` bytes read by `read` over UART0, framed as dump `dump_id`.
fn send(dump_id: u32, len: usize, read: impl FnMut(usize, &mut [u8])) {
    let _ = tracemark::format::uart::write_framed_with(dump_id, len, 0, read, &mut |line| {
        platform::uart_write(line);
        Ok::<(), ()>(())
    });
}

#[entry]
fn main() -> ! {
    platform::uart_init();
    // SAFETY: `main` runs once per boot, before anything else touches `BOOT`; RAM that
    // survived the reset (or QEMU's zeroed RAM at power-on) holds plain integers.
    let boot = unsafe {
        let b = &mut *core::ptr::addr_of_mut!(BOOT).cast::<[u32; 2]>();
        b[1] = if b[0] == BOOT_MAGIC { b[1] + 1 } else { 1 };
        b[0] = BOOT_MAGIC;
        b[1]
    };
    let _ = writeln!(Uart, "reset_demo: boot {boot}");
    // SAFETY: the ring memory is used only through this one slice, created once per boot;
    // its bytes are whatever the previous boot left (or zero at power-on), all valid u8.
    let memory: &'static mut [u8] = unsafe {
        core::slice::from_raw_parts_mut(core::ptr::addr_of_mut!(RING).cast::<u8>(), RING_LEN)
    };
    let config = Config {
        block_size: 1024,
        mode: Mode::Overwrite,
        clock_hz: u64::from(platform::TICK_HZ),
        producer_id: u64::from(boot),
        ..Config::new()
    };
    let ticks = Cell::new(u64::from(boot) * 1_000_000);
    let clock = || {
        ticks.set(ticks.get() + 3);
        ticks.get()
    };
    let tracer = Tracer::recover(memory, &config, clock, |old| {
        let _ = writeln!(
            Uart,
            "reset_demo: boot {boot}: the ring of boot {} follows",
            boot - 1
        );
        send(0x100 + boot - 1, old.len(), |offset, buf| {
            let end = (offset + buf.len()).min(old.len());
            buf[..end - offset].copy_from_slice(&old[offset..end]);
        });
        true
    })
    .expect("ring set up or recovered");
    for i in 0..EVENTS {
        tracer.user(boot, &i.to_le_bytes());
        tracer.interrupt(100 * boot + i % 10);
    }
    if boot == 1 {
        let _ = writeln!(
            Uart,
            "reset_demo: boot 1: SYSRESETREQ with the ring claimed"
        );
        cortex_m::peripheral::SCB::sys_reset();
    }
    let ring = tracer.ring();
    let _ = writeln!(Uart, "reset_demo: boot {boot}: its own ring follows");
    send(0x200 + boot, ring.len(), |offset, buf| {
        ring.read_at(offset, buf)
    });
    let _ = writeln!(Uart, "reset_demo: done");
    platform::exit(0)
}
