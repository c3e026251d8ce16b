//! A ring of fixed-size files on disk: `DIR/NAME.0 .. NAME.(N-1)`, rewritten in place
//! so that the bytes on disk never exceed `slots x slot_size`, with `DIR/NAME.current`
//! a symlink to the slot being written.
//!
//! Rotation happens at a line boundary: when the next bytes do not fit in the current
//! slot, the slot is closed after its last complete line, and a line that was already
//! partly written (reads end anywhere) is moved to the next slot, so no line, and in
//! particular no framed `@TM:` chunk line, is ever split across two slots. Only a
//! line longer than [`MAX_CARRY`] or than half a slot (binary data) is cut where the
//! slot is full.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::Error;

/// The longest partial line moved to the next slot at a rotation; a longer one is cut.
pub const MAX_CARRY: u64 = 1 << 20;

/// The files of the ring and where writing is.
#[derive(Debug)]
pub struct Rotator {
    dir: PathBuf,
    prefix: String,
    slot_size: u64,
    slots: usize,
    /// The slot being written.
    current: usize,
    file: File,
    /// Bytes in the current slot.
    written: u64,
    /// Offset just after the last `\n` written to the current slot (0 if none).
    line_start: u64,
    /// Which slots hold data of this capture.
    used: Vec<bool>,
    /// Rotations done so far.
    rotations: u64,
}

impl Rotator {
    /// Creates the ring in `dir` (created if needed). Slot files of an earlier capture
    /// with the same prefix are removed, so that a snapshot never mixes two captures.
    ///
    /// # Panics
    /// If `slot_size` or `slots` is 0.
    pub fn create(dir: &Path, prefix: &str, slot_size: u64, slots: usize) -> Result<Self, Error> {
        assert!(
            slot_size > 0 && slots > 0,
            "the slot size and the number of slots must be at least 1"
        );
        if std::fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
            return Err(Error::NotADirectory(dir.to_path_buf()));
        }
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        for k in 0..slots {
            let path = slot_path(dir, prefix, k);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(Error::io(path)(e)),
                _ => {}
            }
        }
        let file = open_slot(&slot_path(dir, prefix, 0))?;
        let mut used = vec![false; slots];
        used[0] = true;
        let rotator = Self {
            dir: dir.to_path_buf(),
            prefix: prefix.to_string(),
            slot_size,
            slots,
            current: 0,
            file,
            written: 0,
            line_start: 0,
            used,
            rotations: 0,
        };
        rotator.point_current()?;
        Ok(rotator)
    }

    /// Appends `data`, rotating to the next slot (at a line boundary) whenever the
    /// current one is full.
    pub fn write(&mut self, mut data: &[u8]) -> Result<(), Error> {
        while !data.is_empty() {
            let room = self.slot_size - self.written;
            if data.len() as u64 <= room {
                self.append(data)?;
                return Ok(());
            }
            let head = &data[..room as usize];
            if let Some(nl) = memchr::memrchr(b'\n', head) {
                // Fill the slot up to its last complete line, then rotate.
                self.append(&data[..=nl])?;
                data = &data[nl + 1..];
                self.rotate(false)?;
            } else if self.line_start > 0
                && self.written - self.line_start <= MAX_CARRY.min(self.slot_size / 2)
            {
                // The line begun in this slot does not fit: move it to the next one.
                self.rotate(true)?;
            } else {
                // One line larger than what may be carried over (binary data): cut it.
                self.append(head)?;
                data = &data[head.len()..];
                self.rotate(false)?;
            }
        }
        Ok(())
    }

    /// Writing `len` more bytes would start (and truncate) another slot.
    pub fn will_rotate(&self, len: usize) -> bool {
        self.written + len as u64 > self.slot_size
    }

    fn append(&mut self, data: &[u8]) -> Result<(), Error> {
        self.file
            .write_all(data)
            .map_err(Error::io(self.current_path()))?;
        if let Some(nl) = memchr::memrchr(b'\n', data) {
            self.line_start = self.written + nl as u64 + 1;
        }
        self.written += data.len() as u64;
        Ok(())
    }

    /// Starts writing the next slot (truncating it); with `carry`, the partial line at
    /// the end of the current slot is moved there.
    fn rotate(&mut self, carry: bool) -> Result<(), Error> {
        let old = self.current_path();
        let mut tail = Vec::new();
        if carry && self.line_start < self.written {
            tail = vec![0; (self.written - self.line_start) as usize];
            self.file
                .read_exact_at(&mut tail, self.line_start)
                .and_then(|()| self.file.set_len(self.line_start))
                .map_err(Error::io(old))?;
        }
        self.current = (self.current + 1) % self.slots;
        let path = self.current_path();
        // Truncating the old content first keeps the disk use within the bound.
        self.file = open_slot(&path)?;
        self.used[self.current] = true;
        self.written = 0;
        self.line_start = 0;
        self.rotations += 1;
        self.point_current()?;
        if !tail.is_empty() {
            self.append(&tail)?;
        }
        Ok(())
    }

    /// Replaces `NAME.current` atomically: a new symlink (of a random temporary name, so
    /// that two captures in one directory cannot collide) renamed over the old one.
    fn point_current(&self) -> Result<(), Error> {
        let link = self.dir.join(format!("{}.current", self.prefix));
        let target = format!("{}.{}", self.prefix, self.current);
        tempfile::Builder::new()
            .prefix(".")
            .suffix(".tmp")
            .make_in(&self.dir, |tmp| std::os::unix::fs::symlink(&target, tmp))
            .and_then(|tmp| tmp.persist(&link).map(drop).map_err(|e| e.error))
            .map_err(Error::io(link))
    }

    /// The slots holding data of this capture, oldest first (the current one last).
    pub fn slots_oldest_first(&self) -> Vec<PathBuf> {
        (1..=self.slots)
            .map(|i| (self.current + i) % self.slots)
            .filter(|&k| self.used[k])
            .map(|k| slot_path(&self.dir, &self.prefix, k))
            .collect()
    }

    /// The path of the slot being written.
    pub fn current_path(&self) -> PathBuf {
        slot_path(&self.dir, &self.prefix, self.current)
    }

    /// The index of the slot being written.
    pub fn current(&self) -> usize {
        self.current
    }

    /// Bytes in the slot being written.
    pub fn current_len(&self) -> u64 {
        self.written
    }

    /// Rotations done so far.
    pub fn rotations(&self) -> u64 {
        self.rotations
    }

    /// Writes the current slot's data through to the device (at the end of a capture).
    pub fn sync(&self) -> Result<(), Error> {
        self.file
            .sync_data()
            .map_err(Error::io(self.current_path()))
    }
}

