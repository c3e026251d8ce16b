//! A kernel-sim dump sent over a console (`@TM:` lines among log noise) and captured with
//! a line lost: `tracemark extract` names the missing chunk, and `decode` and `stats`
//! read the log directly, losing exactly the records of the blocks that chunk touches.

use std::collections::HashMap;

use crate::common::{json_lines, kernel_sim, tracemark, u, valid_blocks, Sim};
use serde_json::Value;
use tracemark_format::ring::RING_HEADER_LEN;
use tracemark_format::uart::write_framed;

const CHUNK: usize = 48;

/// Frames `dump` as dump 0x2a among noise lines, dropping data line `lost` (the chunk
/// sequence number); returns the log text.
fn log_without_chunk(dump: &[u8], lost: Option<u64>) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    write_framed(0x2a, dump, CHUNK, &mut |line: &[u8]| {
        lines.push(line.to_vec());
        Ok::<(), ()>(())
    })
    .unwrap();
    let mut log = b"U-Boot 2024.01\r\nStarting kernel ...\n".to_vec();
    for (i, line) in lines.iter().enumerate() {
        // Data line i (0-based) is chunk i - 1 (the begin line comes first).
        if lost.is_some_and(|s| i as u64 == s + 1) {
            continue;
        }
        if i % 97 == 5 {
            log.extend_from_slice(b"[   12.345] eth0: link up\n");
        }
        if i % 50 == 7 {
            // A console prefix on the same line as the framing line.
            log.extend_from_slice(b"[   12.346] tm: ");
        }
        log.extend_from_slice(line);
    }
    log.extend_from_slice(b"login: \n");
    log
}

fn triples(lines: &[Value]) -> HashMap<(u64, u64, String), usize> {
    let mut m = HashMap::new();
    for l in lines {
        let k = (
            u(l, "cpu"),
            u(l, "ts"),
            l["kind"].as_str().unwrap().to_string(),
        );
        *m.entry(k).or_default() += 1;
    }
    m
}

fn sim() -> (Sim, Vec<u8>) {
    let sim = kernel_sim(20_000, 2, RING_HEADER_LEN + 8 * 1024, "overwrite", 1024, 41);
    let bytes = std::fs::read(&sim.dump).unwrap();
    (sim, bytes)
}

#[test]
fn a_clean_log_decodes_like_the_dump() {
    let (sim, bytes) = sim();
    let log = sim.dir.path().join("uart.log");
    std::fs::write(&log, log_without_chunk(&bytes, None)).unwrap();
    let re = sim.dir.path().join("re.bin");
    let out = tracemark(&["extract", log.to_str().unwrap(), "-o", re.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&re).unwrap(),
        bytes,
        "the dump comes back whole"
    );
    for args in [&["decode", "--format", "json"][..], &["stats", "--json"]] {
        let a = tracemark(&[&[args[0], log.to_str().unwrap()], &args[1..]].concat());
        let b = tracemark(&[&[args[0], sim.dump_str()], &args[1..]].concat());
        assert_eq!(
            a.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&a.stderr)
        );
        assert_eq!(a.stdout, b.stdout, "{args:?}: the log reads like the dump");
    }
}

#[test]
fn a_lost_data_line_costs_only_the_blocks_it_touches() {
    let (sim, bytes) = sim();
    let info = valid_blocks(&bytes);
    // A chunk in the middle of a valid block of the second ring.
    let block = &info[info.len() - 3];
    let lost = ((block.start + 200) / CHUNK) as u64;
    let chunk = lost as usize * CHUNK..(lost as usize + 1) * CHUNK;
    let log = sim.dir.path().join("uart.log");
    std::fs::write(&log, log_without_chunk(&bytes, Some(lost))).unwrap();
    let logs = log.to_str().unwrap();

    // extract: names the chunk, writes the rest, fails.
    let dump = sim.dir.path().join("re.bin");
    let out = tracemark(&["extract", logs, "-o", dump.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(report.lines().count(), 1, "one line per dump: {report}");
    assert!(
        report.contains(&format!("1 chunks missing ({lost})")),
        "{report}"
    );
    let re = std::fs::read(&dump).unwrap();
    assert_eq!(re.len(), bytes.len());
    assert!(!chunk.is_empty() && re[chunk.clone()].iter().all(|&b| b == 0));
    assert_eq!(re[..chunk.start], bytes[..chunk.start]);
    assert_eq!(re[chunk.end..], bytes[chunk.end..]);

    // decode: every record of every untouched block, nothing else; one stderr line.
    let touched: Vec<usize> = info
        .iter()
        .enumerate()
        .filter(|(_, b)| b.start < chunk.end && chunk.start < b.end)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(touched.len(), 1, "the chunk lies inside one block");
    let out = tracemark(&["decode", logs, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(logs) && err.contains("at byte "), "{err}");
    let got = triples(&json_lines(&String::from_utf8_lossy(&out.stdout)));
    let mut want: HashMap<(u64, u64, String), usize> = HashMap::new();
    for (i, b) in info.iter().enumerate() {
        if !touched.contains(&i) {
            for r in &b.records {
                *want.entry(r.clone()).or_default() += 1;
            }
        }
    }
    assert_eq!(got, want, "exactly the records of the untouched blocks");

    // Record numbers after the damaged block do not shift.
    let full = json_lines(&String::from_utf8_lossy(
        &tracemark(&["decode", sim.dump_str(), "--format", "json"]).stdout,
    ));
    let damaged = json_lines(&String::from_utf8_lossy(&out.stdout));
    let key = |l: &Value| (u(l, "cpu"), u(l, "ts"), l["kind"].clone(), l["n"].clone());
    let full_keys: std::collections::HashSet<_> = full.iter().map(key).collect();
    assert!(
        !damaged.is_empty() && damaged.len() < full.len(),
        "some records lost, not all: {} of {}",
        damaged.len(),
        full.len()
    );
    assert!(damaged.iter().all(|l| full_keys.contains(&key(l))));

    // stats: the truth minus the records of the damaged block.
    let lost_records = info[touched[0]].records.len() as u64;
    let s: Value = serde_json::from_slice(&tracemark(&["stats", logs, "--json"]).stdout).unwrap();
    let t: Value =
        serde_json::from_slice(&tracemark(&["stats", sim.dump_str(), "--json"]).stdout).unwrap();
    assert_eq!(
        u(&s, "total_records") + lost_records,
        u(&t, "total_records")
    );
    let mut per_kind = HashMap::new();
    for r in &info[touched[0]].records {
        *per_kind.entry(r.2.clone()).or_insert(0u64) += 1;
    }
    for (k, n) in per_kind {
        assert_eq!(
            u(&s["records_per_kind"], &k) + n,
            u(&t["records_per_kind"], &k),
            "{k}"
        );
    }
}
