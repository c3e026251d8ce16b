//! `tracemark capture` end to end: the disk bound, the snapshot and the symlink on a
//! stream larger than the quota, live dump recognition, `--exec` (interleaving, exit
//! status, a stalled producer in the heartbeat, signals passed on), and reconnection
//! of `--tcp` (loopback) and `--serial` (a pty pair whose device goes away and comes
//! back, as a UART does when the target resets).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tracemark::{Config, KernelEntry, Mode};
use tracemark_format::uart;
use tracemark_tests::ring_image;

const BIN: &str = env!("CARGO_BIN_EXE_tracemark");

/// How long a test waits for something the capture must do (a line on disk, a
/// reconnection, its exit) before it fails. Every wait polls for the event itself and
/// ends as soon as it happens, so this bound is not a timing the tests depend on: it
/// only turns a hang into a failure, and is many times what the slowest event takes
/// on a loaded 2-core machine (well under a second).
const PATIENCE: Duration = Duration::from_secs(60);

/// A running capture whose stderr is collected by a thread.
struct Capture {
    child: Child,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Capture {
    fn start(args: &[&str], stdin: Stdio) -> Self {
        let mut child = Command::new(BIN)
            .arg("capture")
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Self {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    /// Waits for the exit (at most [`PATIENCE`]) and returns the code and the whole
    /// stderr.
    fn finish(mut self) -> (i32, String) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The stderr thread ends at the end of the pipe, once every line the
                // capture wrote is collected (the capture's own copies of the pipe
                // are closed: it exited; `--exec` producers write to another pipe).
                if let Some(reader) = self.reader.take() {
                    reader.join().unwrap();
                }
                return (status.code().unwrap_or(-1), self.stderr());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("capture did not exit; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Polls `cond` every 20 ms for at most [`PATIENCE`].
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

fn slot(dir: &Path, k: usize) -> PathBuf {
    dir.join(format!("capture.{k}"))
}

/// Numbers of the lines of `text`, which must all be whole `line NNNNNNN ...` lines.
fn numbers(text: &[u8]) -> Vec<u64> {
    assert!(text.is_empty() || text.ends_with(b"\n"), "ends mid-line");
    String::from_utf8_lossy(text)
        .lines()
        .map(|l| {
            l.strip_prefix("line ")
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("not a whole numbered line: {l:?}"))
        })
        .collect()
}

fn assert_consecutive(ns: &[u64], last: u64) {
    assert_eq!(ns.last(), Some(&last));
    for w in ns.windows(2) {
        assert_eq!(w[1], w[0] + 1, "gap or reordering in {w:?}");
    }
}

fn numbered_line(i: u64) -> String {
    // Lines of varying length, so that slot boundaries fall anywhere.
    format!("line {i:07} {}\n", "x".repeat((i % 37) as usize))
}

#[test]
fn disk_bound_snapshot_order_and_symlink() {
    const SLOT: u64 = 64 << 10;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("cap");
    let mut cap = Capture::start(
        &[
            "--dir",
            d.to_str().unwrap(),
            "--slot-size",
            "64K",
            "--slots",
            "3",
            "--heartbeat",
            "0",
        ],
        Stdio::piped(),
    );
    let mut stdin = cap.child.stdin.take().unwrap();
    let disk = |d: &Path| -> u64 { (0..3).map(|k| read(&slot(d, k)).len() as u64).sum() };
    let mut i = 0u64;
    let mut max_disk = 0;
    // About 1 MB of lines, 5 times the quota; the disk use is sampled as it goes.
    while i < 20_000 {
        let batch: String = (i..i + 500).map(numbered_line).collect();
        stdin.write_all(batch.as_bytes()).unwrap();
        i += 500;
        max_disk = max_disk.max(disk(&d));
        if i == 10_000 {
            // Once line 9999 is on disk, take a snapshot while the capture goes on.
            let current = d.join("capture.current");
            wait_for("line 9999 on disk", || {
                read(&current).ends_with(numbered_line(9_999).as_bytes())
            });
            cap.signal(Signal::SIGUSR1);
            let snap = d.join("capture.snapshot");
            wait_for("the snapshot", || snap.exists());
            let s = read(&snap);
            assert!(s.len() as u64 <= 3 * SLOT && s.len() as u64 > 2 * SLOT - 4096);
            assert_consecutive(&numbers(&s), 9_999);
        }
    }
    drop(stdin);
    let (code, stderr) = cap.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        max_disk <= 3 * SLOT,
        "disk use {max_disk} exceeded the quota"
    );

    // The symlink points at the slot holding the last line; oldest to newest from
    // the slot after it, the slots are one run of whole, consecutive lines.
    let target = std::fs::read_link(d.join("capture.current")).unwrap();
    let current: usize = target
        .to_str()
        .unwrap()
        .strip_prefix("capture.")
        .unwrap()
        .parse()
        .unwrap();
    let mut all = Vec::new();
    for k in 1..=3 {
        let s = read(&slot(&d, (current + k) % 3));
        assert!(s.len() as u64 <= SLOT);
        numbers(&s); // every slot starts and ends at a line boundary
        all.extend(s);
    }
    assert!(all.len() as u64 > 2 * SLOT);
    assert_consecutive(&numbers(&all), 19_999);
}

/// A two-CPU-free ring written by the real encoder: `n` syscalls with interrupts.
fn ring(n: u64) -> Vec<u8> {
    let config = Config {
        mode: Mode::Overwrite,
        block_size: 256,
        clock_hz: 1_000_000,
        ..Config::new()
    };
    ring_image(&config, 16, 1000, |t, clock| {
        for i in 0..n {
            t.kernel_entry(KernelEntry::syscall(3, 10, true, i as u32));
            clock.set(clock.get() + 50);
            t.interrupt(27);
            clock.set(clock.get() + 50);
            t.kernel_exit();
        }
    })
}

fn framed(dump_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut sink = |l: &[u8]| -> Result<(), ()> {
        out.extend_from_slice(b"uart noise ");
        out.extend_from_slice(l);
        Ok(())
    };
    uart::write_framed(dump_id, payload, 0, &mut sink).unwrap();
    out
}

#[test]
fn framed_dumps_are_saved_live_even_after_their_text_rotated_away() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ring(40);
    let mut log = Vec::new();
    log.extend((0..50).flat_map(|i| numbered_line(i).into_bytes()));
    log.extend(framed(0xabc, &ring));
    let mut damaged = framed(0xdef, &ring[..1000]);
    let at = damaged
        .windows(18)
        .position(|w| w == b"@TM:D,00000def,10,")
        .unwrap()
        + 30;
    damaged[at] = b'!'; // one corrupt chunk, past the ring header
    log.extend(damaged);
    // Far more text after the dumps than the slots hold.
    log.extend((50..20_000).flat_map(|i| numbered_line(i).into_bytes()));
    let input = dir.path().join("log");
    std::fs::write(&input, &log).unwrap();
    let d = dir.path().join("cap");
    let cap = Capture::start(
        &[
            "--dir",
            d.to_str().unwrap(),
            "--slot-size",
            "16K",
            "--slots",
            "2",
            "--heartbeat",
            "1h",
        ],
        Stdio::from(std::fs::File::open(&input).unwrap()),
    );
    let (code, stderr) = cap.finish();
    assert_eq!(code, 0, "{stderr}");
    for k in 0..2 {
        assert!(!read(&slot(&d, k)).windows(4).any(|w| w == uart::MARKER));
    }
    let good = d.join("dumps/capture-0001-00000abc.bin");
    assert_eq!(read(&good), ring);
    let partial = d.join("dumps/capture-0002-00000def.partial.log");
    assert!(partial.exists());
    // The final status line counts them.
    assert!(
        stderr.contains("dumps 1 saved, 1 damaged, 1 chunk errors"),
        "{stderr}"
    );
    // The saved dump decodes: every record the encoder wrote is there.
    let out = Command::new(BIN)
        .args(["stats", "--json"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["records_per_kind"]["KENTRY"], 40, "{stats}");
    assert_eq!(stats["records_per_kind"]["IRQ"], 40, "{stats}");
    // The damaged one decodes what was verified and says what was lost (non-zero).
    let out = Command::new(BIN)
        .arg("decode")
        .arg(&partial)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 corrupt (10)"), "{err}");
}

#[test]
fn exec_interleaves_passes_the_exit_status_and_shows_a_stall() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("cap");
    // The producer stalls until the test has seen a heartbeat call it silent (2 s
    // without input), then goes on: the stall lasts as long as it must on any machine,
    // instead of a fixed sleep a loaded machine's heartbeat might not fall inside.
    let go_on = dir.path().join("go-on");
    let producer = format!(
        "echo one; echo two >&2; echo three; while [ ! -e '{}' ]; do sleep 0.05; done; echo four >&2; exit 7",
        go_on.display()
    );
    let cap = Capture::start(
        &[
            "--dir",
            d.to_str().unwrap(),
            "--heartbeat",
            "400ms",
            "--exec",
            &producer,
        ],
        Stdio::null(),
    );
    wait_for("a heartbeat saying the producer is silent", || {
        cap.stderr().contains("(producer silent)")
    });
    std::fs::write(&go_on, b"").unwrap();
    let (code, stderr) = cap.finish();
    assert_eq!(code, 7, "{stderr}");
    assert_eq!(read(&slot(&d, 0)), b"one\ntwo\nthree\nfour\n");
    // While the producer stalls, beats show no input and a growing silence.
    let silent: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("(producer silent)"))
        .collect();
    assert!(!silent.is_empty(), "{stderr}");
    assert!(silent.iter().all(|l| l.contains(" in 0 B/s 0 lines/s ")));
    assert!(stderr.contains("producer exit status: 7"), "{stderr}");

    // A producer killed by a signal: 128 + N.
    let cap = Capture::start(
        &[
            "--dir",
            d.to_str().unwrap(),
            "--heartbeat",
            "0",
            "--exec",
            "kill -9 $$",
        ],
        Stdio::null(),
    );
    assert_eq!(cap.finish().0, 128 + 9);
}

#[test]
fn sigterm_is_passed_to_the_producer_and_the_capture_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("cap");
    let cap = Capture::start(
        &[
            "--dir",
            d.to_str().unwrap(),
            "--heartbeat",
            "0",
            "--exec",
            "trap 'echo stopping; exit 3' TERM; echo started; while :; do sleep 0.05; done",
        ],
        Stdio::null(),
    );
    wait_for("the producer's first line", || {
        read(&slot(&d, 0)) == b"started\n"
    });
    cap.signal(Signal::SIGTERM);
    let (code, stderr) = cap.finish();
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(read(&slot(&d, 0)), b"started\nstopping\n");
}

