//! `tracemark export` of a dump with thousands of rings (issue 20, points 6 and 8):
//! every format finishes within a stated memory bound and with at most 64 open files,
//! and the Perfetto trace is the same bytes with one thread and with several.
//!
//! One test in its own binary: the peak RSS it bounds is `getrusage(RUSAGE_CHILDREN)`,
//! the largest of this process's children, which another test's children would blur.
//! The bound does not depend on the machine's speed or load.

use std::path::Path;
use std::process::Command;

use tracemark::{Config, KernelEntry, Mode};
use tracemark_tests::ring_image;

/// Rings in the dump. Before the fix, Perfetto kept one sequence per ring in each of the
/// rings' sinks (N^2: about 3.7 GB here), Parquet about 0.6 MB per ring (1.2 GB), and CTF
/// opened every stream file at once (2,000 files).
const RINGS: u32 = 2000;
/// Peak RSS allowed for any export of it, in KiB: the dump is 2.4 MB; what is kept per
/// ring waiting for its turn is a few hundred bytes (measured: 34 MiB with 4,000 rings).
const MAX_RSS_KIB: i64 = 128 << 10;
/// Open files allowed (`ulimit -n`).
const MAX_FILES: u32 = 64;

/// One small ring of CPU `cpu`: kernel entries and exits around function calls, and
/// one function entry left without its exit.
fn ring(cpu: u32) -> Vec<u8> {
    let config = Config {
        mode: Mode::Overwrite,
        block_size: 512,
        clock_hz: 1_000_000_000,
        cpu_id: cpu,
        ..Config::new()
    };
    ring_image(&config, 2, 1000 + u64::from(cpu), |t, clock| {
        for i in 0..6u32 {
            clock.set(clock.get() + 100);
            t.kernel_entry(KernelEntry::syscall(1 + (i % 3) as u8, 4, i % 2 == 0, i));
            t.function_entry(0x8000_0100 + u64::from(i));
            clock.set(clock.get() + 10);
            t.function_exit(0x8000_0100 + u64::from(i));
            t.kernel_exit();
        }
        t.function_entry(0x8000_0200);
    })
}

/// `tracemark export DUMP --format FORMAT -o OUT ARGS...` under `ulimit -n`; its
/// stderr on failure.
fn export(dump: &Path, format: &str, out: &Path, args: &[&str]) {
    let tm = assert_cmd::cargo::cargo_bin("tracemark");
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {MAX_FILES} && exec \"$0\" \"$@\""))
        .arg(&tm)
        .arg("export")
        .arg(dump)
        .args(["--format", format, "-o"])
        .arg(out)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "export --format {format}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn thousands_of_rings_export_in_bounded_memory_and_files_and_perfetto_is_deterministic() {
    use nix::sys::resource::{getrusage, UsageWho};
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("many.bin");
    let bytes: Vec<u8> = (0..RINGS).flat_map(ring).collect();
    std::fs::write(&dump, bytes).unwrap();
    let one = dir.path().join("one.perfetto-trace");
    let two = dir.path().join("two.perfetto-trace");
    let json = dir.path().join("t.json");
    let ctf = dir.path().join("ctf");
    let pq = dir.path().join("pq");

    // Every export first, while this process is small: a child's peak RSS as Linux
    // counts it includes its parent's at the spawn (vfork shares the memory until exec).
    export(&dump, "perfetto", &one, &["--threads", "1"]);
    export(&dump, "perfetto", &two, &["--threads", "3"]);
    export(&dump, "chrome-json", &json, &["--threads", "3"]);
    export(&dump, "ctf", &ctf, &["--threads", "3"]);
    export(&dump, "parquet", &pq, &["--threads", "3"]);
    let peak_kib = getrusage(UsageWho::RUSAGE_CHILDREN).unwrap().max_rss();
    assert!(
        peak_kib <= MAX_RSS_KIB,
        "an export of {RINGS} rings peaked at {} MiB (bound {} MiB)",
        peak_kib >> 10,
        MAX_RSS_KIB >> 10
    );

    let (a, b) = (std::fs::read(&one).unwrap(), std::fs::read(&two).unwrap());
    assert!(a == b, "perfetto output differs between 1 and 3 threads");
    // Every ring's track is in it, in ring order (the output's order is the rings').
    let mut at = 0;
    for cpu in [0, 1, RINGS / 2, RINGS - 1] {
        let name = format!("CPU {cpu}");
        let found = a[at..]
            .windows(name.len() + 1)
            .position(|w| &w[..name.len()] == name.as_bytes() && !w[name.len()].is_ascii_digit())
            .unwrap_or_else(|| panic!("no track {name} after byte {at}"));
        at += found + name.len();
    }

    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let events = json["traceEvents"].as_array().unwrap();
    let threads = events.iter().filter(|e| e["name"] == "thread_name").count();
    assert_eq!(threads, RINGS as usize);

    let streams = std::fs::read_dir(&ctf)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("stream_cpu")
        })
        .count();
    assert_eq!(streams, RINGS as usize);
    // Nothing left beside the outputs (temporary files and directories renamed).
    let beside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(beside.is_empty(), "left behind: {beside:?}");

    let records = std::fs::read_dir(pq.join("records"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(std::fs::read_dir(records).unwrap().count(), RINGS as usize);
}
