//! A CTF 1.8 trace (the Common Trace Format version babeltrace2 2.0 and Trace Compass
//! read): a `metadata` file in TSDL and one binary stream file per CPU ring.
//!
//! # Layout
//!
//! - `metadata`: the trace (little-endian, a UUID derived from the dump's content
//!   hash), an `env` naming the producer and the dump id, one clock `tracemark` at the
//!   rings' frequency (1 GHz when the dump does not know it; the values are then raw
//!   ticks), one stream class, and one event class per event kind of the format crate
//!   (`Kind::EVENTS`: eleven in format version 3), named as `tracemark decode` names the
//!   kinds (`KENTRY`, `KEXIT`, `IRQ`, `FENTRY`, `FEXIT`, `USER`, `IMAGE`, `LOST`,
//!   `SWITCH`, `THREAD`, `CLOCKBACK`), with the event id equal to the kind's wire code.
//!   A `THREAD` event has the thread's id (`thread`, as `SWITCH` carries it), `prio`
//!   and `name` (a CTF string: invalid UTF-8 as `?`, NULs dropped); threads are joined
//!   to switches by id.
//! - `stream_cpu<N>`: the records of CPU `N` in packets of at most [`PACKET_BYTES`].
//!   Each packet has a header (magic, trace UUID, stream class id, and the ring index as
//!   stream instance id) and a context: `timestamp_begin`/`timestamp_end` (first and
//!   last record of the packet), `content_size`/`packet_size` in bits,
//!   `packet_seq_num` (0, 1, 2, ...), `events_discarded` and `cpu_id`.
//! - Every event header is LTTng's "compact" header: a one-byte event id and the low 32
//!   bits of the time in ticks (the reader rebuilds the rest from the previous time),
//!   or, after a step of 2^32 ticks or more, id 255, the event id and the full 64-bit
//!   time.
//!
//! # Lost records
//!
//! `events_discarded` counts the records lost on the ring up to the end of the packet:
//! the ring header's `overwritten` count (records lost before the oldest block), plus
//! the counts of the `LOST` records seen so far (drops reported in the stream), capped at
//! `overwritten + dropped`. A stream starts with an empty packet whose count is 0 and
//! ends with an empty packet holding the full `overwritten + dropped` when the `LOST`
//! records did not report it all, so that a reader that reports the differences between
//! consecutive packets (babeltrace2: "Tracer discarded N events") reports every lost
//! record. The `LOST` records themselves are also events, as `tracemark decode` shows
//! them.
//!
//! # Fields
//!
//! Kernel entries carry all the fields of both entry word layouts: for a `Syscall`
//! path, `syscall`, `cap`, `label`, `fastpath` (and `core`, `word` are 0); for any other
//! path `core` and `word` (and the syscall fields are 0). Kernel exits carry `status`
//! (`Ticks`, `NoEntry`, `NestingOverflow`), `duration` in ticks (0 unless `Ticks`) and
//! the path and syscall of the entry they close (`entry_path` is `None` when the entry is
//! not in the dump). Enumerations name the paths, syscalls and cap types with the ring
//! header's syscall ABI (`#N` where the ABI has no name).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tracemark_format::record::ExitDuration;
use tracemark_format::{EntryPath, Event, Kind, SyscallAbi};

use super::{DumpMeta, Sink};
use tracemark_decoder::merge::Item;

/// Largest packet written (bytes); a packet is cut before an event would cross it.
pub const PACKET_BYTES: usize = 256 << 10;
/// CTF packet magic.
const MAGIC: u32 = 0xC1FC_1FC1;
/// Bytes of packet header and context.
const PACKET_HEADER: usize = 32 + 52;
/// Offsets of the context fields patched when a packet is closed.
const AT_END: usize = 40;
const AT_CONTENT: usize = 48;
const AT_SIZE: usize = 56;
const AT_SEQ: usize = 64;
const AT_DISCARDED: usize = 72;
/// Largest event (a THREAD record with a 32-byte name, extended header: 10 + 8 + 4 + 33
/// bytes; a user event with 32 payload bytes is 47).
const MAX_EVENT: usize = 64;

/// Event header `id` of an extended header (id and 64-bit time follow); ids below it
/// are the event class with a 32-bit time.
const EXTENDED: u8 = 255;
/// Largest time step a compact header (32-bit time) expresses.
const COMPACT_SPAN: u64 = 1 << 32;

