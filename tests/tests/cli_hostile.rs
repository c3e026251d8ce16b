//! Hostile inputs for every command (issue 7): damaged live ring headers, corrupted
//! indexes, extreme record counters, unreadable inputs. Each case must end in a one-line
//! error naming the file (and an offset where there is one) and a non-zero exit, with
//! everything decodable still printed; never a silent loss.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{json_lines, kernel_sim, tracemark, tracemark_ok, Sim};
use tracemark_format::ring::{offsets, RingView, RING_HEADER_LEN};

fn write(sim: &Sim, name: &str, bytes: &[u8]) -> PathBuf {
    let p = sim.dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn run(args: &[&str]) -> Output {
    tracemark(args)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The command failed (exit 1, no panic) with one stderr line naming `path`.
fn assert_one_line_error(out: &Output, path: &Path, what: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{what}: exit status: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: one stderr line: {err}");
    assert!(
        lines[0].contains(&path.display().to_string()),
        "{what}: names the file: {err}"
    );
}

/// Byte offsets of the rings of a dump laid end to end.
fn ring_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        out.push(at);
        at += RingView::parse(&bytes[at..]).unwrap().ring_len();
    }
    out
}

fn set_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn get_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

// ---- Point 2: a damaged live header must not hide a CPU in silence. ----

#[test]
fn a_damaged_commit_position_is_reported_and_its_ring_still_decoded() {
    for (mode, seed) in [("overwrite", 41u64), ("drop", 42)] {
        let sim = kernel_sim(30_000, 3, RING_HEADER_LEN + 40 * 512, mode, 512, seed);
        let bytes = std::fs::read(&sim.dump).unwrap();
        let full = tracemark_ok(&["decode", sim.dump_str(), "--format", "json"]);
        let rings = ring_offsets(&bytes);
        let at = rings[1] + offsets::COMMIT_POS;
        let good = get_u32(&bytes, at);
        let g = RingView::parse(&bytes[rings[1]..]).unwrap().geometry;
        let older = g.join(g.seq_back(g.split(good).seq, 5), 40);
        for (name, value) in [
            ("0x7fffffff", 0x7fff_ffffu32),
            ("zero", 0),
            ("five blocks back", older),
            ("impossible offset", g.join(g.split(good).seq, 5)),
        ] {
            let what = format!("{mode}, commit position {name}");
            let mut bad = bytes.clone();
            set_u32(&mut bad, at, value);
            let path = write(&sim, "commit.bin", &bad);
            let p = path.to_str().unwrap();
            let out = run(&["decode", p, "--format", "json"]);
            assert_one_line_error(&out, &path, &what);
            let err = stderr(&out);
            assert!(err.contains("commit position"), "{what}: {err}");
            assert!(err.contains(&format!("byte {at}")), "{what}: {err}");
            // Every record is still there: the blocks carry their own sequence numbers.
            let got = String::from_utf8(out.stdout).unwrap();
            assert_eq!(
                json_lines(&got),
                json_lines(&full),
                "{what}: all records decoded"
            );
            for cmd in ["stats", "index"] {
                let out = run(&[cmd, p]);
                assert_one_line_error(&out, &path, &format!("{what}, {cmd}"));
                assert!(stderr(&out).contains("commit position"), "{what}, {cmd}");
            }
        }
    }
}

