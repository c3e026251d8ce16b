//! Shows tracemark's `defmt` feature: firmware that already logs with `defmt` can print
//! trace records (`defmt::Format` is implemented for `Event`, `Record`, `Kind`, ...).
//!
//! Records a few events, reads them back from the ring (as a host decoder would), and
//! logs each with `defmt::println!("{}", record)` (unfiltered; `info!` and friends need `DEFMT_LOG`). The defmt frames go to a small in-RAM
//! buffer (a minimal global logger), which is written to the host file
//! `target/defmt-frames.bin` through semihosting; decode them on the host with
//! `defmt-print -e target/thumbv7m-none-eabi/release/defmt_demo < target/defmt-frames.bin`
//! (expected output: `defmt_demo.out`, checked by `check.sh`)
//! (`cargo install defmt-print`).
//!
//! Build and run: `./run.sh defmt_demo` with `FEATURES=defmt` (run.sh passes it on).

#![no_std]
#![no_main]

use core::cell::RefCell;
use core::fmt::Write as _;

use cortex_m_rt::entry;
use critical_section::{Mutex, RestoreState};
use firmware_qemu::platform::{self, Uart};
use tracemark::format::ring::{BlockState, RingView};
use tracemark::{Config, EntryPath, KernelEntry, Mode, RingMemory, Tracer};

// ---------------------------------------------------------------------------------------
// A minimal defmt global logger: rzcobs-encoded frames into a RAM buffer.
// ---------------------------------------------------------------------------------------

const LOG_CAP: usize = 2048;

struct LogBuf {
    len: usize,
    bytes: [u8; LOG_CAP],
}

static LOG: Mutex<RefCell<LogBuf>> = Mutex::new(RefCell::new(LogBuf {
    len: 0,
    bytes: [0; LOG_CAP],
}));

/// State between `acquire` and `release`; only touched while the critical section
/// taken in `acquire` is held, so never concurrently.
static mut ENCODER: defmt::Encoder = defmt::Encoder::new();
static mut RESTORE: RestoreState = RestoreState::invalid();

fn append(bytes: &[u8]) {
    // SAFETY: only called between `acquire` and `release`, inside the critical section.
    let cs = unsafe { critical_section::CriticalSection::new() };
    let mut log = LOG.borrow_ref_mut(cs);
    let start = log.len;
    let n = bytes.len().min(LOG_CAP - start);
    log.bytes[start..start + n].copy_from_slice(&bytes[..n]);
    log.len += n;
}

#[defmt::global_logger]
struct Logger;

// SAFETY: `acquire` takes a critical section that `release` gives back, so frames are
// never interleaved and `ENCODER`/`RESTORE` have one user at a time (defmt calls
// acquire/write/release in that order and never re-enters on one core).
unsafe impl defmt::Logger for Logger {
    fn acquire() {
        // SAFETY: paired with the `release` in `Logger::release`.
        let restore = unsafe { critical_section::acquire() };
        // SAFETY: inside the critical section just taken (see the impl's comment).
        unsafe {
            RESTORE = restore;
            (*core::ptr::addr_of_mut!(ENCODER)).start_frame(append);
        }
    }

    unsafe fn flush() {}

    unsafe fn release() {
        // SAFETY: inside the critical section taken in `acquire`.
        unsafe {
            (*core::ptr::addr_of_mut!(ENCODER)).end_frame(append);
            critical_section::release(RESTORE);
        }
    }

    unsafe fn write(bytes: &[u8]) {
        // SAFETY: inside the critical section taken in `acquire`.
        unsafe { (*core::ptr::addr_of_mut!(ENCODER)).write(bytes, append) };
    }
}

// ---------------------------------------------------------------------------------------

static RING: RingMemory<{ 192 + 2 * 256 }> = RingMemory::new();

#[entry]
fn main() -> ! {
    platform::uart_init();
    let memory = RING.take().expect("ring memory taken once");
    let (ptr, len);
    {
        let time = core::cell::Cell::new(1000u64);
        let clock = || {
            time.set(time.get() + 7);
            time.get()
        };
        let config = Config {
            block_size: 256,
            mode: Mode::Drop,
            clock_hz: u64::from(platform::TICK_HZ),
            ..Config::new()
        };
        let tracer = Tracer::new(memory, &config, clock).expect("ring set up");
        tracer.kernel_entry(KernelEntry::syscall(1, 10, true, 42));
        tracer.interrupt(15);
        tracer.kernel_entry(KernelEntry::other(EntryPath::Interrupt, 0, 27));
        tracer.kernel_exit();
        tracer.function_entry(0x0800_0100);
        tracer.user(9, b"hello");
        tracer.kernel_exit();
        (ptr, len) = tracer.ring().memory_span();
    } // the tracer is dropped: the ring is released and quiet
      // SAFETY: the tracer that owned the memory is gone; the static lives forever and
      // nothing else writes it.
    let image = unsafe { core::slice::from_raw_parts(ptr, len) };
    let view = RingView::parse(image).expect("a ring");
    let mut n = 0;
    for block in view.blocks().filter(|b| b.state == BlockState::Valid) {
        for record in block.decode().flatten() {
            defmt::println!("{}", record);
            n += 1;
        }
    }
    let frames = critical_section::with(|cs| {
        let log = LOG.borrow_ref(cs);
        platform::semihosting_write_file("target/defmt-frames.bin", &log.bytes[..log.len])
            .map(|()| log.len)
    });
    let _ = writeln!(
        Uart,
        "defmt_demo: logged {n} records with defmt::println!; frames -> target/defmt-frames.bin: {frames:?}"
    );
    platform::exit(if n == 7 && matches!(frames, Ok(len) if len > 0) {
        0
    } else {
        1
    })
}
