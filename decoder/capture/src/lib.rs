//! `tracemark capture`: record an endless stream (a simulator's or a board's console)
//! on bounded disk.
//!
//! - [`source`]: standard input, a producer run by the capture, a serial port or a TCP
//!   port, read on a thread of its own;
//! - [`rotation`]: the ring of slot files and the `NAME.current` symlink;
//! - [`framing`]: framed dumps recognised live and saved to `dumps/`;
//! - [`heartbeat`]: the periodic status line on stderr;
//! - [`snapshot`]: `NAME.snapshot` on `SIGUSR1`, copied by a thread of its own.
//!
//! [`run`] is the loop that ties them together: every buffer read is counted, shown
//! to the framer and appended to the ring, in that order, on one thread; signals and
//! the heartbeat are handled between buffers.

pub mod framing;
pub mod heartbeat;
pub mod rotation;
pub mod snapshot;
pub mod source;

use std::io::{self, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};

use self::framing::{FramingStats, LiveFramer};
use self::heartbeat::Meter;
use self::rotation::Rotator;
use self::snapshot::Snapshot;
use self::source::{Buffers, Event, Source};

/// How long a producer that was passed `SIGINT`/`SIGTERM` gets to exit before it is
/// killed, and how long its pipe is drained after it exited (a process it left
/// behind may hold the pipe open).
pub const GRACE: Duration = Duration::from_secs(5);

/// Read buffers in flight between the source thread and the loop.
const QUEUE: usize = 16;

/// What to capture, and where.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the bytes come from.
    pub source: Source,
    /// The directory of the slots, the symlink, the snapshot and `dumps/`.
    pub dir: PathBuf,
    /// The file name prefix (`NAME`).
    pub prefix: String,
    /// Bytes per slot.
    pub slot_size: u64,
    /// Number of slots.
    pub slots: usize,
    /// Time between heartbeats (`None`: no heartbeat).
    pub heartbeat: Option<Duration>,
    /// Also copy the stream to standard output.
    pub tee: bool,
}

/// How a capture ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Bytes captured.
    pub bytes: u64,
    /// What the live framing found.
    pub framing: FramingStats,
    /// The producer's exit status (`--exec`).
    pub status: Option<ExitStatus>,
    /// The capture was stopped by `SIGINT` or `SIGTERM`.
    pub signalled: bool,
}

impl Outcome {
    /// The exit code of `tracemark capture`: the producer's (128 + N if signal N killed
    /// it) with `--exec`, else 0.
    pub fn exit_code(&self) -> u8 {
        match self.status {
            Some(s) => match s.code() {
                Some(c) => (c & 0xff) as u8,
                None => (128 + s.signal().unwrap_or(0)).clamp(0, 255) as u8,
            },
            None => 0,
        }
    }
}

/// Parses a size with an optional `K`, `M` or `G` suffix (powers of 1024; `500M`,
/// `1g`, `4096`). A trailing `B` (`500MB`, `64KiB` without the `i`) is accepted.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t.strip_suffix(['B', 'b']).unwrap_or(t);
    let t = t.strip_suffix('i').unwrap_or(t);
    let (digits, shift) = match t.as_bytes().last() {
        Some(b'k' | b'K') => (&t[..t.len() - 1], 10),
        Some(b'm' | b'M') => (&t[..t.len() - 1], 20),
        Some(b'g' | b'G') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text}: not a size (expected a number with K, M or G)"))?;
    n.checked_mul(1 << shift)
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{text}: size out of range"))
}

