//! `tracemark import qemu` on real QEMU logs made here: `tests/qemu-import/prog.c` built
//! as a static ARM Linux program, once as ARM code and once as Thumb code, run under
//! `qemu-arm -d exec,cpu,in_asm,nochain`. `qemu-arm -strace` of the same program is
//! the ground truth: the imported syscall table must equal it exactly (numbers and
//! counts), with the private ARM syscalls (which strace does not print) listed apart.
//! The program has a block that sets R7 and issues `svc` in the same block, a number
//! copied from another register, and an `exit_group` with no register dump after it.
//! The same program is also logged with `-dfilter` (the blocks after each `svc` missing,
//! so the next dump is wrong) and with block chaining (warned as incomplete).
//!
//! The tests that run the program need `arm-linux-gnueabihf-gcc` and `qemu-arm`
//! (Debian: gcc-arm-linux-gnueabihf, qemu-user), so they are `#[ignore]`d in a plain
//! `cargo test`: scripts/test-import.sh installs the tools and runs them with
//! `--include-ignored`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{tracemark, tracemark_ok};
use tracemark_decoder::syscalls;

fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("qemu-import/prog.c")
}

/// Builds the program with `-m{mode}` into `dir`.
fn build(dir: &Path, mode: &str) -> PathBuf {
    let exe = dir.join(format!("prog-{mode}"));
    let out = Command::new("arm-linux-gnueabihf-gcc")
        .args(["-static", "-O1", &format!("-m{mode}"), "-o"])
        .arg(&exe)
        .arg(source())
        .output()
        .expect("run arm-linux-gnueabihf-gcc");
    assert!(
        out.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// Syscall counts by number as `qemu-arm -strace` prints them.
fn strace(exe: &Path) -> BTreeMap<u32, u64> {
    let out = Command::new("qemu-arm")
        .arg("-strace")
        .arg(exe)
        .output()
        .expect("run qemu-arm -strace");
    assert!(out.status.success(), "qemu-arm -strace failed");
    let text = String::from_utf8_lossy(&out.stderr);
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        // `17155 getpid() = 17155`, `17155 exit_group(0)`, `17155 Unknown syscall 398`
        let Some((_pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let number = if let Some(n) = rest.strip_prefix("Unknown syscall ") {
            n.trim().parse().expect("unknown syscall number")
        } else {
            let Some((name, _)) = rest.split_once('(') else {
                continue;
            };
            syscalls::number(name)
                .unwrap_or_else(|| panic!("strace name {name:?} not in the table: {line}"))
        };
        *counts.entry(number).or_insert(0) += 1;
    }
    assert!(!counts.is_empty(), "no strace output: {text}");
    counts
}

/// Runs the program under `qemu-arm -d items -D log`.
fn qemu_log(exe: &Path, items: &str, log: &Path) {
    let out = Command::new("qemu-arm")
        .args(["-d", items, "-D"])
        .arg(log)
        .arg(exe)
        .output()
        .expect("run qemu-arm");
    assert!(out.status.success(), "qemu-arm -d {items} failed");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "second\nfirst\n",
        "the program's output"
    );
}

struct Imported {
    csv: BTreeMap<u32, (String, u64)>,
    order: Vec<String>,
    stdout: String,
    stderr: String,
    dump: PathBuf,
}

fn import(dir: &Path, log: &Path, exe: &Path, tag: &str) -> Imported {
    let dump = dir.join(format!("{tag}.dump"));
    let csv = dir.join(format!("{tag}.csv"));
    let order = dir.join(format!("{tag}.order"));
    let out = tracemark(&[
        "import",
        "qemu",
        log.to_str().unwrap(),
        "--elf",
        exe.to_str().unwrap(),
        "--arch",
        "arm",
        "-o",
        dump.to_str().unwrap(),
        "--syscalls",
        csv.to_str().unwrap(),
        "--order-file",
        order.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "import failed: {stderr}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("number,name,count,first_pc"));
    let csv = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 4, "{l}");
            assert!(f[3].starts_with("0x"), "{l}");
            (
                f[0].parse().unwrap(),
                (f[1].to_string(), f[2].parse().unwrap()),
            )
        })
        .collect();
    let order = std::fs::read_to_string(&order)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    Imported {
        csv,
        order,
        stdout,
        stderr,
        dump,
    }
}

fn check_program(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let exe = build(dir.path(), mode);
    let truth = strace(&exe);
    let log = dir.path().join("nochain.log");
    qemu_log(&exe, "exec,cpu,in_asm,nochain", &log);
    let imp = import(dir.path(), &log, &exe, "nochain");
    assert!(imp.stderr.is_empty(), "{mode}: warnings: {}", imp.stderr);

    // The table equals strace's, numbers and counts, once private ARM syscalls (not
    // printed by strace) are set apart.
    let linux: BTreeMap<u32, u64> = imp
        .csv
        .iter()
        .filter(|(n, _)| **n < syscalls::ARM_PRIVATE_BASE)
        .map(|(n, (_, c))| (*n, *c))
        .collect();
    assert_eq!(linux, truth, "{mode}: imported table vs qemu-arm -strace");
    for (n, (name, _)) in &imp.csv {
        assert_eq!(syscalls::name(*n).unwrap_or("unknown"), name);
    }
    // The program's own syscalls: 3 getpid (svc in the block that sets R7), a gettid
    // (R7 from R4), and the last one, exit_group, recovered from its block.
    assert_eq!(truth.get(&20), Some(&3), "{mode}");
    assert_eq!(truth.get(&224), Some(&1), "{mode}");
    assert_eq!(truth.get(&248), Some(&1), "{mode}");
    assert_eq!(
        imp.csv.get(&0xf0005),
        Some(&("set_tls".to_string(), 1)),
        "{mode}: glibc's set_tls, which strace does not print"
    );
    assert!(
        imp.stdout
            .contains("(1 numbers recovered from the block's instructions, 0 corrected)"),
        "{mode}: {}",
        imp.stdout
    );
    assert!(
        imp.stdout.contains("private ARM syscalls"),
        "{}",
        imp.stdout
    );

    // First-execution order of the program's functions.
    assert_eq!(imp.order.first().map(String::as_str), Some("_start"));
    let pos = |f: &str| imp.order.iter().position(|n| n == f);
    let (main, second, first) = (pos("main"), pos("second_fn"), pos("first_fn"));
    assert!(
        main.is_some() && main < second && second < first,
        "{mode}: {:?}",
        imp.order
    );
    assert_eq!(pos("never_called"), None);
    for f in ["raw_getpid", "raw_gettid"] {
        assert!(pos(f) > first, "{mode}: {f} in {:?}", imp.order);
    }

    // The dump: every other command reads it; its kernel entries are the table.
    let dump = imp.dump.to_str().unwrap();
    let json = tracemark_ok(&["decode", dump, "--kind", "KENTRY", "--format", "json"]);
    let mut from_dump: BTreeMap<u32, u64> = BTreeMap::new();
    for line in json.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["path"], "UnknownSyscall", "{line}");
        *from_dump
            .entry(v["word"].as_u64().unwrap() as u32)
            .or_insert(0) += 1;
    }
    let all: BTreeMap<u32, u64> = imp.csv.iter().map(|(n, (_, c))| (*n, *c)).collect();
    assert_eq!(from_dump, all, "{mode}: dump vs CSV");
    let text = tracemark_ok(&["decode", dump, "--kind", "KENTRY,KEXIT"]);
    assert!(text.contains("linux=exit_group"), "{text}");
    assert!(!text.contains("no entry"), "{text}");
    let stats = tracemark_ok(&["stats", dump]);
    assert!(stats.contains("lost: 0 records"), "{stats}");
    let fentries = tracemark_ok(&["decode", dump, "--kind", "FENTRY"]);
    assert!(fentries.lines().count() >= imp.order.len(), "{fentries}");
    // Function returns: every exit closes an entry, the call depth stays that of the
    // program (not one more level per call, as entries without exits made it), and
    // only the functions the process never returns from stay open.
    let calls = tracemark_ok(&["decode", dump, "--kind", "FENTRY,FEXIT"]);
    let (mut depth, mut max_depth, mut exits) = (0i64, 0i64, 0);
    for l in calls.lines() {
        if l.contains(" FENTRY ") {
            depth += 1;
        } else if l.contains(" FEXIT ") {
            depth -= 1;
            exits += 1;
        }
        assert!(depth >= 0, "{mode}: an exit without its entry: {l}");
        max_depth = max_depth.max(depth);
    }
    assert!(exits > 0, "{mode}: no function returns: {calls}");
    assert!(max_depth <= 16, "{mode}: call depth {max_depth}: {calls}");
    // Never returned from: _start, __libc_start_main_impl, __libc_start_call_main,
    // exit, __run_exit_handlers, _exit and (Thumb) __libc_do_syscall: 7 at most.
    assert!(
        depth <= 7,
        "{mode}: {depth} functions never return: {calls}"
    );
    assert!(
        imp.stdout
            .contains(&format!("{exits} function returns seen")),
        "{mode}: {}",
        imp.stdout
    );

    // Blocks missing from the log: with -dfilter covering only raw_getpid's svc block
    // and main, the block after each svc (`pop {r7}; bx lr`) is not logged, and the
    // next register dump is main's, whose R7 is not the number. The svc block's own
    // `mov r7, #20` tells, and the import says it overrode the dump.
    let nm = Command::new("arm-linux-gnueabihf-nm")
        .arg("-S")
        .arg(&exe)
        .output()
        .expect("run arm-linux-gnueabihf-nm");
    let nm = String::from_utf8(nm.stdout).unwrap();
    let sym = |name: &str| {
        nm.lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 4 && f[3] == name).then(|| (f[0].to_string(), f[1].to_string()))
            })
            .unwrap_or_else(|| panic!("{name} not in nm output"))
    };
    let (getpid_at, _) = sym("raw_getpid");
    let (main_at, main_size) = sym("main");
    let log = dir.path().join("dfilter.log");
    // raw_getpid's first block is 3 instructions: 8 bytes in Thumb, 12 in ARM.
    let filter = format!(
        "0x{getpid_at}+{},0x{main_at}+0x{main_size}",
        if mode == "arm" { 12 } else { 8 }
    );
    let out = Command::new("qemu-arm")
        .args(["-d", "exec,cpu,in_asm,nochain", "-dfilter", &filter, "-D"])
        .arg(&log)
        .arg(&exe)
        .output()
        .unwrap();
    assert!(out.status.success());
    let gap = import(dir.path(), &log, &exe, "dfilter");
    let got: Vec<(u32, u64)> = gap.csv.iter().map(|(n, (_, c))| (*n, *c)).collect();
    assert_eq!(got, vec![(20, 3)], "{mode}: {}", gap.stdout);
    assert!(gap.stdout.contains("3 corrected"), "{mode}: {}", gap.stdout);
    assert!(gap.stderr.contains("disagreed"), "{mode}: {}", gap.stderr);

    // Chained (no `nochain`): blocks entered through chained jumps are in the log only
    // as translations, orphans with no execution or register dump of their own. The
    // import warns, and what it does count is never misattributed: each number is one
    // strace saw, at most as often.
    let log = dir.path().join("chained.log");
    qemu_log(&exe, "exec,cpu,in_asm", &log);
    let chained = import(dir.path(), &log, &exe, "chained");
    assert!(
        chained.stderr.contains("block chaining") && chained.stdout.contains("chained"),
        "{mode}: {}",
        chained.stderr
    );
    for (n, (_, c)) in &chained.csv {
        if *n < syscalls::ARM_PRIVATE_BASE {
            assert!(
                truth.get(n).is_some_and(|t| c <= t),
                "{mode}: chained import counted {c} x {n}, strace {:?}",
                truth.get(n)
            );
        }
    }
}

