//! A C program compiled whole with `-finstrument-functions`, its clock and cpu function
//! included, runs to the end (it used to recurse until the stack overflowed: hook, clock,
//! hook...): the hook calls made from inside the clock and the cpu function are skipped
//! and counted by `tm_hook_skipped`, and every other call is recorded, in order.

mod common;

use std::path::Path;
use std::process::Command;

use common::{build_c, build_staticlib, decode, run, REPO};
use tracemark_format::Event;

#[test]
fn an_instrumented_clock_and_cpu_function_do_not_recurse() {
    let work = tempfile::tempdir().unwrap();
    let lib = build_staticlib("instrumented-clock-target");
    let src = Path::new(REPO).join("encoder/c-api/tests/c/instrumented_clock.c");
    let exe = build_c(
        work.path(),
        "instrumented-clock",
        &[src],
        &["-finstrument-functions", "-fno-inline"],
        &lib,
    );
    let ring_path = work.path().join("ring.bin");
    let out = run(Command::new(&exe).arg(&ring_path));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let field = |name: &str| -> u64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
    };
    let (middle, leaf, skipped) = (field("middle"), field("leaf"), field("skipped"));

    // What was recorded: the calls between tm_set_cpu_fn(f) and tm_set_cpu_fn(NULL),
    // 10 times middle { leaf leaf }, and nothing of the clock or the cpu function.
    let records = decode(&std::fs::read(&ring_path).unwrap());
    let calls: Vec<Event> = records
        .iter()
        .map(|r| r.event)
        .filter(|e| match e {
            Event::FunctionEntry { func } | Event::FunctionExit { func } => {
                *func == middle || *func == leaf
            }
            _ => false,
        })
        .collect();
    let mut want = Vec::new();
    for _ in 0..10 {
        want.push(Event::FunctionEntry { func: middle });
        for _ in 0..2 {
            want.push(Event::FunctionEntry { func: leaf });
            want.push(Event::FunctionExit { func: leaf });
        }
        want.push(Event::FunctionExit { func: middle });
    }
    assert_eq!(calls, want);
    let others = records.len() - calls.len();
    assert!(
        others <= 4,
        "only main's loop and tm_set_cpu_fn may add records: {others} more in {records:?}"
    );
    // Each recorded hook call skipped at least the entry and exit hooks of the cpu
    // function and of the clock it called.
    assert!(
        skipped >= 4 * records.len() as u64,
        "skipped {skipped} for {} records",
        records.len()
    );
}
