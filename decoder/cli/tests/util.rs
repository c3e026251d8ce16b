//! Helpers of the CLI's integration tests: running the `tracemark` binary.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The `tracemark` binary of this package.
pub fn tm() -> Command {
    Command::cargo_bin("tracemark").unwrap()
}

/// Writes `bytes` to `dir/name`, returns the path.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Exit code, standard output and standard error of `tracemark args`.
pub fn run(args: &[&str]) -> (i32, String, String) {
    let o = tm().args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
