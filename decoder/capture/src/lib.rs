//! `tracemark capture`: record an endless stream (a simulator's or a board's console)
//! on bounded disk.
//!
//! - [`source`]: standard input, a producer run by the capture, a serial port or a TCP
//!   port, read on a thread of its own;
//! - [`rotation`]: the ring of slot files and the `NAME.current` symlink;
//! - [`framing`]: framed dumps recognised live and saved to `dumps/`;
//! - [`heartbeat`]: the periodic status line;
//! - [`snapshot`]: `NAME.snapshot` on request, copied by a thread of its own.
//!
//! [`Capture::run`] is the loop that ties them together; [`Session`] is its data path,
//! with no thread, signal or clock of its own: every buffer read is counted, shown to
//! the framer and appended to the ring, in that order. The library owns no process-wide
//! state: the caller maps signals to [`Control`] requests and shows the [`Notice`]s.

pub mod error;
pub mod framing;
pub mod gdb;
pub mod heartbeat;
pub mod live;
pub mod memory;
pub mod probe;
pub mod qmp;
pub mod rotation;
pub mod snapshot;
pub mod source;

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

pub use self::error::Error;
use self::framing::{FramingStats, LiveFramer, Store};
use self::heartbeat::Meter;
use self::rotation::Rotator;
use self::snapshot::Snapshot;
use self::source::{Buffers, Event, Request, Source, Stop};

/// How long a producer that was passed a stop request gets to exit before it is
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
    /// Bytes per slot (at least 1).
    pub slot_size: u64,
    /// Number of slots (at least 1).
    pub slots: usize,
    /// Time between heartbeats (`None`: no heartbeat).
    pub heartbeat: Option<Duration>,
}

/// Something the user should be told, one line each ([`std::fmt::Display`]).
#[derive(Debug)]
pub enum Notice {
    /// A serial port or TCP connection came or went (`up`).
    Link {
        /// What happened.
        message: String,
        /// Connected.
        up: bool,
    },
    /// The periodic status line.
    Heartbeat(String),
    /// A snapshot was written, or failed.
    Snapshot(String),
    /// A dump was recognised but could not be saved; the capture goes on.
    SaveFailed(Error),
    /// Writing the `--tee` copy failed; the copy stopped, the capture goes on.
    TeeStopped,
    /// The last status line, when the capture stopped.
    Stopped(String),
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Link { message, .. } => f.write_str(message),
            Notice::Heartbeat(s) | Notice::Snapshot(s) | Notice::Stopped(s) => f.write_str(s),
            Notice::SaveFailed(e) => {
                write!(
                    f,
                    "a dump could not be saved ({}); the capture goes on",
                    e.chain()
                )
            }
            Notice::TeeStopped => {
                f.write_str("standard output failed; --tee stopped, the capture goes on")
            }
        }
    }
}

/// Asks a running capture for a snapshot or to stop, from any thread (a signal
/// handler's thread in the binary).
#[derive(Debug, Clone)]
pub struct Control(SyncSender<Event>);

impl Control {
    /// Sends `request`; false if the capture is over.
    pub fn request(&self, request: Request) -> bool {
        self.0.send(Event::Request(request)).is_ok()
    }
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
    /// The capture was stopped by a [`Request::Stop`].
    pub stopped: bool,
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

/// A capture, ready to run.
#[derive(Debug)]
pub struct Capture {
    config: Config,
    tx: SyncSender<Event>,
    rx: Receiver<Event>,
}

impl Capture {
    /// A capture of `config`; nothing is opened before [`Capture::run`].
    pub fn new(config: Config) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Event>(QUEUE);
        Self { config, tx, rx }
    }

    /// A handle to ask the capture for a snapshot or to stop.
    pub fn control(&self) -> Control {
        Control(self.tx.clone())
    }

