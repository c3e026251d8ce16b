//! Builds `examples/c-kernel` (C, with the system C compiler) against the static library,
//! runs it (two threads as two CPUs, each with its own clock; CPU 1's ring wraps), extracts
//! the rings it dumped over its "UART" (stdout, `@TM:` lines mixed with log lines), checks
//! they are byte-identical to the raw `tm_dump` images, decodes them and checks them
//! against the truth file the C program wrote: every count per CPU and kind (for the
//! wrapped ring: what survived plus what was overwritten), every kernel-exit duration
//! (for the wrapped ring: the newest ones), nesting overflows, the function addresses the
//! `-finstrument-functions` hooks recorded, and that the signal handler really preempted
//! records in progress without corrupting them. `tracemark decode` on the console log
//! must agree with all of it.

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
    hook_skipped: u64,
    modes: BTreeMap<u32, String>,
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
            Some("hook_skipped") => t.hook_skipped = n(1),
            Some("mode") => {
                t.modes.insert(n(1) as u32, f[2].to_string());
            }
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

/// What one CPU's ring holds, as the test reads it (compared between the format crate's
/// decoder and `tracemark decode`).
#[derive(Debug, Default, PartialEq, Eq)]
struct Seen {
    /// Records per kind name.
    counts: BTreeMap<String, u64>,
    /// Kernel-exit durations of the main flow, in order (`u64::MAX`: nesting overflow).
    exits: Vec<u64>,
    /// Kernel exits of the signal handler.
    signal_exits: u64,
}

/// The truth file's value of an exit duration.
fn exit_value(d: ExitDuration) -> u64 {
    match d {
        ExitDuration::Ticks(t) => t,
        ExitDuration::NestingOverflow => u64::MAX,
        ExitDuration::NoEntry => panic!("an exit without entry on the target"),
    }
}

/// Pairs kernel exits with entries (an interrupt entry's word, else 0) and sorts them
/// into main-flow and signal-handler exits. In a wrapped ring the oldest exits may have
/// lost their entries: those of the signal handler last 0 ticks, the main flow's never.
struct ExitSorter {
    stack: Vec<u64>,
    signal_irq: u64,
    wrapped: bool,
}

impl ExitSorter {
    fn exit(&mut self, cpu: u32, d: u64, seen: &mut Seen) {
        let signal = match self.stack.pop() {
            Some(word) => word == self.signal_irq,
            None => {
                assert!(self.wrapped, "cpu {cpu}: exit without entry");
                d == 0
            }
        };
        if signal {
            assert!(
                d == 0 || d == u64::MAX,
                "signal handler exit lasted {d} ticks"
            );
            seen.signal_exits += 1;
        } else {
            seen.exits.push(d);
        }
    }
}

