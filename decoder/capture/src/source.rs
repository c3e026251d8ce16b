//! Where captured bytes come from: standard input, a producer run by the capture
//! (stdout and stderr through one pipe), a serial port or a TCP port; the last two
//! reconnect whenever the device or the server goes away and comes back.
//!
//! Each source runs on a thread of its own that sends [`Event`]s to the capture loop,
//! so that the loop keeps beating, snapshotting and answering requests while a read
//! blocks. Buffers go back and forth between the two ([`Buffers`]) instead of being
//! allocated per read.
//!
//! Serial ports are opened with the `serialport` crate built without its default
//! `libudev` feature (nothing to link, no enumeration needed: the path is given), which
//! sets raw mode, the baud rate and `TIOCEXCL`, and waits for input with `poll` so
//! that a vanished device (`POLLHUP`, `EIO`) ends the read instead of blocking.

use std::io::{self, Read};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::Duration;

use crate::Error;

/// Size of one read buffer.
pub const BUF_LEN: usize = 256 << 10;

/// The pipe buffer asked for on standard input and the `--exec` pipe (1 MiB, Linux's
/// default `pipe-max-size`).
pub const PIPE_LEN: i32 = 1 << 20;

/// Wait between two attempts to reopen a serial port or reconnect to a TCP port.
pub const RECONNECT_DELAY: Duration = Duration::from_millis(250);

/// A source of bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Standard input.
    Stdin,
    /// A shell command (`sh -c`) whose stdout and stderr are captured, interleaved by
    /// arrival (both are the write end of one pipe).
    Exec(String),
    /// A serial port (`PATH[:BAUD]`), reopened after it disappears.
    Serial {
        /// The device (or a stable symlink to it, such as `/dev/serial/by-id/...`).
        path: PathBuf,
        /// Bits per second.
        baud: u32,
    },
    /// A TCP server (`HOST:PORT`), reconnected after it closes.
    Tcp(String),
    /// Rings read from a running target's memory through a GDB stub (`--gdb`).
    Gdb(crate::live::GdbSource),
}

impl Source {
    /// Parses the argument of `--serial`: `PATH` or `PATH:BAUD` (default 115200).
    pub fn serial(arg: &str) -> Result<Self, Error> {
        let bad = |why| Error::SerialArgument {
            arg: arg.to_string(),
            why,
        };
        let (path, baud) = match arg.rsplit_once(':') {
            Some((path, baud)) if !baud.is_empty() && baud.bytes().all(|b| b.is_ascii_digit()) => {
                let baud = baud.parse().map_err(|_| bad("baud rate out of range"))?;
                (path, baud)
            }
            _ => (arg, 115_200),
        };
        if path.is_empty() {
            return Err(bad("no device path"));
        }
        Ok(Source::Serial {
            path: path.into(),
            baud,
        })
    }

    /// Parses the argument of `--tcp`: `HOST:PORT` with a port number (the host is
    /// resolved at each connection, so a server not up yet is waited for).
    pub fn tcp(arg: &str) -> Result<Self, Error> {
        match arg.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(Source::Tcp(arg.to_string()))
            }
            _ => Err(Error::TcpAddress(arg.to_string())),
        }
    }

    /// What the source is, for messages.
    pub fn describe(&self) -> String {
        match self {
            Source::Stdin => "standard input".into(),
            Source::Exec(cmd) => format!("`{cmd}`"),
            Source::Serial { path, baud } => format!("serial {} at {baud} Bd", path.display()),
            Source::Tcp(addr) => format!("tcp {addr}"),
            Source::Gdb(g) => g.stub.to_string(),
        }
    }
}

/// What a source thread tells the capture loop.
#[derive(Debug)]
pub enum Event {
    /// Bytes read: the first `len` bytes of the buffer.
    Data(Vec<u8>, usize),
    /// The source connected or disconnected (serial, TCP): a message for the user.
    Status(String, bool),
    /// The source ended for good (end of standard input or of the producer's pipe).
    Eof,
    /// The producer run by `--exec` exited.
    Exited(ExitStatus),
    /// Reading failed for good.
    Failed(io::Error),
    /// The user asked for something ([`crate::Control`]).
    Request(Request),
}

/// What the user can ask of a running capture (the binary maps signals to these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Write `NAME.snapshot` (`SIGUSR1`).
    Snapshot,
    /// Stop (`SIGINT`, `SIGTERM`): a producer run by the capture is passed the same
    /// request and captured while it winds down; a second stop ends the capture at once.
    Stop(Stop),
}

/// How to stop: which signal a producer is passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// `SIGINT`.
    Interrupt,
    /// `SIGTERM`.
    Terminate,
}

/// Empty buffers handed back by the capture loop, reused by the source thread.
#[derive(Debug)]
pub struct Buffers(Receiver<Vec<u8>>);

impl Buffers {
    /// Wraps the receiving end of the free list.
    pub fn new(free: Receiver<Vec<u8>>) -> Self {
        Self(free)
    }

    fn get(&self) -> Vec<u8> {
        self.0.try_recv().unwrap_or_else(|_| vec![0; BUF_LEN])
    }
}

/// A started source: the producer's pid for `--exec` (to pass a stop on).
#[derive(Debug, Default)]
pub struct Started {
    /// The process id of the producer.
    pub pid: Option<u32>,
}