    /// Captures until the source ends (standard input, `--exec`) or a stop request.
    /// `tee` gets a copy of the stream; `notify` is told what the user should see.
    pub fn run(
        self,
        tee: Option<&mut dyn Write>,
        notify: &mut dyn FnMut(Notice),
    ) -> Result<Outcome, Error> {
        let Capture { config, tx, rx } = self;
        let mut session = Session::new(&config, tee)?;
        let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
        let started = source::start(&config.source, tx, Buffers::new(free_rx))?;
        let pid = started.pid;
        let mut producer = Producer {
            exec: matches!(config.source, Source::Exec(_)),
            kill: &mut |stop: Option<Stop>| {
                if let Some(pid) = pid {
                    kill(pid, stop);
                }
            },
        };
        let mut next = |wake: Duration| match rx.recv_timeout(wake) {
            Ok(e) => Next::Event(e),
            Err(RecvTimeoutError::Timeout) => Next::Timeout,
            Err(RecvTimeoutError::Disconnected) => Next::Closed,
        };
        let mut drain = || rx.try_recv().ok();
        let mut recycle = |buf: Vec<u8>| {
            let _ = free_tx.send(buf);
        };
        drive(
            &mut session,
            &mut producer,
            &mut Io {
                next: &mut next,
                drain: &mut drain,
                recycle: &mut recycle,
                now: &Instant::now,
            },
            notify,
        )
    }
}

/// What waiting for the next event gave.
#[derive(Debug)]
pub enum Next {
    /// An event.
    Event(Event),
    /// Nothing before the time given.
    Timeout,
    /// Every sender is gone.
    Closed,
}

/// The loop's ways to the outside world: events, buffers to give back, the clock.
pub struct Io<'a> {
    /// Waits at most the given time for the next event.
    pub next: &'a mut dyn FnMut(Duration) -> Next,
    /// An event already waiting, without waiting (what is left after a stop).
    pub drain: &'a mut dyn FnMut() -> Option<Event>,
    /// Gives a data buffer back to the source.
    pub recycle: &'a mut dyn FnMut(Vec<u8>),
    /// The time now.
    pub now: &'a dyn Fn() -> Instant,
}

/// The producer run with `--exec`, as the loop sees it.
pub struct Producer<'a> {
    /// The source is a producer (its exit status ends the capture).
    pub exec: bool,
    /// Passes a stop on to it (`None`: kill it).
    pub kill: &'a mut dyn FnMut(Option<Stop>),
}

/// The capture loop: events from `io` go to `session` until the source ends or a stop
/// request (passed on to the producer, which gets [`GRACE`] to exit) ends it.
pub fn drive(
    session: &mut Session<'_>,
    producer: &mut Producer<'_>,
    io: &mut Io<'_>,
    notify: &mut dyn FnMut(Notice),
) -> Result<Outcome, Error> {
    let mut eof = false;
    let mut status: Option<ExitStatus> = None;
    let mut stopped = false;
    // With --exec: when to stop waiting for the producer (after it exited, or after
    // it was passed a stop request).
    let mut deadline: Option<Instant> = None;
    let mut killed = false;
    let result: Result<(), Error> = loop {
        let now = (io.now)();
        if let Some(d) = deadline.filter(|&d| now >= d) {
            if status.is_none() && !killed {
                // The producer ignored the stop: kill it and drain a little more.
                (producer.kill)(None);
                killed = true;
                deadline = Some(d + Duration::from_secs(1));
                continue;
            }
            break Ok(());
        }
        let mut wake = session.wake(now);
        if let Some(d) = deadline {
            wake = wake.min(d);
        }
        let event = match (io.next)(wake.saturating_duration_since(now)) {
            Next::Event(e) => e,
            Next::Timeout => {
                session.tick((io.now)(), notify);
                continue;
            }
            Next::Closed => break Ok(()),
        };
        match event {
            Event::Data(buf, n) => {
                let r = session.data(&buf[..n], (io.now)(), notify);
                (io.recycle)(buf);
                if let Err(e) = r {
                    break Err(e);
                }
            }
            Event::Status(message, up) => session.link(message, up, notify),
            Event::Eof => {
                eof = true;
                if !producer.exec || status.is_some() {
                    break Ok(());
                }
            }
            Event::Exited(s) => {
                status = Some(s);
                if eof {
                    break Ok(());
                }
                deadline = Some((io.now)() + GRACE);
            }
            Event::Failed(e) => {
                break Err(Error::Source {
                    what: session.source.describe(),
                    source: e,
                })
            }
            Event::Request(Request::Snapshot) => session.snapshot(notify),
            Event::Request(Request::Stop(stop)) => {
                if stopped || !producer.exec || status.is_some() {
                    stopped = true;
                    break Ok(());
                }
                // Pass the stop on to the producer and keep capturing what it prints
                // while it winds down.
                stopped = true;
                (producer.kill)(Some(stop));
                deadline = Some((io.now)() + GRACE);
            }
        }
        session.tick((io.now)(), notify);
    };
    // Stopped: what was already read (at most the queue) is written too.
    let mut result = result;
    for _ in 0..=QUEUE {
        if result.is_err() {
            break;
        }
        match (io.drain)() {
            Some(Event::Data(buf, n)) => result = session.data(&buf[..n], (io.now)(), notify),
            Some(_) => {}
            None => break,
        }
    }
    if result.is_err() && status.is_none() && producer.exec {
        (producer.kill)(Some(Stop::Terminate));
    }
    let finished = session.finish(notify);
    result?;
    let (bytes, framing) = finished?;
    let outcome = Outcome {
        bytes,
        framing,
        status,
        stopped,
    };
    if let Some(last) = session.last_beat((io.now)(), &outcome) {
        notify(Notice::Stopped(last));
    }
    Ok(outcome)
}

