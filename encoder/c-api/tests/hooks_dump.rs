//! The `-finstrument-functions` hooks and the dump (issue 20, point 22): an instrumented
//! sink no longer records into the ring being dumped (before, a second dump of an
//! overwrite ring held only the sink's own calls), and hook calls for a CPU the cpu
//! function gives out of the table are counted by `tm_hook_skipped` (before, they were
//! dropped without a trace).

mod common;

use std::path::Path;
use std::process::Command;

use common::{build_c, build_staticlib, decode, run, REPO};
use tracemark_format::Event;

#[test]
fn an_instrumented_sink_does_not_record_and_bad_cpus_are_counted() {
    let work = tempfile::tempdir().unwrap();
    let lib = build_staticlib("hooks-dump-target");
    let src = Path::new(REPO).join("encoder/c-api/tests/c/hooks_dump.c");
    let exe = build_c(
        work.path(),
        "hooks-dump",
        &[src],
        &["-finstrument-functions", "-fno-inline"],
        &lib,
    );
    let (a, b) = (work.path().join("a.bin"), work.path().join("b.bin"));
    let out = run(Command::new(&exe).arg(&a).arg(&b));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let nums = |name: &str| -> Vec<u64> {
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"));
        line.split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect()
    };
    let (skipped, chunks) = (nums("skipped"), nums("chunks")[0]);

    let (first, second) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(
        first, second,
        "the sink recorded into the ring between the dumps"
    );
    let records = decode(&first);
    let functions = records
        .iter()
        .filter(|r| matches!(r.event, Event::FunctionEntry { .. }))
        .count();
    // The five calls of leaf before the dumps (main was entered before tm_init).
    assert_eq!(functions, 5, "{records:?}");
    // Each sink call skipped four hook calls: its own entry and exit, leaf's.
    // (The dump sends the ring's used part, FORMAT.md 7.3: a few chunks of 256 bytes.)
    assert!(chunks >= 3, "{chunks} chunks");
    assert_eq!(skipped[1] - skipped[0], 4 * chunks, "{stdout}");
    // Two calls of leaf on CPU 9: four hook calls, counted.
    assert_eq!(skipped[2] - skipped[1], 4, "{stdout}");
}
