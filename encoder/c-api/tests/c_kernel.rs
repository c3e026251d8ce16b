//! Builds `examples/c-kernel` (C, with the system C compiler) against the static library,
//! runs it, extracts the rings it dumped over its "UART" (stdout, `@TM:` lines mixed with
//! log lines), checks they are byte-identical to the raw `tm_dump` images, decodes them
//! and checks them against the truth file the C program wrote: every count per CPU and kind, every kernel-exit duration, the function
//! addresses the `-finstrument-functions` hooks recorded, and that the signal handler
//! really preempted records in progress without corrupting them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use tracemark_format::ring::{BlockState, RingView};
use tracemark_format::uart::{self, Line};
use tracemark_format::{EntryPath, Event, ExitDuration, Record};

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn run(cmd: &mut Command) -> std::process::Output {
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

/// Builds `libtracemark_c.a` in a target directory of its own (the outer `cargo test`
/// may hold the lock on the normal one) and returns its path.
fn build_staticlib(work: &Path) -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c-kernel-target");
    run(Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "tracemark-c"])
        .arg("--manifest-path")
        .arg(Path::new(REPO).join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(work));
    target.join("debug").join("libtracemark_c.a")
}

/// Compiles the C kernel (`-finstrument-functions` on instrumented.c only) and links it.
fn build_c_kernel(work: &Path, lib: &Path) -> PathBuf {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let src = Path::new(REPO).join("examples/c-kernel");
    let include = Path::new(REPO).join("encoder/include");
    let common = ["-O2", "-g", "-Wall", "-Wextra", "-Werror", "-std=c11"];
    let kernel_o = work.join("kernel.o");
    let instr_o = work.join("instrumented.o");
    run(Command::new(&cc)
        .args(common)
        .arg("-I")
        .arg(&include)
        .arg("-c")
        .arg(src.join("kernel.c"))
        .arg("-o")
        .arg(&kernel_o));
    run(Command::new(&cc)
        .args(common)
        .arg("-finstrument-functions")
        .arg("-c")
        .arg(src.join("instrumented.c"))
        .arg("-o")
        .arg(&instr_o));
    let exe = work.join("c-kernel");
    run(Command::new(&cc)
        .arg(&kernel_o)
        .arg(&instr_o)
        .arg(lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe));
    exe
}

/// The truth file the C program writes.
#[derive(Default, Debug)]
struct Truth {
    cpus: u32,
    signals_in_record: u64,
    signal_irq: u32,
    counts: BTreeMap<(u32, String), u64>,
    lost: BTreeMap<u32, (u64, u64)>,
    signal_kexits: BTreeMap<u32, u64>,
    exits: BTreeMap<u32, Vec<u64>>,
    functions: BTreeSet<u64>,
}

fn parse_truth(text: &str) -> Truth {
    let mut t = Truth::default();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let n = |i: usize| -> u64 { f[i].parse().unwrap_or_else(|_| panic!("truth: {line}")) };
        match f.first().copied() {
            Some("cpus") => t.cpus = n(1) as u32,
            Some("signals_in_record") => t.signals_in_record = n(1),
            Some("signal_irq") => t.signal_irq = n(1) as u32,
            Some("count") => {
                t.counts.insert((n(1) as u32, f[2].to_string()), n(3));
            }
            Some("lost") => {
                t.lost.insert(n(1) as u32, (n(2), n(3)));
            }
            Some("signal_kexits") => {
                t.signal_kexits.insert(n(1) as u32, n(2));
            }
            Some("exits") => {
                t.exits.insert(n(1) as u32, (2..f.len()).map(n).collect());
            }
            Some("functions") => t.functions = (1..f.len()).map(n).collect(),
            _ => {}
        }
    }
    t
}

/// Decodes a ring image: every block must be valid or empty, every record must decode.
fn decode(image: &[u8]) -> (Vec<Record>, RingView<'_>) {
    let view = RingView::parse(image).expect("ring header");
    let mut out = Vec::new();
    for block in view.blocks() {
        match block.state {
            BlockState::Valid => {
                let before = out.len();
                for r in block.decode() {
                    out.push(r.unwrap_or_else(|e| panic!("block {}: {e}", block.seq)));
                }
                if !block.is_current {
                    assert_eq!(
                        (out.len() - before) as u32,
                        block.header.records.get(),
                        "block {} record count",
                        block.seq
                    );
                }
            }
            BlockState::Empty => {}
            s => panic!("block {} is {s:?}", block.seq),
        }
    }
    (out, view)
}