/// The data path of a capture: the ring of slots, the framer, the counters, the
/// snapshot and the `--tee` copy. No thread, signal or clock of its own: the time is
/// passed in.
pub struct Session<'a> {
    source: Source,
    rotator: Rotator,
    framer: LiveFramer,
    meter: Meter,
    snapshot_path: PathBuf,
    snap: Option<Snapshot>,
    tee: Option<&'a mut dyn Write>,
    heartbeat: Option<Duration>,
    next_beat: Option<Instant>,
    link: &'static str,
    /// The last byte written was not a line end.
    mid_line: bool,
}

impl<'a> Session<'a> {
    /// Opens the slots of `config` (removing an earlier capture's) and saves dumps
    /// under `DIR/dumps`.
    pub fn new(config: &Config, tee: Option<&'a mut dyn Write>) -> Result<Self, Error> {
        let store: Box<dyn Store> = if matches!(config.source, Source::Gdb(_)) {
            Box::new(framing::NoStore)
        } else {
            Box::new(framing::DirStore(config.dir.join("dumps")))
        };
        Self::with_store(config, tee, store, Instant::now())
    }

    /// Like [`Session::new`], saving dumps through `store`, starting at `now`.
    pub fn with_store(
        config: &Config,
        tee: Option<&'a mut dyn Write>,
        store: Box<dyn Store>,
        now: Instant,
    ) -> Result<Self, Error> {
        let rotator = Rotator::create(&config.dir, &config.prefix, config.slot_size, config.slots)?;
        Ok(Self {
            source: config.source.clone(),
            rotator,
            framer: LiveFramer::with_store(store, &config.prefix),
            meter: Meter::new(now),
            snapshot_path: config.dir.join(format!("{}.snapshot", config.prefix)),
            snap: None,
            tee,
            heartbeat: config.heartbeat,
            next_beat: config.heartbeat.map(|d| now + d),
            link: "connecting",
            mid_line: false,
        })
    }

    /// Bytes read: counted, shown to the framer, appended to the ring, copied to the
    /// tee. Only a failure to write the ring ends the capture; a dump that cannot be
    /// saved is a [`Notice::SaveFailed`].
    pub fn data(
        &mut self,
        data: &[u8],
        now: Instant,
        notify: &mut dyn FnMut(Notice),
    ) -> Result<(), Error> {
        if data.is_empty() {
            return Ok(());
        }
        self.meter.record(data, now);
        self.append(data, notify)?;
        if let Some(out) = &mut self.tee {
            // Flushed at once: a prompt without a line end shows too.
            if out.write_all(data).and_then(|()| out.flush()).is_err() {
                self.tee = None;
                notify(Notice::TeeStopped);
            }
        }
        Ok(())
    }

