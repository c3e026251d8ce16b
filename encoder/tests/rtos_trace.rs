//! `tracemark::rtos_trace::Embassy` driven as embassy-executor 0.10 drives it (the call
//! order of its `raw::trace` module: `task_new` + `task_send_info` at spawn, then per
//! poll `task_exec_begin`/`task_exec_end`, `system_idle` when the run queue is empty),
//! with a script whose truth (polls per task, time in each) the test keeps itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use rtos_trace::{RtosTrace, TaskInfo};
use tracemark::format::ring::{BlockState, RingView};
use tracemark::format::Event;
use tracemark::rtos_trace::{set_tracer, AlreadySet, Embassy, EXECUTOR_THREAD, IDLE_THREAD};
use tracemark::{Config, Mode, Tracer};

mod common;

static NOW: AtomicU64 = AtomicU64::new(0);

/// The test's clock (a plain function: the tracer is a `'static` global, so its clock
/// type must be nameable and `Sync`).
type TestClock = fn() -> u64;

fn now() -> u64 {
    NOW.load(Ordering::Relaxed)
}

fn advance(ticks: u64) {
    NOW.fetch_add(ticks, Ordering::Relaxed);
}

/// Task ids as embassy makes them: task header addresses.
const TASKS: [(u32, &str); 3] = [
    (0x2000_0040, "producer\0"),
    (0x2000_0100, "consumer\0"),
    (0x2000_01c0, "watchdog_with_a_long_name\0"),
];

