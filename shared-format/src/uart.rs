//! Line framing that carries a byte dump (typically the trace ring memory) over a
//! text console such as a UART that also prints ordinary log lines.
//!
//! A dump is sent as one *begin* line, one *data* line per chunk and one *end*
//! line. Every framing line starts with [`MARKER`] (`@TM:`), consists of
//! printable ASCII only and ends with `\n`, so it survives consoles that
//! interleave other output between lines, translate `\n` to `\r\n` or print a
//! framing line after a partial line of something else:
//!
//! ```text
//! @TM:B,1,<dump id>,<total len>,<chunk len>,<payload crc>,<line crc>
//! @TM:D,<dump id>,<seq>,<base64 chunk>,<chunk crc>
//! @TM:E,1,<dump id>,<total len>,<chunk len>,<chunk count>,<payload crc>,<line crc>
//! ```
//!
//! Dump ids and CRCs are 8 lowercase hex digits; lengths, sequence numbers and
//! counts are decimal. All CRCs are CRC-32/ISO-HDLC (the zlib `crc32`). The
//! begin and end line CRC covers the line's own text from `@` up to and
//! including the comma before it; the chunk CRC covers the dump id (4 bytes,
//! little-endian), the sequence number (8 bytes, little-endian) and the raw
//! chunk bytes; the payload CRC covers the whole payload. Chunks are encoded
//! with the standard base64 alphabet, without `=` padding. The complete,
//! byte-exact definition is in FORMAT.md, section 17 (UART framing).
//!
//! This module holds the target side (the streaming encoders [`write_framed`]
//! and [`write_framed_with`], which only use fixed stack buffers) and the parts
//! of the host side that need no allocation ([`parse_line`] and
//! [`DataLine::decode`]). Reassembling whole dumps from a log is done by the
//! host decoder crate.

#![forbid(unsafe_code)]

use crate::crc32::{crc_of, Crc32};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::{DecodeError, DecodeSliceError, Engine as _};
use core::fmt;

/// The four bytes that start every framing line. Anything in a log line before
/// the last occurrence of the marker is ignored.
pub const MARKER: &[u8; 4] = b"@TM:";

/// The frame format version written in begin and end lines (`1`).
pub const FRAME_VERSION: u64 = 1;

/// The chunk length (raw payload bytes per data line) used when `0` is passed
/// to the encoders. 48 bytes give 64 base64 characters and data lines shorter
/// than 100 characters.
pub const DEFAULT_CHUNK_LEN: usize = 48;

/// The largest chunk length (raw payload bytes per data line) the format
/// allows. Larger requested chunk lengths are reduced to this.
pub const MAX_CHUNK_LEN: usize = 96;

/// The largest length of the base64 field of a data line: the unpadded base64
/// length of [`MAX_CHUNK_LEN`] bytes.
pub const MAX_PAYLOAD_FIELD_LEN: usize = base64_len(MAX_CHUNK_LEN);

/// Decimal digits of `u64::MAX`.
const U64_DIGITS: usize = 20;
/// Decimal digits of `u32::MAX`.
const U32_DIGITS: usize = 10;

/// Longest begin line, without its `\n`: `@TM:B,1,` id `,` total `,` chunk len
/// `,` crc `,` crc.
const MAX_BEGIN_LEN: usize = MARKER.len() + 4 + 9 + (U64_DIGITS + 1) + (U32_DIGITS + 1) + 9 + 8;
/// Longest data line, without its `\n`.
const MAX_DATA_LEN: usize =
    MARKER.len() + 2 + 9 + (U64_DIGITS + 1) + (MAX_PAYLOAD_FIELD_LEN + 1) + 8;
/// Longest end line, without its `\n`.
const MAX_END_LEN: usize =
    MARKER.len() + 4 + 9 + (U64_DIGITS + 1) + (U32_DIGITS + 1) + (U64_DIGITS + 1) + 9 + 8;

/// The size of the line buffer the encoders use: the longest framing line the
/// encoders can produce, including its terminating `\n`.
pub const MAX_LINE_LEN: usize = max3(MAX_BEGIN_LEN, MAX_DATA_LEN, MAX_END_LEN) + 1;

const fn max3(a: usize, b: usize, c: usize) -> usize {
    let ab = if a > b { a } else { b };
    if ab > c {
        ab
    } else {
        c
    }
}

/// Unpadded base64 length of `n` bytes.
const fn base64_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The standard base64 alphabet.
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The four base64 characters of three bytes (the first `n` are used).
fn base64_group(bytes: [u8; 3], n: usize) -> [u8; 4] {
    let v = u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2]);
    let mut out = [0u8; 4];
    for (i, c) in out.iter_mut().enumerate().take(n) {
        // The index is 6 bits: below 64.
        *c = BASE64[((v >> (18 - 6 * i)) & 0x3f) as usize];
    }
    out
}

/// `(n / 10, n % 10)`. On 64-bit targets the compiler's own (a multiply); elsewhere
/// [`div10_limbs`], so that the dump links no 64-bit division routine (866 B on
/// thumbv7m, issue 15).
#[inline]
fn div10(n: u64) -> (u64, u8) {
    #[cfg(target_pointer_width = "64")]
    return (n / 10, (n % 10) as u8);
    #[cfg(not(target_pointer_width = "64"))]
    div10_limbs(n)
}

/// `(n / 10, n % 10)` by schoolbook division in 16-bit limbs: every step divides a
/// value below `10 * 2^16` by the constant 10, a 32-bit multiply.
#[cfg_attr(all(target_pointer_width = "64", not(test)), allow(dead_code))]
fn div10_limbs(n: u64) -> (u64, u8) {
    let (mut q, mut r) = (0u64, 0u32);
    for shift in [48, 32, 16, 0] {
        let cur = r << 16 | ((n >> shift) as u32 & 0xffff);
        q |= u64::from(cur / 10) << shift;
        r = cur % 10;
    }
    (q, r as u8)
}

/// CRC-32/ISO-HDLC (the zlib `crc32`) of a whole payload, as carried in begin
/// and end lines. The CRC of an empty payload is `0`.
pub fn payload_crc(payload: &[u8]) -> u32 {
    crc_of(payload)
}

/// The CRC carried by a data line: CRC-32/ISO-HDLC over `dump_id` as 4
/// little-endian bytes, `seq` as 8 little-endian bytes, then the raw chunk.
pub fn chunk_crc(dump_id: u32, seq: u64, chunk: &[u8]) -> u32 {
    let mut digest = Crc32::new();
    digest.update(&dump_id.to_le_bytes());
    digest.update(&seq.to_le_bytes());
    digest.update(chunk);
    digest.finalize()
}

/// The chunk length the encoders actually use for a requested one: `0` means
/// [`DEFAULT_CHUNK_LEN`], values above [`MAX_CHUNK_LEN`] are reduced to it.
pub const fn effective_chunk_len(requested: usize) -> usize {
    if requested == 0 {
        DEFAULT_CHUNK_LEN
    } else if requested > MAX_CHUNK_LEN {
        MAX_CHUNK_LEN
    } else {
        requested
    }
}

