//! Multi-threaded stress test on the host: two producer threads (two CPUs, one ring
//! each) write numbered records while a POSIX timer signal interrupts them mid-record and
//! writes numbered records of its own into the interrupted thread's ring; a reader thread
//! snapshots both rings over and over. Every snapshot must decode without error, and its
//! counts must add up exactly: the records before the oldest surviving block are the
//! ones the ring header says were overwritten, and both numbered sequences are gap-free.

#![cfg(unix)]

mod common;

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracemark::{Config, Event, Mode, Tracer};

const RING_BYTES: usize = 192 + 16 * 4096;
const MAIN: u32 = 1;
const SIGNAL: u32 = 2;

type Ring = Tracer<'static, fn() -> u64>;

fn now() -> u64 {
    static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    T0.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

std::thread_local! {
    /// The ring of the thread the signal interrupts, and its signal-record counter.
    static CURRENT: Cell<Option<(&'static Ring, &'static AtomicU64)>> = const { Cell::new(None) };
}

static ALARMS: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_alarm(_: libc::c_int) {
    ALARMS.fetch_add(1, Ordering::Relaxed);
    if let Some((ring, count)) = CURRENT.with(Cell::get) {
        let n = count.load(Ordering::Relaxed);
        ring.user(SIGNAL, &n.to_le_bytes());
        count.store(n + 1, Ordering::Relaxed);
    }
}

fn install_handler() {
    // SAFETY: plain libc call with a valid, initialised action; the handler only touches
    // a const-initialised thread-local, atomics and the lock-free tracer.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_alarm as extern "C" fn(libc::c_int) as usize;
        action.sa_flags = libc::SA_RESTART;
        assert_eq!(
            libc::sigaction(libc::SIGALRM, &action, std::ptr::null_mut()),
            0
        );
    }
}

/// A timer that interrupts the calling thread every `period_ns` (Linux: SIGEV_THREAD_ID).
fn start_thread_timer(period_ns: i64) -> libc::timer_t {
    // SAFETY: libc calls with initialised arguments; the timer id is written by
    // timer_create before use.
    unsafe {
        let mut event: libc::sigevent = std::mem::zeroed();
        event.sigev_notify = libc::SIGEV_THREAD_ID;
        event.sigev_signo = libc::SIGALRM;
        event.sigev_notify_thread_id = libc::gettid();
        let mut timer: libc::timer_t = std::mem::zeroed();
        assert_eq!(
            libc::timer_create(libc::CLOCK_MONOTONIC, &mut event, &mut timer),
            0
        );
        let period = libc::timespec {
            tv_sec: 0,
            tv_nsec: period_ns,
        };
        let spec = libc::itimerspec {
            it_interval: period,
            it_value: period,
        };
        assert_eq!(
            libc::timer_settime(timer, 0, &spec, std::ptr::null_mut()),
            0
        );
        timer
    }
}

fn stop_thread_timer(timer: libc::timer_t) {
    // SAFETY: `timer` came from timer_create and is deleted once.
    unsafe {
        libc::timer_delete(timer);
    }
}

