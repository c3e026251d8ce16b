//! What can go wrong in a capture. Each variant's message says what it adds; the cause,
//! if any, is its [`source`](std::error::Error::source) (the binary prints the chain).

use std::io;
use std::path::PathBuf;

/// A capture error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory of the capture could not be created, written or read.
    #[error("{}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// `--dir` names something that is not a directory.
    #[error("{}: not a directory (--dir must name a directory, created if missing)", .0.display())]
    NotADirectory(PathBuf),
    /// Reading the source failed for good.
    #[error("{what}")]
    Source {
        /// The source, as [`Source::describe`](crate::source::Source::describe) says it.
        what: String,
        /// What failed.
        source: io::Error,
    },
    /// `--serial` was not given `PATH[:BAUD]`.
    #[error("--serial {arg}: {why}")]
    SerialArgument {
        /// The argument.
        arg: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// `--tcp` was not given `HOST:PORT`.
    #[error("--tcp {0}: not HOST:PORT with a port number (e.g. localhost:4321)")]
    TcpAddress(String),
    /// `--serial` names no device at the start of the capture.
    #[error(
        "{}: no such device (a device that goes away after the capture opened it is \
         waited for; one missing at the start is a mistake)", .0.display()
    )]
    NoSuchDevice(PathBuf),
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    /// The message with its causes, `a: b: c`, for a line to the user.
    pub fn chain(&self) -> String {
        let mut s = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            s.push_str(": ");
            s.push_str(&c.to_string());
            cause = c.source();
        }
        s
    }
}
