//! Block-check probe (issue 7, point 7): what a per-block integrity check computed by
//! the encoder when it closes a block would cost on a Cortex-M, against the cost of the
//! records the block holds. Runs under QEMU with `-icount shift=0` (one instruction per
//! virtual nanosecond, 80 per SysTick tick at 12.5 MHz) like `footprint`, and prints
//! instructions per 1 KiB block for three candidate checks, and instructions per
//! interrupt record (the encoder, same run) for comparison:
//!
//! - `sum32`: wrapping sum of the block's 32-bit words;
//! - `fletcher32`: two 32-bit running sums over the words (`a += w; b += a`), which
//!   also catches swapped words;
//! - `crc32`: CRC-32/ISO-HDLC with the `crc` crate's 256-entry table (1 KiB of flash).
//!
//! FORMAT.md ("Integrity below the ring header") has the command, the figures and the
//! decision. Prints `block_check: ...` lines on UART0 and exits 0.

#![no_std]
#![no_main]

use core::fmt::Write as _;
use core::hint::black_box;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::SYST;
use cortex_m_rt::entry;
use firmware_qemu::platform::{self, Uart};
use tracemark::{Clock, Config, Mode, RingMemory, Tracer};

/// The time source: one load from memory, like a memory-mapped cycle counter.
static TIME: AtomicU32 = AtomicU32::new(1000);

/// A 32-bit counter clock.
pub struct CounterClock;

impl Clock for CounterClock {
    #[inline(always)]
    fn now(&self) -> u64 {
        u64::from(TIME.load(Ordering::Relaxed))
    }
}

/// Words of a 1 KiB block.
const WORDS: usize = 256;

/// Wrapping sum of the words.
#[inline(never)]
#[no_mangle]
pub extern "C" fn bc_sum32(block: &[u32; WORDS]) -> u32 {
    block.iter().fold(0u32, |a, &w| a.wrapping_add(w))
}

/// Fletcher-style: two running sums over the words.
#[inline(never)]
#[no_mangle]
pub extern "C" fn bc_fletcher32(block: &[u32; WORDS]) -> u32 {
    let (mut a, mut b) = (0u32, 0u32);
    for &w in block {
        a = a.wrapping_add(w);
        b = b.wrapping_add(a);
    }
    a ^ b.rotate_left(16)
}

/// CRC-32 with a 256-entry table.
#[inline(never)]
#[no_mangle]
pub extern "C" fn bc_crc32(block: &[u32; WORDS]) -> u32 {
    const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    // SAFETY: a `[u32; WORDS]` is `4 * WORDS` initialised bytes, with no padding, and
    // u8 has no alignment requirement; the slice lives as long as `block`.
    let bytes = unsafe { core::slice::from_raw_parts(block.as_ptr().cast::<u8>(), WORDS * 4) };
    CRC.checksum(bytes)
}

/// An empty function with the same signature: the loop baseline.
#[inline(never)]
#[no_mangle]
pub extern "C" fn bc_baseline(block: &[u32; WORDS]) -> u32 {
    core::hint::black_box(block);
    0
}

static RING: RingMemory<{ 192 + 32 * 1024 }> = RingMemory::new();

/// Calls per measurement.
const CALLS: u32 = 200;
/// Records per measurement.
const RECORDS: u32 = 20_000;
/// Instructions per SysTick tick under `-icount shift=0` at 12.5 MHz.
const INSNS_PER_TICK: u64 = 80;

/// SysTick ticks `f` takes for `n` calls (SysTick counts down, no interrupt).
fn measure(n: u32, mut f: impl FnMut(u32)) -> u64 {
    let start = SYST::get_current();
    for i in 0..n {
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
    let t: &Tracer<'static, CounterClock> = cortex_m::singleton!(
        : Tracer<'static, CounterClock> = Tracer::new(memory, &config, CounterClock).expect("ring set up")
    )
    .expect("tracer created once");
    let block: &mut [u32; WORDS] =
        cortex_m::singleton!(: [u32; WORDS] = [0; WORDS]).expect("block created once");
    let mut x = 0x1234_5678u32;
    for w in block.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *w = x;
    }
    let block: &[u32; WORDS] = block;

    cp.SYST
        .set_clock_source(cortex_m::peripheral::syst::SystClkSource::Core);
    cp.SYST.set_reload(0x00FF_FFFF);
    cp.SYST.clear_current();
    cp.SYST.enable_counter();
    while SYST::get_current() == 0 {}

    let per = |ticks: u64, base: u64, n: u32| ticks.saturating_sub(base) * INSNS_PER_TICK * 10 / u64::from(n);
    let base = measure(CALLS, |_| {
        black_box(bc_baseline(black_box(block)));
    });
    let mut sink = 0u32;
    let checks: [(&str, u64); 3] = [
        ("sum32", measure(CALLS, |_| sink ^= black_box(bc_sum32(black_box(block))))),
        ("fletcher32", measure(CALLS, |_| sink ^= black_box(bc_fletcher32(black_box(block))))),
        ("crc32", measure(CALLS, |_| sink ^= black_box(bc_crc32(black_box(block))))),
    ];
    for (name, ticks) in checks {
        let tenths = per(ticks, base, CALLS);
        let _ = writeln!(
            Uart,
            "block_check: {name}: {}.{} instructions per 1 KiB block",
            tenths / 10,
            tenths % 10
        );
    }
    let rec_base = measure(RECORDS, |i| {
        core::hint::black_box(i);
    });
    let rec = measure(RECORDS, |i| {
        t.interrupt(i & 63);
    });
    let tenths = per(rec, rec_base, RECORDS);
    let _ = writeln!(
        Uart,
        "block_check: interrupt record: {}.{} instructions/record (checks {sink:#x})",
        tenths / 10,
        tenths % 10
    );
    platform::exit(0)
}