/// The `entry_path` of a kernel exit whose entry is not known.
const NO_PATH: u8 = 255;

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CtfSummary {
    /// Events written, over all streams.
    pub events: u64,
    /// Packets written.
    pub packets: u64,
    /// Records reported as discarded (the last `events_discarded` of every stream).
    pub discarded: u64,
    /// Bytes written (streams and metadata).
    pub bytes: u64,
}

/// A CTF trace being written into a directory: written into a temporary directory
/// beside it (`tempfile::TempDir`), renamed over it by [`CtfWriter::finish`], so that a
/// reader never sees half a trace and a failed or killed run leaves nothing behind in
/// it (nor, failing, beside it).
pub struct CtfWriter {
    dir: PathBuf,
    tmp: tempfile::TempDir,
    streams: Vec<CtfStream>,
}

impl CtfWriter {
    /// Starts the trace of `meta` for `dir` (replaced when finished if it holds an
    /// earlier trace, refused if it holds anything else), with its metadata. Fails if
    /// the rings have different clock frequencies (a CTF trace read by babeltrace2 needs
    /// one clock for all streams). Stream files are opened when their ring starts and
    /// closed when it ends, so that the open files are as many as the rings exported at
    /// once, not all rings.
    pub fn new(dir: &Path, meta: &DumpMeta) -> io::Result<Self> {
        let hz = clock_hz(meta)?;
        if dir.exists() {
            ours(dir)?;
        }
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(parent).map_err(|e| at(parent, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(".tracemark-ctf-")
            .tempdir_in(parent)
            .map_err(|e| at(parent, e))?;
        let uuid = uuid(meta.hash);
        let text = metadata(meta, hz, &uuid);
        let path = tmp.path().join("metadata");
        std::fs::write(&path, text.as_bytes()).map_err(|e| at(&path, e))?;
        let mut streams = Vec::with_capacity(meta.rings.len());
        for (i, r) in meta.rings.iter().enumerate() {
            let name = if meta.rings[..i].iter().any(|o| o.cpu == r.cpu) {
                // Two rings of one CPU (concatenated dumps): one file per ring.
                format!("stream_cpu{}_ring{i}", r.cpu)
            } else {
                format!("stream_cpu{}", r.cpu)
            };
            streams.push(CtfStream {
                path: tmp.path().join(name),
                file: None,
                closed: false,
                buf: Vec::new(),
                uuid: uuid_bytes(meta.hash),
                instance: i as u64,
                cpu: r.cpu,
                seq: 0,
                first_ts: None,
                last_ts: 0,
                clock: 0,
                events_in_packet: 0,
                discarded: 0,
                overwritten: r.overwritten,
                lost_total: r.lost(),
                reported: 0,
                written_discarded: 0,
                events: 0,
                bytes: 0,
            });
        }
        Ok(CtfWriter {
            dir: dir.to_path_buf(),
            tmp,
            streams,
        })
    }

    /// The per-ring streams, to feed in parallel (`[i]` takes ring `i`).
    pub fn streams_mut(&mut self) -> &mut [CtfStream] {
        &mut self.streams
    }

    /// Takes the next record of ring `item.ring`.
    pub fn record(&mut self, item: &Item) -> io::Result<()> {
        match self.streams.get_mut(item.ring as usize) {
            Some(s) => s.record(item),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "record of ring {} in a trace of {} rings",
                    item.ring,
                    self.streams.len()
                ),
            )),
        }
    }

    /// Closes every stream not closed yet (last packets, trailing lost counts), and
    /// puts the trace in place: the directory's earlier trace, if any, is removed and
    /// the temporary directory renamed to it.
    pub fn finish(mut self) -> io::Result<CtfSummary> {
        let mut sum = CtfSummary::default();
        for s in &mut self.streams {
            s.close()?;
            sum.events += s.events;
            sum.packets += s.seq;
            sum.discarded += s.written_discarded;
            sum.bytes += s.bytes;
        }
        if self.dir.exists() {
            clear(&self.dir)?;
        }
        std::fs::rename(self.tmp.path(), &self.dir).map_err(|e| at(&self.dir, e))?;
        // Renamed: nothing left to remove.
        let _ = self.tmp.keep();
        Ok(sum)
    }
}