/// Writes a line on stderr, ignoring failures (a closed stderr must not stop the
/// capture).
fn say(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// Captures until the source ends (standard input, `--exec`) or a signal stops it
/// (`SIGINT`, `SIGTERM`).
pub fn run(config: &Config) -> anyhow::Result<Outcome> {
    let mut rotator = Rotator::create(&config.dir, &config.prefix, config.slot_size, config.slots)?;
    let mut framer = LiveFramer::new(&config.dir.join("dumps"), &config.prefix);
    let snapshot_path = config.dir.join(format!("{}.snapshot", config.prefix));

    let (tx, rx) = mpsc::sync_channel::<Event>(QUEUE);
    let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGUSR1])?;
    let signal_handle = signals.handle();
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for sig in signals.forever() {
                if tx.send(Event::Signal(sig)).is_err() {
                    return;
                }
            }
        });
    }
    let started = source::start(&config.source, tx, Buffers::new(free_rx))?;
    let exec = matches!(config.source, Source::Exec(_));

    let start = Instant::now();
    let mut meter = Meter::new(start);
    let mut next_beat = config.heartbeat.map(|d| start + d);
    let mut link = String::from("connecting");
    let mut eof = false;
    let mut status: Option<ExitStatus> = None;
    let mut signalled = false;
    // With --exec: when to stop waiting for the producer (after it exited, or after
    // it was passed a stop signal).
    let mut deadline: Option<Instant> = None;
    let mut killed = false;
    let mut snap: Option<Snapshot> = None;
    let mut tee = Tee(config.tee.then(io::stdout));

    let result: anyhow::Result<()> = loop {
        let now = Instant::now();
        if let Some(d) = deadline.filter(|&d| now >= d) {
            if status.is_none() && !killed {
                // The producer ignored the stop signal: kill it and drain a little more.
                if let Some(pid) = started.pid {
                    kill(pid, nix::sys::signal::Signal::SIGKILL);
                }
                killed = true;
                deadline = Some(d + Duration::from_secs(1));
                continue;
            }
            break Ok(());
        }
        let mut wake = next_beat.unwrap_or(now + Duration::from_secs(1));
        if let Some(d) = deadline {
            wake = wake.min(d);
        }
        if snap.is_some() {
            // Say soon when the snapshot is written, even if no input arrives.
            wake = wake.min(now + Duration::from_millis(100));
        }
        let event = match rx.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(event) => Some(event),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break Ok(()),
        };
        match event {
            Some(Event::Data(buf, n)) => {
                let data = &buf[..n];
                meter.record(data, Instant::now());
                if rotator.will_rotate(n) {
                    // A slot the snapshot may still be copying is about to be reused.
                    end_snapshot(&mut snap);
                }
                if let Err(e) = framer.push(data).and_then(|()| rotator.write(data)) {
                    break Err(e.into());
                }
                tee.write(data);
                let _ = free_tx.send(buf);
            }
            Some(Event::Status(msg, up)) => {
                link = if up {
                    "connected".into()
                } else {
                    "disconnected".into()
                };
                say(&format!("tracemark capture: {msg}"));
            }
            Some(Event::Eof) => {
                eof = true;
                if !exec || status.is_some() {
                    break Ok(());
                }
            }
            Some(Event::Exited(s)) => {
                status = Some(s);
                if eof {
                    break Ok(());
                }
                deadline = Some(Instant::now() + GRACE);
            }
            Some(Event::Failed(e)) => {
                break Err(anyhow::Error::from(e).context(config.source.describe()))
            }
            Some(Event::Signal(SIGUSR1)) => {
                end_snapshot(&mut snap);
                match Snapshot::start(&rotator.slots_oldest_first(), &snapshot_path) {
                    Ok(s) => snap = Some(s),
                    Err(e) => say(&format!("tracemark capture: snapshot failed: {e}")),
                }
            }
            Some(Event::Signal(sig)) => {
                if signalled || started.pid.is_none() || status.is_some() {
                    signalled = true;
                    break Ok(());
                }
                // Pass the stop on to the producer and keep capturing what it prints
                // while it winds down.
                signalled = true;
                if let Some(pid) = started.pid {
                    let sig = if sig == SIGINT {
                        nix::sys::signal::Signal::SIGINT
                    } else {
                        nix::sys::signal::Signal::SIGTERM
                    };
                    kill(pid, sig);
                }
                deadline = Some(Instant::now() + GRACE);
            }
            None => {}
        }
        if snap.as_ref().is_some_and(Snapshot::is_finished) {
            end_snapshot(&mut snap);
        }
        if let Some(at) = next_beat.filter(|&at| Instant::now() >= at) {
            let now = Instant::now();
            let extra = slot_state(&rotator, &config.source, &link);
            say(&meter.beat(now, framer.stats(), &extra));
            let every = config.heartbeat.unwrap_or(Duration::from_secs(5));
            next_beat = Some((at + every).max(now));
        }
    };
    signal_handle.close();
    // Stopped by a signal: what was already read (at most the queue) is written too.
    let mut result = result;
    for _ in 0..=QUEUE {
        if result.is_err() {
            break;
        }
        match rx.try_recv() {
            Ok(Event::Data(buf, n)) => {
                meter.record(&buf[..n], Instant::now());
                if rotator.will_rotate(n) {
                    end_snapshot(&mut snap);
                }
                result = framer
                    .push(&buf[..n])
                    .and_then(|()| rotator.write(&buf[..n]))
                    .map_err(anyhow::Error::from);
                tee.write(&buf[..n]);
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    end_snapshot(&mut snap);
    if result.is_err() {
        if let (Some(pid), None) = (started.pid, status) {
            kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
    }
    // Everything received is on disk already (the slots are written unbuffered); a
    // dump cut short by the end is saved as damaged.
    let finished = framer.finish().map_err(anyhow::Error::from);
    rotator.sync()?;
    result?;
    finished?;
    let outcome = Outcome {
        bytes: meter.bytes(),
        framing: framer.stats(),
        status,
        signalled,
    };
    if config.heartbeat.is_some() {
        let extra = slot_state(&rotator, &config.source, &link);
        say(&format!(
            "{} | stopped{}",
            meter.beat(Instant::now(), outcome.framing, &extra),
            match status {
                Some(s) => format!(", producer {s}"),
                None if signalled => " by signal".into(),
                None => String::new(),
            }
        ));
    }
    Ok(outcome)
}

/// `--tee`: the stream copied to standard output until that fails (a closed pipe,
/// `| head`), which stops the copy and not the capture.
struct Tee(Option<io::Stdout>);

impl Tee {
    fn write(&mut self, data: &[u8]) {
        if let Some(out) = &self.0 {
            let mut out = out.lock();
            // Flushed at once: a prompt without a line end shows too.
            if out.write_all(data).and_then(|()| out.flush()).is_err() {
                self.0 = None;
                say(
                    "tracemark capture: standard output failed; --tee stopped, the capture goes on",
                );
            }
        }
    }
}

/// Waits for the snapshot being written, if any, and says how it went.
fn end_snapshot(snap: &mut Option<Snapshot>) {
    if let Some(s) = snap.take() {
        say(&format!("tracemark capture: {}", s.wait()));
    }
}

fn slot_state(rotator: &Rotator, source: &Source, link: &str) -> String {
    let path = rotator.current_path();
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let mut s = format!(
        "slot {name} {} ({} rotations)",
        heartbeat::size(rotator.current_len()),
        rotator.rotations()
    );
    if matches!(source, Source::Serial { .. } | Source::Tcp(_)) {
        s.push_str(&format!(" | {link}"));
    }
    s
}

fn kill(pid: u32, sig: nix::sys::signal::Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("64KB"), Ok(64 << 10));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("99999999999G").is_err());
        assert!(parse_size("").is_err());
    }
}
