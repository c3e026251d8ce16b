//! Issue 17: threads named by THREAD records, per-thread CPU time and interrupt time in
//! `tracemark stats`, names in `tracemark decode`. A simulated RTOS drives the real
//! encoder (switches through `thread_switch_named`, interrupts as kernel entries of
//! path Interrupt and their exits) and keeps its own truth: what each thread ran, how
//! often it was switched in, each interrupt's durations. The CLI must report exactly
//! that; with a block lost, it must report the lost window and give its time to no one.

use std::cell::Cell;
use std::collections::BTreeMap;

use crate::common::{tracemark, tracemark_ok};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tracemark::{Config, EntryPath, KernelEntry, Mode, Tracer};
use tracemark_format::ring::{BlockState, RingView};

const THREADS: [(u64, u32, &str); 4] = [
    (0x2000_0100, 0, "IDLE"),
    (0x2000_0400, 1, "logger"),
    (0x2000_0800, 2, "consumer"),
    (0x2000_0c00, 3, "producer"),
];

#[derive(Default, Debug)]
struct Truth {
    running: BTreeMap<u64, u64>,
    switched_in: BTreeMap<u64, u64>,
    isr: BTreeMap<u32, Vec<u64>>,
    /// Ticks in kernel entries (here: interrupts) taken while each thread ran.
    kernel: BTreeMap<u64, u64>,
    first_ts: u64,
    first_switch: u64,
    last_ts: u64,
}

/// Runs the simulated RTOS into a ring of `blocks` blocks of 1 KiB; returns the ring
/// image and the truth.
fn simulate(mode: Mode, blocks: usize, steps: u32, seed: u64) -> (Vec<u8>, Truth) {
    let mut words = vec![0u64; (192 + blocks * 1024) / 8];
    // SAFETY: the Vec<u64> holds `len * 8` initialised bytes, 8-aligned; this byte view
    // is the only one used while the tracer lives.
    let mem =
        unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 8) };
    let clock = Cell::new(1_000u64);
    let config = Config {
        mode,
        block_size: 1024,
        clock_hz: 25_000_000,
        ..Config::new()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut truth = Truth {
        first_ts: 1_000,
        ..Truth::default()
    };
    {
        let t = Tracer::new(&mut *mem, &config, || clock.get()).unwrap();
        for (id, prio, name) in THREADS {
            t.thread_name(id, prio, name.as_bytes());
        }
        let mut stamps = [0u32; 4];
        let mut current: Option<(u64, u64)> = None;
        for step in 0..steps {
            clock.set(clock.get() + rng.gen_range(1..400));
            let k = rng.gen_range(0..4);
            let (id, prio, name) = THREADS[k];
            let now = clock.get();
            if let Some((c, since)) = current {
                *truth.running.entry(c).or_default() += now - since;
            } else {
                truth.first_switch = now;
            }
            t.thread_switch_named(id, prio, name.as_bytes(), &mut stamps[k]);
            *truth.switched_in.entry(id).or_default() += 1;
            current = Some((id, now));
            // Interrupts while the thread runs: the tick (15) often, a timer (8) less.
            for _ in 0..rng.gen_range(0..3) {
                clock.set(clock.get() + rng.gen_range(1..300));
                let irq = if step % 3 == 0 { 8 } else { 15 };
                let start = clock.get();
                t.kernel_entry(KernelEntry::other(EntryPath::Interrupt, 0, irq));
                clock.set(clock.get() + rng.gen_range(20..120));
                t.kernel_exit();
                truth.isr.entry(irq).or_default().push(clock.get() - start);
                *truth.kernel.entry(id).or_default() += clock.get() - start;
            }
        }
        clock.set(clock.get() + 50);
        t.interrupt(3);
        let (c, since) = current.unwrap();
        *truth.running.entry(c).or_default() += clock.get() - since;
        truth.last_ts = clock.get();
    }
    (mem.to_vec(), truth)
}

fn stats(bytes: &[u8]) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rtos.bin");
    std::fs::write(&path, bytes).unwrap();
    let p = path.to_str().unwrap();
    // A damaged dump exits 1 after printing everything it could decode.
    let run = |args: &[&str]| {
        let out = tracemark(args);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let json: Value = serde_json::from_str(&run(&["stats", p, "--json"])).unwrap();
    let text = run(&["stats", p]);
    (json["threads"].clone(), text)
}

