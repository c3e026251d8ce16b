//! Opening inputs: a memory-mapped file, and what kind of bytes it holds.

use std::fs::File;
use std::ops::Range;
use std::path::Path;

use memmap2::Mmap;

use crate::dump::{Category, Dump, DumpError, Warning};

/// Most bytes read from an input that is not a regular file (a pipe, standard input, a
/// device) by default: such an input is read into memory, and one that never ends
/// (`/dev/zero`, a serial port left open) would otherwise grow until memory runs out.
/// Regular files are mapped, whatever their size.
pub const MAX_STREAM_LEN: u64 = 1 << 30;

/// The bytes of an input file.
pub enum Input {
    /// A memory-mapped file.
    Mapped(Mmap),
    /// Bytes held in memory (an empty file, or bytes reassembled from a UART log).
    Owned(Vec<u8>),
}

impl Input {
    /// Opens an input: `-` is standard input, read to its end; a regular file is mapped
    /// read-only; anything else that can be read (a pipe, `/dev/stdin`, a character
    /// device) is read to its end. A directory is refused with a message that says
    /// what to give instead.
    pub fn open(path: &Path) -> std::io::Result<Input> {
        Input::open_with(path, false, MAX_STREAM_LEN)
    }

    /// [`Input::open`] reading at most `limit` bytes from a stream (see
    /// [`MAX_STREAM_LEN`]); more is an error that says so.
    pub fn open_limited(path: &Path, limit: u64) -> std::io::Result<Input> {
        Input::open_with(path, false, limit)
    }

    /// [`Input::open`] for a command that reads every byte of the input (`stats`,
    /// `index`): a regular file's pages are all mapped up front (`MAP_POPULATE`), in one
    /// call rather than one page fault per 64 KiB on first touch. Measured on the
    /// 90M-record dump: `index` 251 to 236 ms, `stats` 279 to 268 ms (BENCHMARKS.md,
    /// "Decode speed (issue 9, host side)"). Not for commands that read a few blocks
    /// (`query` would read the whole source from disk).
    pub fn open_whole(path: &Path, limit: u64) -> std::io::Result<Input> {
        Input::open_with(path, true, limit)
    }

    fn open_with(path: &Path, populate: bool, limit: u64) -> std::io::Result<Input> {
        if path.as_os_str() == "-" {
            return read_stream(std::io::stdin().lock(), limit)
                .map_err(|e| std::io::Error::new(e.kind(), format!("standard input: {e}")));
        }
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a directory; give a dump file, a raw memory image or a UART log",
            ));
        }
        if !meta.is_file() {
            // A pipe or device: its length is not known in advance and it cannot be
            // mapped; read it, up to the limit.
            return read_stream(&file, limit);
        }
        Input::map(file, meta.len(), populate)
    }

    /// Maps a regular file of `len` bytes read-only (`populate`: all pages now).
    fn map(file: File, len: u64, populate: bool) -> std::io::Result<Input> {
        if len == 0 {
            // mmap of an empty file fails on some systems; nothing to map anyway.
            return Ok(Input::Owned(Vec::new()));
        }
        // SAFETY: the map is read-only and this process never writes the file. Another
        // process may still modify the file while it is mapped: the bytes we read may
        // then change between two reads (every reader here re-checks what it reads and
        // never trusts a length it has not bounded by the slice, so this can only give
        // wrong output, not undefined behaviour in our code), and a concurrent truncation
        // makes reads of the lost pages raise SIGBUS, which kills the process. Users are
        // told to decode a copy of a dump that is still being written.
        let map = unsafe {
            let mut options = memmap2::MmapOptions::new();
            if populate {
                options.populate();
            }
            options.map(&file)?
        };
        Ok(Input::Mapped(map))
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Input::Mapped(m) => m,
            Input::Owned(v) => v,
        }
    }
}

/// Reads a stream to its end, refusing one longer than `limit` bytes (without holding
/// more than `limit` and one read's worth in memory).
fn read_stream(stream: impl std::io::Read, limit: u64) -> std::io::Result<Input> {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(stream, limit.saturating_add(1)),
        &mut bytes,
    )?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!(
                "at byte {limit}: a pipe or device gave more than {limit} bytes and was still \
                 going (an endless stream such as /dev/zero?); save the dump to a file (files \
                 are mapped, whatever their size) or raise --max-stream"
            ),
        ));
    }
    Ok(Input::Owned(bytes))
}

/// What an input file holds, judged by its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// Ring images, as the encoder lays them out or inside a raw memory image.
    Dump,
    /// A console log carrying dumps in `@TM:` lines.
    UartLog,
}

