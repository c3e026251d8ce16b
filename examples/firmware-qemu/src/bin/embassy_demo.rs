//! embassy on a Cortex-M under QEMU (`lm3s6965evb`), traced by tracemark through
//! embassy-executor's `rtos-trace` feature (`tracemark::rtos_trace::Embassy`).
//!
//! Four named tasks on the thread-mode executor:
//! * `producer` sends [`ITEMS`] numbers into a 4-slot channel (so it blocks when full),
//! * `consumer` receives them and, every [`BATCH`] items, signals `ticker`'s partner,
//! * `ticker` waits [`TICKS`] times for a signal the SysTick interrupt raises every
//!   [`TICK_EVERY`] interrupts (so the executor really idles in `WFE` in between),
//! * `finish` waits until the others are done, then stops tracing, prints the truth,
//!   dumps the ring over UART0 and exits QEMU.
//!
//! The truth: every task counts its own polls (its body is wrapped in [`Counted`], polled
//! exactly once per executor poll of the task), items sent and received, ticks seen. It
//! is printed as `truth: key=value` lines and written to `target/embassy-truth.txt`.
//! `examples/firmware-qemu/check-embassy.sh` checks `tracemark stats` against it.
//!
//! Built with the feature `embassy-untraced` instead of `embassy`, the same firmware
//! runs without tracing (no `rtos-trace`, no tracer, no dump): the check compares the
//! two images' sizes.

#![no_std]
#![no_main]

use core::fmt::Write as _;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicU32, Ordering};
#[cfg(feature = "embassy")]
use core::task::Waker;
use core::task::{Context, Poll};

use cortex_m_rt::entry;
use embassy_executor::{Executor, Spawner};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::channel::Channel;
use embassy_sync::signal::Signal;
use firmware_qemu::platform::{self, Uart};
#[cfg(feature = "embassy")]
use tracemark::{Clock, Config, Mode, RingMemory, Tracer};

/// Items the producer sends.
const ITEMS: u32 = 300;
/// The consumer signals `finish` progress every this many items.
const BATCH: u32 = 50;
/// Signals `ticker` waits for.
const TICKS: u32 = 20;
/// SysTick interrupts per signal to `ticker`.
const TICK_EVERY: u32 = 2;
/// SysTick reload: 5000 cycles (400 µs at 12.5 MHz) per interrupt.
const RELOAD: u32 = 4_999;
#[cfg(feature = "embassy")]
const DUMP_ID: u32 = 0xe1;
const TRUTH_PATH: &str = "target/embassy-truth.txt";

/// 192-byte header + 16 blocks of 1 KiB: the whole run fits (drop mode, checked).
#[cfg(feature = "embassy")]
static RING: RingMemory<{ 192 + 16 * 1024 }> = RingMemory::new();

#[cfg(feature = "embassy")]
/// The tracer's clock: the SysTick-based 64-bit tick counter ([`platform::TICK_HZ`]).
#[cfg(feature = "embassy")]
struct SysTickClock;

#[cfg(feature = "embassy")]
impl Clock for SysTickClock {
    #[inline(always)]
    fn now(&self) -> u64 {
        platform::now()
    }
}

#[cfg(feature = "embassy")]
rtos_trace::global_trace!(TraceImpl);
/// `global_trace!` wants a local name.
#[cfg(feature = "embassy")]
type TraceImpl = tracemark::rtos_trace::Embassy;

/// embassy-executor's `rtos-trace` feature needs a time driver (its `time()` callback);
/// this one runs on the same SysTick clock. The demo uses no timers, but the driver
/// is complete: a wake-up is kept in one slot and fired from SysTick when due (a second
/// wake-up wakes the first early, which embassy-time allows: timers re-check and
/// re-arm).
#[cfg(feature = "embassy")]
struct SysTickDriver;

#[cfg(feature = "embassy")]
static ALARM: critical_section::Mutex<core::cell::RefCell<Option<(u64, Waker)>>> =
    critical_section::Mutex::new(core::cell::RefCell::new(None));

