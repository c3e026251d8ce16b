//! A clock that stepped back (format version 2's CLOCKBACK record) is shown by `decode`
//! (text, CSV, JSON), counted by `stats`, found by `query --kind`, and numbered like any
//! other record by every command.

use tracemark::{Config, KernelEntry, Mode};
use tracemark_tests::ring_image;

/// A ring where the clock steps back twice, once inside a kernel entry.
fn stepped_ring() -> Vec<u8> {
    let config = Config {
        mode: Mode::Overwrite,
        block_size: 256,
        clock_hz: 1_000_000,
        ..Config::new()
    };
    ring_image(&config, 8, 10_000, |t, clock| {
        for i in 0..20u32 {
            t.interrupt(i);
            clock.advance(10);
        }
        t.kernel_entry(KernelEntry::syscall(1, 4, false, 0));
        clock.set(9_000);
        t.kernel_exit();
        for i in 0..20u32 {
            clock.advance(10);
            t.interrupt(i);
        }
        clock.set(5);
        t.interrupt(99);
    })
}

/// Exit code and standard output of `tracemark args`.
fn run(args: &[&str]) -> (i32, String) {
    let (code, out, _) = crate::util::run(args);
    (code, out)
}

#[test]
fn decode_stats_and_query_show_the_clock_stepping_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stepped.bin");
    std::fs::write(&path, stepped_ring()).unwrap();
    let p = path.to_str().unwrap();

    let (code, text) = run(&["decode", p]);
    assert_eq!(code, 0, "{text}");
    let steps: Vec<&str> = text.lines().filter(|l| l.contains("CLOCKBACK")).collect();
    assert_eq!(steps.len(), 2, "{text}");
    assert!(steps[0].contains("back=1200"), "{}", steps[0]);
    assert!(steps[1].contains("back=9195"), "{}", steps[1]);
    // The exit measured across the step says 0 ticks, right after the CLOCKBACK line.
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| l.contains("CLOCKBACK")).unwrap();
    assert!(lines[at + 1].contains("KEXIT"), "{}", lines[at + 1]);

    let (code, json) = run(&["decode", p, "--format", "json"]);
    assert_eq!(code, 0);
    assert_eq!(json.matches("\"back\":").count(), 2, "{json}");

    let (code, stats) = run(&["stats", p, "--json"]);
    assert_eq!(code, 0, "{stats}");
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(v["records_per_kind"]["CLOCKBACK"], 2, "{stats}");
    assert_eq!(v["total_records"], 20 + 2 + 20 + 1 + 2, "{stats}");
    let (_, stats_text) = run(&["stats", p]);
    assert!(
        stats_text
            .lines()
            .any(|l| l.trim_start().starts_with("CLOCKBACK") && l.trim_end().ends_with(" 2")),
        "{stats_text}"
    );

    // The index numbers records as the linear decode does, CLOCKBACK included.
    let idx = dir.path().join("stepped.idx");
    let (code, _) = run(&["index", p, "-o", idx.to_str().unwrap()]);
    assert_eq!(code, 0);
    let (code, found) = run(&[
        "query",
        idx.to_str().unwrap(),
        "--source",
        p,
        "--kind",
        "clockback",
        "--limit",
        "5",
    ]);
    assert_eq!(code, 0, "{found}");
    assert_eq!(
        found.lines().filter(|l| l.contains("CLOCKBACK")).count(),
        2,
        "{found}"
    );
}