#[test]
fn torn_blocks_the_protocol_does_not_explain_are_damage() {
    // Garble the sequence number of every block of CPU 1 but one: overwrite mode's
    // "torn, being reclaimed" explains one block at most.
    let sim = kernel_sim(30_000, 2, RING_HEADER_LEN + 20 * 512, "overwrite", 512, 43);
    let bytes = std::fs::read(&sim.dump).unwrap();
    let rings = ring_offsets(&bytes);
    let view = RingView::parse(&bytes[rings[1]..]).unwrap();
    let mut bad = bytes.clone();
    let blocks: Vec<_> = view.blocks().collect();
    for b in &blocks[..3] {
        let at = rings[1] + b.offset + offsets::BLOCK_SEQ;
        let seq = get_u32(&bad, at);
        set_u32(&mut bad, at, seq.wrapping_add(view.geometry.block_count));
    }
    let path = write(&sim, "torn.bin", &bad);
    let out = run(&["decode", path.to_str().unwrap()]);
    assert_one_line_error(&out, &path, "three blocks ahead of the commit position");
    // Exactly one such block is normal operation.
    let mut one = bytes.clone();
    let b = &blocks[0];
    let at = rings[1] + b.offset + offsets::BLOCK_SEQ;
    let ahead = get_u32(&one, at).wrapping_add(view.geometry.block_count);
    set_u32(&mut one, at, ahead);
    let path = write(&sim, "torn1.bin", &one);
    let out = run(&["decode", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

// ---- Point 4: one numbering rule, overflow reported as damage. ----

/// Record numbers of cpu 1 as `decode` prints them in text, JSON and CSV.
fn numbers_in_every_format(path: &str) -> [Vec<Option<u64>>; 3] {
    let text_out = run(&["decode", path, "--cpu", "1"]);
    let text: Vec<Option<u64>> = String::from_utf8(text_out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let n = l.split_whitespace().nth(1).unwrap();
            n.strip_prefix('#').unwrap().parse().ok()
        })
        .collect();
    let json_out = run(&["decode", path, "--cpu", "1", "--format", "json"]);
    let json: Vec<Option<u64>> = json_lines(std::str::from_utf8(&json_out.stdout).unwrap())
        .iter()
        .map(|v| v["n"].as_u64())
        .collect();
    let csv_out = run(&["decode", path, "--cpu", "1", "--format", "csv"]);
    let csv: Vec<Option<u64>> = String::from_utf8(csv_out.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().ok())
        .collect();
    [text, json, csv]
}

#[test]
fn extreme_counters_number_the_same_everywhere_and_are_damage() {
    let sim = kernel_sim(20_000, 2, RING_HEADER_LEN + 16 * 512, "overwrite", 512, 44);
    let bytes = std::fs::read(&sim.dump).unwrap();
    let rings = ring_offsets(&bytes);
    let view = RingView::parse(&bytes[rings[1]..]).unwrap();
    let a_block = view
        .blocks()
        .find(|b| b.state == tracemark_format::ring::BlockState::Valid)
        .unwrap();
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    for (name, v) in [
        ("overwritten 2^64-1", u64::MAX),
        ("overwritten 2^64-100", u64::MAX - 100),
        ("overwritten 2^63", 1u64 << 63),
    ] {
        let mut bad = bytes.clone();
        let at = rings[1] + offsets::OVERWRITTEN;
        bad[at..at + 8].copy_from_slice(&v.to_le_bytes());
        cases.push((name, bad));
    }
    let mut bad = bytes.clone();
    set_u32(
        &mut bad,
        rings[1] + a_block.offset + offsets::BLOCK_RECORDS,
        u32::MAX,
    );
    cases.push(("block records 2^32-1", bad));
    for (name, bad) in cases {
        let path = write(&sim, "numbers.bin", &bad);
        let p = path.to_str().unwrap();
        let [text, json, csv] = numbers_in_every_format(p);
        assert!(!json.is_empty(), "{name}");
        assert_eq!(text, json, "{name}: text and JSON number alike");
        assert_eq!(csv, json, "{name}: CSV and JSON number alike");
        // Numbers never wrap: they increase along each block's records.
        let numbered: Vec<u64> = json.iter().flatten().copied().collect();
        let mut sorted = numbered.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), numbered.len(), "{name}: no number twice");
        let out = run(&["decode", p]);
        if name == "overwritten 2^63" {
            // Large but possible: numbers start there, no damage.
            assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
            assert_eq!(numbered[0], 1 << 63, "{name}");
        } else {
            assert_one_line_error(&out, &path, name);
            assert!(
                stderr(&out).contains("damaged header"),
                "{name}: {}",
                stderr(&out)
            );
        }
        // The index and query --record agree with decode.
        let idx = sim.dir.path().join("numbers.idx");
        let _ = run(&["index", p, "-o", idx.to_str().unwrap()]);
        let jl = json_lines(
            std::str::from_utf8(&run(&["decode", p, "--cpu", "1", "--format", "json"]).stdout)
                .unwrap(),
        );
        for v in jl.iter().filter(|v| v["n"].is_u64()).step_by(97) {
            let n = v["n"].as_u64().unwrap().to_string();
            let q = run(&[
                "query",
                idx.to_str().unwrap(),
                "--record",
                &n,
                "--cpu",
                "1",
                "--format",
                "json",
            ]);
            let got = json_lines(std::str::from_utf8(&q.stdout).unwrap());
            assert_eq!(got.len(), 1, "{name}: query --record {n}: {}", stderr(&q));
            assert_eq!(&got[0], v, "{name}: query --record {n} equals decode");
        }
    }
}

// ---- Point 3: the index checks itself; facts come from the dump; edited blocks. ----

/// Query invocations over `idx` (the source recorded in it).
fn queries(idx: &str) -> Vec<Vec<String>> {
    let q = |a: &[&str]| {
        let mut v = vec!["query".to_string(), idx.to_string()];
        v.extend(a.iter().map(|s| s.to_string()));
        v
    };
    vec![
        q(&["--summary"]),
        q(&["--record", "8000", "--format", "json"]),
        q(&["--kind", "IRQ", "--limit", "5", "--format", "json"]),
        q(&["--kind", "USER", "--format", "json"]),
        q(&["--from", "0.001", "--to", "0.002", "--format", "json"]),
    ]
}

fn run_owned(args: &[String]) -> Output {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&a)
}

