//! Helpers shared by the CLI integration tests: building and locating the `tracemark`
//! and `kernel-sim` binaries, running them, and reading their output.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

/// The directory the test binary's profile builds into (`target/debug`), found from the
/// running test executable (`target/debug/deps/<test>-<hash>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// Builds the two binaries once per test process (integration tests cannot depend on
/// another package's binaries), into the target directory this test was built in.
fn built() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = profile_dir();
        let target = dir.parent().expect("target dir").to_path_buf();
        let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "tracemark-cli",
            "-p",
            "tracemark-examples",
            "--bins",
        ])
        .arg("--target-dir")
        .arg(&target)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let status = cmd.status().expect("run cargo build for the binaries");
        assert!(status.success(), "cargo build of the binaries failed");
        dir
    })
}

/// Path of the `tracemark` CLI.
pub fn tracemark_bin() -> PathBuf {
    built().join(format!("tracemark{}", std::env::consts::EXE_SUFFIX))
}

/// Path of the `kernel-sim` binary.
pub fn kernel_sim_bin() -> PathBuf {
    built().join(format!("kernel-sim{}", std::env::consts::EXE_SUFFIX))
}

/// Runs `tracemark` with `args`.
pub fn tracemark(args: &[&str]) -> Output {
    Command::new(tracemark_bin())
        .args(args)
        .output()
        .expect("run tracemark")
}

/// Runs `tracemark` with `args`; panics with its stderr unless it succeeds; returns stdout.
pub fn tracemark_ok(args: &[&str]) -> String {
    let out = tracemark(args);
    assert!(
        out.status.success(),
        "tracemark {args:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A kernel-sim run: the dump and its truth, in a temporary directory.
pub struct Sim {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// The dump file.
    pub dump: PathBuf,
    /// The truth, parsed.
    pub truth: Value,
}

impl Sim {
    /// The dump's path as a string.
    pub fn dump_str(&self) -> &str {
        self.dump.to_str().expect("utf-8 temp path")
    }
}

/// Runs kernel-sim with `events`, `cpus`, `buffer` bytes per CPU, `mode`, `block` size
/// and `seed`.
pub fn kernel_sim(events: u64, cpus: u32, buffer: usize, mode: &str, block: u32, seed: u64) -> Sim {
    let dir = tempfile::tempdir().expect("temp dir");
    let dump = dir.path().join("dump.bin");
    let truth_path = dir.path().join("truth.json");
    let out = Command::new(kernel_sim_bin())
        .args(["--events", &events.to_string()])
        .args(["--cpus", &cpus.to_string()])
        .args(["--buffer", &buffer.to_string()])
        .args(["--mode", mode])
        .args(["--block-size", &block.to_string()])
        .args(["--seed", &seed.to_string()])
        .arg("-o")
        .arg(&dump)
        .arg("--truth")
        .arg(&truth_path)
        .output()
        .expect("run kernel-sim");
    assert!(
        out.status.success(),
        "kernel-sim failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let truth = serde_json::from_slice(&std::fs::read(&truth_path).expect("truth file"))
        .expect("truth JSON");
    Sim { dir, dump, truth }
}

/// Parses JSON Lines.
pub fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// `v[key]` as u64, panicking with the key's name.
pub fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a u64 in {v}"))
}

/// One valid block of a dump: where it is and what it holds.
pub struct ValidBlock {
    /// Its first byte in the dump.
    pub start: usize,
    /// One past its last byte in the dump.
    pub end: usize,
    /// (cpu, ts, kind) of its records.
    pub records: Vec<(u64, u64, String)>,
}

/// The valid blocks of a dump of rings laid end to end, in the dump's order.
pub fn valid_blocks(bytes: &[u8]) -> Vec<ValidBlock> {
    use tracemark_format::ring::{BlockState, RingView};
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let view = RingView::parse(&bytes[at..]).expect("a ring");
        let cpu = u64::from(view.header.cpu_id.get());
        let bs = view.geometry.block_size() as usize;
        for b in view.blocks() {
            if b.state != BlockState::Valid {
                continue;
            }
            out.push(ValidBlock {
                start: at + b.offset,
                end: at + b.offset + bs,
                records: b
                    .decode()
                    .map(|r| {
                        let r = r.expect("the original dump decodes");
                        (cpu, r.ts, r.event.kind().name().to_string())
                    })
                    .collect(),
            });
        }
        at += view.ring_len();
    }
    out
}