/// Number of data lines of a payload of `total_len` bytes cut in chunks of
/// `chunk_len` bytes (`0` if `chunk_len` is `0`).
pub const fn chunk_count(total_len: u64, chunk_len: u32) -> u64 {
    if chunk_len == 0 {
        0
    } else {
        total_len.div_ceil(chunk_len as u64)
    }
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// Appends ASCII to a fixed line buffer. Every caller writes at most
/// [`MAX_LINE_LEN`] bytes, which the constants above guarantee.
struct LineWriter<'a> {
    buf: &'a mut [u8; MAX_LINE_LEN],
    len: usize,
}

impl<'a> LineWriter<'a> {
    fn new(buf: &'a mut [u8; MAX_LINE_LEN]) -> Self {
        Self { buf, len: 0 }
    }

    /// Appends `bytes`. The callers' lines always fit [`MAX_LINE_LEN`]; a push that
    /// did not would be left out rather than panic (no panic path in target code: the
    /// C library's dump links no panic machinery).
    // One copy of the loop, called from every piece of a line (inlined, it grew each
    // caller by more than the call costs).
    #[inline(never)]
    fn push(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            // Byte by byte through `black_box`, which LLVM cannot turn into a `memcpy`
            // call: the pieces are at most a few dozen bytes, and a firmware's dump then
            // links no `memcpy` of the library's own (744 B on thumbv7m; issue 15).
            for (d, b) in dst.iter_mut().zip(bytes) {
                *d = core::hint::black_box(*b);
            }
            self.len = end;
        }
    }

    fn push_hex32(&mut self, value: u32) {
        let mut digits = [0u8; 8];
        for (i, digit) in digits.iter_mut().enumerate() {
            *digit = HEX[((value >> (28 - 4 * i)) & 0xf) as usize];
        }
        self.push(&digits);
    }

    fn push_dec(&mut self, mut value: u64) {
        let mut digits = [0u8; U64_DIGITS];
        let mut start = U64_DIGITS;
        // `U64_DIGITS` digits hold any `u64`: the loop stops at the value's last digit.
        for (i, digit) in digits.iter_mut().enumerate().rev() {
            let (q, r) = div10(value);
            *digit = b'0' + r;
            value = q;
            start = i;
            if value == 0 {
                break;
            }
        }
        self.push(digits.get(start..).unwrap_or_default());
    }

    /// Appends `chunk` in unpadded standard base64, three bytes to four characters
    /// pushed at a time. Written here rather than with the `base64` crate's
    /// `encode_slice` (the decoder's side still uses the crate): the crate's encoder
    /// keeps bounds checks, hence panic machinery, in every target's dump (54 B on
    /// thumbv7m, and std's panic hook, backtrace printer and DWARF reader, about
    /// 270 KB, in a hosted C program; issue 15). `base64_encoder_matches_the_crate`
    /// checks the text against the crate's for every chunk length.
    fn push_base64(&mut self, chunk: &[u8]) {
        let mut groups = chunk.chunks_exact(3);
        for g in &mut groups {
            if let [a, b, c] = *g {
                self.push(&base64_group([a, b, c], 4));
            }
        }
        match *groups.remainder() {
            [a] => self.push(&base64_group([a, 0, 0], 2)[..2]),
            [a, b] => self.push(&base64_group([a, b, 0], 3)[..3]),
            _ => {}
        }
    }

    /// Appends the line CRC of everything written so far, then `\n`.
    fn finish_with_line_crc(mut self) -> usize {
        let crc = crc_of(self.buf.get(..self.len).unwrap_or_default());
        self.push_hex32(crc);
        self.push(b"\n");
        self.len
    }
}

/// Writes a data line for chunk `seq` of dump `dump_id` into `out` and returns
/// its length, including the terminating `\n`.
///
/// Returns `None` (and leaves `out` unspecified) if `chunk` is empty or longer
/// than [`MAX_CHUNK_LEN`]: the format has no such data lines.
pub fn encode_data_line(
    dump_id: u32,
    seq: u64,
    chunk: &[u8],
    out: &mut [u8; MAX_LINE_LEN],
) -> Option<usize> {
    if chunk.is_empty() || chunk.len() > MAX_CHUNK_LEN {
        return None;
    }
    let mut w = LineWriter::new(out);
    w.push(MARKER);
    w.push(b"D,");
    w.push_hex32(dump_id);
    w.push(b",");
    w.push_dec(seq);
    w.push(b",");
    w.push_base64(chunk);
    w.push(b",");
    w.push_hex32(chunk_crc(dump_id, seq, chunk));
    w.push(b"\n");
    Some(w.len)
}

/// Frames the payload `data` as dump `dump_id`, handing every line (including
/// its `\n`) to `sink`, and stops at the first error the sink returns.
///
/// `chunk_len` is the number of raw bytes per data line; `0` selects
/// [`DEFAULT_CHUNK_LEN`] and values above [`MAX_CHUNK_LEN`] are reduced to it
/// (see [`effective_chunk_len`]). Only fixed-size stack buffers are used.
///
/// This is [`write_framed_with`] reading from a slice.
pub fn write_framed<E>(
    dump_id: u32,
    data: &[u8],
    chunk_len: usize,
    sink: &mut impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    write_framed_with(
        dump_id,
        data.len(),
        chunk_len,
        |offset, buf| {
            if let Some(src) = data.get(offset..offset + buf.len()) {
                buf.copy_from_slice(src);
            }
        },
        sink,
    )
}

/// Frames a payload of `total_len` bytes that is read through `read` as dump
/// `dump_id`, handing every line (including its `\n`) to `sink`, and stops at
/// the first error the sink returns.
///
/// `read(offset, buf)` must fill `buf` with the payload bytes
/// `offset..offset + buf.len()`; it is only called with ranges inside
/// `0..total_len`, with `buf.len()` at most [`MAX_CHUNK_LEN`]. The payload is
/// read twice, in increasing offsets: once to compute the payload CRC of the
/// begin line, then chunk by chunk while the data lines are written. The end
/// line carries the CRC of the bytes actually sent, so if the memory changes
/// between the two passes the two CRCs differ and the host can tell.
///
/// `chunk_len` is interpreted as in [`write_framed`]. Only fixed-size stack
/// buffers are used (about [`MAX_LINE_LEN`] + [`MAX_CHUNK_LEN`] bytes).
pub fn write_framed_with<E>(
    dump_id: u32,
    total_len: usize,
    chunk_len: usize,
    mut read: impl FnMut(usize, &mut [u8]),
    sink: &mut impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let chunk_len = effective_chunk_len(chunk_len);
    let mut chunk = [0u8; MAX_CHUNK_LEN];
    let mut line = [0u8; MAX_LINE_LEN];

    // Pass 1: payload CRC for the begin line.
    let mut digest = Crc32::new();
    let mut offset = 0;
    while offset < total_len {
        let n = MAX_CHUNK_LEN.min(total_len - offset);
        read(offset, &mut chunk[..n]);
        digest.update(&chunk[..n]);
        offset += n;
    }
    let begin = Begin {
        dump_id,
        total_len: total_len as u64,
        chunk_len: chunk_len as u32,
        payload_crc: digest.finalize(),
    };
    let n = begin.encode(&mut line);
    sink(line.get(..n).unwrap_or_default())?;

    // Pass 2: data lines, and the CRC of what was actually sent.
    let mut digest = Crc32::new();
    let mut offset = 0;
    let mut seq: u64 = 0;
    while offset < total_len {
        let n = chunk_len.min(total_len - offset);
        read(offset, &mut chunk[..n]);
        digest.update(&chunk[..n]);
        if let Some(len) = encode_data_line(dump_id, seq, &chunk[..n], &mut line) {
            sink(line.get(..len).unwrap_or_default())?;
        }
        offset += n;
        seq += 1;
    }

    let end = End {
        dump_id,
        total_len: total_len as u64,
        chunk_len: chunk_len as u32,
        chunk_count: seq,
        payload_crc: digest.finalize(),
    };
    let n = end.encode(&mut line);
    sink(line.get(..n).unwrap_or_default())
}

