//! `--elf` on 32-bit ARM Thumb code, with the wrong build, and stripped (issue 20,
//! point 12).
//!
//! The fixture `tests/data/thumb/` is 41 small Thumb functions (`funcs.c`), built and
//! listed with (arm-none-eabi-gcc 12.2):
//!
//! ```text
//! arm-none-eabi-gcc -mthumb -mcpu=cortex-m3 -O1 -fno-inline -nostdlib \
//!     -Wl,--build-id=sha1 -Wl,-e,entry -o thumb.elf funcs.c
//! arm-none-eabi-strip -o stripped.elf thumb.elf
//! arm-none-eabi-nm --defined-only thumb.elf | grep ' T ' > thumb.nm
//! ```
//!
//! It has no DWARF, so names come from the symbol table, whose Thumb function symbols
//! carry bit 0 (`f1` is at 0x802a, its symbol value is 0x802b). Its first load segment
//! starts at 0x8000 and its build id starts `ee 8b 4a b1 71 77 ce c9`
//! (`arm-none-eabi-readelf -n thumb.elf`).

use std::cell::Cell;
use std::path::{Path, PathBuf};

use crate::common::{json_lines, tracemark};
use tracemark::{Config, Mode, Tracer};
use tracemark_format::ring::RING_HEADER_LEN;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/thumb")
        .join(name)
}

/// The fixture's build id, first 8 bytes read little-endian (an IMAGE record's id).
const BUILD_ID: u64 = u64::from_le_bytes([0xee, 0x8b, 0x4a, 0xb1, 0x71, 0x77, 0xce, 0xc9]);

/// The Thumb functions of the fixture: (function address, name), from `thumb.nm`
/// (symbol values with bit 0 cleared).
fn functions() -> Vec<(u64, String)> {
    std::fs::read_to_string(fixture("thumb.nm"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let value = u64::from_str_radix(f.next()?, 16).ok()?;
            let name = f.nth(1)?;
            (name == "entry" || name.starts_with('f')).then(|| (value & !1, name.to_string()))
        })
        .collect()
}

/// A dump of one ring: an IMAGE record (0x8000, `size`, `id`), then a FENTRY of every
/// function, once by its address and once with the Thumb bit (as a C program's function
/// pointer carries it).
fn dump(dir: &Path, id: u64) -> PathBuf {
    let now = Cell::new(1_000u64);
    let clock = || now.get();
    let mut mem = vec![0u64; (RING_HEADER_LEN + 8 * 1024) / 8];
    // SAFETY: a u64 buffer viewed as bytes: same memory, 8-byte aligned, no padding.
    let bytes =
        unsafe { std::slice::from_raw_parts_mut(mem.as_mut_ptr().cast::<u8>(), mem.len() * 8) };
    let config = Config {
        mode: Mode::Drop,
        block_size: 1024,
        clock_hz: 1_000_000,
        ..Config::new()
    };
    let t = Tracer::new(bytes, &config, &clock).unwrap();
    t.image(0x8000, 0x12f0, id);
    for (addr, _) in functions() {
        for f in [addr, addr | 1] {
            now.set(now.get() + 10);
            t.function_entry(f);
        }
    }
    drop(t);
    let path = dir.join("thumb.bin");
    std::fs::write(&path, &*bytes).unwrap();
    path
}

/// (function id, symbol) of every FENTRY `decode --format json` prints.
fn named(out: &std::process::Output) -> Vec<(u64, Option<String>)> {
    json_lines(std::str::from_utf8(&out.stdout).unwrap())
        .iter()
        .filter(|l| l["kind"] == "FENTRY")
        .map(|l| {
            (
                l["func"].as_u64().unwrap(),
                l["symbol"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[test]
fn thumb_functions_are_named_by_their_own_symbols() {
    let dir = tempfile::tempdir().unwrap();
    let d = dump(dir.path(), BUILD_ID);
    let elf = fixture("thumb.elf");
    let out = tracemark(&[
        "decode",
        d.to_str().unwrap(),
        "--format",
        "json",
        "--elf",
        elf.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = functions();
    assert_eq!(want.len(), 41);
    let got = named(&out);
    assert_eq!(got.len(), 2 * want.len());
    for ((addr, name), pair) in want.iter().zip(got.chunks(2)) {
        for (func, symbol) in pair {
            assert_eq!(func & !1, *addr);
            assert_eq!(symbol.as_deref(), Some(name.as_str()), "{func:#x}");
        }
    }
}

#[test]
fn an_elf_of_another_build_is_refused_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    // The IMAGE record's address matches the ELF, its id does not.
    let d = dump(dir.path(), 0x1234_5678_9abc_def0);
    let (d, elf) = (d.to_str().unwrap(), fixture("thumb.elf"));
    let elf = elf.to_str().unwrap();
    let out = tracemark(&["decode", d, "--format", "json", "--elf", elf]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty(), "no wrong names printed");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(elf) && err.contains("build id"), "{err}");
    assert!(
        err.contains("--elf-ignore-build-id"),
        "says how to override: {err}"
    );
    for cmd in ["stats", "export"] {
        let mut args = vec![cmd, d, "--elf", elf];
        let trace = dir.path().join("t.json");
        if cmd == "export" {
            args.extend(["--format", "chrome-json", "-o", trace.to_str().unwrap()]);
        }
        let out = tracemark(&args);
        assert_eq!(out.status.code(), Some(1), "{cmd}");
    }
    let out = tracemark(&[
        "decode",
        d,
        "--format",
        "json",
        "--elf",
        elf,
        "--elf-ignore-build-id",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning") && err.contains("--elf-ignore-build-id"),
        "{err}"
    );
    assert!(named(&out).iter().all(|(_, s)| s.is_some()));
}

#[test]
fn a_stripped_elf_is_said_to_name_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dump(dir.path(), BUILD_ID);
    let elf = fixture("stripped.elf");
    let out = tracemark(&[
        "decode",
        d.to_str().unwrap(),
        "--format",
        "json",
        "--elf",
        elf.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning") && err.contains("no symbol table and no DWARF"),
        "{err}"
    );
    assert!(named(&out).iter().all(|(_, s)| s.is_none()));
}
