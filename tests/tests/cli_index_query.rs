//! `tracemark index` + `tracemark query` answer exactly what `tracemark decode` prints.

use crate::common::{json_lines, kernel_sim, tracemark, tracemark_ok, u, Sim};
use serde_json::Value;
use tracemark_format::ring::RING_HEADER_LEN;

fn index(sim: &Sim) -> String {
    let idx = sim.dir.path().join("dump.idx");
    let idx = idx.to_str().unwrap().to_string();
    tracemark_ok(&["index", sim.dump_str(), "-o", &idx]);
    idx
}

fn decode_json(sim: &Sim) -> Vec<Value> {
    json_lines(&tracemark_ok(&[
        "decode",
        sim.dump_str(),
        "--format",
        "json",
    ]))
}

#[test]
fn query_record_equals_decode_for_many_numbers() {
    let sim = kernel_sim(
        60_000,
        3,
        RING_HEADER_LEN + 24 * 1024,
        "overwrite",
        1024,
        21,
    );
    let idx = index(&sim);
    let all = decode_json(&sim);
    for c in sim.truth["cpus"].as_array().unwrap() {
        let cpu = u(c, "cpu");
        let mine: Vec<&Value> = all
            .iter()
            .filter(|l| u(l, "cpu") == cpu && l["n"].is_u64())
            .collect();
        let first = u(c, "overwritten");
        assert_eq!(u(mine[0], "n"), first);
        let step = (mine.len() / 40).max(1);
        let picks = (0..mine.len())
            .step_by(step)
            .chain([1, mine.len() - 2, mine.len() - 1]);
        for i in picks {
            let n = first + i as u64;
            let out = tracemark_ok(&[
                "query",
                &idx,
                "--record",
                &n.to_string(),
                "--cpu",
                &cpu.to_string(),
                "--format",
                "json",
            ]);
            assert_eq!(
                json_lines(&out),
                vec![mine[i].clone()],
                "cpu{cpu} record {n}"
            );
        }
        // With context: the neighbours, in order.
        let mid = mine.len() / 2;
        let n = first + mid as u64;
        let out = tracemark_ok(&[
            "query",
            &idx,
            "--record",
            &n.to_string(),
            "--context",
            "3",
            "--cpu",
            &cpu.to_string(),
            "--format",
            "json",
        ]);
        let want: Vec<Value> = mine[mid - 3..=mid + 3]
            .iter()
            .map(|v| (*v).clone())
            .collect();
        assert_eq!(json_lines(&out), want, "cpu{cpu} record {n} with context 3");
    }
}

#[test]
fn query_record_out_of_range_fails_cleanly() {
    let sim = kernel_sim(20_000, 2, RING_HEADER_LEN + 8 * 1024, "overwrite", 1024, 22);
    let idx = index(&sim);
    // Record 0 was overwritten on both CPUs.
    let out = tracemark(&["query", &idx, "--record", "0"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a record not in the dump is an error"
    );
    assert!(out.stdout.is_empty());
    let out = tracemark(&["query", &idx, "--record", "1000000000"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn query_kind_limit_equals_first_lines_of_decode() {
    let sim = kernel_sim(80_000, 4, 64 << 10, "overwrite", 4096, 23);
    let idx = index(&sim);
    let all = decode_json(&sim);
    for kind in ["KENTRY", "IRQ", "USER", "KEXIT"] {
        let want: Vec<Value> = all
            .iter()
            .filter(|l| l["kind"] == kind)
            .take(30)
            .cloned()
            .collect();
        assert_eq!(want.len(), 30);
        let out = tracemark_ok(&[
            "query", &idx, "--kind", kind, "--limit", "30", "--format", "json",
        ]);
        assert_eq!(json_lines(&out), want, "first 30 {kind} records");
    }
    // The text format agrees with decode's text format too.
    let text = tracemark_ok(&["decode", sim.dump_str()]);
    let want: Vec<&str> = text
        .lines()
        .filter(|l| l.split_whitespace().nth(3) == Some("KENTRY"))
        .take(30)
        .collect();
    let out = tracemark_ok(&["query", &idx, "--kind", "KENTRY", "--limit", "30"]);
    assert_eq!(out.lines().collect::<Vec<_>>(), want);
}

#[test]
fn query_time_range_equals_decode_time_range() {
    let sim = kernel_sim(40_000, 2, 32 << 10, "overwrite", 1024, 24);
    let idx = index(&sim);
    let all = decode_json(&sim);
    let from = u(&all[all.len() / 3], "ts");
    let to = u(&all[all.len() / 2], "ts");
    let (f, t) = (format!("{from}t"), format!("{to}t"));
    let want: Vec<Value> = all
        .iter()
        .filter(|l| (from..=to).contains(&u(l, "ts")))
        .cloned()
        .collect();
    assert!(want.len() > 100);
    let q = tracemark_ok(&["query", &idx, "--from", &f, "--to", &t, "--format", "json"]);
    let d = tracemark_ok(&[
        "decode",
        sim.dump_str(),
        "--from",
        &f,
        "--to",
        &t,
        "--format",
        "json",
    ]);
    assert_eq!(json_lines(&d), want, "decode --from --to");
    assert_eq!(json_lines(&q), want, "query --from --to");
    let limited = tracemark_ok(&[
        "query", &idx, "--from", &f, "--to", &t, "--limit", "7", "--format", "json",
    ]);
    assert_eq!(
        json_lines(&limited),
        want[..7],
        "query --from --to --limit 7"
    );
}

#[test]
fn query_summary_counts_match_the_truth() {
    let sim = kernel_sim(30_000, 2, 16 << 10, "drop", 1024, 25);
    let idx = index(&sim);
    let out = tracemark_ok(&["query", &idx, "--summary"]);
    let total: u64 = sim.truth["cpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| u(c, "records_in_dump"))
        .sum();
    assert!(
        out.contains(&total.to_string()),
        "summary names the total {total}:\n{out}"
    );
}

#[test]
fn a_stale_index_is_refused() {
    let sim = kernel_sim(20_000, 2, 16 << 10, "overwrite", 1024, 26);
    let idx = index(&sim);
    let other = kernel_sim(20_000, 2, 16 << 10, "overwrite", 1024, 27);
    std::fs::copy(&other.dump, &sim.dump).unwrap();
    let out = tracemark(&["query", &idx, "--record", "20000"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stale"), "{err}");
}