#[cfg(feature = "embassy")]
impl embassy_time_driver::Driver for SysTickDriver {
    fn now(&self) -> u64 {
        // ticks * TICK_HZ / platform::TICK_HZ without overflow and without u128
        // arithmetic (which pulls in a large division routine): the remainder's
        // product stays below 2^64 for any tick rate below 1.4 THz.
        let (hz, ticks) = (u64::from(platform::TICK_HZ), platform::now());
        let t = embassy_time_driver::TICK_HZ;
        ticks / hz * t + ticks % hz * t / hz
    }
    fn schedule_wake(&self, at: u64, waker: &Waker) {
        if at <= self.now() {
            waker.wake_by_ref();
            return;
        }
        let old = critical_section::with(|cs| ALARM.borrow(cs).replace(Some((at, waker.clone()))));
        if let Some((_, old)) = old {
            if !old.will_wake(waker) {
                old.wake();
            }
        }
    }
}

#[cfg(feature = "embassy")]
embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver);

static ITEMS_CH: Channel<CriticalSectionRawMutex, u32, 4> = Channel::new();
static TICK: Signal<CriticalSectionRawMutex, u32> = Signal::new();
static PROGRESS: Signal<CriticalSectionRawMutex, u32> = Signal::new();
static DONE: Channel<CriticalSectionRawMutex, &'static str, 4> = Channel::new();

static SYSTICKS: AtomicU32 = AtomicU32::new(0);

/// Runs in the SysTick interrupt: every [`TICK_EVERY`]th interrupt signals `ticker`,
/// and a due time-driver wake-up fires.
fn on_tick() {
    let n = SYSTICKS.fetch_add(1, Ordering::Relaxed) + 1;
    if n % TICK_EVERY == 0 {
        TICK.signal(n);
    }
    #[cfg(feature = "embassy")]
    fire_alarm();
}

/// Wakes a due time-driver wake-up.
#[cfg(feature = "embassy")]
fn fire_alarm() {
    let now = embassy_time_driver::Driver::now(&DRIVER);
    let due = critical_section::with(|cs| {
        let mut alarm = ALARM.borrow(cs).borrow_mut();
        match &*alarm {
            Some((at, _)) if *at <= now => alarm.take(),
            _ => None,
        }
    });
    if let Some((_, waker)) = due {
        waker.wake();
    }
}

/// Per-task truth.
struct Truth {
    polls: AtomicU32,
}

impl Truth {
    const fn new() -> Self {
        Truth {
            polls: AtomicU32::new(0),
        }
    }
}

static PRODUCER: Truth = Truth::new();
static CONSUMER: Truth = Truth::new();
static TICKER: Truth = Truth::new();
static FINISH: Truth = Truth::new();
static SENT: AtomicU32 = AtomicU32::new(0);
static RECEIVED: AtomicU32 = AtomicU32::new(0);
static TICKS_SEEN: AtomicU32 = AtomicU32::new(0);
static PROGRESS_SEEN: AtomicU32 = AtomicU32::new(0);

/// A future that counts its polls: a task's body wrapped in it is polled exactly once
/// per executor poll of the task.
struct Counted<F> {
    truth: &'static Truth,
    inner: F,
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `inner` is structurally pinned: it is never moved out of `self` (no
        // `Unpin`-based access, no `Drop` impl moving it).
        let this = unsafe { self.get_unchecked_mut() };
        this.truth.polls.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above, `inner` stays where the pinned `self` holds it.
        unsafe { Pin::new_unchecked(&mut this.inner) }.poll(cx)
    }
}

fn counted<F: Future>(truth: &'static Truth, inner: F) -> Counted<F> {
    Counted { truth, inner }
}

#[embassy_executor::task]
async fn producer() {
    counted(&PRODUCER, async {
        for i in 0..ITEMS {
            ITEMS_CH.send(i).await;
            SENT.fetch_add(1, Ordering::Relaxed);
        }
        DONE.send("producer").await;
    })
    .await;
}