/// `DIR/NAME.k`.
pub fn slot_path(dir: &Path, prefix: &str, k: usize) -> PathBuf {
    dir.join(format!("{prefix}.{k}"))
}

fn open_slot(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(Error::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(dir: &Path, n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|k| std::fs::read(slot_path(dir, "t", k)).unwrap_or_default())
            .collect()
    }

    #[test]
    fn lines_never_split_and_bound_holds() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Rotator::create(dir.path(), "t", 100, 3).unwrap();
        let text: Vec<u8> = (0..200)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        // Odd write sizes, so that writes end in the middle of lines.
        for piece in text.chunks(7) {
            r.write(piece).unwrap();
            let total: usize = slots(dir.path(), 3).iter().map(Vec::len).sum();
            assert!(total <= 300, "disk use {total} > 300");
        }
        for s in slots(dir.path(), 3) {
            assert!(s.len() <= 100);
            assert!(s.starts_with(b"line "), "{:?}", String::from_utf8_lossy(&s));
        }
        // The concatenation oldest-first is a contiguous run ending with the last line.
        let all: Vec<u8> = r
            .slots_oldest_first()
            .iter()
            .flat_map(|p| std::fs::read(p).unwrap())
            .collect();
        assert!(text.ends_with(&all));
        assert!(all.len() > 200);
    }

    #[test]
    fn binary_without_newlines_is_cut_at_slot_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Rotator::create(dir.path(), "t", 64, 2).unwrap();
        r.write(&[7u8; 1000]).unwrap();
        let s = slots(dir.path(), 2);
        assert_eq!(s.iter().map(Vec::len).sum::<usize>(), 64 + 1000 % 64);
        assert_eq!(r.rotations(), 1000 / 64);
    }
}