#[test]
#[ignore = "needs arm-linux-gnueabihf-gcc and qemu-arm: scripts/test-import.sh"]
fn arm_code_matches_strace() {
    check_program("arm");
}

#[test]
#[ignore = "needs arm-linux-gnueabihf-gcc and qemu-arm: scripts/test-import.sh"]
fn thumb_code_matches_strace() {
    check_program("thumb");
}

/// Bad input: one line naming the file (and offset), a non-zero exit, no dump left
/// behind. Needs no cross tools.
#[test]
fn bad_input_is_one_line_and_leaves_no_dump() {
    let dir = tempfile::tempdir().unwrap();
    let not_log = dir.path().join("notes.txt");
    std::fs::write(&not_log, "hello\nworld\n").unwrap();
    let a64 = dir.path().join("a64.log");
    std::fs::write(
        &a64,
        "Trace 0: 0x1 [0/00400000/0/0] _start\nPC=0000000000400000 X00=0000000000000000\n",
    )
    .unwrap();
    let dump = dir.path().join("out.dump");
    let d = dump.to_str().unwrap();
    let missing = dir.path().join("missing.log");
    for (args, expect) in [
        (
            vec!["import", "qemu", not_log.to_str().unwrap(), "-o", d],
            "notes.txt: at byte 0: no block executions",
        ),
        (
            vec!["import", "qemu", a64.to_str().unwrap(), "-o", d],
            "a64.log: at byte 37: register dump of another architecture",
        ),
        (
            vec!["import", "qemu", missing.to_str().unwrap(), "-o", d],
            "missing.log: No such file",
        ),
        (
            vec![
                "import",
                "qemu",
                a64.to_str().unwrap(),
                "--elf",
                not_log.to_str().unwrap(),
                "-o",
                d,
            ],
            "notes.txt: at byte 0: not a readable ELF file",
        ),
    ] {
        let out = tracemark(&args);
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(expect), "{args:?}: {err}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("out.dump"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