#[test]
fn tcp_source_reconnects() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("cap");
    let cap = Capture::start(
        &[
            "--dir",
            d.to_str().unwrap(),
            "--heartbeat",
            "0",
            "--tcp",
            &addr,
        ],
        Stdio::null(),
    );
    let ring = ring(10);
    for (n, text) in [b"first connection\n".to_vec(), framed(0x77, &ring)]
        .iter()
        .enumerate()
    {
        let (mut conn, _) = listener.accept().unwrap();
        conn.write_all(text).unwrap();
        drop(conn); // the server goes away (QEMU restarted, RTT session closed)
        wait_for("the text on disk", || read(&slot(&d, 0)).ends_with(text));
        if n == 0 {
            wait_for("the disconnection", || {
                cap.stderr().contains("disconnected")
            });
        }
    }
    wait_for("the dump", || {
        d.join("dumps/capture-0001-00000077.bin").exists()
    });
    cap.signal(Signal::SIGINT);
    let (code, stderr) = cap.finish();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stderr.matches(": connected").count(), 2, "{stderr}");
    assert_eq!(read(&d.join("dumps/capture-0001-00000077.bin")), ring);
}

#[test]
fn serial_source_reopens_a_device_that_went_away() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("cap");
    // A stable name for the device, like /dev/serial/by-id/...: a symlink to the
    // slave side of a pty pair; the master side plays the target.
    let link = dir.path().join("ttyTARGET");
    // The master is opened close-on-exec: a copy inherited by a process spawned by
    // another test would keep the pty from hanging up.
    let new_target = || {
        use nix::fcntl::OFlag;
        let master =
            nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).unwrap();
        nix::pty::grantpt(&master).unwrap();
        nix::pty::unlockpt(&master).unwrap();
        let tmp = dir.path().join("link.tmp");
        std::os::unix::fs::symlink(nix::pty::ptsname_r(&master).unwrap(), &tmp).unwrap();
        std::fs::rename(&tmp, &link).unwrap();
        master
    };
    let mut master = new_target();
    let serial = format!("{}:921600", link.display());
    let cap = Capture::start(
        &[
            "--dir",
            d.to_str().unwrap(),
            "--heartbeat",
            "0",
            "--serial",
            &serial,
        ],
        Stdio::null(),
    );
    wait_for("the first connection", || {
        cap.stderr().contains(": connected")
    });
    master.write_all(b"before reset\n").unwrap();
    wait_for("the first line", || read(&slot(&d, 0)) == b"before reset\n");
    // The target resets: the device disappears, then a new one appears.
    drop(master);
    wait_for("the disconnection", || {
        cap.stderr().contains("disconnected")
    });
    master = new_target();
    wait_for("the reconnection", || {
        cap.stderr().matches(": connected").count() == 2
    });
    master.write_all(b"after reset\n").unwrap();
    wait_for("the second line", || {
        read(&slot(&d, 0)) == b"before reset\nafter reset\n"
    });
    cap.signal(Signal::SIGINT);
    let (code, stderr) = cap.finish();
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn rotation_never_splits_a_framed_chunk_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = framed(0x5, &ring(20));
    let d = dir.path().join("cap");
    let args = [
        "--dir",
        d.to_str().unwrap(),
        "--slot-size",
        "1K",
        "--slots",
        "16",
        "--heartbeat",
        "0",
    ];
    let mut cap = Capture::start(&args, Stdio::piped());
    let mut stdin = cap.child.stdin.take().unwrap();
    // Small writes that end anywhere inside lines.
    for piece in log.chunks(100) {
        stdin.write_all(piece).unwrap();
    }
    drop(stdin);
    assert_eq!(cap.finish().0, 0);
    let mut slots = 0;
    for k in 0..16 {
        let s = read(&slot(&d, k));
        if s.is_empty() {
            continue;
        }
        slots += 1;
        assert!(s.len() <= 1024 && s.ends_with(b"\n"));
        for line in s.split_inclusive(|&b| b == b'\n') {
            let at = line.windows(4).position(|w| w == uart::MARKER).unwrap();
            assert!(
                matches!(uart::parse_line(&line[at..]), Ok(Some(_))),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }
    assert!(slots > 5);
    assert!(d.join("dumps/capture-0001-00000005.bin").exists());
}

#[test]
fn a_closed_stderr_does_not_stop_the_capture() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("cap");
    let mut child = Command::new(BIN)
        .args([
            "capture",
            "--dir",
            d.to_str().unwrap(),
            "--heartbeat",
            "50ms",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take()); // the reader of the heartbeat went away (`2>&1 | head`)
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..20 {
        stdin.write_all(numbered_line(i).as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert_consecutive(&numbers(&read(&slot(&d, 0))), 19);
}

#[test]
fn sigint_stops_a_capture_of_stdin_that_never_ends() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("cap");
    let mut cap = Capture::start(
        &["--dir", d.to_str().unwrap(), "--heartbeat", "1h"],
        Stdio::piped(),
    );
    let mut stdin = cap.child.stdin.take().unwrap();
    let text: String = (0..1000).map(numbered_line).collect();
    stdin.write_all(text.as_bytes()).unwrap();
    wait_for("the lines on disk", || {
        read(&slot(&d, 0)) == text.as_bytes()
    });
    cap.signal(Signal::SIGINT);
    // Standard input stays open: only the signal ends the capture.
    let (code, stderr) = cap.finish();
    drop(stdin);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains(", 1000 lines)"), "{stderr}");
    assert!(
        stderr.trim_end().ends_with("| stopped by request"),
        "{stderr}"
    );
}

#[test]
fn tee_copies_the_stream_to_stdout_until_stdout_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("cap");
    let out = Command::new(BIN)
        .args([
            "capture",
            "--tee",
            "--heartbeat",
            "0",
            "--dir",
            d.to_str().unwrap(),
        ])
        .args(["--exec", "seq 1 20000"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, read(&slot(&d, 0)));
    assert_eq!(out.stdout.len(), 108_894);

    // The reader of stdout stops after a few bytes (`| head -c 10`): the capture goes on.
    let mut child = Command::new(BIN)
        .args([
            "capture",
            "--tee",
            "--heartbeat",
            "0",
            "--dir",
            d.to_str().unwrap(),
        ])
        .args(["--exec", "seq 1 20000; sleep 0.3; seq 1 20000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 10];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(read(&slot(&d, 0)).len(), 2 * 108_894);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tee stopped"));
}

/// Mistakes in the arguments fail at once with one line saying what is wrong, instead
/// of waiting forever for a source that cannot come (or saying only "File exists").
#[test]
fn a_source_or_directory_that_cannot_work_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("cap");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let missing = dir.path().join("ttyNOTHERE");
    let cases: [(Vec<&str>, String); 3] = [
        (
            vec!["--dir", d.to_str().unwrap(), "--tcp", "notaport"],
            "tracemark: capture: --tcp notaport: not HOST:PORT".to_string(),
        ),
        (
            vec![
                "--dir",
                d.to_str().unwrap(),
                "--serial",
                missing.to_str().unwrap(),
            ],
            format!("tracemark: capture: {}: no such device", missing.display()),
        ),
        (
            vec!["--dir", file.to_str().unwrap()],
            format!("tracemark: capture: {}: not a directory", file.display()),
        ),
    ];
    for (args, want) in cases {
        let cap = Capture::start(&args, Stdio::null());
        let (code, stderr) = cap.finish();
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with(&want), "{args:?}: {stderr}");
    }
}

