//! tracemark on a Cortex-M under QEMU (`lm3s6965evb`).
//!
//! The main loop records kernel-style events (syscall kernel entries and exits, function
//! entries and exits, user events) while the SysTick interrupt records `interrupt(15)`
//! (SysTick's exception number), preempting the main loop anywhere, including in the
//! middle of a record. The clock is the SysTick-based 64-bit tick counter ([`TICK_HZ`]).
//!
//! When done, the firmware
//! 1. dumps the ring raw to the host file `target/trace-ring.bin` (semihosting), and
//!    framed as `@TM:` text lines over UART0 (QEMU's stdout), between log lines,
//! 2. writes what it recorded to `target/trace-truth.txt`: records written per kind, the
//!    sum of the kernel-exit durations it measured itself from the same clock readings
//!    the encoder used, how often the interrupt preempted a record in progress,
//! 3. prints a summary on UART0 and exits QEMU with 0 (or 1 if something failed).
//!
//! After each kernel exit the firmware also records a user event (id 1) carrying the
//! duration it measured, so the host check can compare every exit, not only the sum.
//!
//! `examples/firmware-qemu/check.sh` runs it and checks the decoded ring against the truth.
//!
//! [`TICK_HZ`]: platform::TICK_HZ

#![no_std]
#![no_main]

use core::cell::Cell;
use core::fmt::{self, Write as _};
use core::sync::atomic::{compiler_fence, AtomicBool, AtomicPtr, AtomicU32, Ordering};

use cortex_m::peripheral::scb::VectActive;
use cortex_m::peripheral::SCB;
use cortex_m_rt::entry;
use critical_section::Mutex;
use firmware_qemu::platform::{self, HostFile, Uart};
use tracemark::format::ring::offsets;
use tracemark::{Clock, Config, KernelEntry, Mode, Outcome, RingMemory, Tracer};

/// SysTick reload: 2000 cycles per interrupt (160 µs at 12.5 MHz), so that many
/// interrupts land during the run.
const RELOAD: u32 = 1_999;
/// Syscall iterations of the main loop; sized so the ring (drop mode) never fills.
const ITERATIONS: u32 = 900;
/// SysTick's exception number, recorded as the IRQ.
const SYSTICK_IRQ: u32 = 15;
/// User event id carrying the duration the firmware measured for the exit before it.
const DURATION_EVENT: u32 = 1;
/// The dump id of the framed UART dump.
const DUMP_ID: u32 = 0xf1;
const RING_PATH: &str = "target/trace-ring.bin";
const TRUTH_PATH: &str = "target/trace-truth.txt";

/// 192-byte header + 43 blocks of 1 KiB.
static RING: RingMemory<{ 192 + 43 * 1024 }> = RingMemory::new();

/// The clock the tracer reads: SysTick ticks. Readings taken in thread mode are also
/// kept in [`LAST_THREAD_READ`], so the main loop knows the exact time the encoder
/// stamped its last record with (the encoder's last reading is the one it uses).
struct SysTickClock;

static LAST_THREAD_READ: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));

impl Clock for SysTickClock {
    #[inline(always)]
    fn now(&self) -> u64 {
        let t = platform::now();
        if SCB::vect_active() == VectActive::ThreadMode {
            critical_section::with(|cs| LAST_THREAD_READ.borrow(cs).set(t));
        }
        t
    }
}

fn last_thread_read() -> u64 {
    critical_section::with(|cs| LAST_THREAD_READ.borrow(cs).get())
}

type DemoTracer = Tracer<'static, SysTickClock>;

/// The tracer, published for the interrupt once it exists.
static TRACER: AtomicPtr<DemoTracer> = AtomicPtr::new(core::ptr::null_mut());
/// Set by the main loop around every tracer call.
static IN_CALL: AtomicBool = AtomicBool::new(false);

// Written only by the SysTick hook (it does not nest with itself), read by main at the end.
static IRQ_CALLS: AtomicU32 = AtomicU32::new(0);
static IRQ_WRITTEN: AtomicU32 = AtomicU32::new(0);
static IRQ_DROPPED: AtomicU32 = AtomicU32::new(0);
/// Interrupts that came while the main loop was inside a tracer call.
static PREEMPTED_CALL: AtomicU32 = AtomicU32::new(0);
/// Interrupts that came while the main loop's writer was inside a record (between
/// entering the ring and committing), i.e. landed inside its reservation window.
static PREEMPTED_RECORD: AtomicU32 = AtomicU32::new(0);