    fn append(&mut self, data: &[u8], notify: &mut dyn FnMut(Notice)) -> Result<(), Error> {
        if self.rotator.will_rotate(data.len()) {
            // A slot the snapshot may still be copying is about to be reused.
            self.end_snapshot(notify);
        }
        self.framer.push(data);
        for e in self.framer.take_failures() {
            notify(Notice::SaveFailed(e));
        }
        self.rotator.write(data)?;
        self.mid_line = data.last() != Some(&b'\n');
        Ok(())
    }

    /// A serial port or TCP connection came or went. A line the end of a connection
    /// cut is ended there (a `\n` in the slot), so that it is not glued to the next
    /// connection's first line.
    pub fn link(&mut self, message: String, up: bool, notify: &mut dyn FnMut(Notice)) {
        self.link = if up { "connected" } else { "disconnected" };
        if !up && self.mid_line {
            if let Err(e) = self.append(b"\n", notify) {
                notify(Notice::SaveFailed(e));
            }
        }
        notify(Notice::Link { message, up });
    }

    /// Starts `NAME.snapshot` (after the one being written, if any).
    pub fn snapshot(&mut self, notify: &mut dyn FnMut(Notice)) {
        self.end_snapshot(notify);
        match Snapshot::start(&self.rotator.slots_oldest_first(), &self.snapshot_path) {
            Ok(s) => self.snap = Some(s),
            Err(e) => notify(Notice::Snapshot(format!("snapshot failed: {}", e.chain()))),
        }
    }

    /// When the loop should next call [`Session::tick`] at the latest.
    pub fn wake(&self, now: Instant) -> Instant {
        let mut wake = self.next_beat.unwrap_or(now + Duration::from_secs(1));
        if self.snap.is_some() {
            // Say soon when the snapshot is written, even if no input arrives.
            wake = wake.min(now + Duration::from_millis(100));
        }
        wake
    }

    /// Time passed: says when a snapshot is done, beats when it is time.
    pub fn tick(&mut self, now: Instant, notify: &mut dyn FnMut(Notice)) {
        if self.snap.as_ref().is_some_and(Snapshot::is_finished) {
            self.end_snapshot(notify);
        }
        if let Some(at) = self.next_beat.filter(|&at| now >= at) {
            let extra = self.slot_state();
            notify(Notice::Heartbeat(self.meter.beat(
                now,
                self.framer.stats(),
                &extra,
            )));
            let every = self.heartbeat.unwrap_or(Duration::from_secs(5));
            self.next_beat = Some((at + every).max(now));
        }
    }

    /// What the framer found so far.
    pub fn framing(&self) -> FramingStats {
        self.framer.stats()
    }

    /// The end: the snapshot finished, a dump cut short saved as damaged, the current
    /// slot written through. Returns the bytes captured and the framing counts.
    pub fn finish(&mut self, notify: &mut dyn FnMut(Notice)) -> Result<(u64, FramingStats), Error> {
        self.end_snapshot(notify);
        self.framer.finish();
        for e in self.framer.take_failures() {
            notify(Notice::SaveFailed(e));
        }
        self.rotator.sync()?;
        Ok((self.meter.bytes(), self.framer.stats()))
    }

    fn last_beat(&mut self, now: Instant, outcome: &Outcome) -> Option<String> {
        self.heartbeat?;
        let extra = self.slot_state();
        Some(format!(
            "{} | stopped{}",
            self.meter.beat(now, outcome.framing, &extra),
            match outcome.status {
                Some(s) => format!(", producer {s}"),
                None if outcome.stopped => " by request".into(),
                None => String::new(),
            }
        ))
    }

    /// Waits for the snapshot being written, if any, and says how it went.
    fn end_snapshot(&mut self, notify: &mut dyn FnMut(Notice)) {
        if let Some(s) = self.snap.take() {
            notify(Notice::Snapshot(s.wait()));
        }
    }