/// Checks one CPU's decoded ring against the truth.
fn check_cpu(cpu: u32, image: &[u8], truth: &Truth) {
    let (records, view) = decode(image);
    let h = &view.header;
    assert_eq!(h.cpu_id.get(), cpu);
    assert_eq!(h.clock_hz.get(), 1_000_000_000);
    assert_eq!(h.producer_id.get(), 0xc0ffee);
    assert_eq!(h.syscall_abi, 1, "seL4 syscall numbering");
    assert_eq!(
        (h.overwritten.get(), h.dropped.get()),
        (0, 0),
        "cpu {cpu} lost records"
    );
    assert_eq!(truth.lost[&cpu], (0, 0));

    // Every count per kind.
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &records {
        *counts.entry(r.event.kind().name()).or_default() += 1;
    }
    for k in ["KENTRY", "KEXIT", "IRQ", "FENTRY", "FEXIT", "USER", "IMAGE"] {
        let want = truth.counts[&(cpu, k.to_string())];
        assert_eq!(counts.remove(k).unwrap_or(0), want, "cpu {cpu} {k} count");
    }
    assert!(counts.is_empty(), "cpu {cpu}: unexpected kinds {counts:?}");

    // Every kernel-exit duration: pair exits with entries; exits of the signal handler's
    // entries last 0 ticks (its clock stands still), the others match the C program's
    // list in order.
    let mut expected = truth.exits[&cpu].iter();
    let mut stack: Vec<u32> = Vec::new();
    let mut signal_exits = 0u64;
    let mut funcs: Vec<u64> = Vec::new();
    let mut last_ts = 0;
    for r in &records {
        assert!(r.ts >= last_ts, "cpu {cpu}: time went back at {r:?}");
        last_ts = r.ts;
        match r.event {
            Event::KernelEntry(e) => stack.push(match e.as_other() {
                Some(o) if e.path() == EntryPath::Interrupt => o.word(),
                _ => 0,
            }),
            Event::KernelExit(d) => {
                let word = stack.pop().expect("exit without entry");
                if word == truth.signal_irq {
                    signal_exits += 1;
                    assert_eq!(d, ExitDuration::Ticks(0), "signal handler exit");
                } else {
                    let want = expected.next().expect("more exits than the C program made");
                    assert_eq!(d, ExitDuration::Ticks(*want), "cpu {cpu} exit duration");
                }
            }
            Event::FunctionEntry { func } => {
                assert!(
                    truth.functions.contains(&func),
                    "unknown function {func:#x}"
                );
                funcs.push(func);
            }
            Event::FunctionExit { func } => {
                assert_eq!(funcs.pop(), Some(func), "function exits nest");
            }
            _ => {}
        }
    }
    assert_eq!(
        expected.next(),
        None,
        "cpu {cpu}: exits missing from the trace"
    );
    assert!(stack.is_empty() && funcs.is_empty());
    assert_eq!(signal_exits, truth.signal_kexits[&cpu]);
}

#[test]
fn c_kernel_trace_matches_its_truth_file() {
    let work = tempdir();
    let lib = build_staticlib(&work);
    let exe = build_c_kernel(&work, &lib);
    let truth_path = work.join("truth.txt");
    let out = run(Command::new(&exe)
        .arg(&truth_path)
        .arg(work.join("dump"))
        .current_dir(&work));
    let stdout = String::from_utf8(out.stdout).expect("stdout is text");
    assert!(stdout.contains("[kernel] halt"), "{stdout}");
    let truth = parse_truth(&std::fs::read_to_string(&truth_path).expect("truth file"));
    assert_eq!(truth.cpus, 2);
    assert!(
        truth.signals_in_record > 0,
        "no signal landed inside a record; the preemption case was not exercised"
    );
    let framed = extract_uart(stdout.as_bytes());
    assert!(
        stdout
            .lines()
            .filter(|l| l.starts_with("[kernel] heartbeat"))
            .count()
            > 10,
        "log lines are interleaved with the framed lines"
    );
    assert_eq!(framed.len(), truth.cpus as usize, "one framed dump per CPU");
    for cpu in 0..truth.cpus {
        let raw = std::fs::read(work.join(format!("dump.cpu{cpu}.bin"))).expect("raw dump");
        let image = &framed[&(0x100 + cpu)];
        assert!(
            *image == raw,
            "cpu {cpu}: the UART dump differs from tm_dump's"
        );
        check_cpu(cpu, image, &truth);
    }
    check_with_tracemark(&work, &stdout, &truth);
    let _ = std::fs::remove_dir_all(&work);
}

