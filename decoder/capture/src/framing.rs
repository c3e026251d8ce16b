//! Live recognition of tracemark's UART framing (`@TM:` lines, see
//! [`tracemark_format::uart`]) in a captured stream.
//!
//! The framing lines of the dump being received are kept aside (nothing else of the
//! stream is); when its end line arrives, or another begin line cuts it short, or the
//! capture ends, they are handed to [`tracemark_decoder::extract::extract`], which verifies every
//! chunk and reassembles the payload exactly as `tracemark extract` does on a whole
//! log. A complete dump is written to `dumps/PREFIX-NNNN-ID.bin`; a damaged one keeps
//! its framing lines in `dumps/PREFIX-NNNN-ID.partial.log`, which `tracemark decode`
//! and `tracemark extract` read (decoding what was verified and naming what was lost);
//! one of which no chunk could be verified is only counted.
//! So a dump is saved as soon as it completes, even if its text later rotates away.
//!
//! Files are written through a [`Store`] ([`DirStore`] on disk): a dump that cannot be
//! saved (the disk is full) is counted and reported ([`LiveFramer::take_failures`]),
//! and the capture goes on.
//!
//! Memory: the framing text of one dump, at most its declared number of lines at the
//! longest a framing line can be, and never more than [`MAX_DUMP_TEXT`]; a partial line
//! of at most [`MAX_LINE`] bytes.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Error;

use memchr::memmem;
use tracemark_format::uart::{self, Line, MARKER};

use tracemark_decoder::extract;

/// The most framing text kept for one dump; past it, further lines of the dump are
/// dropped (and reported missing when the dump is verified).
pub const MAX_DUMP_TEXT: usize = 256 << 20;

/// The most framing text kept for data lines whose begin line was not seen.
pub const MAX_HEADLESS_TEXT: usize = 16 << 20;

/// The longest partial line carried from one read to the next; framing lines are far
/// shorter ([`uart::MAX_LINE_LEN`]), so only the end of a longer line is kept.
pub const MAX_LINE: usize = 4096;

/// What the framer found so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FramingStats {
    /// Dumps verified complete and saved as `.bin`.
    pub complete: u64,
    /// Dumps saved as `.partial.log` because chunks were missing, corrupt or in
    /// conflict, or the payload CRC did not match.
    pub damaged: u64,
    /// Chunks missing, corrupt or in conflict in all dumps, plus framing lines that
    /// belonged to no dump.
    pub chunk_errors: u64,
    /// Dumps that could not be saved (the [`Store`] failed).
    pub unsaved: u64,
    /// A dump's begin line was seen and its end not yet.
    pub in_progress: bool,
}

/// Where the framer saves dump files.
pub trait Store: Send {
    /// Saves `bytes` as the file `name`; returns its path.
    fn save(&mut self, name: &str, bytes: &[u8]) -> Result<PathBuf, Error>;
}

/// Dump files in a directory (created when the first dump is saved), each written to a
/// temporary file there and renamed over its name once complete (a reader never sees
/// half a dump; a crash leaves at most a `.tmp` file of a random name, never one in the
/// way of the next run).
#[derive(Debug)]
pub struct DirStore(pub PathBuf);

impl Store for DirStore {
    fn save(&mut self, name: &str, bytes: &[u8]) -> Result<PathBuf, Error> {
        let path = self.0.join(name);
        std::fs::create_dir_all(&self.0).map_err(Error::io(&self.0))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".")
            .suffix(".tmp")
            .tempfile_in(&self.0)
            .map_err(Error::io(&self.0))?;
        tmp.write_all(bytes)
            .and_then(|()| tmp.flush())
            .map_err(Error::io(&path))?;
        tmp.persist(&path).map_err(|e| Error::io(&path)(e.error))?;
        Ok(path)
    }
}

/// A store that keeps no file: a live capture (`--gdb`), whose every poll is a dump
/// already in the slots, would otherwise fill `dumps/` without bound. Dumps are still
/// verified and counted.
#[derive(Debug)]
pub struct NoStore;

impl Store for NoStore {
    fn save(&mut self, _name: &str, _bytes: &[u8]) -> Result<PathBuf, Error> {
        Ok(PathBuf::new())
    }
}