/// `--probe`: a chip probe-rs does not know, a malformed selector, and no probe
/// connected (this machine has none) are one line each with exit status 1; a build
/// without the `probe` feature says how to get one.
#[test]
fn probe_mistakes_and_a_missing_probe_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("cap");
    let d = d.to_str().unwrap();
    let live = ["--addr", "0x20000000", "--dir", d];
    let run = |extra: &[&str]| {
        let args: Vec<&str> = extra.iter().chain(&live).copied().collect();
        let (code, stderr) = Capture::start(&args, Stdio::null()).finish();
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        stderr
    };
    let e = run(&["--probe", "NOCHIP"]);
    if !cfg!(feature = "probe") {
        assert!(
            e.starts_with("tracemark: capture: this tracemark was built without probe support"),
            "{e}"
        );
        assert!(e.contains("--features probe"), "{e}");
        return;
    }
    assert!(
        e.starts_with(
            "tracemark: capture: --probe NOCHIP: The requested chip 'NOCHIP' was not found"
        ),
        "{e}"
    );
    assert!(e.contains("`probe-rs chip list` lists the chips"), "{e}");
    // Checked before anything starts: no capture directory.
    assert!(!Path::new(d).exists());
    let e = run(&["--probe", "nRF52840_xxAB"]);
    assert!(e.contains("(close: nRF52840_xxAA)"), "{e}");
    let e = run(&["--probe", "nRF52840_xxAA", "--probe-selector", "1366"]);
    assert!(
        e.starts_with("tracemark: capture: --probe-selector 1366: "),
        "{e}"
    );
    // A known chip and no probe on this machine (with a probe plugged in, attaching
    // to a chip that is not there fails instead, still as one line).
    let e = run(&[
        "--probe",
        "nRF52840_xxAA",
        "--speed",
        "4000",
        "--protocol",
        "swd",
    ]);
    assert!(
        e.starts_with("tracemark: capture: probe nRF52840_xxAA: "),
        "{e}"
    );
    // A well-formed selector naming a probe that is not there.
    let e = run(&[
        "--probe",
        "nRF52840_xxAA",
        "--probe-selector",
        "1366:1015:123456",
    ]);
    assert!(
        e.starts_with(
            "tracemark: capture: probe nRF52840_xxAA (1366:1015:123456): probe 1366:1015:123456: "
        ),
        "{e}"
    );
}