#[embassy_executor::task]
async fn consumer() {
    counted(&CONSUMER, async {
        let mut sum = 0u32;
        for i in 0..ITEMS {
            let v = ITEMS_CH.receive().await;
            assert_eq!(v, i, "items arrive in order");
            sum = sum.wrapping_add(v);
            if (i + 1) % BATCH == 0 {
                PROGRESS.signal(i + 1);
            }
            RECEIVED.fetch_add(1, Ordering::Relaxed);
        }
        assert_eq!(sum, ITEMS * (ITEMS - 1) / 2);
        DONE.send("consumer").await;
    })
    .await;
}

#[embassy_executor::task]
async fn ticker() {
    counted(&TICKER, async {
        for _ in 0..TICKS {
            TICK.wait().await;
            TICKS_SEEN.fetch_add(1, Ordering::Relaxed);
        }
        DONE.send("ticker").await;
    })
    .await;
}

#[embassy_executor::task]
async fn finish(tracer: Trace) {
    counted(&FINISH, async {
        let mut done = 0;
        while done < 3 {
            // Progress signals may coalesce (a Signal keeps the last value): count the
            // wake-ups that saw one, as the truth of what this task did.
            match embassy_futures_select(PROGRESS.wait(), DONE.receive()).await {
                Either::First(_) => {
                    PROGRESS_SEEN.fetch_add(1, Ordering::Relaxed);
                }
                Either::Second(_) => done += 1,
            }
        }
        report(tracer);
    })
    .await;
}

enum Either<A, B> {
    First(A),
    Second(B),
}

/// The first of two futures to complete (the other is dropped), polled in order.
async fn embassy_futures_select<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = core::pin::pin!(a);
    let mut b = core::pin::pin!(b);
    core::future::poll_fn(move |cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::First(v));
        }
        if let Poll::Ready(v) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Second(v));
        }
        Poll::Pending
    })
    .await
}

#[cfg(feature = "embassy")]
type DemoTracer = Tracer<'static, SysTickClock>;
/// What `finish` needs to dump the trace: the tracer, or nothing when untraced.
#[cfg(feature = "embassy")]
type Trace = &'static DemoTracer;
#[cfg(not(feature = "embassy"))]
type Trace = ();

/// Stops tracing, prints and writes the truth, dumps the ring, exits QEMU.
fn report(tracer: Trace) -> ! {
    // Nothing after this poll's start is recorded: the truth below counts this poll.
    #[cfg(feature = "embassy")]
    rtos_trace::trace::stop();
    platform::set_tick_hook(None);
    #[cfg(feature = "embassy")]
    let (overwritten, dropped) = tracer.ring().lost();
    #[cfg(not(feature = "embassy"))]
    let (overwritten, dropped, ()) = (0, 0, tracer);

    let mut truth = heapless_buf::Buf::new();
    let tasks = [
        ("producer", &PRODUCER),
        ("consumer", &CONSUMER),
        ("ticker", &TICKER),
        ("finish", &FINISH),
    ];
    let _ = writeln!(truth, "tasks={}", tasks.len());
    for (name, t) in tasks {
        let _ = writeln!(truth, "polls.{name}={}", t.polls.load(Ordering::Relaxed));
    }
    let _ = writeln!(truth, "sent={}", SENT.load(Ordering::Relaxed));
    let _ = writeln!(truth, "received={}", RECEIVED.load(Ordering::Relaxed));
    let _ = writeln!(truth, "ticks_seen={}", TICKS_SEEN.load(Ordering::Relaxed));
    let _ = writeln!(
        truth,
        "progress_seen={}",
        PROGRESS_SEEN.load(Ordering::Relaxed)
    );
    let _ = writeln!(truth, "systicks={}", SYSTICKS.load(Ordering::Relaxed));
    let _ = writeln!(truth, "clock_hz={}", platform::TICK_HZ);
    let _ = writeln!(truth, "overwritten={overwritten}");
    let _ = writeln!(truth, "dropped={dropped}");
    let ok = overwritten == 0
        && dropped == 0
        && SENT.load(Ordering::Relaxed) == ITEMS
        && RECEIVED.load(Ordering::Relaxed) == ITEMS
        && TICKS_SEEN.load(Ordering::Relaxed) == TICKS;
    let _ = writeln!(truth, "result={}", if ok { "PASS" } else { "FAIL" });
    for line in truth.as_str().lines() {
        let _ = writeln!(Uart, "truth: {line}");
    }
    let written = platform::semihosting_write_file(TRUTH_PATH, truth.as_str().as_bytes());

    #[cfg(feature = "embassy")]
    dump(tracer);
    platform::exit(if ok && written.is_ok() { 0 } else { 1 })
}

