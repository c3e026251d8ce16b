//! Bare-metal support code for running tracemark demos on QEMU's
//! `lm3s6965evb` machine (Stellaris LM3S6965, Cortex-M3).
//!
//! The interesting parts live in [`platform`]: a 64-bit monotonic tick clock
//! built on SysTick, a hook that runs inside the SysTick interrupt, semihosting
//! file output / exit, and a polled UART0 byte sink.
//!
//! This crate also provides the `#[panic_handler]`: it prints the panic message
//! on UART0 and exits QEMU with a failure status via semihosting.

#![no_std]

pub mod platform;

use core::panic::PanicInfo;

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    use core::fmt::Write as _;
    // Best effort: the UART write cannot fail, formatting errors are ignored.
    let _ = writeln!(platform::Uart, "PANIC: {info}");
    platform::exit(101)
}