#[test]
fn a_damaged_index_is_refused_by_every_query() {
    let sim = kernel_sim(20_000, 2, RING_HEADER_LEN + 32 * 512, "overwrite", 512, 45);
    let idx = sim.dir.path().join("d.idx");
    let idx_s = idx.to_str().unwrap().to_string();
    tracemark_ok(&["index", sim.dump_str(), "-o", &idx_s]);
    let good = std::fs::read(&idx).unwrap();
    let expected: Vec<Output> = queries(&idx_s).iter().map(|a| run_owned(a)).collect();
    for e in &expected {
        assert_eq!(e.status.code(), Some(0), "{}", stderr(e));
    }
    // Every 5th byte, and every byte of the header, flipped in turn. A query either
    // refuses the index (one line naming it) or, if it did not use the damaged entry,
    // answers exactly as with the intact index: never a wrong answer with exit 0.
    let positions: Vec<usize> = (0..128).chain((128..good.len()).step_by(5)).collect();
    let mut refused = 0;
    for (i, &at) in positions.iter().enumerate() {
        let mut bad = good.clone();
        bad[at] ^= 1 << (i % 8);
        std::fs::write(&idx, &bad).unwrap();
        for (q, a) in queries(&idx_s).iter().enumerate() {
            // All queries for some positions, one for the others (run time).
            if i % 16 != 0 && q != i % 5 {
                continue;
            }
            let out = run_owned(a);
            if out.status.code() == Some(0) {
                assert!(
                    at >= 128,
                    "index byte {at}: a damaged header is always refused"
                );
                assert_eq!(
                    out.stdout, expected[q].stdout,
                    "index byte {at}: {a:?} answered differently with exit 0"
                );
                continue;
            }
            refused += 1;
            assert_one_line_error(&out, &idx, &format!("index byte {at}: {a:?}"));
            let err = stderr(&out);
            assert!(
                err.contains("checksum") || err.contains("damaged") || at < 12,
                "index byte {at}: {err}"
            );
        }
    }
    assert!(refused > positions.len() / 4, "{refused} refusals");
}

#[test]
fn facts_come_from_the_dump_not_the_index() {
    use tracemark_decoder::index::{index_checksum, IndexHeader, IndexRing};
    use zerocopy::FromBytes;
    let sim = kernel_sim(20_000, 2, RING_HEADER_LEN + 32 * 512, "overwrite", 512, 46);
    let idx = sim.dir.path().join("d.idx");
    let idx_s = idx.to_str().unwrap().to_string();
    tracemark_ok(&["index", sim.dump_str(), "-o", &idx_s]);
    let good = std::fs::read(&idx).unwrap();
    let before: Vec<String> = queries(&idx_s)[1..]
        .iter()
        .map(|a| String::from_utf8(run_owned(a).stdout).unwrap())
        .collect();
    // An index that is whole (its checksum matches) but says another clock frequency and
    // syscall numbering, as an index of another dump would.
    let mut other = good.clone();
    let hl = std::mem::size_of::<IndexHeader>();
    let (ring, _) = IndexRing::mut_from_prefix(&mut other[hl..]).unwrap();
    ring.clock_hz = 1_000.into();
    ring.abi ^= 1;
    let path_at = u64::from_le_bytes(
        other[std::mem::offset_of!(IndexHeader, path_offset)..][..8]
            .try_into()
            .unwrap(),
    ) as usize;
    let nrings = 2;
    let ring_bytes = nrings * std::mem::size_of::<IndexRing>();
    let sum = index_checksum(&other, ring_bytes, &other[path_at..]);
    let at = std::mem::offset_of!(IndexHeader, checksum);
    other[at..at + 8].copy_from_slice(&sum.to_le_bytes());
    std::fs::write(&idx, &other).unwrap();
    let after: Vec<String> = queries(&idx_s)[1..]
        .iter()
        .map(|a| String::from_utf8(run_owned(a).stdout).unwrap())
        .collect();
    assert_eq!(after, before, "times and names come from the dump");
    // An index naming another CPU than the dump's ring is refused.
    let (ring, _) = IndexRing::mut_from_prefix(&mut other[hl..]).unwrap();
    ring.cpu = 0x7fff_ffff.into();
    let sum = index_checksum(&other, ring_bytes, &other[path_at..]);
    other[at..at + 8].copy_from_slice(&sum.to_le_bytes());
    std::fs::write(&idx, &other).unwrap();
    let out = run(&["query", &idx_s, "--record", "3"]);
    assert_one_line_error(&out, &idx, "index names another cpu");
    assert!(stderr(&out).contains("cpu2147483647"), "{}", stderr(&out));
}

