//! Helpers of the C-ABI integration tests: building the static library and C programs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use tracemark_format::ring::{BlockState, RingView};
use tracemark_format::Record;

pub const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Runs `cmd`, panicking with its output if it fails.
pub fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Builds `libtracemark_c.a` (debug) in a target directory of its own (the outer `cargo
/// test` may hold the lock on the normal one) and returns its path.
pub fn build_staticlib(name: &str) -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    run(Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "tracemark-c"])
        .arg("--manifest-path")
        .arg(Path::new(REPO).join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target));
    target.join("debug").join("libtracemark_c.a")
}

/// Compiles and links the C sources `srcs` with `flags` against `lib`; returns the program.
pub fn build_c(work: &Path, name: &str, srcs: &[PathBuf], flags: &[&str], lib: &Path) -> PathBuf {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let exe = work.join(name);
    run(Command::new(&cc)
        .args(["-O1", "-Wall", "-Wextra", "-Werror", "-std=c11"])
        .args(flags)
        .arg("-I")
        .arg(Path::new(REPO).join("encoder/include"))
        .args(srcs)
        .arg(lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe));
    exe
}

/// All records of a ring image, oldest first.
pub fn decode(image: &[u8]) -> Vec<Record> {
    let view = RingView::parse(image).expect("ring header");
    let mut out = Vec::new();
    for block in view.blocks() {
        match block.state {
            BlockState::Valid => out.extend(block.decode().map(|r| r.expect("record"))),
            BlockState::Empty => {}
            s => panic!("block {} is {s:?}", block.seq),
        }
    }
    out
}

/// Ring memory for the tests that call the C ABI from Rust: `N` bytes, 8-byte aligned.
#[repr(C, align(8))]
pub struct RingMem<const N: usize>(pub [u8; N]);

/// `tm_init(0, ...)` on `mem`: 256-byte blocks, `mode`, `syscall_abi`, `clock` at 1 MHz,
/// producer 1; returns its result.
///
/// # Safety
///
/// `mem` is valid for its size and used only through the library until `tm_release(0)`.
pub unsafe fn init_cpu0<const N: usize>(
    mem: *mut RingMem<N>,
    mode: u32,
    syscall_abi: u32,
    clock: extern "C" fn() -> u64,
) -> core::ffi::c_int {
    let config = tracemark_c::TmConfig {
        block_size: 256,
        mode,
        clock: Some(clock),
        clock_hz: 1_000_000,
        producer_id: 1,
        syscall_abi,
    };
    // SAFETY: the caller's contract.
    unsafe { tracemark_c::tm_init(0, mem.cast(), N, &config) }
}