fn bump(c: &AtomicU32) {
    // Single writer (thread mode or the hook only), so load + store is enough.
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// Whether the ring's writer is in the middle of a record (its nesting count is non-zero).
fn writer_busy(t: &DemoTracer) -> bool {
    let (p, _) = t.ring().memory_span();
    // SAFETY: the ring memory is 8-byte aligned and longer than the header while the
    // tracer lives, so `p + NEST` is an aligned word of it that the encoder only accesses
    // atomically; this is an atomic load.
    let nest = unsafe { AtomicU32::from_ptr(p.add(offsets::NEST).cast::<u32>().cast_mut()) };
    nest.load(Ordering::Relaxed) != 0
}

/// Runs in the SysTick exception.
fn on_tick() {
    let p = TRACER.load(Ordering::Acquire);
    if p.is_null() {
        return;
    }
    // SAFETY: `TRACER` only ever holds the `&'static` tracer main created, published with
    // Release after it was complete; only shared references are made from it.
    let t = unsafe { &*p };
    bump(&IRQ_CALLS);
    if IN_CALL.load(Ordering::Relaxed) {
        bump(&PREEMPTED_CALL);
    }
    if writer_busy(t) {
        bump(&PREEMPTED_RECORD);
    }
    match t.interrupt(SYSTICK_IRQ) {
        Outcome::Written => bump(&IRQ_WRITTEN),
        Outcome::Dropped => bump(&IRQ_DROPPED),
    }
}

/// Records written and dropped per kind by the main loop.
#[derive(Default)]
struct Counts {
    kentry: u32,
    kexit: u32,
    fentry: u32,
    fexit: u32,
    user: u32,
    dropped: u32,
}

/// Runs one tracer call with [`IN_CALL`] set; counts its outcome in `written`.
#[inline(always)]
fn traced(written: &mut u32, dropped: &mut u32, f: impl FnOnce() -> Outcome) {
    IN_CALL.store(true, Ordering::Relaxed);
    compiler_fence(Ordering::SeqCst);
    let o = f();
    compiler_fence(Ordering::SeqCst);
    IN_CALL.store(false, Ordering::Relaxed);
    match o {
        Outcome::Written => *written += 1,
        Outcome::Dropped => *dropped += 1,
    }
}

/// Some work that is not traced, so the interrupt also lands outside records.
#[inline(never)]
fn work(i: u32) -> u32 {
    let mut x = i;
    for _ in 0..(i % 16) {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
    }
    core::hint::black_box(x)
}

/// The traced functions of the main loop: their addresses are the function ids recorded,
/// which the host names from this ELF (`check.sh`: `tracemark decode --elf`).
const STEPS: [fn(u32) -> u32; 4] = [step_lookup, step_decode, step_invoke, step_reply];

#[inline(never)]
fn step_lookup(i: u32) -> u32 {
    work(i)
}

#[inline(never)]
fn step_decode(i: u32) -> u32 {
    work(i ^ 1)
}

#[inline(never)]
fn step_invoke(i: u32) -> u32 {
    work(i ^ 2)
}

#[inline(never)]
fn step_reply(i: u32) -> u32 {
    work(i ^ 3)
}

/// Fixed-capacity text buffer for building the truth file.
struct TextBuf {
    buf: [u8; 1024],
    len: usize,
}

impl fmt::Write for TextBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Streams the ring's bytes to a host file.
fn dump_ring(t: &DemoTracer) -> Result<(), platform::SemihostingError> {
    let mut file = HostFile::create(RING_PATH)?;
    t.ring().dump(|chunk| file.write_all(chunk))?;
    file.close()
}

#[entry]
fn main() -> ! {
    let cp = cortex_m::Peripherals::take().expect("peripherals taken once");
    platform::uart_init();
    let _ = writeln!(Uart, "trace_demo: booting");

    let memory = RING.take().expect("ring memory taken once");
    let config = Config {
        block_size: 1024,
        mode: Mode::Drop,
        clock_hz: u64::from(platform::TICK_HZ),
        cpu_id: 0,
        producer_id: 0xf1_0000,
        ..Config::new()
    };
    let tracer: &'static DemoTracer = cortex_m::singleton!(
        : DemoTracer = Tracer::new(memory, &config, SysTickClock).expect("ring set up")
    )
    .expect("tracer created once");
    TRACER.store(core::ptr::from_ref(tracer).cast_mut(), Ordering::Release);

    platform::set_tick_hook(Some(on_tick));
    platform::start_tick_clock(cp.SYST, RELOAD);
    tracer.image(0x0, 256 * 1024, 0xf1_0000);

    let mut n = Counts::default();
    let mut duration_sum: u64 = 0;
    let mut exits_measured: u32 = 0;
    for i in 0..ITERATIONS {
        let entry = KernelEntry::syscall(1 + (i % 8) as u8, (i % 20) as u8, i % 3 == 0, i);
        traced(&mut n.kentry, &mut n.dropped, || tracer.kernel_entry(entry));
        let entry_ts = last_thread_read();
        // The function's address, as -finstrument-functions would record it (with the
        // Thumb bit set: `tracemark --elf` masks it).
        let step = STEPS[(i % 4) as usize];
        let func = step as usize as u64;
        traced(&mut n.fentry, &mut n.dropped, || {
            tracer.function_entry(func)
        });
        step(i);
        traced(&mut n.fexit, &mut n.dropped, || tracer.function_exit(func));
        let mut exit = Outcome::Dropped;
        traced(&mut n.kexit, &mut n.dropped, || {
            exit = tracer.kernel_exit();
            exit
        });
        if exit == Outcome::Written {
            let d = last_thread_read() - entry_ts;
            duration_sum += d;
            exits_measured += 1;
            traced(&mut n.user, &mut n.dropped, || {
                tracer.user(DURATION_EVENT, &d.to_le_bytes())
            });
        }
        work(i ^ 7);
    }
    // Stop recording from the interrupt before dumping.
    platform::set_tick_hook(None);
    TRACER.store(core::ptr::null_mut(), Ordering::Release);

    let (overwritten, dropped) = tracer.ring().lost();
    let dump = dump_ring(tracer);
    let _ = writeln!(Uart, "trace_demo: ring dump over UART0 follows");
    let ring = tracer.ring();
    // The used part only, as `Ring::dump` (FORMAT.md 7.3).
    let _ = tracemark::format::uart::write_framed_with(
        DUMP_ID,
        ring.used_len(),
        0,
        |offset, buf| ring.read_at(offset, buf),
        &mut |line: &[u8]| {
            platform::uart_write(line);
            Ok::<(), ()>(())
        },
    );
    let _ = writeln!(Uart, "trace_demo: ring dump done");

    let irq_calls = IRQ_CALLS.load(Ordering::Relaxed);
    let preempted_call = PREEMPTED_CALL.load(Ordering::Relaxed);
    let preempted_record = PREEMPTED_RECORD.load(Ordering::Relaxed);
    let ok = dump.is_ok() && n.dropped == 0 && dropped == 0 && preempted_record > 0;

    let mut truth = TextBuf {
        buf: [0; 1024],
        len: 0,
    };
    let _ = writeln!(truth, "iterations={ITERATIONS}");
    let _ = writeln!(truth, "clock_hz={}", platform::TICK_HZ);
    let _ = writeln!(truth, "KENTRY={}", n.kentry);
    let _ = writeln!(truth, "KEXIT={}", n.kexit);
    let _ = writeln!(truth, "FENTRY={}", n.fentry);
    let _ = writeln!(truth, "FEXIT={}", n.fexit);
    let _ = writeln!(truth, "USER={}", n.user);
    let _ = writeln!(truth, "IMAGE=1");
    let _ = writeln!(truth, "IRQ={}", IRQ_WRITTEN.load(Ordering::Relaxed));
    let _ = writeln!(
        truth,
        "dropped_outcomes={}",
        n.dropped + IRQ_DROPPED.load(Ordering::Relaxed)
    );
    let _ = writeln!(truth, "ring_dropped={dropped}");
    let _ = writeln!(truth, "ring_overwritten={overwritten}");
    let _ = writeln!(truth, "kexit_measured={exits_measured}");
    let _ = writeln!(truth, "kexit_duration_sum={duration_sum}");
    let _ = writeln!(truth, "irq_hook_calls={irq_calls}");
    let _ = writeln!(truth, "irq_preempted_call={preempted_call}");
    let _ = writeln!(truth, "irq_preempted_record={preempted_record}");
    let _ = writeln!(truth, "result={}", if ok { "PASS" } else { "FAIL" });
    let truth_status = platform::semihosting_write_file(TRUTH_PATH, &truth.buf[..truth.len]);

    let _ = writeln!(
        Uart,
        "trace_demo: {ITERATIONS} syscalls, {irq_calls} SysTick interrupts ({preempted_call} \
         inside a tracer call, {preempted_record} inside a record), dropped {dropped}; \
         ring -> {RING_PATH}: {dump:?}; truth -> {TRUTH_PATH}: {truth_status:?}; {}",
        if ok { "PASS" } else { "FAIL" }
    );
    platform::exit(if ok && truth_status.is_ok() { 0 } else { 1 })
}