fn block_alarm_here() {
    // SAFETY: sigset manipulation on a local, initialised set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGALRM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

fn seq_of(event: &Event) -> Option<(u32, u64)> {
    match event {
        Event::User { id, payload } => {
            Some((*id, u64::from_le_bytes(payload.as_bytes().try_into().ok()?)))
        }
        _ => None,
    }
}

/// Checks one image; returns the number of records in it.
fn check_image(image: &[u8]) -> usize {
    let (records, view) = common::decode(image);
    let mut next = [None::<u64>; 3];
    let mut first = [0u64; 3];
    let mut seen = [false; 3];
    for r in &records {
        let (id, seq) = seq_of(&r.event).expect("only numbered user records");
        match next[id as usize] {
            None => {
                first[id as usize] = seq;
                seen[id as usize] = true;
            }
            Some(expected) => assert_eq!(seq, expected, "gap in sequence {id}"),
        }
        next[id as usize] = Some(seq + 1);
    }
    assert_eq!(view.header.dropped.get(), 0);
    let before = first[MAIN as usize] + first[SIGNAL as usize];
    if seen[MAIN as usize] && seen[SIGNAL as usize] {
        assert_eq!(
            before,
            view.header.overwritten.get(),
            "records before the oldest block must equal the overwritten count"
        );
    } else {
        // A sequence with no survivor may have had records before: at least the others.
        assert!(before <= view.header.overwritten.get());
    }
    records.len()
}

#[test]
#[cfg_attr(miri, ignore = "POSIX timers and signals are not supported by miri")]
fn producers_signals_and_a_snapshotting_reader() {
    install_handler();
    let rings: Vec<&'static Ring> = (0..2)
        .map(|cpu| {
            let mem: &'static mut [u8] = &mut *Box::leak(Box::new(common::memory(RING_BYTES)));
            let config = Config {
                mode: Mode::Overwrite,
                cpu_id: cpu,
                clock_hz: 1_000_000_000,
                ..Config::new()
            };
            &*Box::leak(Box::new(
                Tracer::new(mem, &config, now as fn() -> u64).unwrap(),
            ))
        })
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    // How much happens is counted, not timed: each producer writes at least
    // `per_producer` records and goes on until the reader has made `MIN_SNAPSHOTS`
    // consistent snapshots while the producers write and its own timer has interrupted
    // it at least once. On a loaded machine a producer descheduled in the middle of a
    // record makes the reader's snapshots busy for as long, and the timer's 20 µs are
    // host time: a fixed record count could end before either happened. `max_records`
    // only bounds a run that never gets there (the assertions below then fail).
    const MIN_SNAPSHOTS: u64 = 20;
    let per_producer = 400_000u64;
    let max_records = 100 * per_producer;
    let consistent = Arc::new(AtomicU64::new(0));
    let producers: Vec<_> = rings
        .iter()
        .map(|&ring| {
            let consistent = consistent.clone();
            std::thread::spawn(move || {
                let signals: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
                CURRENT.with(|c| c.set(Some((ring, signals))));
                let timer = start_thread_timer(20_000);
                let mut seq = 0;
                while seq < per_producer
                    || (seq < max_records
                        && (consistent.load(Ordering::Relaxed) < MIN_SNAPSHOTS
                            || signals.load(Ordering::Relaxed) == 0))
                {
                    ring.user(MAIN, &seq.to_le_bytes());
                    if seq % 128 == 127 {
                        // Bursts, like a kernel: gives the reader quiet moments.
                        let pause = Instant::now();
                        while pause.elapsed() < Duration::from_micros(20) {
                            std::hint::spin_loop();
                        }
                    }
                    seq += 1;
                }
                stop_thread_timer(timer);
                block_alarm_here();
                CURRENT.with(|c| c.set(None));
                (seq, signals.load(Ordering::Relaxed))
            })
        })
        .collect();
    let reader = {
        let done = done.clone();
        let rings = rings.clone();
        let consistent = consistent.clone();
        std::thread::spawn(move || {
            block_alarm_here();
            let mut image = vec![0u8; RING_BYTES];
            let (mut ok, mut busy, mut records) = (0u64, 0u64, 0usize);
            while !done.load(Ordering::Relaxed) {
                for ring in &rings {
                    match ring.ring().snapshot(&mut image, 64) {
                        Ok(len) => {
                            records += check_image(&image[..len]);
                            ok += 1;
                            consistent.store(ok, Ordering::Relaxed);
                        }
                        Err(tracemark::SnapshotError::Busy) => busy += 1,
                        Err(e) => panic!("{e:?}"),
                    }
                }
            }
            (ok, busy, records)
        })
    };
    let (written, signals): (Vec<u64>, Vec<u64>) =
        producers.into_iter().map(|p| p.join().unwrap()).unzip();
    done.store(true, Ordering::Relaxed);
    let (ok, busy, records) = reader.join().unwrap();
    eprintln!(
        "snapshots: {ok} consistent, {busy} busy, {records} records checked; records {written:?}; signal records {signals:?} of {} alarms",
        ALARMS.load(Ordering::Relaxed)
    );
    assert!(
        ok >= MIN_SNAPSHOTS,
        "too few consistent snapshots: {ok} (busy {busy}) in {written:?} records"
    );
    assert!(
        signals.iter().all(|&n| n > 0),
        "the timer did not interrupt every producer: {signals:?} in {written:?} records"
    );
    // The final state: everything written is either in the ring or counted as overwritten.
    for ((ring, signals), written) in rings.iter().zip(&signals).zip(&written) {
        let mut image = vec![0u8; RING_BYTES];
        let len = ring.ring().snapshot(&mut image, 1).unwrap();
        let n = check_image(&image[..len]) as u64;
        let (overwritten, dropped) = ring.ring().lost();
        assert_eq!(n + overwritten + dropped, written + signals);
    }
}