/// The stream file of one ring.
pub struct CtfStream {
    path: PathBuf,
    /// Opened with the first packet, dropped when closed.
    file: Option<File>,
    closed: bool,
    /// The packet being filled, header included.
    buf: Vec<u8>,
    uuid: [u8; 16],
    instance: u64,
    cpu: u32,
    seq: u64,
    /// The first record's time, once a packet was started.
    first_ts: Option<u64>,
    last_ts: u64,
    /// The reader's clock value after the last timestamp written.
    clock: u64,
    events_in_packet: u64,
    /// Lost records known up to the last record seen.
    discarded: u64,
    overwritten: u64,
    lost_total: u64,
    /// Drops reported by `LOST` records so far.
    reported: u64,
    /// `events_discarded` of the last packet written.
    written_discarded: u64,
    events: u64,
    bytes: u64,
}

impl CtfStream {
    fn start_packet(&mut self, ts: u64) {
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(PACKET_BYTES + MAX_EVENT);
        }
        self.buf.clear();
        self.buf.extend_from_slice(&MAGIC.to_le_bytes());
        self.buf.extend_from_slice(&self.uuid);
        self.buf.extend_from_slice(&0u32.to_le_bytes()); // stream class id
        self.buf.extend_from_slice(&self.instance.to_le_bytes());
        self.buf.extend_from_slice(&ts.to_le_bytes()); // timestamp_begin
        self.buf.extend_from_slice(&ts.to_le_bytes()); // timestamp_end, patched
        self.buf.extend_from_slice(&[0; 8 * 4]); // sizes, seq, discarded: patched
        self.buf.extend_from_slice(&self.cpu.to_le_bytes());
        debug_assert_eq!(self.buf.len(), PACKET_HEADER);
        self.events_in_packet = 0;
        // `timestamp_begin` sets the reader's clock.
        self.clock = ts;
    }

    fn patch(&mut self, at: usize, v: u64) {
        self.buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// Writes the packet in `buf` with `events_discarded = discarded`.
    fn write_packet(&mut self, end_ts: u64, discarded: u64) -> io::Result<()> {
        let bits = (self.buf.len() as u64) * 8;
        self.patch(AT_END, end_ts);
        self.patch(AT_CONTENT, bits);
        self.patch(AT_SIZE, bits);
        let seq = self.seq;
        self.patch(AT_SEQ, seq);
        self.patch(AT_DISCARDED, discarded);
        let file = match &mut self.file {
            Some(f) => f,
            None => self
                .file
                .insert(File::create(&self.path).map_err(|e| at(&self.path, e))?),
        };
        file.write_all(&self.buf).map_err(|e| at(&self.path, e))?;
        self.bytes += self.buf.len() as u64;
        self.seq += 1;
        self.written_discarded = discarded;
        Ok(())
    }

    /// An empty packet at `ts` with `events_discarded = discarded`.
    fn empty_packet(&mut self, ts: u64, discarded: u64) -> io::Result<()> {
        self.start_packet(ts);
        self.write_packet(ts, discarded)
    }

    fn close_packet(&mut self) -> io::Result<()> {
        let d = self.discarded.max(self.written_discarded);
        let end = self.last_ts;
        self.write_packet(end, d)
    }

    /// Closes the stream (once): its last packets written, its file closed, its buffer
    /// freed.
    fn close(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        match self.first_ts {
            Some(_) => {
                if self.events_in_packet > 0 {
                    self.close_packet()?;
                }
            }
            None => self.empty_packet(0, 0)?,
        }
        if self.written_discarded < self.lost_total {
            let (ts, d) = (self.last_ts, self.lost_total);
            self.empty_packet(ts, d)?;
        }
        if let Some(f) = self.file.take() {
            // Unbuffered: closing cannot lose data; sync_data is left to the system.
            drop(f);
        }
        self.buf = Vec::new();
        Ok(())
    }
}

impl Sink for CtfStream {
    type Error = io::Error;

    #[inline]
    fn record(&mut self, item: &Item) -> io::Result<()> {
        CtfStream::record(self, item)
    }

    /// Closes the stream's file (see [`CtfWriter::new`]).
    fn finish(&mut self) -> io::Result<()> {
        self.close()
    }
}