// ---------------------------------------------------------------------------
// Line types
// ---------------------------------------------------------------------------

/// The fields of a begin line (`@TM:B,...`), which opens a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Begin {
    /// Identifies the dump; chosen by the target.
    pub dump_id: u32,
    /// Payload length in bytes.
    pub total_len: u64,
    /// Raw bytes per data line (the last one may be shorter); in
    /// `1..=MAX_CHUNK_LEN` in a valid line.
    pub chunk_len: u32,
    /// CRC-32/ISO-HDLC of the whole payload, computed before the data lines.
    pub payload_crc: u32,
}

impl Begin {
    /// Number of data lines this dump has.
    pub const fn chunk_count(&self) -> u64 {
        chunk_count(self.total_len, self.chunk_len)
    }

    /// Writes this begin line (with its line CRC and `\n`) into `out` and
    /// returns its length. Fields are written as they are, even if
    /// [`parse_line`] would reject them (e.g. a zero chunk length).
    pub fn encode(&self, out: &mut [u8; MAX_LINE_LEN]) -> usize {
        let mut w = LineWriter::new(out);
        w.push(MARKER);
        w.push(b"B,");
        w.push_dec(FRAME_VERSION);
        w.push(b",");
        w.push_hex32(self.dump_id);
        w.push(b",");
        w.push_dec(self.total_len);
        w.push(b",");
        w.push_dec(u64::from(self.chunk_len));
        w.push(b",");
        w.push_hex32(self.payload_crc);
        w.push(b",");
        w.finish_with_line_crc()
    }
}

/// The fields of an end line (`@TM:E,...`), which closes a dump. It repeats the
/// geometry of the begin line so that either one is enough to reassemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct End {
    /// Identifies the dump.
    pub dump_id: u32,
    /// Payload length in bytes.
    pub total_len: u64,
    /// Raw bytes per data line; in `1..=MAX_CHUNK_LEN` in a valid line.
    pub chunk_len: u32,
    /// Number of data lines sent; equals `ceil(total_len / chunk_len)` in a
    /// valid line.
    pub chunk_count: u64,
    /// CRC-32/ISO-HDLC of the payload bytes actually sent in the data lines.
    pub payload_crc: u32,
}

impl End {
    /// Writes this end line (with its line CRC and `\n`) into `out` and returns
    /// its length. Fields are written as they are, even if [`parse_line`] would
    /// reject them.
    pub fn encode(&self, out: &mut [u8; MAX_LINE_LEN]) -> usize {
        let mut w = LineWriter::new(out);
        w.push(MARKER);
        w.push(b"E,");
        w.push_dec(FRAME_VERSION);
        w.push(b",");
        w.push_hex32(self.dump_id);
        w.push(b",");
        w.push_dec(self.total_len);
        w.push(b",");
        w.push_dec(u64::from(self.chunk_len));
        w.push(b",");
        w.push_dec(self.chunk_count);
        w.push(b",");
        w.push_hex32(self.payload_crc);
        w.push(b",");
        w.finish_with_line_crc()
    }
}

/// A syntactically valid data line (`@TM:D,...`). Its base64 text and chunk
/// CRC are checked by [`DataLine::decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataLine<'a> {
    /// The dump this chunk belongs to (not yet verified by the chunk CRC).
    pub dump_id: u32,
    /// Chunk sequence number, from 0 (not yet verified by the chunk CRC).
    pub seq: u64,
    /// The base64 text: 1 to [`MAX_PAYLOAD_FIELD_LEN`] bytes, none of them a
    /// comma; not yet validated as base64.
    pub payload: &'a [u8],
    /// The chunk CRC stated on the line (see [`chunk_crc`]).
    pub crc: u32,
}

impl DataLine<'_> {
    /// Decodes the chunk into the start of `out`, verifies the chunk CRC and
    /// returns the chunk length. On error the content of `out` is unspecified.
    pub fn decode(&self, out: &mut [u8]) -> Result<usize, ChunkError> {
        let mut raw = [0u8; MAX_CHUNK_LEN];
        let len = decode_base64(self.payload, &mut raw)?;
        let chunk = &raw[..len];
        let computed = chunk_crc(self.dump_id, self.seq, chunk);
        if computed != self.crc {
            return Err(ChunkError::CrcMismatch {
                stated: self.crc,
                computed,
            });
        }
        match out.get_mut(..len) {
            Some(dst) => {
                dst.copy_from_slice(chunk);
                Ok(len)
            }
            None => Err(ChunkError::BufferTooSmall { needed: len }),
        }
    }
}

fn decode_base64(text: &[u8], raw: &mut [u8; MAX_CHUNK_LEN]) -> Result<usize, ChunkError> {
    if text.len() > MAX_PAYLOAD_FIELD_LEN {
        return Err(ChunkError::InvalidBase64Length { len: text.len() });
    }
    match STANDARD_NO_PAD.decode_slice(text, raw) {
        Ok(len) => Ok(len),
        Err(DecodeSliceError::DecodeError(e)) => Err(match e {
            DecodeError::InvalidByte(offset, byte) => ChunkError::InvalidSymbol { offset, byte },
            DecodeError::InvalidLength(_) => ChunkError::InvalidBase64Length { len: text.len() },
            DecodeError::InvalidLastSymbol(offset, _) => ChunkError::NonCanonical { offset },
            DecodeError::InvalidPadding => {
                let offset = text.iter().position(|&b| b == b'=').unwrap_or(0);
                ChunkError::InvalidSymbol { offset, byte: b'=' }
            }
        }),
        // Cannot happen: at most MAX_PAYLOAD_FIELD_LEN symbols fit MAX_CHUNK_LEN.
        Err(DecodeSliceError::OutputSliceTooSmall) => {
            Err(ChunkError::InvalidBase64Length { len: text.len() })
        }
    }
}

/// One recognised framing line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Line<'a> {
    /// A begin line (line CRC verified).
    Begin(Begin),
    /// A data line (chunk not yet decoded nor verified).
    Data(DataLine<'a>),
    /// An end line (line CRC verified).
    End(End),
}

/// Whether `bytes` starts with a framing line's head: [`MARKER`], a kind letter
/// ([`LineKind::tag`]) and the comma after it.
pub fn starts_framing_line(bytes: &[u8]) -> bool {
    bytes.starts_with(MARKER)
        && bytes
            .get(MARKER.len())
            .is_some_and(|&t| LineKind::from_tag(t).is_some())
        && bytes.get(MARKER.len() + 1) == Some(&b',')
}

/// The three kinds of framing line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineKind {
    /// `@TM:B,...`
    Begin,
    /// `@TM:D,...`
    Data,
    /// `@TM:E,...`
    End,
}

