//! Damaged inputs: truncated at every block boundary and inside blocks, bit flips in
//! ring and block headers, random bytes, an empty file, an unsupported version. The CLI
//! must never panic, must exit 0 or 1, must name the file and a byte offset when it
//! fails, and must still print the records it could decode before the damage.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Output;

use crate::common::{json_lines, kernel_sim, tracemark, valid_blocks, Sim};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tracemark_format::ring::{RingView, RING_HEADER_LEN};
use tracemark_tests::set_version;

fn decode(path: &Path) -> Output {
    tracemark(&["decode", path.to_str().unwrap(), "--format", "json"])
}

/// The JSON lines of stdout.
fn lines(out: &Output) -> Vec<Value> {
    json_lines(std::str::from_utf8(&out.stdout).expect("utf-8 stdout"))
}

/// No panic; exit 0 or 1; on failure the (last) stderr line names the file and an offset.
fn check_exit(out: &Output, path: &Path, what: &str) {
    let code = out.status.code();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(code, Some(0) | Some(1)),
        "{what}: exit {code:?} (101 is a panic): {err}"
    );
    assert!(!err.contains("panicked"), "{what}: {err}");
    if code == Some(1) {
        let last = err.lines().last().unwrap_or("");
        assert!(
            last.contains(&path.display().to_string()),
            "{what}: the error names the file: {err}"
        );
        assert!(
            names_offset(last),
            "{what}: the error names a byte offset: {err}"
        );
    }
}