impl CtfStream {
    /// Takes the next record of the ring (in ring order).
    #[inline]
    pub fn record(&mut self, item: &Item) -> io::Result<()> {
        // A clock going backwards within a ring cannot be expressed in CTF (babeltrace2
        // refuses it); such a record keeps the previous time.
        let ts = item.ts.max(self.last_ts);
        if self.first_ts.is_none() {
            // The leading empty packet: discarded counts are reported from differences.
            self.first_ts = Some(ts);
            self.empty_packet(ts, 0)?;
            self.discarded = self.overwritten.min(self.lost_total);
            self.start_packet(ts);
        } else if self.buf.len() + MAX_EVENT > PACKET_BYTES {
            self.close_packet()?;
            self.start_packet(ts);
        }
        self.last_ts = ts;
        self.events += 1;
        self.events_in_packet += 1;
        let b = &mut self.buf;
        let kind = item.event.kind() as u8;
        if ts - self.clock < COMPACT_SPAN {
            // The reader rebuilds the high bits from the previous time.
            b.push(kind);
            b.extend_from_slice(&(ts as u32).to_le_bytes());
        } else {
            b.push(EXTENDED);
            b.push(kind);
            b.extend_from_slice(&ts.to_le_bytes());
        }
        self.clock = ts;
        put_fields(b, item);
        if let Event::Lost { count, .. } = item.event {
            self.reported = self.reported.saturating_add(count);
            self.discarded = self
                .overwritten
                .saturating_add(self.reported)
                .min(self.lost_total);
        }
        Ok(())
    }
}

/// Writes the fields of `item`'s event (after its event header), as the metadata's
/// event class of its kind lays them out.
fn put_fields(b: &mut Vec<u8>, item: &Item) {
    match &item.event {
        Event::KernelEntry(e) => {
            let mut f = [0u8; 13];
            f[0] = e.path().into_bits();
            if let Some(s) = e.as_syscall() {
                f[1] = s.syscall();
                f[2] = s.cap_type();
                f[3..7].copy_from_slice(&s.label().to_le_bytes());
                f[7] = u8::from(s.fastpath());
            } else if let Some(o) = e.as_other() {
                f[8] = o.core();
                f[9..13].copy_from_slice(&o.word().to_le_bytes());
            }
            b.extend_from_slice(&f);
        }
        Event::KernelExit(d) => {
            let (status, dur) = match d {
                ExitDuration::Ticks(t) => (0u8, *t),
                ExitDuration::NoEntry => (1, 0),
                ExitDuration::NestingOverflow => (2, 0),
            };
            b.extend_from_slice(&dur.to_le_bytes());
            let (path, sys) = match item.entry {
                Some(e) => (
                    e.path().into_bits(),
                    e.as_syscall().map_or(0, |s| s.syscall()),
                ),
                None => (NO_PATH, 0),
            };
            b.extend_from_slice(&[status, path, sys]);
        }
        Event::Interrupt { irq } => b.extend_from_slice(&irq.to_le_bytes()),
        Event::FunctionEntry { func } | Event::FunctionExit { func } => {
            b.extend_from_slice(&func.to_le_bytes())
        }
        Event::User { id, payload } => {
            b.extend_from_slice(&id.to_le_bytes());
            let p = payload.as_bytes();
            b.push(p.len() as u8);
            b.extend_from_slice(p);
        }
        Event::Image { base, size, id } => {
            b.extend_from_slice(&base.to_le_bytes());
            b.extend_from_slice(&size.to_le_bytes());
            b.extend_from_slice(&id.to_le_bytes());
        }
        Event::Lost { count, since } => {
            b.extend_from_slice(&count.to_le_bytes());
            b.extend_from_slice(&since.to_le_bytes());
        }
        Event::ThreadSwitch { thread } => b.extend_from_slice(&thread.to_le_bytes()),
        // The event's own time is the stepped-back reading only in the `ts` of
        // `tracemark decode`; here it keeps the previous time (see above).
        Event::ClockBack { back } => b.extend_from_slice(&back.to_le_bytes()),
        Event::ThreadName { thread, prio, name } => {
            b.extend_from_slice(&thread.to_le_bytes());
            b.extend_from_slice(&prio.to_le_bytes());
            put_name(b, name.as_bytes());
        }
    }
}