/// Tells a dump from a UART log: a log does not start with a ring header, is text in its
/// first 4 KiB (printable ASCII, UTF-8, tabs, line ends and ANSI escapes), and somewhere
/// holds a framing line (`@TM:` followed by `B,`, `D,` or `E,`, see
/// [`tracemark_format::uart::starts_framing_line`]) anywhere in a
/// line (console output may precede it, see `docs/uart-framing.md`).
pub fn detect(bytes: &[u8]) -> InputKind {
    if bytes.starts_with(&tracemark_format::ring::RING_MAGIC) {
        return InputKind::Dump;
    }
    let head = &bytes[..bytes.len().min(4096)];
    let noise = head
        .iter()
        .filter(|&&b| {
            !(matches!(b, b'\n' | b'\r' | b'\t' | 0x1b | 0x08)
                || (0x20..0x7f).contains(&b)
                || b >= 0x80)
        })
        .count();
    // Line noise at power-on (a NUL, a stray control byte) is normal on a console: a
    // few such bytes (at most 1 in 64) still make text. A memory image is mostly
    // zeros and other binary.
    let textual = noise <= head.len() / 64;
    if !has_framing_line(bytes) {
        return InputKind::Dump;
    }
    // Binary with framing lines: a log with more noise, or a memory image that happens
    // to hold a console buffer. Only a ring header decides for the image.
    if textual || tracemark_format::ring::find_rings(bytes).next().is_none() {
        InputKind::UartLog
    } else {
        InputKind::Dump
    }
}

fn has_framing_line(bytes: &[u8]) -> bool {
    let mut at = 0;
    while let Some(i) = bytes[at..].iter().position(|&b| b == b'@') {
        let p = at + i;
        if tracemark_format::uart::starts_framing_line(&bytes[p..]) {
            return true;
        }
        at = p + 1;
    }
    false
}

/// An input's dump bytes, with what is known about their integrity: a dump or raw
/// memory image as it is, or the dumps of a UART log (`@TM:` lines) reassembled and
/// laid end to end.
pub struct DumpBytes {
    /// The bytes (mapped, or reassembled from a UART log).
    pub input: Input,
    /// For bytes reassembled from a UART log: the byte ranges covered by verified
    /// chunks (`None`: all bytes are as read).
    pub valid: Option<Vec<Range<usize>>>,
    /// Problems of the UART log (log offsets), to report before the dump's own.
    pub warnings: Vec<Warning>,
}

/// A UART log from which no dump could be reassembled.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{problem} (this is a UART log, and no dump could be reassembled from it)")]
pub struct NoDumpInLog {
    /// The log's first problem (or "no dump found").
    pub problem: Warning,
}

impl DumpBytes {
    /// The dump bytes of `input`, told apart by [`detect`].
    pub fn new(input: Input) -> Result<DumpBytes, NoDumpInLog> {
        match detect(input.bytes()) {
            InputKind::Dump => Ok(DumpBytes {
                input,
                valid: None,
                warnings: Vec::new(),
            }),
            InputKind::UartLog => {
                let log = crate::extract::extract(input.bytes()).concatenated();
                if log.data.is_empty() {
                    let problem = log.warnings.first().cloned().unwrap_or(Warning {
                        offset: 0,
                        message: "no dump found".to_string(),
                        damage: true,
                        category: Category::Uart,
                    });
                    return Err(NoDumpInLog { problem });
                }
                Ok(DumpBytes {
                    input: Input::Owned(log.data),
                    valid: Some(log.valid),
                    warnings: log.warnings,
                })
            }
        }
    }

    /// The rings in the bytes.
    pub fn dump(&self) -> Result<Dump<'_>, DumpError> {
        Dump::parse_partial(self.input.bytes(), self.valid.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_logs_and_dumps() {
        assert_eq!(detect(b"boot\n@TM:B,1,0000002a,\n"), InputKind::UartLog);
        assert_eq!(
            detect(b"[  0.1] uart: @TM:D,0000002a,0,aGVsbG8,25524d85\n"),
            InputKind::UartLog
        );
        assert_eq!(detect(b"boot\n@TM:BEGIN 0\n"), InputKind::Dump);
        assert_eq!(detect(b"TRACEMRK\x01\x00"), InputKind::Dump);
        assert_eq!(detect(&[0u8, 1, 2, 3]), InputKind::Dump);
        assert_eq!(detect(b"just text\n"), InputKind::Dump);
        // Power-on noise before the framing.
        assert_eq!(
            detect(b"\0\x01boot\n@TM:B,1,0000002a,\n"),
            InputKind::UartLog
        );
        let mut noisy = vec![0u8; 300];
        noisy.extend_from_slice(b"\n@TM:B,1,0000002a,\n");
        assert_eq!(detect(&noisy), InputKind::UartLog, "no ring anywhere");
    }
}