/// The host tool on the raw console log: `tracemark decode --format json` must find both
/// CPUs' framed dumps among the log lines and print exactly the truth file's records:
/// the count of every kind per CPU, and every kernel-exit duration, in order.
fn check_with_tracemark(work: &Path, log: &str, truth: &Truth) {
    let log_path = work.join("console.log");
    std::fs::write(&log_path, log).expect("write console log");
    let out = run(Command::new(tracemark_bin())
        .args(["decode", "--format", "json"])
        .arg(&log_path));
    let mut counts: BTreeMap<(u32, String), u64> = BTreeMap::new();
    let mut exits: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    let mut signal_exits: BTreeMap<u32, u64> = BTreeMap::new();
    // Open kernel entries per CPU: the IRQ word of interrupt entries, else 0.
    let mut open: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).expect("json lines").lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON object per line");
        let cpu = v["cpu"].as_u64().expect("cpu") as u32;
        let kind = v["kind"].as_str().expect("kind").to_string();
        match kind.as_str() {
            "KENTRY" => open
                .entry(cpu)
                .or_default()
                .push(v["word"].as_u64().unwrap_or(0)),
            "KEXIT" => {
                let duration = v["duration_ticks"].as_u64().expect("duration");
                let word = open
                    .entry(cpu)
                    .or_default()
                    .pop()
                    .expect("exit without entry");
                if word == u64::from(truth.signal_irq) {
                    assert_eq!(duration, 0, "signal handler exit");
                    *signal_exits.entry(cpu).or_default() += 1;
                } else {
                    exits.entry(cpu).or_default().push(duration);
                }
            }
            _ => {}
        }
        *counts.entry((cpu, kind)).or_default() += 1;
    }
    assert_eq!(
        signal_exits, truth.signal_kexits,
        "tracemark decode signal-handler exits"
    );
    let expected: BTreeMap<(u32, String), u64> = truth
        .counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| (k.clone(), *n))
        .collect();
    assert_eq!(counts, expected, "tracemark decode counts per CPU and kind");
    assert_eq!(exits, truth.exits, "tracemark decode kernel-exit durations");
}

/// Builds the `tracemark` CLI into the target directory this test was built in (an
/// integration test cannot depend on another package's binary) and returns its path.
fn tracemark_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>/deps");
    let target = profile_dir.parent().expect("target dir");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args([
        "build",
        "--quiet",
        "-p",
        "tracemark-decoder",
        "--bin",
        "tracemark",
    ])
    .arg("--manifest-path")
    .arg(Path::new(REPO).join("Cargo.toml"))
    .arg("--target-dir")
    .arg(target);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    run(&mut cmd);
    profile_dir.join("tracemark")
}

/// Reassembles the framed dumps in a console log with the format crate's line parser
/// (begin line, data lines with per-chunk CRCs, end line with the payload CRC).
fn extract_uart(log: &[u8]) -> BTreeMap<u32, Vec<u8>> {
    let mut dumps: BTreeMap<u32, (Vec<u8>, u32, u64)> = BTreeMap::new();
    let mut done = BTreeMap::new();
    let mut chunk = [0u8; uart::MAX_CHUNK_LEN];
    for line in log.split(|&b| b == b'\n') {
        let Some(line) = uart::parse_line(line).unwrap_or_else(|e| panic!("bad @TM line: {e:?}"))
        else {
            continue;
        };
        match line {
            Line::Begin(b) => {
                let len = usize::try_from(b.total_len).expect("length");
                dumps.insert(b.dump_id, (vec![0; len], b.chunk_len, 0));
            }
            Line::Data(d) => {
                let (data, chunk_len, seen) = dumps.get_mut(&d.dump_id).expect("data before begin");
                let n = d.decode(&mut chunk).expect("chunk decodes, CRC ok");
                let at = usize::try_from(d.seq * u64::from(*chunk_len)).expect("offset");
                data[at..at + n].copy_from_slice(&chunk[..n]);
                *seen += 1;
            }
            Line::End(e) => {
                let (data, _, seen) = dumps.remove(&e.dump_id).expect("end after begin");
                assert_eq!(
                    seen, e.chunk_count,
                    "dump {:#x}: every chunk arrived",
                    e.dump_id
                );
                assert_eq!(uart::payload_crc(&data), e.payload_crc, "payload CRC");
                done.insert(e.dump_id, data);
            }
        }
    }
    assert!(dumps.is_empty(), "unfinished dumps");
    done
}

fn tempdir() -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("c-kernel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
