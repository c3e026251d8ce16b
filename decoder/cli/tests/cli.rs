//! The `tracemark` binary on ring images written by the real encoder.

use tracemark::{KernelEntry, Mode};
use tracemark_tests::{cpu_ring, set_version, TestClock, TestTracer};

use tracemark_format::ring::RING_HEADER_LEN;

use crate::util::{run, write};

/// A deterministic workload: `n` rounds of syscall, interrupt, function call, user event.
fn workload(n: u64, seed: u64) -> impl FnOnce(&TestTracer<'_, '_>, &TestClock) {
    move |t, c| {
        for i in 0..n {
            let adv = |d: u64| c.set(c.get() + d);
            t.kernel_entry(KernelEntry::syscall(
                [1, 2, 5][(i % 3) as usize],
                10,
                i % 2 == 0,
                (i % 50) as u32,
            ));
            adv(100 + (i * 7 + seed) % 900);
            if i % 4 == 0 {
                t.interrupt(27 + (i % 3) as u32);
                adv(10);
            }
            t.kernel_exit();
            adv(33 + seed);
            t.function_entry(0x4000 + i % 5);
            adv(5);
            t.function_exit(0x4000 + i % 5);
            if i % 10 == 0 {
                t.user(7, b"hi");
            }
            adv(17);
        }
    }
}

fn two_cpu_dump() -> Vec<u8> {
    let mut d = cpu_ring(0, Mode::Drop, 1024, 16, workload(150, 1));
    d.extend(cpu_ring(1, Mode::Drop, 1024, 16, workload(120, 2)));
    d
}