/// A THREAD record's name as a CTF `string`: UTF-8 and NUL-terminated, so each invalid
/// sequence becomes one `?` and NULs are dropped (never longer than the record's name,
/// so the event stays within [`MAX_EVENT`]).
fn put_name(b: &mut Vec<u8>, name: &[u8]) {
    for c in String::from_utf8_lossy(name).chars() {
        match c {
            '\0' => {}
            char::REPLACEMENT_CHARACTER => b.push(b'?'),
            c => b.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    b.push(0);
}

/// The names in `dir`, if every one is a file of a trace written by tracemark; refuses
/// a directory holding anything else.
fn ours(dir: &Path) -> io::Result<Vec<std::ffi::OsString>> {
    let names: Vec<std::ffi::OsString> = std::fs::read_dir(dir)
        .map_err(|e| at(dir, e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .map_err(|e| at(dir, e))?;
    let trace_file = |n: &std::ffi::OsString| {
        n.to_str()
            .is_some_and(|n| n == "metadata" || n.starts_with("stream_cpu"))
    };
    if let Some(other) = names.iter().find(|n| !trace_file(n)) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{}: not empty and not a CTF trace written by tracemark ({} is in it): \
                 refusing to write into it",
                dir.display(),
                other.to_string_lossy()
            ),
        ));
    }
    Ok(names)
}

/// Empties `dir` of an earlier trace (whose stale streams a reader would mix in);
/// refuses a directory holding anything else.
fn clear(dir: &Path) -> io::Result<()> {
    for n in &ours(dir)? {
        let p = dir.join(n);
        std::fs::remove_file(&p).map_err(|e| at(&p, e))?;
    }
    Ok(())
}

fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// The one clock frequency of the trace.
fn clock_hz(meta: &DumpMeta) -> io::Result<u64> {
    let mut hz = None;
    for r in &meta.rings {
        match hz {
            None => hz = Some(r.clock_hz),
            Some(h) if h != r.clock_hz => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "rings have different clock frequencies ({h} Hz and {} Hz on cpu{}): \
                         a CTF trace has one clock for all streams",
                        r.clock_hz, r.cpu
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(hz.unwrap_or(0))
}

fn uuid_bytes(hash: u64) -> [u8; 16] {
    let mut u = [0u8; 16];
    u[..8].copy_from_slice(&hash.to_be_bytes());
    u[8..].copy_from_slice(&(!hash).rotate_left(17).to_be_bytes());
    // A version-4-style UUID: version and variant bits set.
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

/// The trace UUID, derived from the content hash (stable across runs).
fn uuid(hash: u64) -> String {
    let u = uuid_bytes(hash);
    let h: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..].concat()
    )
}

/// `"Name" = 3, ...` for the values `0..n` that `name` names (`#N` otherwise).
fn enum_body(n: u8, from: u8, name: impl Fn(u8) -> Option<String>) -> String {
    (from..n)
        .map(|v| {
            let label = name(v).unwrap_or_else(|| format!("#{v}"));
            format!("\"{label}\" = {v}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The TSDL text.
fn metadata(meta: &DumpMeta, hz: u64, uuid: &str) -> String {
    let abi = meta.rings.first().map_or(SyscallAbi::Raw, |r| r.abi);
    let producer = meta.rings.first().map_or(0, |r| r.producer_id);
    let paths = enum_body(8, 0, |v| Some(EntryPath::from_bits(v).name().to_string()));
    let syscalls = enum_body(16, 1, |v| abi.syscall_name(v).map(str::to_string));
    let caps = enum_body(32, 0, |v| abi.cap_name(v).map(str::to_string));
    let (freq, clock_note) = if hz == 0 {
        (
            1_000_000_000,
            "unknown frequency: values are raw ticks shown as nanoseconds",
        )
    } else {
        (hz, "the rings' clock")
    };
    // A Linux ring's syscall entries (UnknownSyscall, the number in `word`): `word`
    // names them, as `tracemark decode` does (`linux=brk`).
    let word_type = if abi == SyscallAbi::LinuxArm {
        use tracemark_decoder::syscalls::{name, ARM_PRIVATE_BASE, TABLE_END};
        let labels: Vec<String> = (0..TABLE_END)
            .chain(ARM_PRIVATE_BASE..ARM_PRIVATE_BASE + 16)
            .filter_map(|n| name(n).map(|s| format!("\"{s}\" = {n}")))
            .collect();
        format!("enum : uint32_t {{ {} }}", labels.join(", "))
    } else {
        "uint32_t".to_string()
    };
    let abi_name = match abi {
        SyscallAbi::Raw => "raw",
        SyscallAbi::Sel4 => "sel4",
        SyscallAbi::Sel4Mcs => "sel4-mcs",
        SyscallAbi::LinuxArm => "linux-arm",
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"/* CTF 1.8 */

typealias integer {{ size = 8; align = 8; signed = false; }} := uint8_t;
typealias integer {{ size = 32; align = 8; signed = false; }} := uint32_t;
typealias integer {{ size = 64; align = 8; signed = false; }} := uint64_t;
typealias integer {{ size = 64; align = 8; signed = false; base = 16; }} := uint64_hex_t;
typealias integer {{ size = 32; align = 8; signed = false; map = clock.tracemark.value; }} := uint32_clock_t;
typealias integer {{ size = 64; align = 8; signed = false; map = clock.tracemark.value; }} := uint64_clock_t;

trace {{
	major = 1;
	minor = 8;
	uuid = "{uuid}";
	byte_order = le;
	packet.header := struct {{
		uint32_t magic;
		uint8_t  uuid[16];
		uint32_t stream_id;
		uint64_t stream_instance_id;
	}};
}};

env {{
	domain = "tracemark";
	tracer_name = "tracemark";
	tracer_major = 0;
	tracer_minor = 1;
	dump_id = "{id}";
	producer_id = "{producer:#018x}";
	syscall_abi = "{abi_name}";
	rings = {rings};
}};

clock {{
	name = "tracemark";
	uuid = "{uuid}";
	description = "{clock_note}";
	freq = {freq};
	precision = 1;
	offset_s = 0;
	offset = 0;
	absolute = FALSE;
}};

typealias enum : uint8_t {{ {paths} }} := path_t;
typealias enum : uint8_t {{ "none" = 0, {syscalls} }} := syscall_t;
typealias enum : uint8_t {{ {caps} }} := cap_t;

stream {{
	id = 0;
	packet.context := struct {{
		uint64_clock_t timestamp_begin;
		uint64_clock_t timestamp_end;
		uint64_t content_size;
		uint64_t packet_size;
		uint64_t packet_seq_num;
		uint64_t events_discarded;
		uint32_t cpu_id;
	}};
	event.header := struct {{
		enum : uint8_t {{ compact = 0 ... 254, extended = 255 }} id;
		variant <id> {{
			struct {{
				uint32_clock_t timestamp;
			}} compact;
			struct {{
				uint8_t id;
				uint64_clock_t timestamp;
			}} extended;
		}} v;
	}};
}};

event {{
	name = "KENTRY";
	id = {id_kentry};
	stream_id = 0;
	fields := struct {{
		path_t path;
		syscall_t syscall;
		cap_t cap;
		uint32_t label;
		uint8_t fastpath;
		uint8_t core;
		{word_type} word;
	}};
}};

event {{
	name = "KEXIT";
	id = {id_kexit};
	stream_id = 0;
	fields := struct {{
		uint64_t duration;
		enum : uint8_t {{ "Ticks" = 0, "NoEntry" = 1, "NestingOverflow" = 2 }} status;
		enum : uint8_t {{ {paths}, "None" = {NO_PATH} }} entry_path;
		syscall_t entry_syscall;
	}};
}};

event {{
	name = "IRQ";
	id = {id_irq};
	stream_id = 0;
	fields := struct {{
		uint32_t irq;
	}};
}};

event {{
	name = "FENTRY";
	id = {id_fentry};
	stream_id = 0;
	fields := struct {{
		uint64_hex_t func;
	}};
}};

event {{
	name = "FEXIT";
	id = {id_fexit};
	stream_id = 0;
	fields := struct {{
		uint64_hex_t func;
	}};
}};

event {{
	name = "USER";
	id = {id_user};
	stream_id = 0;
	fields := struct {{
		uint32_t id;
		uint8_t len;
		uint8_t data[len];
	}};
}};

event {{
	name = "IMAGE";
	id = {id_image};
	stream_id = 0;
	fields := struct {{
		uint64_hex_t base;
		uint64_t size;
		uint64_hex_t id;
	}};
}};

event {{
	name = "LOST";
	id = {id_lost};
	stream_id = 0;
	fields := struct {{
		uint64_t count;
		uint64_t since;
	}};
}};

event {{
	name = "SWITCH";
	id = {id_switch};
	stream_id = 0;
	fields := struct {{
		uint64_hex_t thread;
	}};
}};

event {{
	name = "THREAD";
	id = {id_thread};
	stream_id = 0;
	fields := struct {{
		uint64_hex_t thread;
		uint32_t prio;
		string name;
	}};
}};

event {{
	name = "CLOCKBACK";
	id = {id_clockback};
	stream_id = 0;
	fields := struct {{
		uint64_t back;
	}};
}};
"#,
        id = meta.id,
        rings = meta.rings.len(),
        // Event ids are the format crate's kind codes (the stream writes
        // `item.event.kind() as u8`); tied by `event_classes_are_the_format_kinds`.
        id_kentry = Kind::KernelEntry as u8,
        id_kexit = Kind::KernelExit as u8,
        id_irq = Kind::Interrupt as u8,
        id_fentry = Kind::FunctionEntry as u8,
        id_fexit = Kind::FunctionExit as u8,
        id_user = Kind::User as u8,
        id_image = Kind::Image as u8,
        id_lost = Kind::Lost as u8,
        id_switch = Kind::ThreadSwitch as u8,
        id_thread = Kind::ThreadName as u8,
        id_clockback = Kind::ClockBack as u8,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 19.9: one event class per event kind of the format crate, named as
    /// `tracemark decode` names it, with the kind's wire code as its id (what the
    /// stream writes in event headers), and none else.
    #[test]
    fn event_classes_are_the_format_kinds() {
        let r = super::super::RingInfo::for_test(0, 1000, SyscallAbi::Sel4);
        let text = metadata(&DumpMeta::for_test(vec![r], "x", 1), 1000, "u");
        let classes: Vec<(String, u8)> = text
            .split("event {")
            .skip(1)
            .map(|body| {
                let field = |key: &str| {
                    let at = body.find(&format!("\t{key} = ")).unwrap() + key.len() + 4;
                    body[at..body[at..].find(';').unwrap() + at].to_string()
                };
                (
                    field("name").trim_matches('"').to_string(),
                    field("id").parse().unwrap(),
                )
            })
            .collect();
        let kinds: Vec<(String, u8)> = Kind::EVENTS
            .iter()
            .map(|k| (k.name().to_string(), *k as u8))
            .collect();
        assert_eq!(classes, kinds);
        assert!(Kind::EVENTS.iter().all(|k| (*k as u8) < EXTENDED));
    }

    #[test]
    fn uuid_is_stable_and_well_formed() {
        let u = uuid(0x1234_5678_9abc_def0);
        assert_eq!(u, uuid(0x1234_5678_9abc_def0));
        assert_ne!(u, uuid(1));
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }

    /// Packets of a stream file: (begin, end, seq, discarded, event bytes).
    fn packets(bytes: &[u8]) -> Vec<(u64, u64, u64, u64, Vec<u8>)> {
        let u = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let p = &bytes[at..];
            assert_eq!(&p[..4], &MAGIC.to_le_bytes());
            let size = (u(p, AT_SIZE) / 8) as usize;
            assert_eq!(u(p, AT_CONTENT), u(p, AT_SIZE));
            out.push((
                u(p, AT_END - 8),
                u(p, AT_END),
                u(p, AT_SEQ),
                u(p, AT_DISCARDED),
                p[PACKET_HEADER..size].to_vec(),
            ));
            at += size;
        }
        out
    }

    #[test]
    fn discarded_counts_and_extended_headers() {
        let dir = tempfile::tempdir().unwrap();
        let ring = super::super::RingInfo {
            overwritten: 5,
            dropped: 10,
            producer_id: 7,
            ..super::super::RingInfo::for_test(3, 1_000_000_000, SyscallAbi::Sel4)
        };
        let meta = DumpMeta::for_test(vec![ring], "x", 1);
        let mut w = CtfWriter::new(dir.path(), &meta).unwrap();
        let item = |ts: u64, event: Event| Item {
            ts,
            number: Some(0),
            ring: 0,
            event,
            entry: None,
        };
        // A step of exactly 2^32 ticks needs the extended header.
        let far = 1010 + (1 << 32);
        for it in [
            item(1000, Event::Interrupt { irq: 27 }),
            item(
                1010,
                Event::Lost {
                    count: 4,
                    since: 990,
                },
            ),
            item(far, Event::Interrupt { irq: 28 }),
        ] {
            w.record(&it).unwrap();
        }
        let sum = w.finish().unwrap();
        assert_eq!((sum.events, sum.packets, sum.discarded), (3, 3, 15));
        let p = packets(&std::fs::read(dir.path().join("stream_cpu3")).unwrap());
        // Leading empty packet at 0 lost, the records with overwritten + reported, and a
        // trailing empty packet with everything the ring header counts.
        assert_eq!(p.len(), 3);
        assert_eq!((p[0].0, p[0].1, p[0].2, p[0].3), (1000, 1000, 0, 0));
        assert!(p[0].4.is_empty());
        assert_eq!((p[1].0, p[1].1, p[1].2, p[1].3), (1000, far, 1, 9));
        assert_eq!((p[2].0, p[2].1, p[2].2, p[2].3), (far, far, 2, 15));
        let mut e = Vec::new();
        e.push(Kind::Interrupt as u8);
        e.extend_from_slice(&1000u32.to_le_bytes());
        e.extend_from_slice(&27u32.to_le_bytes());
        e.push(Kind::Lost as u8);
        e.extend_from_slice(&1010u32.to_le_bytes());
        e.extend_from_slice(&4u64.to_le_bytes());
        e.extend_from_slice(&990u64.to_le_bytes());
        e.extend_from_slice(&[EXTENDED, Kind::Interrupt as u8]);
        e.extend_from_slice(&far.to_le_bytes());
        e.extend_from_slice(&28u32.to_le_bytes());
        assert_eq!(p[1].4, e);
        let text = std::fs::read_to_string(dir.path().join("metadata")).unwrap();
        assert!(text.starts_with("/* CTF 1.8 */"));
        assert!(text.contains("\"Call\" = 1"));
    }

    #[test]
    fn a_clock_going_backwards_keeps_the_previous_time() {
        let dir = tempfile::tempdir().unwrap();
        let r = super::super::RingInfo::for_test(0, 1_000_000_000, SyscallAbi::Raw);
        let meta = DumpMeta::for_test(vec![r], "x", 1);
        let mut w = CtfWriter::new(dir.path(), &meta).unwrap();
        for ts in [2000, 1500] {
            let irq = Event::Interrupt { irq: 1 };
            let it = Item {
                ts,
                number: None,
                ring: 0,
                event: irq,
                entry: None,
            };
            w.record(&it).unwrap();
        }
        w.finish().unwrap();
        let p = packets(&std::fs::read(dir.path().join("stream_cpu0")).unwrap());
        assert_eq!(p.len(), 2);
        assert_eq!((p[1].0, p[1].1), (2000, 2000));
        let times: Vec<u32> = p[1]
            .4
            .chunks(9)
            .map(|e| u32::from_le_bytes(e[1..5].try_into().unwrap()))
            .collect();
        assert_eq!(times, [2000, 2000]);
    }

    #[test]
    fn different_clocks_are_refused() {
        let r = super::super::RingInfo::for_test(0, 1_000_000, SyscallAbi::Raw);
        let meta = DumpMeta {
            rings: vec![
                r,
                super::super::RingInfo {
                    index: 0,
                    records: 0,
                    cpu: 1,
                    clock_hz: 2,
                    ..r
                },
            ],
            id: "x".into(),
            hash: 1,
        };
        let dir = tempfile::tempdir().unwrap();
        let e = CtfWriter::new(dir.path(), &meta).err().unwrap();
        assert!(e.to_string().contains("different clock frequencies"), "{e}");
    }

    #[test]
    fn an_earlier_trace_is_replaced_and_other_directories_refused() {
        let dir = tempfile::tempdir().unwrap();
        let r = super::super::RingInfo::for_test(0, 0, SyscallAbi::Raw);
        let meta = DumpMeta::for_test(vec![r], "x", 1);
        std::fs::write(dir.path().join("stream_cpu7"), b"stale").unwrap();
        std::fs::write(dir.path().join("metadata"), b"old").unwrap();
        CtfWriter::new(dir.path(), &meta).unwrap().finish().unwrap();
        assert!(!dir.path().join("stream_cpu7").exists());
        assert!(dir.path().join("stream_cpu0").exists());
        std::fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
        let e = CtfWriter::new(dir.path(), &meta).err().unwrap();
        assert!(e.to_string().contains("notes.txt"), "{e}");
        assert!(dir.path().join("notes.txt").exists());
    }

    #[test]
    fn enum_names_every_value() {
        let e = enum_body(4, 1, |v| (v == 2).then(|| "Two".to_string()));
        assert_eq!(e, r##""#1" = 1, "Two" = 2, "#3" = 3"##);
    }
}
