//! `NAME.snapshot`: every slot still on disk, oldest to newest, as one file, as it was
//! when it was asked for ([`crate::source::Request::Snapshot`]; `SIGUSR1` in the binary).
//!
//! The slots are opened and their lengths taken when the request is handled; a thread
//! then copies exactly those bytes (`std::io::copy` between files, which Linux turns
//! into `copy_file_range`: no round trip through user space). The capture goes on
//! meanwhile: appending to the current slot does not change what is copied, and
//! before a rotation would truncate a slot, the capture loop waits for the copy to end
//! ([`Snapshot::wait`]), which with the default 500 MB slots only happens if 500 MB
//! arrive during the copy. A serial port, whose kernel buffer is a few KiB, is thus
//! never left unread for the length of a copy.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crate::Error;

/// A snapshot being written.
#[derive(Debug)]
pub struct Snapshot {
    dest: PathBuf,
    slots: usize,
    thread: JoinHandle<Result<u64, Error>>,
}

impl Snapshot {
    /// Starts copying `slots` (oldest first; missing ones are skipped) as they are now
    /// to `dest`, through a temporary file (of a random name) renamed over it.
    pub fn start(slots: &[PathBuf], dest: &Path) -> Result<Self, Error> {
        let mut inputs = Vec::new();
        for slot in slots {
            match File::open(slot) {
                Ok(f) => {
                    let len = f.metadata().map_err(Error::io(slot))?.len();
                    inputs.push((slot.clone(), f, len));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(slot)(e)),
            }
        }
        let dest = dest.to_path_buf();
        let out = dest.clone();
        let count = inputs.len();
        let thread = std::thread::spawn(move || copy(inputs, &out));
        Ok(Self {
            dest,
            slots: count,
            thread,
        })
    }

    /// The copy is over ([`Snapshot::wait`] will not block).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits for the copy to end; returns a line for the user.
    pub fn wait(self) -> String {
        match self.thread.join() {
            Ok(Ok(n)) => format!(
                "snapshot {} ({} from {} slot{})",
                self.dest.display(),
                super::heartbeat::size(n),
                self.slots,
                if self.slots == 1 { "" } else { "s" }
            ),
            Ok(Err(e)) => format!("snapshot failed: {}", e.chain()),
            Err(_) => "snapshot failed: the copy thread panicked".into(),
        }
    }
}

fn copy(inputs: Vec<(PathBuf, File, u64)>, dest: &Path) -> Result<u64, Error> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut out = tempfile::Builder::new()
        .prefix(".")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(Error::io(dir))?;
    let mut total = 0;
    for (path, file, len) in inputs {
        total += io::copy(&mut file.take(len), &mut out).map_err(Error::io(path))?;
    }
    out.persist(dest).map_err(|e| Error::io(dest)(e.error))?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn copies_the_slots_as_they_were_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        std::fs::write(p("a"), b"old\n").unwrap();
        std::fs::write(p("b"), b"new\n").unwrap();
        let snap = Snapshot::start(&[p("a"), p("gone"), p("b")], &p("snap")).unwrap();
        // Appended after the request: not part of the snapshot.
        let mut b = std::fs::OpenOptions::new()
            .append(true)
            .open(p("b"))
            .unwrap();
        b.write_all(b"later\n").unwrap();
        let msg = snap.wait();
        assert!(msg.contains("(8 B from 2 slots)"), "{msg}");
        assert_eq!(std::fs::read(p("snap")).unwrap(), b"old\nnew\n");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 3, "a temporary file left behind: {left:?}");
    }
}