fn names_offset(line: &str) -> bool {
    ["byte ", "offset "].iter().any(|w| {
        line.match_indices(w).any(|(i, _)| {
            line[i + w.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
    })
}

fn sample(mode: &str, seed: u64) -> (Sim, Vec<u8>) {
    // Two CPUs with six blocks of 256 bytes each, wrapped many times.
    let sim = kernel_sim(4_000, 2, RING_HEADER_LEN + 6 * 256, mode, 256, seed);
    let bytes = std::fs::read(&sim.dump).unwrap();
    (sim, bytes)
}

fn write(sim: &Sim, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = sim.dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn truncation_at_every_block_boundary_and_inside_blocks() {
    for (mode, seed) in [("overwrite", 31), ("drop", 32)] {
        let (sim, bytes) = sample(mode, seed);
        let info = valid_blocks(&bytes);
        let ring_len = bytes.len() / 2;
        let mut cuts = BTreeSet::new();
        for ring in [0, ring_len] {
            for c in [0, 1, 8, 47, 48, 100, RING_HEADER_LEN - 1, RING_HEADER_LEN] {
                cuts.insert(ring + c);
            }
            for b in 0..6 {
                let start = ring + RING_HEADER_LEN + b * 256;
                for c in [0, 1, 16, 31, 32, 33, 128, 255] {
                    cuts.insert(start + c);
                }
            }
        }
        cuts.insert(bytes.len() - 1);
        cuts.insert(bytes.len());
        for cut in cuts.into_iter().filter(|&c| c <= bytes.len()) {
            let path = write(&sim, "cut.bin", &bytes[..cut]);
            let out = decode(&path);
            let what = format!("{mode}: cut at {cut}");
            check_exit(&out, &path, &what);
            // A cut at or after a ring's used length, in a ring that overwrote nothing,
            // leaves a used prefix, which is what a dump sends (FORMAT.md 7.3).
            let ring = if cut >= ring_len { ring_len } else { 0 };
            let used_prefix =
                cut > ring && RingView::parse(&bytes[ring..cut]).is_ok_and(|v| v.is_used_prefix());
            if cut == bytes.len() || cut == ring_len || used_prefix {
                assert_eq!(out.status.code(), Some(0), "{what}: whole rings are fine");
            } else {
                assert_eq!(out.status.code(), Some(1), "{what}: truncation is damage");
            }
            // Record numbers after a missing block may shift (the decoder cannot know
            // how many records it held), so records are compared by CPU, time and kind.
            let got = triples(&out);
            for b in info.iter().filter(|b| b.end <= cut) {
                for r in &b.records {
                    assert!(
                        got.contains_key(r),
                        "{what}: record {r:?} of the block at {} is missing",
                        b.start
                    );
                }
            }
        }
    }
}

/// (cpu, ts, kind) of the decoded records, counted.
fn triples(out: &Output) -> HashMap<(u64, u64, String), usize> {
    let mut got = HashMap::new();
    for l in lines(out) {
        let key = (
            l["cpu"].as_u64().unwrap(),
            l["ts"].as_u64().unwrap(),
            l["kind"].as_str().unwrap().to_string(),
        );
        *got.entry(key).or_default() += 1;
    }
    got
}

#[test]
fn bit_flips_in_block_headers_lose_only_that_block() {
    let (sim, bytes) = sample("overwrite", 33);
    let info = valid_blocks(&bytes);
    for (bi, b) in info.iter().enumerate().step_by(2) {
        for field in (0..32).step_by(4) {
            for bit in [0, 7] {
                let mut bad = bytes.clone();
                bad[b.start + field] ^= 1 << bit;
                let path = write(&sim, "flip.bin", &bad);
                let out = decode(&path);
                let what = format!("block at {} byte {field} bit {bit}", b.start);
                check_exit(&out, &path, &what);
                let got = triples(&out);
                let mut want: HashMap<&(u64, u64, String), usize> = HashMap::new();
                for (oi, other) in info.iter().enumerate() {
                    if oi != bi {
                        for r in &other.records {
                            *want.entry(r).or_default() += 1;
                        }
                    }
                }
                for (r, n) in want {
                    assert!(
                        got.get(r).copied().unwrap_or(0) >= n,
                        "{what}: record {r:?} of another block is missing"
                    );
                }
            }
        }
    }
}

#[test]
fn bit_flips_in_the_first_ring_header_leave_the_second_ring_intact() {
    let (sim, bytes) = sample("overwrite", 34);
    let full = lines(&decode(&sim.dump));
    let cpu1: Vec<&Value> = full.iter().filter(|l| l["cpu"] == 1).collect();
    assert!(!cpu1.is_empty());
    for off in (0..RING_HEADER_LEN).step_by(3) {
        let mut bad = bytes.clone();
        bad[off] ^= 0x10;
        let path = write(&sim, "hdr.bin", &bad);
        let out = decode(&path);
        let what = format!("ring header byte {off}");
        check_exit(&out, &path, &what);
        let got = lines(&out);
        let got1: Vec<&Value> = got.iter().filter(|l| l["cpu"] == 1).collect();
        assert_eq!(got1, cpu1, "{what}: the second ring decodes as before");
        if off < 52 && out.status.code() == Some(0) {
            // A damaged static header must not be silently skipped.
            assert!(
                got.iter().any(|l| l["cpu"] == 0),
                "{what}: ring 0 vanished without an error"
            );
        }
    }
}

#[test]
fn an_unsupported_version_is_named() {
    let (sim, bytes) = sample("overwrite", 35);
    let ring_len = bytes.len() / 2;
    for (name, dump) in [("one ring", &bytes[..ring_len]), ("two rings", &bytes[..])] {
        let mut bad = dump.to_vec();
        set_version(&mut bad, 7);
        let path = write(&sim, "version.bin", &bad);
        let out = decode(&path);
        check_exit(&out, &path, name);
        assert_eq!(out.status.code(), Some(1), "{name}: version 7 is an error");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("version 7"), "{name}: {err}");
        assert!(
            err.contains("byte 0") || err.contains("offset 0"),
            "{name}: {err}"
        );
        if name == "two rings" {
            let n1 = lines(&out).iter().filter(|l| l["cpu"] == 1).count();
            assert!(n1 > 0, "the second ring is still decoded");
        }
    }
}

#[test]
fn empty_and_random_files_fail_cleanly() {
    let (sim, bytes) = sample("overwrite", 36);
    let path = write(&sim, "empty.bin", &[]);
    for cmd in ["decode", "stats", "index"] {
        let out = tracemark(&[cmd, path.to_str().unwrap()]);
        check_exit(&out, &path, &format!("empty file, {cmd}"));
        assert_eq!(out.status.code(), Some(1), "an empty file is an error");
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(37);
    for i in 0..40 {
        let len = rng.gen_range(0..4000);
        let mut data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        match i % 4 {
            // A valid ring header followed by garbage blocks.
            1 if len > RING_HEADER_LEN => {
                data[..RING_HEADER_LEN].copy_from_slice(&bytes[..RING_HEADER_LEN])
            }
            // Just the magic.
            2 if len > 8 => data[..8].copy_from_slice(b"TRACEMRK"),
            // A real dump with a random stretch overwritten.
            3 => {
                data = bytes.clone();
                let at = rng.gen_range(0..data.len());
                let n = rng.gen_range(1..64).min(data.len() - at);
                rng.fill(&mut data[at..at + n]);
            }
            _ => {}
        }
        let path = write(&sim, "random.bin", &data);
        for cmd in ["decode", "stats"] {
            let out = tracemark(&[cmd, path.to_str().unwrap()]);
            check_exit(&out, &path, &format!("random file {i}, {cmd}"));
        }
    }
}

#[test]
fn a_failure_is_reported_on_one_stderr_line() {
    let (sim, bytes) = sample("overwrite", 38);
    let ring_len = bytes.len() / 2;
    let mut version = bytes[..ring_len].to_vec();
    set_version(&mut version, 9);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("not a dump", b"hello world, this is not a ring".repeat(20)),
        (
            "truncated in a block",
            bytes[..ring_len + RING_HEADER_LEN + 300].to_vec(),
        ),
        ("truncated in a header", bytes[..ring_len + 100].to_vec()),
        ("version", version),
    ];
    for (name, data) in cases {
        let path = write(&sim, "one-line.bin", &data);
        for cmd in ["decode", "stats"] {
            let out = tracemark(&[cmd, path.to_str().unwrap()]);
            assert_eq!(out.status.code(), Some(1), "{name}, {cmd}");
            let err = String::from_utf8_lossy(&out.stderr);
            let err_lines: Vec<&str> = err.lines().collect();
            assert_eq!(err_lines.len(), 1, "{name}, {cmd}: one stderr line: {err}");
            assert!(
                err_lines[0].contains(path.to_str().unwrap()),
                "{name}: {err}"
            );
            assert!(names_offset(err_lines[0]), "{name}: {err}");
        }
    }
}