#[test]
fn a_same_length_edit_in_the_middle_of_a_large_dump_is_noticed() {
    // One CPU, 2 MiB ring: the block edited is far from the first and last 256 KiB that
    // the fingerprint covers.
    let sim = kernel_sim(400_000, 1, 2 << 20, "drop", 4096, 47);
    let idx = sim.dir.path().join("d.idx");
    let idx_s = idx.to_str().unwrap().to_string();
    tracemark_ok(&["index", sim.dump_str(), "-o", &idx_s]);
    let mut bytes = std::fs::read(&sim.dump).unwrap();
    assert!(bytes.len() > 1 << 20);
    let (mid, ts) = {
        let view = RingView::parse(&bytes).unwrap();
        let b = view
            .blocks()
            .find(|b| b.offset > bytes.len() / 2 && !b.records.is_empty())
            .expect("a block in the middle");
        (b.offset, b.decode().next().unwrap().unwrap().ts)
    };
    // A record number inside that block, from a full decode.
    let all = json_lines(&tracemark_ok(&[
        "decode",
        sim.dump_str(),
        "--format",
        "json",
    ]));
    let v = all.iter().find(|v| v["ts"].as_u64() == Some(ts)).unwrap();
    let seq_n = v["n"].as_u64().unwrap();
    // Edit a record byte in place (same length).
    bytes[mid + 40] ^= 0x01;
    std::fs::write(&sim.dump, &bytes).unwrap();
    let t = format!("{ts}t");
    let n = seq_n.to_string();
    for a in [
        vec!["query", &idx_s, "--record", &n],
        vec!["query", &idx_s, "--from", &t, "--to", &t],
    ] {
        let out = run(&a);
        assert_one_line_error(&out, &idx, &format!("{a:?}"));
        let err = stderr(&out);
        assert!(err.contains("differs from the indexed one"), "{a:?}: {err}");
        assert!(err.contains(&format!("byte {mid}")), "{a:?}: {err}");
    }
}

// ---- Point 5: many rings decode in time linear in their number. ----

#[test]
fn many_rings_decode_in_linear_time() {
    // 50 small rings (2 blocks of 256 bytes each), concatenated into 2,000 and 8,000
    // rings: four times the rings must cost about four times the time, not sixteen.
    let sim = kernel_sim(20_000, 50, 704, "overwrite", 256, 48);
    let one = std::fs::read(&sim.dump).unwrap();
    // The decoder's CPU time (user and system, all its threads), not wall time: the
    // wall time of a run grows with whatever else the machine runs (other tests in
    // parallel, other builds), by a factor that differs from one run to the next; the
    // CPU time it spends on its own work does not.
    let time = |copies: usize| -> (f64, usize) {
        let path = write(&sim, &format!("rings{copies}.bin"), &one.repeat(copies));
        let p = path.to_str().unwrap();
        let mut best = f64::MAX;
        let mut lines = 0;
        for _ in 0..3 {
            let (out, cpu) = run_cpu_timed(&["decode", p, "--format", "csv"]);
            best = best.min(cpu);
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            lines = out.stdout.iter().filter(|&&b| b == b'\n').count();
        }
        (best, lines)
    };
    let (small, small_lines) = time(40);
    let (large, large_lines) = time(160);
    assert_eq!(
        large_lines - 1,
        4 * (small_lines - 1),
        "every record of every copy"
    );
    let ratio = large / small;
    eprintln!("{small:.3} s, {large:.3} s of CPU time: {ratio:.1}x");
    assert!(
        ratio < 9.0,
        "4x the rings took {ratio:.1}x the CPU time ({small:.3} s, {large:.3} s): not linear"
    );
}

/// Runs `tracemark args` to its end and returns its output and the CPU time it used,
/// user and system, all threads, in seconds (`wait4`'s resource usage of that child
/// alone: the other tests' children running meanwhile are not counted).
fn run_cpu_timed(args: &[&str]) -> (Output, f64) {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, ExitStatus, Stdio};

    // Reaped by `wait4` below, which also gives its resource usage.
    #[allow(clippy::zombie_processes)]
    let mut child = Command::new(crate::common::tracemark_bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        err_pipe.read_to_end(&mut v).unwrap();
        v
    });
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    let stderr = err.join().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: all-zero bytes are a valid `rusage` (integers and `timeval`s only).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not reaped yet (`Child::wait` is never called on it,
    // and dropping a `Child` does not wait); `status` and `usage` are valid, writable.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    let out = Output {
        status: ExitStatus::from_raw(status),
        stdout,
        stderr,
    };
    (out, secs(usage.ru_utime) + secs(usage.ru_stime))
}

// ---- Point 6: error texts. ----

#[test]
fn a_directory_is_named_as_such_by_every_command() {
    let sim = kernel_sim(2_000, 1, RING_HEADER_LEN + 4 * 512, "overwrite", 512, 49);
    let dir = sim.dir.path().to_str().unwrap().to_string();
    let out_file = sim.dir.path().join("x.out");
    let o = out_file.to_str().unwrap();
    for args in [
        vec!["decode", &dir],
        vec!["stats", &dir],
        vec!["index", &dir, "-o", o],
        vec!["extract", &dir, "-o", o],
        vec!["query", &dir, "--summary"],
    ] {
        let out = run(&args);
        assert_one_line_error(&out, sim.dir.path(), &format!("{args:?}"));
        let err = stderr(&out);
        assert!(err.contains("is a directory"), "{args:?}: {err}");
        assert!(!err.contains("os error 19"), "{args:?}: {err}");
    }
}

#[test]
fn a_write_error_on_stdout_says_standard_output() {
    if !Path::new("/dev/full").exists() {
        return;
    }
    let sim = kernel_sim(20_000, 2, RING_HEADER_LEN + 16 * 512, "overwrite", 512, 50);
    for cmd in ["decode", "stats"] {
        let out = std::process::Command::new(crate::common::tracemark_bin())
            .args([cmd, sim.dump_str()])
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {err}");
        assert_eq!(err.lines().count(), 1, "{cmd}: {err}");
        assert!(err.contains("standard output"), "{cmd}: {err}");
    }
}