/// Checks one CPU's decoded ring against the truth; returns what it holds.
fn check_cpu(cpu: u32, image: &[u8], truth: &Truth) -> Seen {
    let (records, view) = decode(image);
    let h = &view.header;
    assert_eq!(h.cpu_id.get(), cpu);
    assert_eq!(h.clock_hz.get(), 1_000_000_000);
    assert_eq!(h.producer_id.get(), 0xc0ffee);
    assert_eq!(h.syscall_abi, 1, "seL4 syscall numbering");
    let wrapped = truth.modes[&cpu] == "overwrite";
    let (over, dropped) = (h.overwritten.get(), h.dropped.get());
    assert_eq!(truth.lost[&cpu], (over, dropped), "cpu {cpu}: tm_lost");
    assert_eq!(dropped, 0, "cpu {cpu} dropped records");
    if wrapped {
        assert!(over > 0, "cpu {cpu}: the overwrite ring did not wrap");
    } else {
        assert_eq!(over, 0, "cpu {cpu} lost records");
    }

    // Every count per kind (a wrapped ring: what survived, and with what was overwritten,
    // everything written).
    let mut seen = Seen::default();
    for r in &records {
        *seen
            .counts
            .entry(r.event.kind().name().to_string())
            .or_default() += 1;
    }
    let kinds = ["KENTRY", "KEXIT", "IRQ", "FENTRY", "FEXIT", "USER", "IMAGE"];
    let written: u64 = kinds
        .iter()
        .map(|k| truth.counts[&(cpu, k.to_string())])
        .sum();
    for k in kinds {
        let want = truth.counts[&(cpu, k.to_string())];
        let got = seen.counts.get(k).copied().unwrap_or(0);
        if wrapped {
            assert!(got <= want, "cpu {cpu} {k}: {got} decoded, {want} written");
        } else {
            assert_eq!(got, want, "cpu {cpu} {k} count");
        }
    }
    assert!(
        seen.counts.keys().all(|k| kinds.contains(&k.as_str())),
        "cpu {cpu}: unexpected kinds {:?}",
        seen.counts
    );
    assert_eq!(
        records.len() as u64 + over,
        written,
        "cpu {cpu}: decoded + overwritten"
    );

    // Every kernel-exit duration: exits of the signal handler's entries last 0 ticks (its
    // clock stands still) unless they overflowed the stack; the others match the C
    // program's list in order (a wrapped ring: its end).
    let mut sorter = ExitSorter {
        stack: Vec::new(),
        signal_irq: u64::from(truth.signal_irq),
        wrapped,
    };
    let mut funcs: Vec<u64> = Vec::new();
    let mut last_ts = 0;
    for r in &records {
        assert!(r.ts >= last_ts, "cpu {cpu}: time went back at {r:?}");
        last_ts = r.ts;
        match r.event {
            Event::KernelEntry(e) => sorter.stack.push(match e.as_other() {
                Some(o) if e.path() == EntryPath::Interrupt => u64::from(o.word()),
                _ => 0,
            }),
            Event::KernelExit(d) => sorter.exit(cpu, exit_value(d), &mut seen),
            Event::FunctionEntry { func } => {
                assert!(
                    truth.functions.contains(&func),
                    "unknown function {func:#x}"
                );
                funcs.push(func);
            }
            Event::FunctionExit { func } => match funcs.pop() {
                Some(f) => assert_eq!(f, func, "function exits nest"),
                None => assert!(wrapped, "function exit without entry"),
            },
            _ => {}
        }
    }
    let want = &truth.exits[&cpu];
    if wrapped {
        assert!(
            !seen.exits.is_empty() && want.ends_with(&seen.exits),
            "cpu {cpu}: the surviving exits are the newest the C program made"
        );
        assert!(seen.signal_exits <= truth.signal_kexits[&cpu]);
    } else {
        assert_eq!(&seen.exits, want, "cpu {cpu} exit durations");
        assert_eq!(seen.signal_exits, truth.signal_kexits[&cpu]);
    }
    assert!(
        seen.exits.contains(&u64::MAX),
        "cpu {cpu}: no exit overflowed the entry stack"
    );
    assert!(sorter.stack.is_empty() && funcs.is_empty());
    seen
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
    assert_eq!(truth.hook_skipped, 0, "no hook call re-entered");
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
    let mut seen = BTreeMap::new();
    for cpu in 0..truth.cpus {
        let raw = std::fs::read(work.join(format!("dump.cpu{cpu}.bin"))).expect("raw dump");
        let image = &framed[&(0x100 + cpu)];
        assert!(
            *image == raw,
            "cpu {cpu}: the UART dump differs from tm_dump's"
        );
        seen.insert(cpu, check_cpu(cpu, image, &truth));
    }
    check_with_tracemark(&work, &stdout, &truth, &seen);
    let _ = std::fs::remove_dir_all(&work);
}

/// The host tool on the raw console log: `tracemark decode --format json` must find both
/// CPUs' framed dumps among the log lines and print exactly what the format crate
/// decoded (checked against the truth file above): the count of every kind per CPU, and
/// every kernel-exit duration, in order.
fn check_with_tracemark(work: &Path, log: &str, truth: &Truth, want: &BTreeMap<u32, Seen>) {
    let log_path = work.join("console.log");
    std::fs::write(&log_path, log).expect("write console log");
    let out = run(Command::new(tracemark_bin())
        .args(["decode", "--format", "json"])
        .arg(&log_path));
    let mut seen: BTreeMap<u32, Seen> = BTreeMap::new();
    let mut sorters: BTreeMap<u32, ExitSorter> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).expect("json lines").lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON object per line");
        let cpu = v["cpu"].as_u64().expect("cpu") as u32;
        let kind = v["kind"].as_str().expect("kind").to_string();
        let s = seen.entry(cpu).or_default();
        let sorter = sorters.entry(cpu).or_insert_with(|| ExitSorter {
            stack: Vec::new(),
            signal_irq: u64::from(truth.signal_irq),
            wrapped: truth.modes[&cpu] == "overwrite",
        });
        match kind.as_str() {
            "KENTRY" => sorter.stack.push(match v["path"].as_str() {
                Some("Interrupt") => v["word"].as_u64().expect("word"),
                _ => 0,
            }),
            "KEXIT" => {
                let d = match v["duration_ticks"].as_u64() {
                    Some(d) => d,
                    None => {
                        assert_eq!(v["note"], "nesting overflow", "{line}");
                        u64::MAX
                    }
                };
                sorter.exit(cpu, d, s);
            }
            _ => {}
        }
        *s.counts.entry(kind).or_default() += 1;
    }
    assert_eq!(&seen, want, "tracemark decode agrees with the format crate");
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
        "tracemark-cli",
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