/// The framing text of the dump being received.
#[derive(Debug)]
struct Open {
    dump_id: u32,
    /// Its begin line was seen.
    begun: bool,
    text: Vec<u8>,
    cap: usize,
}

/// Follows the stream, line by line around markers only, and saves dumps as they
/// complete.
#[derive(Debug)]
pub struct LiveFramer {
    store: Box<dyn Store>,
    prefix: String,
    finder: memmem::Finder<'static>,
    /// The end of the stream after its last `\n` (at most [`MAX_LINE`] bytes).
    partial: Vec<u8>,
    open: Option<Open>,
    saved: u64,
    stats: FramingStats,
    /// Paths of the dumps saved, in order.
    files: Vec<PathBuf>,
    /// Saves that failed since [`LiveFramer::take_failures`] was last called.
    failures: Vec<Error>,
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl LiveFramer {
    /// A framer saving dumps into `dir` (created when the first dump is saved) with
    /// file names starting with `prefix`.
    pub fn new(dir: &Path, prefix: &str) -> Self {
        Self::with_store(Box::new(DirStore(dir.to_path_buf())), prefix)
    }

    /// A framer saving dumps through `store`.
    pub fn with_store(store: Box<dyn Store>, prefix: &str) -> Self {
        Self {
            store,
            prefix: prefix.to_string(),
            finder: memmem::Finder::new(MARKER),
            partial: Vec::new(),
            open: None,
            saved: 0,
            stats: FramingStats::default(),
            files: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// The saves that failed since the last call (each also counted in
    /// [`FramingStats::unsaved`]).
    pub fn take_failures(&mut self) -> Vec<Error> {
        std::mem::take(&mut self.failures)
    }

    /// The counts so far.
    pub fn stats(&self) -> FramingStats {
        FramingStats {
            in_progress: self.open.as_ref().is_some_and(|o| o.begun),
            ..self.stats
        }
    }

    /// The dump files saved so far, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Looks at the next bytes of the stream.
    pub fn push(&mut self, data: &[u8]) {
        let Some(last_nl) = memchr::memrchr(b'\n', data) else {
            self.keep_partial(data);
            return;
        };
        // The line begun in an earlier read.
        let first_nl = memchr::memchr(b'\n', data).unwrap_or(last_nl);
        if !self.partial.is_empty() {
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(&data[..=first_nl]);
            if self.finder.find(&line).is_some() {
                self.line(&line);
            }
        } else if self.finder.find(&data[..=first_nl]).is_some() {
            self.line(&data[..=first_nl]);
        }
        // Whole lines: only those with a marker are looked at.
        let whole = &data[first_nl + 1..=last_nl];
        let mut from = 0;
        while let Some(found) = self.finder.find(&whole[from..]) {
            let marker = from + found;
            let start = memchr::memrchr(b'\n', &whole[..marker]).map_or(0, |i| i + 1);
            let end =
                memchr::memchr(b'\n', &whole[marker..]).map_or(whole.len(), |i| marker + i + 1);
            self.line(&whole[start..end]);
            from = end;
        }
        self.keep_partial(&data[last_nl + 1..]);
    }

    fn keep_partial(&mut self, tail: &[u8]) {
        if tail.len() >= MAX_LINE {
            // Binary data or a very long line: only its end can hold a framing line.
            self.partial.clear();
            self.partial
                .extend_from_slice(&tail[tail.len() - MAX_LINE..]);
            return;
        }
        self.partial.extend_from_slice(tail);
        if self.partial.len() > MAX_LINE {
            let cut = self.partial.len() - MAX_LINE;
            self.partial.drain(..cut);
        }
    }

    /// One line holding at least one marker; each marker starts a framing line of its
    /// own (a line cut short by another keeps its damage, which extraction reports).
    fn line(&mut self, line: &[u8]) {
        let mut markers: Vec<usize> = self.finder.find_iter(line).collect();
        if markers.len() > 16 {
            // Marker soup: only the last ones can be framing lines worth keeping.
            markers.drain(..markers.len() - 16);
        }
        for (i, &m) in markers.iter().enumerate() {
            let end = markers.get(i + 1).copied().unwrap_or(line.len());
            let fragment = &line[m..end];
            let fragment = &fragment[..fragment.len().min(MAX_LINE)];
            self.fragment(fragment);
        }
    }

    fn fragment(&mut self, text: &[u8]) {
        match uart::parse_line(text) {
            Ok(Some(Line::Begin(b))) => {
                self.close();
                // Room for every line of the dump at the longest a line can be (with a
                // `\r`), whatever the chunk length.
                let lines = b.chunk_count().saturating_add(2);
                let cap = usize::try_from(lines)
                    .unwrap_or(usize::MAX)
                    .saturating_mul(uart::MAX_LINE_LEN + 1)
                    .min(MAX_DUMP_TEXT);
                self.open = Some(Open {
                    dump_id: b.dump_id,
                    begun: true,
                    text: Vec::new(),
                    cap,
                });
                self.append(text);
            }
            Ok(Some(Line::End(e))) => {
                if self.open.as_ref().is_some_and(|o| o.dump_id != e.dump_id) {
                    self.close();
                }
                if self.open.is_none() {
                    self.open = Some(Open {
                        dump_id: e.dump_id,
                        begun: false,
                        text: Vec::new(),
                        cap: MAX_HEADLESS_TEXT,
                    });
                }
                self.append(text);
                self.close();
            }
            Ok(Some(Line::Data(d))) => {
                if self.open.is_none() {
                    self.open = Some(Open {
                        dump_id: d.dump_id,
                        begun: false,
                        text: Vec::new(),
                        cap: MAX_HEADLESS_TEXT,
                    });
                }
                self.append(text);
            }
            Ok(None) => {}
            Err(_) => {
                if self.open.is_some() {
                    // Extraction attributes it to its chunk if it can.
                    self.append(text);
                } else {
                    self.stats.chunk_errors += 1;
                }
            }
        }
    }

    fn append(&mut self, text: &[u8]) {
        if let Some(open) = &mut self.open {
            let text = text.strip_suffix(b"\n").unwrap_or(text);
            if open.text.len() + text.len() < open.cap {
                open.text.extend_from_slice(text);
                open.text.push(b'\n');
            }
        }
    }

    /// Verifies and saves the dump being received, if any.
    fn close(&mut self) {
        let Some(open) = self.open.take() else {
            return;
        };
        let report = extract::extract(&open.text);
        if report.dumps.is_empty() {
            // Data lines without begin or end line: nothing can be reassembled.
            self.stats.chunk_errors += report.framing_lines.max(1) as u64;
            return;
        }
        for dump in &report.dumps {
            self.saved += 1;
            let name = format!("{}-{:04}-{:08x}", self.prefix, self.saved, dump.dump_id);
            let (file, bytes) = if dump.is_complete() {
                self.stats.complete += 1;
                (format!("{name}.bin"), &dump.data[..])
            } else {
                self.stats.damaged += 1;
                let lost = dump.missing.len() + dump.corrupt.len() + dump.conflicting.len();
                self.stats.chunk_errors += lost.max(1) as u64;
                if dump.valid.is_empty() {
                    // Nothing verified (a lone begin line, a hostile size): nothing to
                    // decode, so no file; the heartbeat counts it.
                    continue;
                }
                (format!("{name}.partial.log"), &open.text[..])
            };
            match self.store.save(&file, bytes) {
                // An empty path: the store keeps no file ([`NoStore`]).
                Ok(path) if path.as_os_str().is_empty() => {}
                Ok(path) => self.files.push(path),
                Err(e) => {
                    self.stats.unsaved += 1;
                    self.failures.push(e);
                }
            }
        }
    }

    /// The end of the stream: the last partial line is looked at and a dump still
    /// being received is saved as it is (damaged).
    pub fn finish(&mut self) {
        if !self.partial.is_empty() {
            let mut line = std::mem::take(&mut self.partial);
            line.push(b'\n');
            if self.finder.find(&line).is_some() {
                self.line(&line);
            }
        }
        self.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(dump_id: u32, payload: &[u8]) -> Vec<Vec<u8>> {
        framed_in(dump_id, payload, 48)
    }

    fn framed_in(dump_id: u32, payload: &[u8], chunk_len: usize) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        let mut sink = |l: &[u8]| -> Result<(), ()> {
            lines.push(l.to_vec());
            Ok(())
        };
        uart::write_framed(dump_id, payload, chunk_len, &mut sink).unwrap();
        lines
    }

    #[test]
    fn smallest_chunks_and_crlf_fit_in_the_text_kept() {
        let payload: Vec<u8> = (0..3000u32).map(|i| (i % 253) as u8).collect();
        let stream: Vec<u8> = framed_in(1, &payload, 1)
            .iter()
            .flat_map(|l| {
                let mut l = l.clone();
                l.insert(l.len() - 1, b'\r');
                l
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let mut f = LiveFramer::new(dir.path(), "c");
        f.push(&stream);
        assert_eq!(f.stats().complete, 1, "{:?}", f.stats());
        assert_eq!(std::fs::read(&f.files()[0]).unwrap(), payload);
    }

    #[test]
    fn dumps_found_across_arbitrary_read_boundaries() {
        let payload: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut stream = b"boot\nlog line without end".to_vec();
        for l in framed(0x1234, &payload) {
            stream.extend_from_slice(b"noise\n");
            stream.extend_from_slice(&l);
        }
        stream.extend_from_slice(b"after\n");
        for l in framed(0x99, &payload[..100]) {
            stream.extend_from_slice(&l);
        }
        for read in [1usize, 7, 100, 4096] {
            let dir = tempfile::tempdir().unwrap();
            let mut f = LiveFramer::new(dir.path(), "c");
            for piece in stream.chunks(read) {
                f.push(piece);
            }
            f.finish();
            assert_eq!(f.stats().complete, 2, "read size {read}");
            assert_eq!(f.stats().chunk_errors, 0);
            assert_eq!(std::fs::read(&f.files()[0]).unwrap(), payload);
            assert_eq!(std::fs::read(&f.files()[1]).unwrap(), &payload[..100]);
        }
    }

    #[test]
    fn damaged_and_unfinished_dumps_are_kept_as_logs() {
        let payload = vec![5u8; 480];
        let mut lines = framed(7, &payload);
        lines.remove(3); // chunk 2 lost
        lines[5][20] ^= 1; // chunk 5 corrupt
        let mut stream: Vec<u8> = lines.concat();
        let second = framed(8, &payload);
        stream.extend(second[..4].concat()); // cut off: no end line
        let dir = tempfile::tempdir().unwrap();
        let mut f = LiveFramer::new(dir.path(), "c");
        f.push(&stream);
        assert_eq!(f.stats().damaged, 1);
        assert!(f.stats().in_progress);
        f.finish();
        let s = f.stats();
        assert_eq!((s.complete, s.damaged), (0, 2));
        assert_eq!(s.chunk_errors, 2 + 7, "{s:?}");
        let report = extract::extract(&std::fs::read(&f.files()[0]).unwrap());
        assert_eq!(report.dumps[0].missing, [2]);
        assert_eq!(report.dumps[0].corrupt, [5]);
        assert!(f.files()[1]
            .to_str()
            .unwrap()
            .ends_with("c-0002-00000008.partial.log"));
    }

    #[test]
    fn hostile_begin_lines_cost_no_memory_and_no_file() {
        let mut stream = Vec::new();
        for id in 0..1000 {
            let mut line = [0u8; uart::MAX_LINE_LEN];
            let begin = uart::Begin {
                dump_id: id,
                total_len: 1 << 60,
                chunk_len: 48,
                payload_crc: 0,
            };
            let n = begin.encode(&mut line);
            stream.extend_from_slice(&line[..n]);
        }
        stream.extend(framed(0x42, b"payload").concat());
        let dir = tempfile::tempdir().unwrap();
        let mut f = LiveFramer::new(dir.path(), "c");
        f.push(&stream);
        f.finish();
        let s = f.stats();
        assert_eq!((s.complete, s.damaged), (1, 1000));
        assert_eq!(f.files().len(), 1);
        assert_eq!(std::fs::read(&f.files()[0]).unwrap(), b"payload");
    }
}