impl LineKind {
    /// The kind letter after the marker: `B`, `D` or `E`.
    pub const fn tag(self) -> u8 {
        match self {
            LineKind::Begin => b'B',
            LineKind::Data => b'D',
            LineKind::End => b'E',
        }
    }

    /// The kind whose letter is `tag`.
    pub const fn from_tag(tag: u8) -> Option<LineKind> {
        match tag {
            b'B' => Some(LineKind::Begin),
            b'D' => Some(LineKind::Data),
            b'E' => Some(LineKind::End),
            _ => None,
        }
    }

    /// Number of comma-separated fields after the marker, counting the kind
    /// letter itself.
    pub const fn field_count(self) -> usize {
        match self {
            LineKind::Begin => 7,
            LineKind::Data => 5,
            LineKind::End => 8,
        }
    }
}

impl fmt::Display for LineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LineKind::Begin => "begin",
            LineKind::Data => "data",
            LineKind::End => "end",
        })
    }
}

/// A field of a framing line, as named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// Frame format version (begin and end lines).
    Version,
    /// Dump id.
    DumpId,
    /// Total payload length.
    TotalLen,
    /// Chunk length.
    ChunkLen,
    /// Chunk sequence number (data lines).
    Seq,
    /// Base64 chunk text (data lines).
    Payload,
    /// Chunk CRC (data lines).
    ChunkCrc,
    /// Chunk count (end lines).
    ChunkCount,
    /// Whole-payload CRC (begin and end lines).
    PayloadCrc,
    /// Line CRC (begin and end lines).
    LineCrc,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Version => "version",
            Field::DumpId => "dump id",
            Field::TotalLen => "total length",
            Field::ChunkLen => "chunk length",
            Field::Seq => "sequence number",
            Field::Payload => "base64 payload",
            Field::ChunkCrc => "chunk crc",
            Field::ChunkCount => "chunk count",
            Field::PayloadCrc => "payload crc",
            Field::LineCrc => "line crc",
        })
    }
}

/// Why a line that contains [`MARKER`] is not a valid framing line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LineError {
    /// The first field after the marker is not `B`, `D` or `E`.
    UnknownKind,
    /// The line does not have the number of comma-separated fields its kind
    /// requires ([`LineKind::field_count`]).
    FieldCount {
        /// The kind of line.
        kind: LineKind,
        /// How many fields were found.
        found: usize,
    },
    /// A field does not have its required syntax (hex digits, decimal
    /// digits, length).
    BadField(Field),
    /// The version of a begin or end line is not [`FRAME_VERSION`].
    UnsupportedVersion(u64),
    /// The chunk length is not in `1..=MAX_CHUNK_LEN`.
    ChunkLenOutOfRange(u64),
    /// An end line's chunk count is not `ceil(total_len / chunk_len)`.
    ChunkCountMismatch {
        /// The count on the line.
        stated: u64,
        /// The count implied by the line's lengths.
        expected: u64,
    },
    /// The line CRC of a begin or end line does not match its text.
    LineCrcMismatch {
        /// The CRC on the line.
        stated: u32,
        /// The CRC of the line's text.
        computed: u32,
    },
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::UnknownKind => f.write_str("unknown line kind after the marker"),
            LineError::FieldCount { kind, found } => write!(
                f,
                "{kind} line has {found} fields instead of {}",
                kind.field_count()
            ),
            LineError::BadField(field) => write!(f, "malformed {field} field"),
            LineError::UnsupportedVersion(v) => write!(f, "unsupported frame version {v}"),
            LineError::ChunkLenOutOfRange(len) => {
                write!(f, "chunk length {len} not in 1..={MAX_CHUNK_LEN}")
            }
            LineError::ChunkCountMismatch { stated, expected } => write!(
                f,
                "chunk count {stated} does not match the lengths (expected {expected})"
            ),
            LineError::LineCrcMismatch { stated, computed } => write!(
                f,
                "line crc mismatch (line says {stated:08x}, text gives {computed:08x})"
            ),
        }
    }
}

impl core::error::Error for LineError {}

/// Why the chunk of a data line is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChunkError {
    /// A byte of the payload field is not in the standard base64 alphabet
    /// (`=` padding is not allowed either).
    InvalidSymbol {
        /// Offset of the byte in the payload field.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// The payload field length is not a valid unpadded base64 length (it is
    /// 1 modulo 4, or longer than [`MAX_PAYLOAD_FIELD_LEN`]).
    InvalidBase64Length {
        /// The length of the payload field.
        len: usize,
    },
    /// The last symbol carries non-zero unused bits: not the canonical
    /// encoding.
    NonCanonical {
        /// Offset of the symbol in the payload field.
        offset: usize,
    },
    /// The chunk CRC does not match the decoded bytes, dump id and sequence
    /// number.
    CrcMismatch {
        /// The CRC on the line.
        stated: u32,
        /// The CRC computed from the decoded chunk.
        computed: u32,
    },
    /// The chunk is valid but its length is not the one the dump's geometry
    /// requires for its sequence number (reported by reassemblers).
    LengthMismatch {
        /// The length implied by the dump's begin or end line.
        expected: usize,
        /// The decoded length.
        found: usize,
    },
    /// The output buffer given to [`DataLine::decode`] is too small.
    BufferTooSmall {
        /// The chunk length.
        needed: usize,
    },
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkError::InvalidSymbol { offset, byte } => write!(
                f,
                "byte {byte:#04x} at offset {offset} of the payload is not base64"
            ),
            ChunkError::InvalidBase64Length { len } => {
                write!(f, "payload length {len} is not a valid base64 length")
            }
            ChunkError::NonCanonical { offset } => write!(
                f,
                "non-canonical base64: unused bits set in the symbol at offset {offset}"
            ),
            ChunkError::CrcMismatch { stated, computed } => write!(
                f,
                "chunk crc mismatch (line says {stated:08x}, data gives {computed:08x})"
            ),
            ChunkError::LengthMismatch { expected, found } => {
                write!(f, "chunk is {found} bytes, expected {expected}")
            }
            ChunkError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small for a {needed}-byte chunk")
            }
        }
    }
}

impl core::error::Error for ChunkError {}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Offset of the last [`MARKER`] in `line`, if any.
pub fn find_last_marker(line: &[u8]) -> Option<usize> {
    line.windows(MARKER.len()).rposition(|w| w == MARKER)
}