/// The ring, framed over UART0.
#[cfg(feature = "embassy")]
fn dump(tracer: &'static DemoTracer) {
    let _ = writeln!(Uart, "embassy_demo: ring dump over UART0 follows");
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
    let _ = writeln!(Uart, "embassy_demo: ring dump done");
}

/// A fixed-capacity text buffer for the truth.
mod heapless_buf {
    use core::fmt;

    pub struct Buf {
        buf: [u8; 512],
        len: usize,
    }

    impl Buf {
        pub const fn new() -> Self {
            Buf {
                buf: [0; 512],
                len: 0,
            }
        }
        pub fn as_str(&self) -> &str {
            // Only `write_str` fills the buffer, with whole `&str`s.
            core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
        }
    }

    impl fmt::Write for Buf {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let end = self.len + s.len();
            let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
            dst.copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }
}

/// Spawns a task named `name` (embassy's task metadata, which its `rtos-trace` feature
/// passes to `task_send_info`; NUL-terminated as SystemView wants, tracemark drops it).
fn spawn_named<S>(spawner: &Spawner, token: embassy_executor::SpawnToken<S>, name: &'static str) {
    #[cfg(feature = "embassy")]
    token.metadata().set_name(name);
    #[cfg(not(feature = "embassy"))]
    let _ = name;
    spawner.spawn(token);
}

#[entry]
fn main() -> ! {
    let cp = cortex_m::Peripherals::take().expect("peripherals taken once");
    platform::uart_init();
    let _ = writeln!(Uart, "embassy_demo: booting");

    #[cfg(feature = "embassy")]
    let tracer = start_tracing();
    #[cfg(not(feature = "embassy"))]
    let tracer = ();

    platform::set_tick_hook(Some(on_tick));
    platform::start_tick_clock(cp.SYST, RELOAD);

    let executor: &'static mut Executor =
        cortex_m::singleton!(: Executor = Executor::new()).expect("executor created once");
    executor.run(|spawner| {
        spawn_named(&spawner, producer().expect("spawned once"), "producer\0");
        spawn_named(&spawner, consumer().expect("spawned once"), "consumer\0");
        spawn_named(&spawner, ticker().expect("spawned once"), "ticker\0");
        spawn_named(&spawner, finish(tracer).expect("spawned once"), "finish\0");
    })
}

/// Sets up the ring and the tracer, and publishes it for the executor's callbacks.
#[cfg(feature = "embassy")]
fn start_tracing() -> &'static DemoTracer {
    let memory = RING.take().expect("ring memory taken once");
    let config = Config {
        block_size: 1024,
        mode: Mode::Drop,
        clock_hz: u64::from(platform::TICK_HZ),
        cpu_id: 0,
        producer_id: 0xe1_0000,
        ..Config::new()
    };
    let tracer: &'static DemoTracer = cortex_m::singleton!(
        : DemoTracer = Tracer::new(memory, &config, SysTickClock).expect("ring set up")
    )
    .expect("tracer created once");
    tracemark::rtos_trace::set_tracer(tracer).expect("the only tracer");
    tracer
}