/// Starts the thread(s) reading `source`.
///
/// A serial device missing at the start is an error (a typo waits for nothing); one
/// that goes away later is waited for.
pub fn start(source: &Source, tx: SyncSender<Event>, free: Buffers) -> Result<Started, Error> {
    if let Source::Serial { path, .. } = source {
        if !path.exists() {
            return Err(Error::NoSuchDevice(path.clone()));
        }
    }
    start_io(source, tx, free).map_err(|e| Error::Source {
        what: source.describe(),
        source: e,
    })
}

fn start_io(source: &Source, tx: SyncSender<Event>, free: Buffers) -> io::Result<Started> {
    match source {
        Source::Stdin => {
            grow_pipe(io::stdin().as_raw_fd());
            std::thread::spawn(move || pump(io::stdin().lock(), &tx, &free));
            Ok(Started::default())
        }
        Source::Exec(command) => {
            let (reader, writer) = os_pipe::pipe()?;
            grow_pipe(reader.as_raw_fd());
            let writer2 = writer.try_clone()?;
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(command).stdout(writer).stderr(writer2);
            // A failure is reported with the command ([`Source::describe`]) by `start`.
            let child = cmd.spawn()?;
            // The parent's copies of the write end must go, or the pipe never ends.
            drop(cmd);
            let pid = child.id();
            let tx2 = tx.clone();
            std::thread::spawn(move || pump(reader, &tx, &free));
            std::thread::spawn(move || wait(child, &tx2));
            Ok(Started { pid: Some(pid) })
        }
        Source::Serial { path, baud } => {
            let (path, baud) = (path.clone(), *baud);
            std::thread::spawn(move || {
                reconnecting(&tx, &free, &path.display().to_string(), || {
                    serialport::new(path.to_string_lossy(), baud)
                        .timeout(Duration::from_millis(500))
                        .open_native()
                        .map_err(io::Error::from)
                })
            });
            Ok(Started::default())
        }
        Source::Tcp(addr) => {
            let addr = addr.clone();
            std::thread::spawn(move || {
                reconnecting(&tx, &free, &addr.clone(), || TcpStream::connect(&addr))
            });
            Ok(Started::default())
        }
        Source::Gdb(g) => {
            let g = g.clone();
            std::thread::spawn(move || crate::live::run_gdb(&g, &tx));
            Ok(Started::default())
        }
    }
}

/// Asks for a pipe buffer of [`PIPE_LEN`] if `fd` is a pipe (nothing happens for other
/// files): a fast producer then hands over up to a whole read buffer per `read`
/// instead of the default 64 KiB, and a capture that pauses (a rotation, a snapshot)
/// holds it up less. Refusals (an unprivileged process above
/// `/proc/sys/fs/pipe-max-size`) are ignored: the default still works.
fn grow_pipe(fd: RawFd) {
    let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_LEN));
}

/// Reads until the end of `input`.
fn pump(mut input: impl Read, tx: &SyncSender<Event>, free: &Buffers) {
    loop {
        let mut buf = free.get();
        match input.read(&mut buf) {
            Ok(0) => {
                let _ = tx.send(Event::Eof);
                return;
            }
            Ok(n) => {
                if tx.send(Event::Data(buf, n)).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.send(Event::Failed(e));
                return;
            }
        }
    }
}

fn wait(mut child: Child, tx: &SyncSender<Event>) {
    match child.wait() {
        Ok(status) => {
            let _ = tx.send(Event::Exited(status));
        }
        Err(e) => {
            let _ = tx.send(Event::Failed(e));
        }
    }
}

/// Opens with `open` and reads until the connection ends, forever; says when it
/// connects and disconnects (a failure to open only once per outage).
fn reconnecting<R: Read>(
    tx: &SyncSender<Event>,
    free: &Buffers,
    name: &str,
    mut open: impl FnMut() -> io::Result<R>,
) {
    let mut waiting_said = false;
    loop {
        match open() {
            Ok(mut input) => {
                waiting_said = false;
                if tx
                    .send(Event::Status(format!("{name}: connected"), true))
                    .is_err()
                {
                    return;
                }
                let why = loop {
                    let mut buf = free.get();
                    match input.read(&mut buf) {
                        Ok(0) => break "closed".to_string(),
                        Ok(n) => {
                            if tx.send(Event::Data(buf, n)).is_err() {
                                return;
                            }
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::Interrupted
                                    | io::ErrorKind::TimedOut
                                    | io::ErrorKind::WouldBlock
                            ) => {}
                        Err(e) => break e.to_string(),
                    }
                };
                let msg = format!("{name}: disconnected ({why}); reconnecting");
                if tx.send(Event::Status(msg, false)).is_err() {
                    return;
                }
            }
            Err(e) => {
                if !waiting_said {
                    waiting_said = true;
                    let msg = format!("{name}: waiting ({e})");
                    if tx.send(Event::Status(msg, false)).is_err() {
                        return;
                    }
                }
            }
        }
        std::thread::sleep(RECONNECT_DELAY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_argument() {
        assert_eq!(
            Source::serial("/dev/ttyUSB0:921600").unwrap(),
            Source::Serial {
                path: "/dev/ttyUSB0".into(),
                baud: 921_600
            }
        );
        assert_eq!(
            Source::serial("/dev/serial/by-id/usb-FTDI:x").unwrap(),
            Source::Serial {
                path: "/dev/serial/by-id/usb-FTDI:x".into(),
                baud: 115_200
            }
        );
        assert!(Source::serial(":9600").is_err());
        assert!(Source::serial("/dev/ttyS0:99999999999").is_err());
    }
}