#[test]
fn stats_counts_equal_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "d.bin", &two_cpu_dump());
    let (code, out, err) = run(&["stats", f.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // Per round: KENTRY, KEXIT, FENTRY, FEXIT; IRQ every 4th; USER every 10th.
    let rounds = 150 + 120;
    let irqs = 150u64.div_ceil(4) + 120u64.div_ceil(4);
    let users = 15 + 12;
    assert_eq!(v["records_per_kind"]["KENTRY"], rounds);
    assert_eq!(v["records_per_kind"]["KEXIT"], rounds);
    assert_eq!(v["records_per_kind"]["FENTRY"], rounds);
    assert_eq!(v["records_per_kind"]["IRQ"], irqs);
    assert_eq!(v["records_per_kind"]["USER"], users);
    assert_eq!(v["total_records"], 4 * rounds + irqs + users);
    assert_eq!(v["cpus"][0]["records"], 4 * 150 + 150u64.div_ceil(4) + 15);
    assert_eq!(v["unmatched_exits"], 0);
    assert_eq!(v["functions"]["distinct"], 5);
    let call = v["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Call")
        .unwrap();
    assert_eq!(call["count"], 50 + 40);
    assert_eq!(call["exits"], 50 + 40);
    assert_eq!(v["torn_blocks"], 0);
    assert_eq!(v["lost"], 0);
}

#[test]
fn every_record_from_the_index_equals_the_linear_decode() {
    let dir = tempfile::tempdir().unwrap();
    // A wrapped overwrite ring (small blocks) and a drop-mode ring.
    let mut d = cpu_ring(0, Mode::Overwrite, 256, 8, workload(300, 3));
    d.extend(cpu_ring(1, Mode::Drop, 512, 8, workload(40, 4)));
    let f = write(dir.path(), "w.bin", &d);
    let fs = f.to_str().unwrap();
    let (code, _, err) = run(&["index", fs]);
    assert_eq!(code, 0, "{err}");
    let idx = format!("{fs}.idx");
    for cpu in ["0", "1"] {
        let (code, out, err) = run(&["decode", fs, "--cpu", cpu]);
        assert_eq!(code, 0, "{err}");
        let lines: Vec<&str> = out.lines().filter(|l| !l.contains(" #- ")).collect();
        assert!(lines.len() > 50);
        if cpu == "0" {
            assert!(
                !lines[0].starts_with("cpu0 #0 "),
                "ring 0 wrapped: {}",
                lines[0]
            );
        }
        for line in lines {
            let n = line.split(' ').nth(1).unwrap().trim_start_matches('#');
            let (code, q, err) = run(&["query", &idx, "--record", n, "--cpu", cpu]);
            assert_eq!(code, 0, "{err}");
            assert_eq!(q.trim_end(), line);
        }
    }
    // Kind queries agree with a filtered decode.
    let (_, all, _) = run(&["decode", fs, "--kind", "IRQ"]);
    let (_, q, _) = run(&["query", &idx, "--kind", "irq", "--limit", "5"]);
    let first5: Vec<&str> = all.lines().take(5).collect();
    assert_eq!(q.lines().collect::<Vec<_>>(), first5);
}

#[test]
fn text_output_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let d = cpu_ring(0, Mode::Drop, 1024, 4, |t, c| {
        t.kernel_entry(KernelEntry::syscall(1, 10, true, 42));
        c.set(c.get() + 1234);
        t.interrupt(27);
        t.kernel_exit();
        t.kernel_exit();
        t.function_entry(0x800_0100);
        t.user(9, b"hello");
        t.image(0x4000_0000, 0x2_0000, 0xfeed);
        t.record(tracemark::Event::KernelEntry(KernelEntry::other(
            tracemark::EntryPath::Interrupt,
            1,
            30,
        )));
    });
    let f = write(dir.path(), "s.bin", &d);
    let (code, out, err) = run(&["decode", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!(out);
    let (_, json, _) = run(&["decode", f.to_str().unwrap(), "--format", "json"]);
    for l in json.lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap();
    }
    let (_, csv, _) = run(&["decode", f.to_str().unwrap(), "--format", "csv"]);
    assert_eq!(csv.lines().count(), 9, "header and 8 records");
}

/// A ring format version no release reads.
const UNSUPPORTED_VERSION: u16 = 200;

/// Exit code 0 or 1, never a panic (101) or a signal; a fatal error is one line.
fn check_clean(args: &[&str]) -> (i32, String, String) {
    let (code, out, err) = run(args);
    assert!(code == 0 || code == 1, "{args:?}: exit {code}\n{err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    if code == 1 {
        let last = err.lines().last().unwrap_or("");
        assert!(last.starts_with("tracemark: "), "{args:?}: {err}");
        assert!(last.contains("at byte "), "{args:?}: {err}");
    }
    (code, out, err)
}

#[test]
fn damaged_inputs_give_clean_errors_or_partial_output() {
    let dir = tempfile::tempdir().unwrap();
    let good = two_cpu_dump();
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for cut in (0..good.len())
        .step_by(1024)
        .chain((100..good.len()).step_by(1500))
    {
        cases.push((format!("truncated at {cut}"), good[..cut].to_vec()));
    }
    for i in [0usize, 8, 12, 16, 20, 44, 60, 64, 200, 300, 1500] {
        let mut d = good.clone();
        d[i] ^= 0x5a;
        cases.push((format!("flip {i}"), d));
    }
    let mut x = 12345u64;
    let random: Vec<u8> = (0..20000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    cases.push(("random".into(), random.clone()));
    let mut d = good.clone();
    d[300..1300].copy_from_slice(&random[..1000]);
    cases.push(("random block body".into(), d));
    // A valid-CRC header with a version no release reads (2 is this round's bump).
    let mut d = good.clone();
    set_version(&mut d, UNSUPPORTED_VERSION);
    cases.push(("unsupported version".into(), d.clone()));
    let intact = write(dir.path(), "good.bin", &good);
    let (_, cpu1_text, _) = run(&["decode", intact.to_str().unwrap(), "--cpu", "1"]);
    let (_, cpu1_json, _) = run(&[
        "decode",
        intact.to_str().unwrap(),
        "--cpu",
        "1",
        "--format",
        "json",
    ]);
    assert!(!cpu1_text.is_empty());
    for (name, bytes) in &cases {
        let f = write(dir.path(), "bad.bin", bytes);
        let fs = f.to_str().unwrap();
        for cmd in [
            &["decode", fs][..],
            &["decode", fs, "--format", "json"],
            &["stats", fs, "--json"],
            &["index", fs],
        ] {
            let (code, out, err) = check_clean(cmd);
            if name == "unsupported version" {
                // The first ring is refused with its version named (damage: exit 1),
                // and the second ring is still found by scanning and decoded.
                assert_eq!(code, 1, "{cmd:?}: {err}");
                assert!(err.contains("version 200 is not supported"), "{err}");
                if cmd[0] == "decode" {
                    let want = if cmd.len() == 2 {
                        &cpu1_text
                    } else {
                        &cpu1_json
                    };
                    assert_eq!(&out, want, "{cmd:?}: all of cpu1's records");
                }
            }
            if name == "random" {
                assert_eq!(code, 1);
                assert!(
                    err.contains("bad.bin: at byte 0: not a tracemark ring"),
                    "{err}"
                );
            }
        }
    }
    // An unsupported version in the only ring: refused with the version named.
    let one = cpu_ring(0, Mode::Drop, 1024, 4, workload(10, 1));
    let mut d = one.clone();
    set_version(&mut d, UNSUPPORTED_VERSION);
    let f = write(dir.path(), "v2.bin", &d);
    let (code, _, err) = check_clean(&["decode", f.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("version 200 is not supported"), "{err}");
    // Version 1 (the previous format, a subset of version 2) still decodes, identically.
    let mut d = one.clone();
    set_version(&mut d, 1);
    let f1 = write(dir.path(), "v1.bin", &d);
    let f2 = write(dir.path(), "v2.bin", &one);
    let (code, out1, err) = check_clean(&["decode", f1.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (_, out2, _) = check_clean(&["decode", f2.to_str().unwrap()]);
    assert_eq!(out1, out2);
    assert!(out1.lines().count() > 10);
    // Truncated mid-block, before the end of the ring's used part (a cut past it is a
    // dump of the used part, FORMAT.md 7.3): complete blocks still decode, non-zero exit.
    let three_blocks = cpu_ring(0, Mode::Drop, 1024, 4, workload(200, 1));
    assert_ne!(
        three_blocks[RING_HEADER_LEN + 2 * 1024..RING_HEADER_LEN + 2 * 1024 + 4],
        [0; 4],
        "the workload opens block 2"
    );
    let f = write(
        dir.path(),
        "t.bin",
        &three_blocks[..RING_HEADER_LEN + 1024 + 100],
    );
    let (code, out, err) = check_clean(&["decode", f.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(out.lines().count() > 10);
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn raw_memory_image_rings_are_found_by_scanning() {
    let dir = tempfile::tempdir().unwrap();
    let mut img = vec![0xeeu8; 4096];
    img.extend(cpu_ring(0, Mode::Drop, 1024, 4, workload(20, 1)));
    img.extend(vec![0u8; 808]);
    img.extend(cpu_ring(5, Mode::Drop, 1024, 4, workload(20, 1)));
    img.extend(vec![0x11u8; 3000]);
    let f = write(dir.path(), "core", &img);
    let (code, out, err) = check_clean(&["stats", f.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["cpus"].as_array().unwrap().len(), 2, "{err}");
    assert_eq!(v["cpus"][1]["cpu"], 5);
    assert_eq!(code, 1, "skipped garbage is reported");
}

#[test]
fn stale_and_foreign_indexes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = two_cpu_dump();
    let f = write(dir.path(), "d.bin", &d);
    let fs = f.to_str().unwrap();
    assert_eq!(run(&["index", fs]).0, 0);
    let idx = format!("{fs}.idx");
    let (code, _, err) = check_clean(&["query", fs, "--record", "1"]);
    assert_eq!(code, 1);
    assert!(err.contains("not a tracemark index"), "{err}");
    let mut changed = d.clone();
    changed[RING_HEADER_LEN + 40] ^= 1;
    std::fs::write(&f, &changed).unwrap();
    let (code, _, err) = run(&["query", &idx, "--record", "1"]);
    assert_eq!(code, 1);
    assert!(err.contains("index is stale"), "{err}");
    let (code, out, _) = run(&["query", &idx, "--summary"]);
    assert_eq!(code, 0);
    assert!(out.contains("total records"));
}

/// `--verbose` and `--threads` are declared once (`cmd::VerboseArg`, `cmd::ThreadsArg`)
/// and flattened into every command that has them: each command's `--help` shows the
/// same text, and `extract`, which decodes nothing, has no `--threads`.
#[test]
fn shared_options_read_the_same_in_every_command() {
    const VERBOSE: &str = "List every problem found (torn, corrupt or skipped blocks, damaged log lines...), not just the first and a count";
    const THREADS: &str = "Worker threads (default: available cores, at most 8)";
    let help = |cmd: &str| {
        let (code, out, err) = run(&[cmd, "--help"]);
        assert_eq!(code, 0, "{cmd} --help: {err}");
        out
    };
    for cmd in ["decode", "stats", "index", "export"] {
        let h = help(cmd);
        assert_eq!(h.matches(VERBOSE).count(), 1, "{cmd}: {h}");
        assert_eq!(h.matches(THREADS).count(), 1, "{cmd}: {h}");
    }
    let h = help("extract");
    assert_eq!(h.matches(VERBOSE).count(), 1, "{h}");
    assert!(!h.contains("--threads"), "{h}");
}

/// Output files go through a temporary file of a unique name beside them: a leftover
/// `OUT.tmp` (another run's, or a crash's) neither stops the command nor is touched,
/// and nothing else is left behind.
#[test]
fn output_files_do_not_collide_with_a_leftover_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let dump = write(dir.path(), "d.bin", &two_cpu_dump());
    let out = dir.path().join("d.idx");
    std::fs::create_dir(dir.path().join("d.idx.tmp")).unwrap();
    let (code, _, err) = run(&["index", dump.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, found, err) = run(&[
        "query",
        out.to_str().unwrap(),
        "--kind",
        "user",
        "--limit",
        "1",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(found.contains("USER"), "{found}");
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["d.bin", "d.idx", "d.idx.tmp"]);
}