/// Removes trailing `\r`, `\n`, spaces and tabs.
fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., last] = s {
        if matches!(last, b'\r' | b'\n' | b' ' | b'\t') {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Exactly 8 lowercase hex digits.
fn parse_hex32(field: &[u8], which: Field) -> Result<u32, LineError> {
    if field.len() != 8 {
        return Err(LineError::BadField(which));
    }
    let mut value: u32 = 0;
    for &b in field {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return Err(LineError::BadField(which)),
        };
        value = (value << 4) | u32::from(digit);
    }
    Ok(value)
}

/// A decimal number without sign or leading zeros that fits in a `u64`.
fn parse_dec(field: &[u8], which: Field) -> Result<u64, LineError> {
    let bad = LineError::BadField(which);
    match field {
        [] => return Err(bad),
        [b'0', _, ..] => return Err(bad),
        _ => {}
    }
    let mut value: u64 = 0;
    for &b in field {
        if !b.is_ascii_digit() {
            return Err(bad);
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(bad)?;
    }
    Ok(value)
}

fn parse_version(field: &[u8]) -> Result<(), LineError> {
    match parse_dec(field, Field::Version)? {
        FRAME_VERSION => Ok(()),
        other => Err(LineError::UnsupportedVersion(other)),
    }
}

fn parse_chunk_len(field: &[u8]) -> Result<u32, LineError> {
    let len = parse_dec(field, Field::ChunkLen)?;
    if len == 0 || len > MAX_CHUNK_LEN as u64 {
        return Err(LineError::ChunkLenOutOfRange(len));
    }
    Ok(len as u32)
}

/// Checks the line CRC: `text` runs from the marker to the end of the line
/// (trimmed), and its last field is the CRC of everything before it.
fn check_line_crc(text: &[u8], crc_field: &[u8]) -> Result<(), LineError> {
    let stated = parse_hex32(crc_field, Field::LineCrc)?;
    let covered = &text[..text.len() - crc_field.len()];
    let computed = crc_of(covered);
    if computed != stated {
        return Err(LineError::LineCrcMismatch { stated, computed });
    }
    Ok(())
}

/// The most fields any line kind has.
const MAX_FIELDS: usize = 8;

/// Parses one log line.
///
/// `line` may contain its terminator (`\n`, `\r\n`, ...): trailing `\r`,
/// `\n`, spaces and tabs are ignored. The line is looked at from the *last*
/// [`MARKER`] on: whatever precedes it (another program's partial output, or
/// a framing line that was cut short) is ignored.
///
/// Returns `Ok(None)` if the line has no marker, `Ok(Some(_))` for a valid
/// begin, data or end line, and an error otherwise. Begin and end lines are
/// fully verified (syntax, version, line CRC, chunk length range and, for end
/// lines, the chunk count); data lines are checked for syntax only, use
/// [`DataLine::decode`] to decode and verify the chunk.
///
/// Never panics.
pub fn parse_line(line: &[u8]) -> Result<Option<Line<'_>>, LineError> {
    let Some(start) = find_last_marker(line) else {
        return Ok(None);
    };
    let text = trim_end(&line[start..]);
    let body = &text[MARKER.len()..];

    let mut fields: [&[u8]; MAX_FIELDS] = [&[]; MAX_FIELDS];
    let mut found = 0;
    for field in body.split(|&b| b == b',') {
        if let Some(slot) = fields.get_mut(found) {
            *slot = field;
        }
        found += 1;
    }
    let kind = match fields[0] {
        [tag] => LineKind::from_tag(*tag).ok_or(LineError::UnknownKind)?,
        _ => return Err(LineError::UnknownKind),
    };
    // Check the version before the field count, so that a line of a future
    // version with other fields is reported as such.
    if kind != LineKind::Data && found >= 2 {
        parse_version(fields[1])?;
    }
    if found != kind.field_count() {
        return Err(LineError::FieldCount { kind, found });
    }

    match kind {
        LineKind::Begin => {
            let dump_id = parse_hex32(fields[2], Field::DumpId)?;
            let total_len = parse_dec(fields[3], Field::TotalLen)?;
            parse_dec(fields[4], Field::ChunkLen)?;
            let payload_crc = parse_hex32(fields[5], Field::PayloadCrc)?;
            check_line_crc(text, fields[6])?;
            let chunk_len = parse_chunk_len(fields[4])?;
            Ok(Some(Line::Begin(Begin {
                dump_id,
                total_len,
                chunk_len,
                payload_crc,
            })))
        }
        LineKind::Data => {
            let dump_id = parse_hex32(fields[1], Field::DumpId)?;
            let seq = parse_dec(fields[2], Field::Seq)?;
            let payload = fields[3];
            if payload.is_empty() || payload.len() > MAX_PAYLOAD_FIELD_LEN {
                return Err(LineError::BadField(Field::Payload));
            }
            let crc = parse_hex32(fields[4], Field::ChunkCrc)?;
            Ok(Some(Line::Data(DataLine {
                dump_id,
                seq,
                payload,
                crc,
            })))
        }
        LineKind::End => {
            let dump_id = parse_hex32(fields[2], Field::DumpId)?;
            let total_len = parse_dec(fields[3], Field::TotalLen)?;
            parse_dec(fields[4], Field::ChunkLen)?;
            let stated_count = parse_dec(fields[5], Field::ChunkCount)?;
            let payload_crc = parse_hex32(fields[6], Field::PayloadCrc)?;
            check_line_crc(text, fields[7])?;
            let chunk_len = parse_chunk_len(fields[4])?;
            let expected = chunk_count(total_len, chunk_len);
            if stated_count != expected {
                return Err(LineError::ChunkCountMismatch {
                    stated: stated_count,
                    expected,
                });
            }
            Ok(Some(Line::End(End {
                dump_id,
                total_len,
                chunk_len,
                chunk_count: stated_count,
                payload_crc,
            })))
        }
    }
}

/// The dump id and sequence number of something that starts like a data line
/// (`@TM:D,<id>,<seq>,`), from the last marker of `line` on, whatever follows.
///
/// These values are *not* verified by any CRC; a reassembler uses them only
/// to attribute a damaged line to a chunk. Never panics.
pub fn peek_data_header(line: &[u8]) -> Option<(u32, u64)> {
    let start = find_last_marker(line)?;
    let mut fields = line[start + MARKER.len()..].splitn(4, |&b| b == b',');
    if fields.next()? != b"D" {
        return None;
    }
    let dump_id = parse_hex32(fields.next()?, Field::DumpId).ok()?;
    let seq = parse_dec(fields.next()?, Field::Seq).ok()?;
    // The sequence number must be followed by a comma.
    fields.next()?;
    Some((dump_id, seq))
}

#[cfg(test)]
mod tests {
    extern crate std;

    /// The dump's own base64 encoder writes what the `base64` crate writes (unpadded,
    /// standard alphabet), for every chunk length and every byte value.
    #[test]
    fn base64_encoder_matches_the_crate() {
        use base64::Engine as _;
        let data: std::vec::Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for start in [0, 1, 2, 100, 200, 255, 400] {
            for len in 0..=super::MAX_CHUNK_LEN.min(data.len() - start) {
                let chunk = &data[start..start + len];
                let mut buf = [0u8; super::MAX_LINE_LEN];
                let mut w = super::LineWriter::new(&mut buf);
                w.push_base64(chunk);
                let got = w.len;
                let mut want = [0u8; super::MAX_LINE_LEN];
                let n = base64::engine::general_purpose::STANDARD_NO_PAD
                    .encode_slice(chunk, &mut want)
                    .unwrap();
                assert_eq!(&buf[..got], &want[..n], "{len} bytes from {start}");
            }
        }
    }

    /// The 32-bit targets' division by 10 gives the 64-bit one's quotient and remainder.
    #[test]
    fn div10_limbs_is_the_64_bit_division() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let edges = [0, 9, 10, 11, 65535, 65536, 655359, 655360, u32::MAX as u64];
        let edges = edges
            .into_iter()
            .chain([u64::MAX, u64::MAX - 5, 1 << 63, (1 << 48) - 1]);
        let random = (0..100_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x >> (x % 64)
        });
        for n in edges.chain(random) {
            assert_eq!(super::div10_limbs(n), (n / 10, (n % 10) as u8), "{n}");
        }
    }

    /// The bare-metal targets' table-free CRC (`crc32_bitwise`) and the `crc` crate's
    /// give the same values (and the catalogue's check value), chunk CRCs included.
    #[test]
    fn crc_impls_agree() {
        use super::{chunk_crc, payload_crc};
        use crate::crc32::crc32_bitwise;
        use crc::CRC_32_ISO_HDLC;
        let bitwise = |d: &[u8]| !crc32_bitwise(!0, d);
        let table = crc::Crc::<u32>::new(&CRC_32_ISO_HDLC);
        assert_eq!(bitwise(b"123456789"), 0xcbf4_3926);
        let mut x = 0x2545_f491_u32;
        let data: std::vec::Vec<u8> = (0..4099)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for n in [0, 1, 2, 3, 7, 8, 9, 96, 1000, 4099] {
            let d = &data[..n];
            assert_eq!(bitwise(d), table.checksum(d), "{n} bytes");
            assert_eq!(payload_crc(d), table.checksum(d), "{n} bytes");
            // In pieces, as a dump feeds it.
            let head = [
                &0xdead_beef_u32.to_le_bytes()[..],
                &(n as u64).to_le_bytes(),
            ]
            .concat();
            let pieces = !crc32_bitwise(crc32_bitwise(!0, &head), d);
            assert_eq!(pieces, chunk_crc(0xdead_beef, n as u64, d), "{n} bytes");
        }
    }

    #[test]
    fn framing_line_heads_are_the_line_kinds() {
        for kind in [LineKind::Begin, LineKind::Data, LineKind::End] {
            assert_eq!(LineKind::from_tag(kind.tag()), Some(kind));
            let head = [&MARKER[..], &[kind.tag(), b',']].concat();
            assert!(starts_framing_line(&head));
            assert!(!starts_framing_line(&head[..head.len() - 1]));
        }
        assert!(!starts_framing_line(b"@TM:X,1"));
        assert!(!starts_framing_line(b"@TM:BEGIN"));
    }

    use super::*;
    use proptest::prelude::*;
    use std::string::String;
    use std::vec;
    use std::vec::Vec;

    fn collect(dump_id: u32, data: &[u8], chunk_len: usize) -> Vec<String> {
        let mut lines = Vec::new();
        write_framed(dump_id, data, chunk_len, &mut |line: &[u8]| {
            lines.push(String::from_utf8(line.to_vec()).unwrap());
            Ok::<(), core::convert::Infallible>(())
        })
        .unwrap();
        lines
    }

    #[test]
    fn crc_is_zlib_crc32() {
        assert_eq!(payload_crc(b"123456789"), 0xcbf4_3926);
        assert_eq!(payload_crc(b""), 0);
    }

    #[test]
    fn known_answer_lines() {
        // Also the worked example of FORMAT.md section 17; values checked
        // against Python's zlib.crc32 and base64.
        let lines = collect(0x2a, b"hello, world", 5);
        assert_eq!(
            lines,
            [
                "@TM:B,1,0000002a,12,5,ffab723a,7295a8b3\n",
                "@TM:D,0000002a,0,aGVsbG8,25524d85\n",
                "@TM:D,0000002a,1,LCB3b3I,a125b10d\n",
                "@TM:D,0000002a,2,bGQ,498a8a53\n",
                "@TM:E,1,0000002a,12,5,3,ffab723a,fdf73af4\n",
            ]
        );
    }

    #[test]
    fn empty_payload_has_no_data_lines() {
        let lines = collect(7, b"", 0);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("@TM:B,1,00000007,0,48,00000000,"));
        assert!(lines[1].starts_with("@TM:E,1,00000007,0,48,0,00000000,"));
        for line in &lines {
            assert!(parse_line(line.as_bytes()).unwrap().is_some());
        }
    }

    #[test]
    fn chunk_len_is_clamped() {
        assert_eq!(effective_chunk_len(0), DEFAULT_CHUNK_LEN);
        assert_eq!(effective_chunk_len(1), 1);
        assert_eq!(effective_chunk_len(MAX_CHUNK_LEN), MAX_CHUNK_LEN);
        assert_eq!(effective_chunk_len(MAX_CHUNK_LEN + 1), MAX_CHUNK_LEN);
        let data = [0x55u8; 1000];
        let lines = collect(1, &data, 10_000);
        // begin + ceil(1000 / 96) data lines + end
        assert_eq!(lines.len(), 2 + 11);
        match parse_line(lines[0].as_bytes()) {
            Ok(Some(Line::Begin(b))) => assert_eq!(b.chunk_len, MAX_CHUNK_LEN as u32),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn lines_are_printable_and_short() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for chunk_len in [1, 7, DEFAULT_CHUNK_LEN, MAX_CHUNK_LEN] {
            for line in collect(0xdead_beef, &data, chunk_len) {
                let bytes = line.as_bytes();
                assert!(bytes.len() <= MAX_LINE_LEN);
                assert_eq!(bytes.last(), Some(&b'\n'));
                assert!(bytes[..bytes.len() - 1]
                    .iter()
                    .all(|b| (0x21..=0x7e).contains(b)));
            }
        }
        // With the default chunk length, lines stay under 100 characters.
        for line in collect(u32::MAX, &data, 0) {
            assert!(line.len() < 100, "{line}");
        }
    }

    #[test]
    fn longest_lines_fit_the_buffer() {
        let mut out = [0u8; MAX_LINE_LEN];
        let n = encode_data_line(u32::MAX, u64::MAX, &[0xff; MAX_CHUNK_LEN], &mut out).unwrap();
        assert_eq!(n, MAX_DATA_LEN + 1);
        let begin = Begin {
            dump_id: u32::MAX,
            total_len: u64::MAX,
            chunk_len: u32::MAX,
            payload_crc: u32::MAX,
        };
        assert_eq!(begin.encode(&mut out), MAX_BEGIN_LEN + 1);
        let end = End {
            dump_id: u32::MAX,
            total_len: u64::MAX,
            chunk_len: u32::MAX,
            chunk_count: u64::MAX,
            payload_crc: u32::MAX,
        };
        assert_eq!(end.encode(&mut out), MAX_END_LEN + 1);
        assert_eq!(MAX_LINE_LEN, MAX_DATA_LEN + 1);
        assert_eq!(MAX_LINE_LEN, 174);
        assert_eq!(encode_data_line(1, 0, &[], &mut out), None);
        assert_eq!(
            encode_data_line(1, 0, &[0; MAX_CHUNK_LEN + 1], &mut out),
            None
        );
    }

    #[test]
    fn write_framed_with_reads_in_order_within_bounds() {
        let data: Vec<u8> = (0..200u32).map(|i| (i * 7) as u8).collect();
        let mut reads = Vec::new();
        let mut lines = Vec::new();
        write_framed_with(
            9,
            data.len(),
            64,
            |offset, buf: &mut [u8]| {
                reads.push((offset, buf.len()));
                buf.copy_from_slice(&data[offset..offset + buf.len()]);
            },
            &mut |line: &[u8]| {
                lines.push(line.to_vec());
                Ok::<(), ()>(())
            },
        )
        .unwrap();
        assert_eq!(
            reads,
            [
                (0, 96),
                (96, 96),
                (192, 8),
                (0, 64),
                (64, 64),
                (128, 64),
                (192, 8)
            ]
        );
        let mut expected = Vec::new();
        write_framed(9, &data, 64, &mut |line: &[u8]| {
            expected.push(line.to_vec());
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(lines, expected);
    }

    #[test]
    fn memory_changing_between_passes_shows_in_the_crcs() {
        let mut passes = 0;
        let mut lines = Vec::new();
        write_framed_with(
            3,
            10,
            0,
            |offset, buf: &mut [u8]| {
                if offset == 0 {
                    passes += 1;
                }
                buf.fill(passes);
            },
            &mut |line: &[u8]| {
                lines.push(line.to_vec());
                Ok::<(), ()>(())
            },
        )
        .unwrap();
        let Ok(Some(Line::Begin(begin))) = parse_line(&lines[0]) else {
            panic!()
        };
        let Ok(Some(Line::End(end))) = parse_line(&lines[2]) else {
            panic!()
        };
        assert_eq!(begin.payload_crc, payload_crc(&[1; 10]));
        assert_eq!(end.payload_crc, payload_crc(&[2; 10]));
    }

    #[test]
    fn sink_error_stops_encoding() {
        let mut calls = 0;
        let result = write_framed(1, &[0u8; 1000], 0, &mut |_line: &[u8]| {
            calls += 1;
            if calls == 3 {
                Err("uart gone")
            } else {
                Ok(())
            }
        });
        assert_eq!(result, Err("uart gone"));
        assert_eq!(calls, 3);
    }

    #[test]
    fn parse_round_trip() {
        let data: Vec<u8> = (0..100u8).collect();
        let lines = collect(0x0102_0304, &data, 40);
        assert_eq!(lines.len(), 5);
        assert_eq!(
            parse_line(lines[0].as_bytes()),
            Ok(Some(Line::Begin(Begin {
                dump_id: 0x0102_0304,
                total_len: 100,
                chunk_len: 40,
                payload_crc: payload_crc(&data),
            })))
        );
        for (seq, line) in lines[1..4].iter().enumerate() {
            let Ok(Some(Line::Data(d))) = parse_line(line.as_bytes()) else {
                panic!("{line}")
            };
            assert_eq!((d.dump_id, d.seq), (0x0102_0304, seq as u64));
            let mut out = [0u8; MAX_CHUNK_LEN];
            let n = d.decode(&mut out).unwrap();
            let start = seq * 40;
            let end = (start + 40).min(100);
            assert_eq!(&out[..n], &data[start..end]);
            assert_eq!(
                d.decode(&mut [0u8; 3]),
                Err(ChunkError::BufferTooSmall {
                    needed: end - start
                })
            );
            assert_eq!(
                peek_data_header(line.as_bytes()),
                Some((0x0102_0304, seq as u64))
            );
        }
        assert_eq!(
            parse_line(lines[4].as_bytes()),
            Ok(Some(Line::End(End {
                dump_id: 0x0102_0304,
                total_len: 100,
                chunk_len: 40,
                chunk_count: 3,
                payload_crc: payload_crc(&data),
            })))
        );
    }

    #[test]
    fn parse_tolerates_terminators_and_leading_garbage() {
        let line = collect(5, b"abc", 0)[1].clone();
        let bare = line.trim_end();
        let expected = parse_line(line.as_bytes()).unwrap().unwrap();
        for variant in [
            String::from(bare),
            std::format!("{bare}\r\n"),
            std::format!("{bare}\r\r\n"),
            std::format!("{bare} \t\r"),
            std::format!("[  12.5] kernel: xyz{bare}\n"),
            std::format!("@TM:D,00000005,0,YW{bare}\n"),
            std::format!("@TM:@TM:{bare}"),
        ] {
            assert_eq!(
                parse_line(variant.as_bytes()),
                Ok(Some(expected)),
                "{variant:?}"
            );
        }
    }

    #[test]
    fn lines_without_marker_are_ignored() {
        for line in [
            &b""[..],
            b"\n",
            b"hello world\r\n",
            b"@TM",
            b"TM:D,00000001,0,AA,00000000",
            b"@tm:D,00000001,0,AA,00000000",
            b"\xff\xfe@T M:",
        ] {
            assert_eq!(parse_line(line), Ok(None));
        }
    }

    fn begin_line(begin: &Begin) -> Vec<u8> {
        let mut out = [0u8; MAX_LINE_LEN];
        let n = begin.encode(&mut out);
        out[..n].to_vec()
    }

    fn end_line(end: &End) -> Vec<u8> {
        let mut out = [0u8; MAX_LINE_LEN];
        let n = end.encode(&mut out);
        out[..n].to_vec()
    }

    #[test]
    fn line_errors() {
        use LineError as L;
        let cases: &[(&[u8], LineError)] = &[
            (b"@TM:", L::UnknownKind),
            (b"@TM:X,1", L::UnknownKind),
            (b"@TM:BB,1", L::UnknownKind),
            (b"@TM: B,1", L::UnknownKind),
            (
                b"@TM:B",
                L::FieldCount {
                    kind: LineKind::Begin,
                    found: 1,
                },
            ),
            (
                b"@TM:B,2,00000001,0,48,00000000,00000000",
                L::UnsupportedVersion(2),
            ),
            (b"@TM:E,0", L::UnsupportedVersion(0)),
            (b"@TM:B,01,x", L::BadField(Field::Version)),
            (
                b"@TM:B,1,00000001,0,48,00000000",
                L::FieldCount {
                    kind: LineKind::Begin,
                    found: 6,
                },
            ),
            (
                b"@TM:D,00000001,0,AA,00000000,",
                L::FieldCount {
                    kind: LineKind::Data,
                    found: 6,
                },
            ),
            (b"@TM:D,0000001,0,AA,00000000", L::BadField(Field::DumpId)),
            (b"@TM:D,0000000A,0,AA,00000000", L::BadField(Field::DumpId)),
            (b"@TM:D,00000001,00,AA,00000000", L::BadField(Field::Seq)),
            (b"@TM:D,00000001,-1,AA,00000000", L::BadField(Field::Seq)),
            (
                b"@TM:D,00000001,18446744073709551616,AA,00000000",
                L::BadField(Field::Seq),
            ),
            (b"@TM:D,00000001,0,,00000000", L::BadField(Field::Payload)),
            (
                b"@TM:D,00000001,0,AA,0000000g",
                L::BadField(Field::ChunkCrc),
            ),
            (
                b"@TM:D,00000001,0,AA,00000000x",
                L::BadField(Field::ChunkCrc),
            ),
            (
                b"@TM:B,1,00000001,0,48,00000000,00000000",
                L::LineCrcMismatch {
                    stated: 0,
                    computed: payload_crc(b"@TM:B,1,00000001,0,48,00000000,"),
                },
            ),
        ];
        for (line, error) in cases {
            assert_eq!(
                parse_line(line),
                Err(*error),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        let long_payload = std::format!(
            "@TM:D,00000001,0,{},00000000",
            "A".repeat(MAX_PAYLOAD_FIELD_LEN + 1)
        );
        assert_eq!(
            parse_line(long_payload.as_bytes()),
            Err(L::BadField(Field::Payload))
        );
        // A longest valid payload field is accepted syntactically.
        let ok_payload = std::format!(
            "@TM:D,00000001,0,{},00000000",
            "A".repeat(MAX_PAYLOAD_FIELD_LEN)
        );
        assert!(matches!(
            parse_line(ok_payload.as_bytes()),
            Ok(Some(Line::Data(_)))
        ));
    }

    #[test]
    fn semantic_errors_behind_valid_line_crcs() {
        let mut begin = Begin {
            dump_id: 1,
            total_len: 10,
            chunk_len: 0,
            payload_crc: 0,
        };
        assert_eq!(
            parse_line(&begin_line(&begin)),
            Err(LineError::ChunkLenOutOfRange(0))
        );
        begin.chunk_len = MAX_CHUNK_LEN as u32 + 1;
        assert_eq!(
            parse_line(&begin_line(&begin)),
            Err(LineError::ChunkLenOutOfRange(MAX_CHUNK_LEN as u64 + 1))
        );
        begin.chunk_len = 1;
        begin.total_len = u64::MAX;
        assert_eq!(
            parse_line(&begin_line(&begin)),
            Ok(Some(Line::Begin(begin)))
        );
        let end = End {
            dump_id: 1,
            total_len: 100,
            chunk_len: 48,
            chunk_count: 2,
            payload_crc: 0,
        };
        assert_eq!(
            parse_line(&end_line(&end)),
            Err(LineError::ChunkCountMismatch {
                stated: 2,
                expected: 3
            })
        );
        let end = End {
            chunk_count: 3,
            ..end
        };
        assert_eq!(parse_line(&end_line(&end)), Ok(Some(Line::End(end))));
    }

    #[test]
    fn any_change_to_a_begin_line_is_detected() {
        let line = begin_line(&Begin {
            dump_id: 0xabcd,
            total_len: 4096,
            chunk_len: 48,
            payload_crc: 0x1234_5678,
        });
        let body_len = line.len() - 1;
        for i in MARKER.len() + 2..body_len {
            for replacement in [b'0', b'7', b'f', b',', b'x'] {
                if line[i] == replacement {
                    continue;
                }
                let mut damaged = line.clone();
                damaged[i] = replacement;
                assert!(parse_line(&damaged).is_err(), "{i} {replacement}");
            }
        }
    }

    #[test]
    fn chunk_errors() {
        let line = collect(1, b"hello", 0)[1].clone(); // payload "aGVsbG8"
        let Ok(Some(Line::Data(good))) = parse_line(line.as_bytes()) else {
            panic!()
        };
        let mut out = [0u8; MAX_CHUNK_LEN];
        assert_eq!(good.decode(&mut out), Ok(5));

        let with = |payload: &'static [u8]| DataLine { payload, ..good };
        assert_eq!(
            with(b"aGVsb~8").decode(&mut out),
            Err(ChunkError::InvalidSymbol {
                offset: 5,
                byte: b'~'
            })
        );
        assert_eq!(
            with(b"aGVsbG8=").decode(&mut out),
            Err(ChunkError::InvalidSymbol {
                offset: 7,
                byte: b'='
            })
        );
        assert_eq!(
            with(b"aGVsb").decode(&mut out),
            Err(ChunkError::InvalidBase64Length { len: 5 })
        );
        // "aGVsbG9" has unused low bits set in its last symbol.
        assert_eq!(
            with(b"aGVsbG9").decode(&mut out),
            Err(ChunkError::NonCanonical { offset: 6 })
        );
        assert_eq!(
            with(b"aGVsbG4").decode(&mut out),
            Err(ChunkError::CrcMismatch {
                stated: good.crc,
                computed: chunk_crc(1, 0, b"hell\x6e"),
            })
        );
        // The CRC covers the dump id and the sequence number.
        let other_seq = DataLine { seq: 1, ..good };
        assert!(matches!(
            other_seq.decode(&mut out),
            Err(ChunkError::CrcMismatch { .. })
        ));
        let other_id = DataLine { dump_id: 2, ..good };
        assert!(matches!(
            other_id.decode(&mut out),
            Err(ChunkError::CrcMismatch { .. })
        ));
    }

    #[test]
    fn peek_data_header_cases() {
        assert_eq!(
            peek_data_header(b"xx@TM:D,0000000f,12,garbage"),
            Some((15, 12))
        );
        assert_eq!(peek_data_header(b"@TM:D,0000000f,12,"), Some((15, 12)));
        assert_eq!(peek_data_header(b"@TM:D,0000000f,12"), None);
        assert_eq!(peek_data_header(b"@TM:D,0000000f,x,"), None);
        assert_eq!(peek_data_header(b"@TM:B,0000000f,12,"), None);
        assert_eq!(peek_data_header(b"no marker"), None);
    }

    #[test]
    fn error_display() {
        let e = LineError::FieldCount {
            kind: LineKind::End,
            found: 3,
        };
        assert_eq!(std::format!("{e}"), "end line has 3 fields instead of 8");
        let e = ChunkError::CrcMismatch {
            stated: 1,
            computed: 0xabc,
        };
        assert_eq!(
            std::format!("{e}"),
            "chunk crc mismatch (line says 00000001, data gives 00000abc)"
        );
    }

    proptest! {
        #[test]
        fn parse_line_never_panics(line in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_line(&line);
            let _ = peek_data_header(&line);
        }

        #[test]
        fn parse_line_never_panics_after_marker(
            tail in proptest::collection::vec(
                prop_oneof![
                    Just(b','), Just(b'B'), Just(b'D'), Just(b'E'), Just(b'0'), Just(b'1'),
                    Just(b'a'), Just(b'A'), Just(b'='), Just(b'\r'), Just(b'@'), any::<u8>()
                ],
                0..200,
            )
        ) {
            let mut line = MARKER.to_vec();
            line.extend_from_slice(&tail);
            if let Ok(Some(Line::Data(d))) = parse_line(&line) {
                let mut out = [0u8; MAX_CHUNK_LEN];
                let _ = d.decode(&mut out);
                let _ = d.decode(&mut [0u8; 1]);
            }
            let _ = peek_data_header(&line);
        }

        #[test]
        fn data_lines_round_trip(
            dump_id in any::<u32>(),
            seq in any::<u64>(),
            chunk in proptest::collection::vec(any::<u8>(), 1..=MAX_CHUNK_LEN),
        ) {
            let mut out = [0u8; MAX_LINE_LEN];
            let n = encode_data_line(dump_id, seq, &chunk, &mut out).unwrap();
            let Ok(Some(Line::Data(d))) = parse_line(&out[..n]) else {
                panic!("not a data line")
            };
            prop_assert_eq!((d.dump_id, d.seq), (dump_id, seq));
            let mut raw = [0u8; MAX_CHUNK_LEN];
            let len = d.decode(&mut raw).unwrap();
            prop_assert_eq!(&raw[..len], &chunk[..]);
        }

        #[test]
        fn begin_and_end_lines_round_trip(
            dump_id in any::<u32>(),
            total_len in any::<u64>(),
            chunk_len in 1..=MAX_CHUNK_LEN as u32,
            crc in any::<u32>(),
        ) {
            let begin = Begin { dump_id, total_len, chunk_len, payload_crc: crc };
            let line = begin_line(&begin);
            prop_assert_eq!(parse_line(&line), Ok(Some(Line::Begin(begin))));
            let end = End {
                dump_id,
                total_len,
                chunk_len,
                chunk_count: begin.chunk_count(),
                payload_crc: crc,
            };
            let line = end_line(&end);
            prop_assert_eq!(parse_line(&line), Ok(Some(Line::End(end))));
        }
    }
}