#[test]
fn piped_input_is_read_or_clearly_refused() {
    use std::io::Write;
    let sim = kernel_sim(20_000, 2, RING_HEADER_LEN + 16 * 512, "overwrite", 512, 51);
    let bytes = std::fs::read(&sim.dump).unwrap();
    let pipe = |args: &[&str]| -> Output {
        let mut child = std::process::Command::new(crate::common::tracemark_bin())
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let data = bytes.clone();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        out
    };
    for cmd in ["decode", "stats"] {
        let want = tracemark_ok(&[cmd, sim.dump_str()]);
        for input in ["-", "/dev/stdin"] {
            let out = pipe(&[cmd, input]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{cmd} {input}: {}",
                stderr(&out)
            );
            assert_eq!(
                String::from_utf8(out.stdout).unwrap(),
                want,
                "{cmd} {input}"
            );
        }
    }
    let out = pipe(&["index", "-"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("needs a file"), "{}", stderr(&out));
}

#[test]
fn untrusted_bytes_in_messages_are_escaped() {
    let sim = kernel_sim(2_000, 1, RING_HEADER_LEN + 4 * 512, "overwrite", 512, 52);
    // A dump whose name holds an escape sequence, a line end and a NUL-like control.
    let evil = sim.dir.path().join("d\u{1b}[31mred\nsecond\u{7}.bin");
    std::fs::copy(&sim.dump, &evil).unwrap();
    let idx = sim.dir.path().join("evil.idx");
    tracemark_ok(&["index", evil.to_str().unwrap(), "-o", idx.to_str().unwrap()]);
    std::fs::remove_file(&evil).unwrap();
    // The index now names a source that is gone: the message quotes that path.
    let out = run(&["query", idx.to_str().unwrap(), "--record", "1"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
    assert!(err.contains("\\u{1b}[31mred\\nsecond\\u{7}"), "{err:?}");
}

// ---- Point 15: stats takes the same --format as the other commands. ----

#[test]
fn stats_has_the_same_format_option() {
    let sim = kernel_sim(5_000, 2, RING_HEADER_LEN + 8 * 512, "overwrite", 512, 53);
    let p = sim.dump_str();
    let json = tracemark_ok(&["stats", p, "--format", "json"]);
    assert_eq!(json, tracemark_ok(&["stats", p, "--json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let csv = tracemark_ok(&["stats", p, "--format", "csv"]);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("field,value"));
    let rows: std::collections::HashMap<&str, &str> =
        lines.map(|l| l.split_once(',').unwrap()).collect();
    assert_eq!(rows["total_records"], v["total_records"].to_string());
    assert_eq!(rows["cpus.1.cpu"], "1");
    assert_eq!(
        tracemark_ok(&["stats", p, "--format", "text"]),
        tracemark_ok(&["stats", p])
    );
}

// ---- Extract: piped logs, damaged lines with control bytes. ----

/// `dump` framed as a UART log between console lines.
fn uart_log(dump: &[u8]) -> Vec<u8> {
    let mut log = b"boot: hello\n".to_vec();
    tracemark_format::uart::write_framed(
        0x2a,
        dump,
        tracemark_format::uart::DEFAULT_CHUNK_LEN,
        &mut |line: &[u8]| -> Result<(), ()> {
            log.extend_from_slice(line);
            Ok(())
        },
    )
    .unwrap();
    log.extend_from_slice(b"shell> \n");
    log
}

#[test]
fn extract_reads_a_piped_log_and_escapes_damaged_lines() {
    use std::io::Write;
    let sim = kernel_sim(3_000, 2, RING_HEADER_LEN + 6 * 512, "overwrite", 512, 54);
    let dump = std::fs::read(&sim.dump).unwrap();
    let log = uart_log(&dump);
    let out_path = sim.dir.path().join("x.bin");
    let o = out_path.to_str().unwrap();
    let mut child = std::process::Command::new(crate::common::tracemark_bin())
        .args(["extract", "-", "-o", o])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = log.clone();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&out_path).unwrap(),
        dump,
        "the dump, byte for byte"
    );
    // A data line damaged with an escape sequence and a NUL: reported, escaped, one
    // line per problem, non-zero exit.
    let text = String::from_utf8(log).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let d = lines.iter().position(|l| l.starts_with("@TM:D,")).unwrap();
    lines[d] = format!("{}\u{1b}[2J\u{0}", &lines[d][..lines[d].len() - 4]);
    let bad = write(&sim, "bad.log", (lines.join("\n") + "\n").as_bytes());
    for args in [
        vec!["extract", bad.to_str().unwrap(), "-o", o],
        vec!["decode", bad.to_str().unwrap()],
    ] {
        let out = run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            !err.contains('\u{1b}') && !err.contains('\u{0}'),
            "{args:?}: {err:?}"
        );
        assert!(err.contains(bad.to_str().unwrap()), "{args:?}: {err}");
    }
}

// ---- Issue 20, points 1-5: damage a reader can see from the dump's own redundancy is
// reported (warning, exit 1) by every command, and everything that decodes is kept. ----

/// The closed, valid blocks of ring `ring` (file offset of the ring): (file offset of
/// the block, its header's record count).
fn closed_blocks(bytes: &[u8], ring: usize) -> Vec<(usize, u32)> {
    let view = RingView::parse(&bytes[ring..]).unwrap();
    view.blocks()
        .filter(|b| b.state == tracemark_format::ring::BlockState::Valid && !b.is_current)
        .map(|b| (ring + b.offset, b.header.records.get()))
        .collect()
}

fn set_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// `decode`, `stats`, `index` and a Perfetto export of `path` each exit 1 with one
/// stderr line naming the file and containing `why`; `decode` still prints
/// `records` records (if given). Returns decode's JSON lines.
fn damage_is_reported(
    sim: &Sim,
    path: &Path,
    why: &str,
    records: Option<usize>,
) -> Vec<serde_json::Value> {
    let p = path.to_str().unwrap();
    let out = run(&["decode", p, "--format", "json"]);
    assert_one_line_error(&out, path, why);
    assert!(stderr(&out).contains(why), "decode: {}", stderr(&out));
    let lines = json_lines(&String::from_utf8(out.stdout).unwrap());
    if let Some(n) = records {
        assert_eq!(
            lines.len(),
            n,
            "{why}: every record that decodes is printed"
        );
    }
    let trace = sim.dir.path().join("t.pftrace");
    let trace = trace.to_str().unwrap();
    for args in [
        vec!["stats", p],
        vec![
            "index",
            p,
            "-o",
            sim.dir.path().join("t.idx").to_str().unwrap(),
        ],
        vec!["export", p, "--format", "perfetto", "-o", trace],
    ] {
        let out = run(&args);
        assert_one_line_error(&out, path, &format!("{why}: {}", args[0]));
        assert!(stderr(&out).contains(why), "{}: {}", args[0], stderr(&out));
    }
    lines
}

/// A two-CPU overwrite-mode kernel-sim dump (16 KiB rings of 1 KiB blocks, so blocks were
/// overwritten) to damage, and its bytes.
fn overwritten_sim(events: u64, seed: u64) -> (Sim, Vec<u8>) {
    let sim = kernel_sim(
        events,
        2,
        RING_HEADER_LEN + 16 * 1024,
        "overwrite",
        1024,
        seed,
    );
    let bytes = std::fs::read(&sim.dump).unwrap();
    (sim, bytes)
}

#[test]
fn a_zeroed_block_magic_between_written_blocks_is_damage() {
    // Point 1: the block vanished with "torn 0" and exit 0.
    let (sim, bytes) = overwritten_sim(20_000, 61);
    let full = json_lines(&tracemark_ok(&[
        "decode",
        sim.dump_str(),
        "--format",
        "json",
    ]));
    let rings = ring_offsets(&bytes);
    let (block, records) = closed_blocks(&bytes, rings[0])[5];
    let mut bad = bytes.clone();
    set_u32(&mut bad, block + offsets::BLOCK_MAGIC, 0);
    let path = write(&sim, "magic.bin", &bad);
    let got = damage_is_reported(&sim, &path, "block magic is 0", Some(full.len()));
    // Only the magic is gone: the block's records are decoded by the rest of its header.
    assert_eq!(got, full);
    // With its sequence number gone too (a zeroed header), the block is skipped, every
    // other record is still printed, and its count is no longer trusted: the first
    // problem in file order is then the numbering after it.
    set_u32(&mut bad, block + offsets::BLOCK_SEQ, 0);
    let path = write(&sim, "magic_seq.bin", &bad);
    damage_is_reported(
        &sim,
        &path,
        "may be low",
        Some(full.len() - records as usize),
    );
    let out = run(&["decode", path.to_str().unwrap(), "--verbose"]);
    assert!(
        stderr(&out).contains("block magic is 0"),
        "{}",
        stderr(&out)
    );
    // A fresh ring's unused slots are not damage: a ring on its first lap.
    let fresh = kernel_sim(300, 2, RING_HEADER_LEN + 16 * 1024, "overwrite", 1024, 62);
    tracemark_ok(&["decode", fresh.dump_str()]);
}

#[test]
fn a_zero_commit_position_on_a_first_lap_ring_is_damage() {
    // Point 2: a ring on its first lap (block 0 and a few more, or block 0 alone) with
    // its commit position zeroed was dropped without a word.
    for events in [100u64, 3_000] {
        let (sim, bytes) = overwritten_sim(events, 63);
        let full = json_lines(&tracemark_ok(&[
            "decode",
            sim.dump_str(),
            "--format",
            "json",
        ]));
        let rings = ring_offsets(&bytes);
        let mut bad = bytes.clone();
        set_u32(&mut bad, rings[1] + offsets::COMMIT_POS, 0);
        let path = write(&sim, "commit0.bin", &bad);
        let got = damage_is_reported(&sim, &path, "commit position", Some(full.len()));
        assert_eq!(got, full, "{events} events: every record still decoded");
    }
}

#[test]
fn a_block_count_that_disagrees_with_its_records_is_damage() {
    // Point 3: a closed block's header count off by one (numbers repeat or skip), and
    // record bytes zeroed (zeros decode as clean kernel entries).
    let (sim, bytes) = overwritten_sim(20_000, 64);
    let full = json_lines(&tracemark_ok(&[
        "decode",
        sim.dump_str(),
        "--format",
        "json",
    ]));
    let rings = ring_offsets(&bytes);
    let (block, records) = closed_blocks(&bytes, rings[1])[4];
    for delta in [-1i64, 1] {
        let mut bad = bytes.clone();
        set_u32(
            &mut bad,
            block + offsets::BLOCK_RECORDS,
            (i64::from(records) + delta) as u32,
        );
        let path = write(&sim, "count.bin", &bad);
        damage_is_reported(&sim, &path, "its header counts", Some(full.len()));
    }
    let mut zeroed = bytes.clone();
    let body = block + tracemark_format::ring::BLOCK_HEADER_LEN;
    zeroed[body + 400..body + 800].fill(0);
    let path = write(&sim, "zeroed.bin", &zeroed);
    damage_is_reported(&sim, &path, "its header counts", None);
}

#[test]
fn lost_counts_that_contradict_the_blocks_are_damage() {
    // Point 4: `overwritten` zeroed while the blocks say thousands were lost; `dropped`
    // of 2^63 on two rings, whose sum wrapped to "lost: 0".
    let (sim, bytes) = overwritten_sim(20_000, 65);
    let rings = ring_offsets(&bytes);
    let mut bad = bytes.clone();
    set_u64(&mut bad, rings[0] + offsets::OVERWRITTEN, 0);
    let path = write(&sim, "overwritten.bin", &bad);
    damage_is_reported(&sim, &path, "records were lost before it", None);

    // A block's lost_before above the counters, or below the block's before it.
    let blocks = closed_blocks(&bytes, rings[1]);
    for (value, why) in [
        (u64::MAX / 2, "records were lost before it"),
        (0, "fewer than block"),
    ] {
        let mut bad = bytes.clone();
        set_u64(&mut bad, blocks[6].0 + offsets::BLOCK_LOST_BEFORE, value);
        let path = write(&sim, "lost_before.bin", &bad);
        damage_is_reported(&sim, &path, why, None);
    }

    let mut bad = bytes.clone();
    for &r in &rings {
        set_u64(&mut bad, r + offsets::DROPPED, 1 << 63);
    }
    let path = write(&sim, "dropped.bin", &bad);
    damage_is_reported(&sim, &path, "past 2^64", None);
    let out = run(&["stats", path.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("lost: {} records", u64::MAX)),
        "totals saturate, never wrap: {text}"
    );
}

#[test]
fn a_block_moved_back_in_time_is_damage_and_decode_and_query_agree() {
    // Point 5: a damaged base_ts moved a block back in time silently, and decode
    // --from/--to and query --from/--to answered differently.
    let (sim, bytes) = overwritten_sim(20_000, 66);
    let rings = ring_offsets(&bytes);
    let blocks = closed_blocks(&bytes, rings[0]);
    let base = |b: usize| {
        u64::from_le_bytes(
            bytes[b + offsets::BLOCK_BASE_TS..b + offsets::BLOCK_BASE_TS + 8]
                .try_into()
                .unwrap(),
        )
    };
    // Block 8 now starts where block 2 did: its records land in an earlier window.
    let (from, to) = (base(blocks[2].0), base(blocks[3].0));
    let mut bad = bytes.clone();
    set_u64(&mut bad, blocks[8].0 + offsets::BLOCK_BASE_TS, from + 10);
    let path = write(&sim, "base_ts.bin", &bad);
    damage_is_reported(&sim, &path, "no CLOCKBACK record", None);
    let p = path.to_str().unwrap();
    let idx = sim.dir.path().join("b.idx");
    let idx = idx.to_str().unwrap();
    run(&["index", p, "-o", idx]);
    let (f, t) = (format!("{from}t"), format!("{to}t"));
    let window = ["--from", f.as_str(), "--to", t.as_str(), "--format", "json"];
    let decode = run(&[&["decode", p][..], &window[..]].concat());
    let query = run(&[&["query", idx][..], &window[..]].concat());
    for (what, out) in [("decode", &decode), ("query", &query)] {
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(out));
        assert!(stderr(out).contains("no CLOCKBACK record"), "{what}");
    }
    let sorted = |o: &Output| {
        let mut v: Vec<String> = String::from_utf8(o.stdout.clone())
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    let (d, q) = (sorted(&decode), sorted(&query));
    assert!(d.len() > 100, "the window holds records of two blocks");
    assert_eq!(d, q, "decode and query select the same records");
}

// ---- Issue 20, point 7: an endless stream is bounded. ----

#[test]
fn an_endless_stream_is_refused_at_a_bound() {
    for cmd in ["decode", "stats"] {
        let out = run(&[cmd, "/dev/zero", "--max-stream", "1000000"]);
        assert_one_line_error(&out, Path::new("/dev/zero"), cmd);
        assert!(stderr(&out).contains("more than 1000000 bytes"), "{cmd}");
    }
}

// ---- Issue 20, point 9: power-on noise before a UART log. ----

#[test]
fn a_uart_log_with_line_noise_is_still_a_log() {
    let sim = kernel_sim(3_000, 2, RING_HEADER_LEN + 6 * 512, "overwrite", 512, 67);
    let dump = std::fs::read(&sim.dump).unwrap();
    let want = tracemark_ok(&["decode", sim.dump_str()]);
    let want_stats = tracemark_ok(&["stats", sim.dump_str()]);
    let mut log = b"\0\x01\xff\x13boot\x07 noise\0\n".to_vec();
    log.extend(uart_log(&dump));
    let path = write(&sim, "noisy.log", &log);
    let p = path.to_str().unwrap();
    assert_eq!(tracemark_ok(&["decode", p]), want);
    assert_eq!(tracemark_ok(&["stats", p]), want_stats);
    let trace = sim.dir.path().join("noisy.json");
    tracemark_ok(&[
        "export",
        p,
        "--format",
        "chrome-json",
        "-o",
        trace.to_str().unwrap(),
    ]);
}

// ---- Issue 20, point 16: filters that select nothing; the stats table. ----

#[test]
fn an_empty_or_invalid_filter_is_said() {
    let sim = kernel_sim(3_000, 2, RING_HEADER_LEN + 6 * 512, "overwrite", 512, 68);
    let p = sim.dump_str();
    for (args, why) in [
        (vec!["--from", "10", "--to", "5"], "--from is after --to"),
        (vec!["--cpu", "99"], "no ring of CPU 99"),
    ] {
        let out = run(&[&["decode", p][..], &args[..]].concat());
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(stderr(&out).contains(why), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn stats_per_kind_counts_are_aligned() {
    let sim = kernel_sim(3_000, 2, RING_HEADER_LEN + 6 * 512, "overwrite", 512, 69);
    let text = tracemark_ok(&["stats", sim.dump_str()]);
    let rows: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "per kind:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(rows.iter().any(|r| r.contains("CLOCKBACK")), "{text}");
    let widths: Vec<usize> = rows.iter().map(|r| r.len()).collect();
    assert!(
        widths.windows(2).all(|w| w[0] == w[1]),
        "every count ends in the same column: {rows:#?}"
    );
}

/// A clock that steps back is the writer's protocol, not damage: blocks that start
/// before the one before them, explained by a CLOCKBACK record, pass every command, and
/// decode and query select the same records around the step.
#[test]
fn a_clock_stepping_back_is_not_damage() {
    use std::cell::Cell;
    use tracemark::{Config, Mode, Tracer};
    let now = Cell::new(1_000_000u64);
    let clock = || now.get();
    let mut mem = vec![0u64; (RING_HEADER_LEN + 16 * 512) / 8];
    // SAFETY: a u64 buffer viewed as bytes: same memory, 8-byte aligned, no padding.
    let bytes =
        unsafe { std::slice::from_raw_parts_mut(mem.as_mut_ptr().cast::<u8>(), mem.len() * 8) };
    let config = Config {
        mode: Mode::Overwrite,
        block_size: 512,
        clock_hz: 1_000_000_000,
        ..Config::new()
    };
    let t = Tracer::new(bytes, &config, &clock).unwrap();
    for i in 0..3_000u32 {
        // Steps of 200 ticks, and every 700 records the clock goes back 50,000 ticks.
        now.set(if i % 700 == 699 {
            now.get() - 50_000
        } else {
            now.get() + 200
        });
        t.interrupt(i % 64);
    }
    drop(t);
    let dump = bytes.to_vec();
    let view = RingView::parse(&dump).unwrap();
    let bases: Vec<u64> = view
        .blocks()
        .filter(|b| b.state == tracemark_format::ring::BlockState::Valid)
        .map(|b| b.header.base_ts.get())
        .collect();
    assert!(
        bases.windows(2).any(|w| w[1] < w[0]),
        "a block starts before the one before it"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clockback.bin");
    std::fs::write(&path, &dump).unwrap();
    let p = path.to_str().unwrap();
    let idx = dir.path().join("clockback.idx");
    let idx = idx.to_str().unwrap();
    let full = tracemark_ok(&["decode", p]);
    assert!(full.contains("CLOCKBACK"), "the step is recorded");
    tracemark_ok(&["stats", p]);
    tracemark_ok(&["index", p, "-o", idx]);
    let (lo, hi) = (bases.iter().min().unwrap(), bases.iter().max().unwrap());
    let (f, t) = (format!("{}t", lo + (hi - lo) / 3), format!("{}t", hi));
    let window = ["--from", f.as_str(), "--to", t.as_str()];
    let sorted = |s: String| {
        let mut v: Vec<String> = s.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    let d = sorted(tracemark_ok(&[&["decode", p][..], &window[..]].concat()));
    let q = sorted(tracemark_ok(&[&["query", idx][..], &window[..]].concat()));
    assert!(!d.is_empty());
    assert_eq!(d, q, "decode and query select the same records");
}