    fn slot_state(&self) -> String {
        let path = self.rotator.current_path();
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let mut s = format!(
            "slot {name} {} ({} rotations)",
            heartbeat::size(self.rotator.current_len()),
            self.rotator.rotations()
        );
        if matches!(self.source, Source::Serial { .. } | Source::Tcp(_)) {
            s.push_str(&format!(" | {}", self.link));
        }
        s
    }
}

fn kill(pid: u32, stop: Option<Stop>) {
    use nix::sys::signal::Signal;
    let sig = match stop {
        Some(Stop::Interrupt) => Signal::SIGINT,
        Some(Stop::Terminate) => Signal::SIGTERM,
        None => Signal::SIGKILL,
    };
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::collections::VecDeque;
    use std::path::Path;

    use tracemark_format::uart;

    /// A store that fails its first `fail` saves (a full disk), then saves in `dir`.
    struct Flaky {
        fail: usize,
        dir: framing::DirStore,
    }

    impl Store for Flaky {
        fn save(&mut self, name: &str, bytes: &[u8]) -> Result<PathBuf, Error> {
            if self.fail > 0 {
                self.fail -= 1;
                return Err(Error::Io {
                    path: self.dir.0.join(name),
                    source: std::io::Error::from_raw_os_error(28), // ENOSPC
                });
            }
            self.dir.save(name, bytes)
        }
    }

    fn framed(dump_id: u32, payload: &[u8]) -> Vec<u8> {
        let mut text = Vec::new();
        let mut sink = |l: &[u8]| -> Result<(), ()> {
            text.extend_from_slice(l);
            Ok(())
        };
        uart::write_framed(dump_id, payload, 48, &mut sink).unwrap();
        text
    }

    fn config(dir: &Path, source: Source) -> Config {
        Config {
            source,
            dir: dir.to_path_buf(),
            prefix: "c".into(),
            slot_size: 1 << 20,
            slots: 2,
            heartbeat: Some(Duration::from_secs(5)),
        }
    }

    /// Runs [`drive`] over `events` (`None`: nothing arrives before the loop's wake-up
    /// time, which the fake clock then jumps to), without threads or signals.
    fn run(
        session: &mut Session<'_>,
        exec: bool,
        events: Vec<Option<Event>>,
        t0: Instant,
    ) -> (Result<Outcome, Error>, Vec<Notice>, Vec<Option<Stop>>) {
        let clock = Cell::new(t0);
        let mut events: VecDeque<Option<Event>> = events.into();
        let mut notices = Vec::new();
        let mut kills = Vec::new();
        let mut next = |wake: Duration| match events.pop_front() {
            Some(Some(e)) => Next::Event(e),
            Some(None) => {
                clock.set(clock.get() + wake);
                Next::Timeout
            }
            None => Next::Closed,
        };
        let outcome = drive(
            session,
            &mut Producer {
                exec,
                kill: &mut |s| kills.push(s),
            },
            &mut Io {
                next: &mut next,
                drain: &mut || None,
                recycle: &mut drop,
                now: &|| clock.get(),
            },
            &mut |n| notices.push(n),
        );
        (outcome, notices, kills)
    }

    fn data(bytes: &[u8]) -> Option<Event> {
        Some(Event::Data(bytes.to_vec(), bytes.len()))
    }

    #[test]
    fn a_dump_that_cannot_be_saved_is_reported_and_the_capture_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), Source::Stdin);
        let store = Flaky {
            fail: 1,
            dir: framing::DirStore(dir.path().join("dumps")),
        };
        let t0 = Instant::now();
        let mut s = Session::with_store(&cfg, None, Box::new(store), t0).unwrap();
        let events = vec![
            data(b"boot\n"),
            data(&framed(1, b"first dump")),
            data(b"console goes on\n"),
            data(&framed(2, b"second dump")),
            data(b"and on\n"),
            Some(Event::Eof),
        ];
        let (outcome, notices, _) = run(&mut s, false, events, t0);
        let outcome = outcome.unwrap();
        assert_eq!((outcome.framing.complete, outcome.framing.unsaved), (2, 1));
        let failed: Vec<String> = notices
            .iter()
            .filter(|n| matches!(n, Notice::SaveFailed(_)))
            .map(ToString::to_string)
            .collect();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(
            failed[0].contains("c-0001-00000001.bin: No space left on device"),
            "{failed:?}"
        );
        // Everything was recorded, before and after the failure, and the second dump saved.
        let slot = std::fs::read(dir.path().join("c.0")).unwrap();
        assert!(slot.starts_with(b"boot\n") && slot.ends_with(b"and on\n"));
        let saved = std::fs::read(dir.path().join("dumps/c-0002-00000002.bin")).unwrap();
        assert_eq!(saved, b"second dump");
        // No temporary file left in dumps/.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("dumps"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["c-0002-00000002.bin"]);
    }

    #[test]
    fn a_line_cut_by_a_disconnect_is_not_glued_to_the_next_connection() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), Source::Tcp("localhost:1".into()));
        let t0 = Instant::now();
        let mut s = Session::with_store(
            &cfg,
            None,
            Box::new(framing::DirStore(dir.path().join("d"))),
            t0,
        )
        .unwrap();
        let events = vec![
            Some(Event::Status("connected".into(), true)),
            data(b"whole line\ncut sh"),
            Some(Event::Status("disconnected".into(), false)),
            Some(Event::Status("connected".into(), true)),
            data(b"next connection\n"),
            Some(Event::Status("disconnected".into(), false)),
            Some(Event::Request(Request::Stop(Stop::Interrupt))),
        ];
        let (outcome, _, kills) = run(&mut s, false, events, t0);
        assert!(outcome.unwrap().stopped);
        assert!(kills.is_empty());
        let slot = std::fs::read(dir.path().join("c.0")).unwrap();
        assert_eq!(slot, b"whole line\ncut sh\nnext connection\n");
    }

    #[test]
    fn heartbeats_follow_the_clock_and_a_stop_is_passed_to_the_producer() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), Source::Exec("producer".into()));
        let t0 = Instant::now();
        let mut s = Session::with_store(
            &cfg,
            None,
            Box::new(framing::DirStore(dir.path().join("d"))),
            t0,
        )
        .unwrap();
        let events = vec![
            data(b"a\nb\n"),
            None, // 5 s: a beat
            None, // 10 s: a beat
            Some(Event::Request(Request::Stop(Stop::Terminate))),
            data(b"winding down\n"),
            Some(Event::Eof),
            Some(Event::Exited(ExitStatus::from_raw(3 << 8))),
        ];
        let (outcome, notices, kills) = run(&mut s, true, events, t0);
        let outcome = outcome.unwrap();
        assert_eq!(outcome.exit_code(), 3);
        assert_eq!(outcome.bytes, 17);
        assert_eq!(kills, [Some(Stop::Terminate)]);
        let beats: Vec<String> = notices
            .iter()
            .filter(|n| matches!(n, Notice::Heartbeat(_)))
            .map(ToString::to_string)
            .collect();
        assert_eq!(beats.len(), 2, "{beats:?}");
        assert!(
            beats[0].contains("(total 4 B, 2 lines) | last input 5.0 s ago"),
            "{beats:?}"
        );
        assert!(
            beats[1].contains("last input 10.0 s ago (producer silent)"),
            "{beats:?}"
        );
        assert!(
            matches!(notices.last(), Some(Notice::Stopped(l)) if l.contains("producer exit status: 3"))
        );
    }

    #[test]
    fn a_file_as_the_directory_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        let cfg = config(&file, Source::Stdin);
        let e = Session::new(&cfg, None).err().unwrap();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: not a directory (--dir must name a directory, created if missing)",
                file.display()
            )
        );
    }

    #[test]
    fn tcp_addresses_are_checked_before_waiting() {
        assert_eq!(
            Source::tcp("localhost:4321").unwrap(),
            Source::Tcp("localhost:4321".into())
        );
        assert_eq!(
            Source::tcp("[::1]:80").unwrap(),
            Source::Tcp("[::1]:80".into())
        );
        for bad in ["notaport", "host:", ":80", "host:99999", "host:http"] {
            assert!(
                matches!(Source::tcp(bad), Err(Error::TcpAddress(_))),
                "{bad}"
            );
        }
    }

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
