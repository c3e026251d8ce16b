//! Format-version-2 records as the seL4 kernel writes them (deferred kernel entries,
//! SWITCH records) through the whole CLI: `decode`, `stats`, `index` + `query` agree, and
//! exits are named after their filled-in entries.

use crate::common::{json_lines, tracemark_ok};
use serde_json::Value;
use tracemark::{Config, KernelEntry, Mode};
use tracemark_tests::ring_image;

/// A 16-block ring of seL4-like entries: deferred entry, function records, the
/// information, sometimes a thread switch, the exit. Returns the ring and the number of
/// switches written.
fn sel4_like_ring() -> (Vec<u8>, u64) {
    let config = Config {
        mode: Mode::Drop,
        block_size: 1024,
        clock_hz: 1_000_000_000,
        ..Config::new()
    };
    let mut switches = 0;
    let ring = ring_image(&config, 16, 1_000, |t, now| {
        for i in 0..600u32 {
            now.advance(500);
            t.kernel_entry_deferred();
            for f in 0..(i % 3) {
                now.advance(9);
                t.function_entry(0x100 + u64::from(f));
                t.function_exit(0x100 + u64::from(f));
            }
            assert!(t.kernel_entry_info(KernelEntry::syscall((i % 8 + 1) as u8, 4, false, i % 50)));
            if i % 5 == 0 {
                t.thread_switch(0xffff_ff80_1ffc_8400 + u64::from(i % 3) * 0x800);
                switches += 1;
            }
            now.advance(40);
            t.kernel_exit();
        }
    });
    (ring, switches)
}

#[test]
fn switches_and_deferred_entries_through_decode_stats_index_query() {
    let (ring, switches) = sel4_like_ring();
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("ring.bin");
    std::fs::write(&dump, &ring).unwrap();
    let dump = dump.to_str().unwrap();
    let idx = dir.path().join("ring.idx");
    let idx = idx.to_str().unwrap();

    let all = json_lines(&tracemark_ok(&["decode", dump, "--format", "json"]));
    let switch_lines: Vec<Value> = all
        .iter()
        .filter(|l| l["kind"] == "SWITCH")
        .cloned()
        .collect();
    assert_eq!(switch_lines.len() as u64, switches);
    // Every entry got its word and every exit is named after it, with its duration.
    for l in all
        .iter()
        .filter(|l| l["kind"] == "KENTRY" || l["kind"] == "KEXIT")
    {
        assert_eq!(l["path"], "Syscall", "{l}");
        assert!(l["syscall_name"].is_string(), "{l}");
        if l["kind"] == "KEXIT" {
            assert!(l["duration_ticks"].as_u64().unwrap() >= 40, "{l}");
        }
    }

    let stats: Value = serde_json::from_str(&tracemark_ok(&["stats", dump, "--json"])).unwrap();
    assert_eq!(stats["records_per_kind"]["SWITCH"].as_u64(), Some(switches));
    assert_eq!(stats["total_records"].as_u64(), Some(all.len() as u64));

    tracemark_ok(&["index", dump, "-o", idx]);
    let q = json_lines(&tracemark_ok(&[
        "query", idx, "--kind", "SWITCH", "--limit", "1000", "--format", "json",
    ]));
    assert_eq!(q, switch_lines);
    let summary = tracemark_ok(&["query", idx, "--summary"]);
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("SWITCH"))
        .unwrap();
    assert_eq!(
        line.split_whitespace().nth(1),
        Some(switches.to_string().as_str())
    );
    assert!(
        summary.contains(&format!("total records: {}", all.len())),
        "{summary}"
    );
    // Record numbers after many switches still name the same records as decode.
    for n in [0usize, 777, all.len() - 1] {
        let one = json_lines(&tracemark_ok(&[
            "query",
            idx,
            "--record",
            &n.to_string(),
            "--format",
            "json",
        ]));
        assert_eq!(one, vec![all[n].clone()], "record {n}");
    }
}