/// One test: the tracer is a process-wide global, set once.
#[test]
fn embassy_polls_become_named_switches_with_exact_times() {
    // Drop mode, many small blocks: nothing is lost, and each block must name the
    // threads it switches to (the names are re-emitted once per block).
    let image = common::memory(192 + 64 * 256);
    let image: &'static mut [u8] = &mut *Box::leak(Box::new(image));
    let config = Config {
        mode: Mode::Drop,
        block_size: 256,
        clock_hz: 1_000_000,
        ..Config::new()
    };
    let tracer: &'static Tracer<'static, TestClock> = Box::leak(Box::new(
        Tracer::new(image, &config, now as TestClock).unwrap(),
    ));
    set_tracer(tracer).unwrap();
    let other: &'static Tracer<'static, TestClock> = tracer;
    assert_eq!(
        set_tracer(other),
        Err(AlreadySet),
        "a second tracer is refused"
    );

    for (id, name) in TASKS {
        Embassy::task_new(id);
        Embassy::task_send_info(
            id,
            TaskInfo {
                name,
                priority: 0,
                stack_base: 0,
                stack_size: 0,
            },
        );
    }

    // The schedule: rounds of polls of varying tasks and lengths, idle between rounds.
    let mut polls: HashMap<u64, u64> = HashMap::new();
    let mut running: HashMap<u64, u64> = HashMap::new();
    let mut paused_polls = 0;
    for round in 0..200u64 {
        if round == 100 {
            Embassy::stop();
        }
        if round == 110 {
            Embassy::start();
        }
        let recording = !(100..110).contains(&round);
        for (k, (id, _)) in TASKS.iter().enumerate() {
            if (round + k as u64) % (k as u64 + 1) != 0 {
                continue;
            }
            advance(3 + k as u64); // the executor dequeues the task
            Embassy::task_exec_begin(*id);
            let len = 10 + (round * 7 + k as u64 * 13) % 50;
            advance(len);
            Embassy::task_exec_end();
            if recording {
                *polls.entry(u64::from(*id)).or_default() += 1;
                *running.entry(u64::from(*id)).or_default() += len;
            } else {
                paused_polls += 1;
            }
        }
        advance(2);
        Embassy::system_idle();
        advance(100 + round % 17);
        // A wake-up that readied no task: the executor polls and idles again, which
        // is no switch (idle time goes on).
        Embassy::system_idle();
        advance(40);
    }
    assert!(paused_polls > 0);

    let mut dump = Vec::new();
    tracer
        .ring()
        .dump(|chunk| {
            dump.extend_from_slice(chunk);
            Ok::<(), ()>(())
        })
        .unwrap();
    assert_eq!(
        tracer.ring().lost(),
        (0, 0),
        "nothing overwritten or dropped"
    );
    let view = RingView::parse(&dump).expect("ring header");

    let names: HashMap<u64, &str> = TASKS
        .iter()
        .map(|(id, n)| (u64::from(*id), n.trim_end_matches('\0')))
        .chain([(EXECUTOR_THREAD, "executor"), (IDLE_THREAD, "IDLE")])
        .collect();
    let mut seen_polls: HashMap<u64, u64> = HashMap::new();
    let mut seen_running: HashMap<u64, u64> = HashMap::new();
    let mut current: Option<(u64, u64)> = None;
    let mut blocks = 0;
    for block in view.blocks() {
        match block.state {
            BlockState::Valid => {}
            BlockState::Empty => continue,
            s => panic!("block {} is {s:?}", block.seq),
        }
        blocks += 1;
        let (mut named_here, mut switched_here) = (Vec::new(), Vec::new());
        for r in block.decode() {
            let r = r.unwrap();
            match &r.event {
                Event::ThreadName { thread, prio, name } => {
                    assert_eq!(*prio, 0);
                    assert_eq!(
                        std::str::from_utf8(name.as_bytes()).unwrap(),
                        names[thread],
                        "thread {thread:#x}"
                    );
                    named_here.push(*thread);
                }
                Event::ThreadSwitch { thread } => {
                    switched_here.push(*thread);
                    if let Some((t, since)) = current {
                        *seen_running.entry(t).or_default() += r.ts - since;
                    }
                    *seen_polls.entry(*thread).or_default() += 1;
                    current = Some((*thread, r.ts));
                }
                e => panic!("unexpected record {e:?}"),
            }
        }
        // FORMAT.md 8.4.1: the name lands before the switch, or right after it when the
        // switch opened this block.
        for t in switched_here {
            assert!(
                named_here.contains(&t),
                "block {} switches to {t:#x} but does not name it",
                block.seq
            );
        }
    }
    assert!(blocks > 4, "the trace spans {blocks} blocks");
    for (id, _) in TASKS {
        let id = u64::from(id);
        assert_eq!(seen_polls.get(&id), polls.get(&id), "polls of {id:#x}");
        assert_eq!(
            seen_running.get(&id),
            running.get(&id),
            "running time of {id:#x}"
        );
    }
    // The executor runs between every poll and the next switch; idle once per round
    // (the paused rounds' idles are not recorded, a second idle in a row is no switch).
    assert_eq!(seen_polls[&IDLE_THREAD], 190);
    assert_eq!(seen_polls[&EXECUTOR_THREAD], polls.values().sum::<u64>());

    // A task ends and another is spawned at the same address, with another name: the
    // switches to it from then on carry the new name, in this block and the next ones.
    let (id, _) = TASKS[0];
    for round in 0..40 {
        if round == 0 {
            Embassy::task_new(id);
            Embassy::task_send_info(
                id,
                TaskInfo {
                    name: "respawned\0",
                    priority: 0,
                    stack_base: 0,
                    stack_size: 0,
                },
            );
        }
        advance(5);
        Embassy::task_exec_begin(id);
        advance(20);
        Embassy::task_exec_end();
        Embassy::system_idle();
    }
    let mut dump = Vec::new();
    tracer
        .ring()
        .dump(|chunk| {
            dump.extend_from_slice(chunk);
            Ok::<(), ()>(())
        })
        .unwrap();
    let view = RingView::parse(&dump).expect("ring header");
    let mut names_after = Vec::new();
    for block in view.blocks().filter(|b| b.state == BlockState::Valid) {
        for r in block.decode() {
            if let Event::ThreadName { thread, name, .. } = r.unwrap().event {
                if thread == u64::from(id) {
                    names_after.push(String::from_utf8(name.as_bytes().to_vec()).unwrap());
                }
            }
        }
    }
    let first_new = names_after.iter().position(|n| n == "respawned").unwrap();
    assert!(
        names_after[first_new..].iter().all(|n| n == "respawned"),
        "{names_after:?}"
    );
    assert!(
        names_after.len() - first_new > 1,
        "re-emitted in later blocks"
    );
}