fn by_name(report: &Value) -> BTreeMap<String, Value> {
    report["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap_or("?").to_string(), t.clone()))
        .collect()
}

#[test]
fn per_thread_time_and_interrupt_time_equal_the_truth() {
    let (bytes, truth) = simulate(Mode::Drop, 64, 400, 17);
    let (r, text) = stats(&bytes);
    let observed = truth.last_ts - truth.first_ts;
    assert_eq!(r["observed_ticks"], observed);
    assert_eq!(r["unknown_ticks"], truth.first_switch - truth.first_ts);
    assert_eq!(r["lost_ticks"], 0);
    assert_eq!(r["lost_windows"].as_array().unwrap().len(), 0);
    let threads = by_name(&r);
    assert_eq!(threads.len(), 4);
    for (id, prio, name) in THREADS {
        let t = &threads[name];
        assert_eq!(t["thread"], id, "{name}");
        assert_eq!(t["prio"], prio, "{name}");
        assert_eq!(t["running_ticks"], truth.running[&id], "{name} running");
        assert_eq!(t["switched_in"], truth.switched_in[&id], "{name} switches");
        let kernel = truth.kernel.get(&id).copied().unwrap_or(0);
        assert!(kernel > 0, "{name}: the simulation interrupted it");
        assert_eq!(t["kernel_ticks"], kernel, "{name} kernel time");
        assert_eq!(
            t["user_ticks"],
            truth.running[&id] - kernel,
            "{name} user time"
        );
        let pct = truth.running[&id] as f64 * 100.0 / observed as f64;
        assert!(
            (t["cpu_percent"].as_f64().unwrap() - pct).abs() < 1e-9,
            "{name} share"
        );
        assert_eq!(t["idle"], name == "IDLE");
        assert!(text.contains(name), "text names {name}");
        let row = text
            .lines()
            .find(|l| {
                let mut w = l.split_whitespace();
                w.next() == Some(&format!("{id:#x}")) && w.next() == Some(name)
            })
            .unwrap_or_else(|| panic!("no text row for {name}: {text}"));
        assert!(
            row.split_whitespace().any(|w| w == kernel.to_string()),
            "{name}: kernel ticks {kernel} not in {row:?}"
        );
    }
    assert!(
        text.contains("kernel ticks") && text.contains("user ticks"),
        "{text}"
    );
    assert_eq!(r["idle_ticks"], truth.running[&THREADS[0].0]);
    let isrs = r["interrupts"].as_array().unwrap();
    assert_eq!(isrs.len(), truth.isr.len());
    for i in isrs {
        let irq = i["irq"].as_u64().unwrap() as u32;
        let mut d = truth.isr[&irq].clone();
        d.sort_unstable();
        let n = d.len();
        assert_eq!(i["count"], n as u64, "irq {irq}");
        assert_eq!(i["timed"], n as u64);
        assert_eq!(i["total_ticks"], d.iter().sum::<u64>());
        assert_eq!(i["min_ticks"], d[0]);
        assert_eq!(i["max_ticks"], d[n - 1]);
        // Nearest rank: the smallest value with at least ceil(p n / 100) values <= it.
        assert_eq!(
            i["p50_ticks"],
            d[(n * 50).div_ceil(100) - 1],
            "irq {irq} p50"
        );
        assert_eq!(
            i["p90_ticks"],
            d[(n * 90).div_ceil(100) - 1],
            "irq {irq} p90"
        );
    }
    assert!(text.contains("interrupt time"), "{text}");

    // decode names the thread a switch goes to, and prints THREAD records.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rtos.bin");
    std::fs::write(&path, &bytes).unwrap();
    let decoded = tracemark_ok(&["decode", path.to_str().unwrap()]);
    assert!(decoded.contains("to=producer"), "{}", &decoded[..2000]);
    assert!(decoded.contains("prio=2 name=consumer"));
    let json = tracemark_ok(&["decode", path.to_str().unwrap(), "--format", "json"]);
    assert!(json.contains("\"kind\":\"SWITCH\",\"thread\":536873984,\"name\":\"producer\""));
}

/// An overwrite-mode ring that lost every creation still names each thread it switches
/// to (re-emitted THREAD records), and the times add up to the observed time.
#[test]
fn an_overwritten_ring_still_names_its_threads() {
    let (bytes, truth) = simulate(Mode::Overwrite, 4, 2000, 5);
    let view = RingView::parse(&bytes).unwrap();
    assert!(view.header.overwritten.get() > 0, "the ring wrapped");
    let (r, _) = stats(&bytes);
    let threads = r["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 4);
    let mut sum = r["unknown_ticks"].as_u64().unwrap() + r["lost_ticks"].as_u64().unwrap();
    for t in threads {
        let id = t["thread"].as_u64().unwrap();
        let (_, prio, name) = THREADS.iter().find(|x| x.0 == id).unwrap();
        assert_eq!(t["name"], *name);
        assert_eq!(t["prio"], *prio);
        let run = t["running_ticks"].as_u64().unwrap();
        assert!(run <= truth.running[&id], "{name}: no more than it ran");
        sum += run;
    }
    assert_eq!(sum, r["observed_ticks"].as_u64().unwrap());
}

/// A block lost in the middle (torn) is a lost window: reported, its time given to no
/// thread, and every thread's time still at most the truth.
#[test]
fn a_lost_block_is_a_lost_window_not_counted() {
    let (mut bytes, truth) = simulate(Mode::Drop, 64, 400, 23);
    let view = RingView::parse(&bytes).unwrap();
    let valid: Vec<usize> = view
        .blocks()
        .filter(|b| b.state == BlockState::Valid)
        .map(|b| b.offset)
        .collect();
    assert!(valid.len() >= 4, "{} blocks", valid.len());
    let victim = valid[valid.len() / 2];
    // Tear the block: a magic that is neither 0 nor TMBK.
    bytes[victim..victim + 4].copy_from_slice(b"XXXX");
    let (r, text) = stats(&bytes);
    let windows = r["lost_windows"].as_array().unwrap();
    assert_eq!(windows.len(), 1, "{r}");
    let lost = r["lost_ticks"].as_u64().unwrap();
    assert!(lost > 0);
    let w = &windows[0];
    assert_eq!(lost, u64_of(&w["to_ts"]) - u64_of(&w["from_ts"]));
    let mut sum = r["unknown_ticks"].as_u64().unwrap() + lost;
    let mut short = 0;
    for t in r["threads"].as_array().unwrap() {
        let id = t["thread"].as_u64().unwrap();
        let run = t["running_ticks"].as_u64().unwrap();
        assert!(run <= truth.running[&id]);
        short += truth.running[&id] - run;
        sum += run;
    }
    assert_eq!(sum, r["observed_ticks"].as_u64().unwrap());
    // Exactly the window's time is missing from the threads.
    assert_eq!(short, lost);
    assert!(text.contains("lost windows: 1"), "{text}");
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

/// Rings written by version-1 and version-2 encoders (no THREAD records; the header's
/// `version` says 1 or 2, with its CRC) decode as before: the same records as the same
/// ring marked version 3.
#[test]
fn older_format_versions_still_decode() {
    let mut words = vec![0u64; (192 + 4 * 256) / 8];
    // SAFETY: as in `simulate`.
    let mem =
        unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 8) };
    let clock = Cell::new(0u64);
    {
        let config = Config {
            block_size: 256,
            ..Config::new()
        };
        let t = Tracer::new(&mut *mem, &config, || clock.get()).unwrap();
        for i in 0..50u64 {
            clock.set(i * 7);
            t.kernel_entry(KernelEntry::other(EntryPath::Interrupt, 0, 15));
            t.thread_switch(0x2000_0000 + (i % 3) * 0x100);
            t.kernel_exit();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for version in [1u16, 2, 3] {
        let mut ring = mem.to_vec();
        ring[8..10].copy_from_slice(&version.to_le_bytes());
        let crc = tracemark_format::ring::HEADER_CRC.checksum(&ring[..48]);
        ring[48..52].copy_from_slice(&crc.to_le_bytes());
        let path = dir.path().join(format!("v{version}.bin"));
        std::fs::write(&path, &ring).unwrap();
        outputs.push(tracemark_ok(&["decode", path.to_str().unwrap()]));
    }
    assert_eq!(outputs[0].lines().count(), 150);
    assert_eq!(outputs[0], outputs[2]);
    assert_eq!(outputs[1], outputs[2]);
}
