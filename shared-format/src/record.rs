//! Records: the events of a trace and their byte encoding inside a block.
//!
//! Every record starts with a *header varint* `v = delta << 4 | kind`: the low four bits
//! are the [`Kind`], the rest the time in clock ticks since the previous record of the
//! same block (or since the block's base timestamp, for the first). A kind-specific
//! payload of varints follows. Two kinds are markers rather than events:
//! [`Kind::Timestamp`] sets an absolute time (used when a writer could not use a delta,
//! for instance because an interrupt wrote in between) and [`Kind::End`] closes a block.

use crate::sel4::KernelEntry;
use crate::varint::{self, VarintError};

/// The longest record, timestamp marker included (the longest possible is 60 bytes, a
/// THREAD record with a 32-byte name).
pub const MAX_RECORD_LEN: usize = 64;
/// The largest user-event payload, in bytes.
pub const MAX_USER_PAYLOAD: usize = 32;
/// The largest time delta a header can carry; larger gaps use a [`Kind::Timestamp`] marker.
pub const MAX_DELTA: u64 = (1 << 60) - 1;

/// The 4-bit kind code at the bottom of every record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    /// Kernel entry: payload is the packed [`KernelEntry`] word as a varint.
    KernelEntry = 0,
    /// Kernel exit: payload is a varint `d`: 0 no matching entry, 1 nesting overflow,
    /// otherwise the entry's duration is `d - 2` ticks (so durations saturate at
    /// `u64::MAX - 2` ticks, 584 years of a 1 GHz clock).
    KernelExit = 1,
    /// Interrupt: payload is the IRQ number as a varint.
    Interrupt = 2,
    /// Function entry: payload is the function id or address as a varint.
    FunctionEntry = 3,
    /// Function exit: payload is the function id or address as a varint.
    FunctionExit = 4,
    /// User event: varint `id << 6 | len`, then `len` (at most 32) payload bytes.
    User = 5,
    /// Image or mapping: varints load address, size, build-id or name id.
    Image = 6,
    /// Records lost: varints count, then ticks from the first loss to this record.
    Lost = 7,
    /// Thread switch (format version 2): payload is a varint thread id (seL4: the TCB
    /// address) of the thread the kernel runs next.
    ThreadSwitch = 8,
    /// Thread name (format version 3): varint thread id (the id SWITCH records carry),
    /// varint `prio << 6 | len`, then `len` (at most 32) bytes of name (UTF-8, not
    /// NUL-terminated). Written when a thread is created and re-emitted (see FORMAT.md
    /// section 8.4.1) so that a ring that lost the creation still names its threads.
    ThreadName = 9,
    /// The clock stepped back (format version 2): varint `back`, how many ticks this
    /// record's time is below the previous record's on the same CPU. The writer puts it
    /// just before the first record read after the step.
    ClockBack = 11,
    /// Marker, not an event: the rest of the block is unused.
    End = 14,
    /// Marker, not an event: varint absolute timestamp; the next delta counts from it.
    Timestamp = 15,
}

impl Kind {
    /// The event kinds (markers excluded), in wire order.
    pub const EVENTS: [Kind; 11] = [
        Kind::KernelEntry,
        Kind::KernelExit,
        Kind::Interrupt,
        Kind::FunctionEntry,
        Kind::FunctionExit,
        Kind::User,
        Kind::Image,
        Kind::Lost,
        Kind::ThreadSwitch,
        Kind::ThreadName,
        Kind::ClockBack,
    ];

    /// The kind with wire code `code`, if any.
    pub const fn from_code(code: u8) -> Option<Kind> {
        match code {
            0 => Some(Kind::KernelEntry),
            1 => Some(Kind::KernelExit),
            2 => Some(Kind::Interrupt),
            3 => Some(Kind::FunctionEntry),
            4 => Some(Kind::FunctionExit),
            5 => Some(Kind::User),
            6 => Some(Kind::Image),
            7 => Some(Kind::Lost),
            8 => Some(Kind::ThreadSwitch),
            9 => Some(Kind::ThreadName),
            11 => Some(Kind::ClockBack),
            14 => Some(Kind::End),
            15 => Some(Kind::Timestamp),
            _ => None,
        }
    }

    /// The short upper-case name used in decoded output and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::KernelEntry => "KENTRY",
            Kind::KernelExit => "KEXIT",
            Kind::Interrupt => "IRQ",
            Kind::FunctionEntry => "FENTRY",
            Kind::FunctionExit => "FEXIT",
            Kind::User => "USER",
            Kind::Image => "IMAGE",
            Kind::Lost => "LOST",
            Kind::ThreadSwitch => "SWITCH",
            Kind::ThreadName => "THREAD",
            Kind::ClockBack => "CLOCKBACK",
            Kind::End => "END",
            Kind::Timestamp => "TIMESTAMP",
        }
    }

    /// Parses a name as [`Kind::name`] prints it (case-insensitive).
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::EVENTS
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name))
    }
}

/// What a kernel exit knows about the time spent in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitDuration {
    /// `exit - entry` in clock ticks, measured on the target.
    Ticks(u64),
    /// No kernel entry was open on this CPU (tracing started inside the kernel).
    NoEntry,
    /// Entries nested deeper than the encoder's stack; the entry time was not kept.
    NestingOverflow,
}

impl ExitDuration {
    /// The KEXIT payload value: 0 no entry, 1 nesting overflow, `ticks + 2` (saturating).
    #[inline(always)]
    pub const fn to_wire(self) -> u64 {
        match self {
            ExitDuration::NoEntry => 0,
            ExitDuration::NestingOverflow => 1,
            // A duration above u64::MAX - 2 cannot come from a 64-bit clock difference
            // of a real kernel entry; saturate rather than wrap.
            ExitDuration::Ticks(t) => t.saturating_add(2),
        }
    }

    /// The duration a KEXIT payload value `v` means (the inverse of [`Self::to_wire`]).
    #[inline(always)]
    pub const fn from_wire(v: u64) -> Self {
        match v {
            0 => ExitDuration::NoEntry,
            1 => ExitDuration::NestingOverflow,
            t => ExitDuration::Ticks(t - 2),
        }
    }
}

/// A user event's payload: up to [`MAX_USER_PAYLOAD`] bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserPayload {
    len: u8,
    bytes: [u8; MAX_USER_PAYLOAD],
}

impl UserPayload {
    /// A payload holding `data`, or `None` if it is longer than [`MAX_USER_PAYLOAD`].
    #[inline]
    pub fn new(data: &[u8]) -> Option<Self> {
        if data.len() > MAX_USER_PAYLOAD {
            return None;
        }
        let mut bytes = [0u8; MAX_USER_PAYLOAD];
        // A zip rather than `copy_from_slice`: no length check (and no panic path) in the
        // encoder's recording code, which builds payloads.
        for (to, from) in bytes.iter_mut().zip(data) {
            *to = *from;
        }
        Some(UserPayload {
            len: data.len() as u8,
            bytes,
        })
    }

    /// A payload holding the first [`MAX_USER_PAYLOAD`] bytes of `data` (all of it if
    /// shorter). Never fails and has no panic path, for recording code.
    #[inline]
    pub fn truncating(data: &[u8]) -> Self {
        let mut bytes = [0u8; MAX_USER_PAYLOAD];
        let mut len = 0u8;
        for (to, from) in bytes.iter_mut().zip(data) {
            *to = *from;
            len += 1;
        }
        UserPayload { len, bytes }
    }

    /// The payload bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        // `len <= MAX_USER_PAYLOAD` by construction; `get` keeps a panic path out of the
        // encoder's recording code all the same.
        self.bytes
            .get(..usize::from(self.len))
            .unwrap_or(&self.bytes)
    }
}

impl core::fmt::Debug for UserPayload {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:02x?}", self.as_bytes())
    }
}

/// A trace event, as the target records it and the host decodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// The kernel was entered.
    KernelEntry(KernelEntry),
    /// The kernel was left; the duration was measured on the target.
    KernelExit(ExitDuration),
    /// An interrupt was taken.
    Interrupt {
        /// The IRQ number.
        irq: u32,
    },
    /// A function was entered (`-finstrument-functions` or a manual probe).
    FunctionEntry {
        /// A compact function id, or a code address.
        func: u64,
    },
    /// A function returned.
    FunctionExit {
        /// A compact function id, or a code address.
        func: u64,
    },
    /// An event defined by the application.
    User {
        /// The application's event id.
        id: u32,
        /// Up to [`MAX_USER_PAYLOAD`] bytes.
        payload: UserPayload,
    },
    /// A binary image or mapping was loaded, for symbolisation.
    Image {
        /// Load address.
        base: u64,
        /// Size in bytes.
        size: u64,
        /// Build id (or a hash of it), or an id naming the image.
        id: u64,
    },
    /// The clock read less than at the previous record on this CPU (it stepped back);
    /// this record's time is the new reading. Kernel exits measured across the step
    /// carry 0 ticks.
    ClockBack {
        /// Ticks the clock went back: the previous record's time minus this one's.
        back: u64,
    },
    /// Records were dropped because the ring was full.
    Lost {
        /// How many.
        count: u64,
        /// The timestamp of the first loss.
        since: u64,
    },
    /// The kernel switches to another thread (format version 2).
    ThreadSwitch {
        /// The thread that runs next (seL4: its TCB address).
        thread: u64,
    },
    /// A thread's name and priority (format version 3): an RTOS task, a seL4 TCB, a host
    /// thread. Written when the thread is created and re-emitted by the writer, so the
    /// latest one before a switch names the thread.
    ThreadName {
        /// The thread's id, as [`Event::ThreadSwitch`] carries it.
        thread: u64,
        /// The thread's priority, in the RTOS's own numbering (FreeRTOS: higher runs
        /// first); 0 where there is none.
        prio: u32,
        /// Up to [`MAX_USER_PAYLOAD`] bytes of name, UTF-8 by convention (decoders
        /// replace invalid sequences).
        name: UserPayload,
    },
}

impl Event {
    /// The event's kind.
    #[inline]
    pub const fn kind(&self) -> Kind {
        match self {
            Event::KernelEntry(_) => Kind::KernelEntry,
            Event::KernelExit(_) => Kind::KernelExit,
            Event::Interrupt { .. } => Kind::Interrupt,
            Event::FunctionEntry { .. } => Kind::FunctionEntry,
            Event::FunctionExit { .. } => Kind::FunctionExit,
            Event::User { .. } => Kind::User,
            Event::Image { .. } => Kind::Image,
            Event::Lost { .. } => Kind::Lost,
            Event::ThreadSwitch { .. } => Kind::ThreadSwitch,
            Event::ThreadName { .. } => Kind::ThreadName,
            Event::ClockBack { .. } => Kind::ClockBack,
        }
    }

    /// Whether the event counts toward its block header's `records` and gets a record
    /// number: every event but `Lost`.
    #[inline(always)]
    pub const fn is_counted(&self) -> bool {
        !matches!(self, Event::Lost { .. })
    }
}

/// A decoded record: an event and its absolute timestamp in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Record {
    /// Absolute time in ticks of the ring's clock.
    pub ts: u64,
    /// The event.
    pub event: Event,
}

/// How the encoder expresses a record's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Time {
    /// Ticks since the previous record of the block (at most [`MAX_DELTA`]).
    Delta(u64),
    /// An absolute timestamp: a [`Kind::Timestamp`] marker precedes the record.
    Absolute(u64),
}

/// The number of bytes [`encode_with`] writes for `event` at `time`.
#[inline(always)]
pub fn encoded_len(time: Time, ts: u64, event: &Event) -> usize {
    let kind = event.kind() as u8;
    let head = match time {
        Time::Delta(delta) => varint::encoded_len(record_header(delta, kind)),
        Time::Absolute(abs) => 1 + varint::encoded_len(abs) + 1,
    };
    head + match *event {
        Event::KernelEntry(entry) => varint::encoded_len(u64::from(entry.0)),
        Event::KernelExit(duration) => varint::encoded_len(duration.to_wire()),
        Event::Interrupt { irq } => varint::encoded_len(u64::from(irq)),
        Event::FunctionEntry { func }
        | Event::FunctionExit { func }
        | Event::ThreadSwitch { thread: func } => varint::encoded_len(func),
        Event::User { id, payload } => {
            let n = payload.as_bytes().len();
            varint::encoded_len(user_head(id, n)) + n
        }
        Event::ThreadName { thread, prio, name } => {
            let n = name.as_bytes().len();
            varint::encoded_len(thread) + varint::encoded_len(user_head(prio, n)) + n
        }
        Event::ClockBack { back } => varint::encoded_len(back),
        Event::Image { base, size, id } => {
            varint::encoded_len(base) + varint::encoded_len(size) + varint::encoded_len(id)
        }
        Event::Lost { count, since } => {
            varint::encoded_len(count) + varint::encoded_len(ts.saturating_sub(since))
        }
    }
}

/// Writes the bytes of `event` at time `time` through `put`, first to last;
/// [`encoded_len`] of them (at most [`MAX_RECORD_LEN`]).
///
/// `Time::Delta` must be at most [`MAX_DELTA`]; callers use `Time::Absolute` for larger
/// gaps. `ts` is the record's absolute time, used only by [`Event::Lost`] for `since`.
#[inline(always)]
pub fn encode_with(time: Time, ts: u64, event: &Event, put: &mut impl FnMut(u8)) {
    let kind = event.kind() as u8;
    match time {
        Time::Delta(delta) => varint::write_with(put, record_header(delta, kind)),
        Time::Absolute(abs) => {
            put(Kind::Timestamp as u8);
            varint::write_with(put, abs);
            put(kind);
        }
    }
    match *event {
        Event::KernelEntry(entry) => varint::write_with(put, u64::from(entry.0)),
        Event::KernelExit(duration) => varint::write_with(put, duration.to_wire()),
        Event::Interrupt { irq } => varint::write_with(put, u64::from(irq)),
        Event::FunctionEntry { func }
        | Event::FunctionExit { func }
        | Event::ThreadSwitch { thread: func } => varint::write_with(put, func),
        // `ref`: a copy of the 33-byte payload would be a `memcpy` call in the encoder's
        // recording path.
        Event::User { id, ref payload } => {
            let data = payload.as_bytes();
            varint::write_with(put, user_head(id, data.len()));
            for b in data {
                put(*b);
            }
        }
        Event::ThreadName {
            thread,
            prio,
            ref name,
        } => {
            let data = name.as_bytes();
            varint::write_with(put, thread);
            varint::write_with(put, user_head(prio, data.len()));
            for b in data {
                put(*b);
            }
        }
        Event::Image { base, size, id } => {
            varint::write_with(put, base);
            varint::write_with(put, size);
            varint::write_with(put, id);
        }
        Event::Lost { count, since } => {
            varint::write_with(put, count);
            varint::write_with(put, ts.saturating_sub(since));
        }
        Event::ClockBack { back } => varint::write_with(put, back),
    }
}

/// The most payload varints a record has (IMAGE: base, size, id).
pub const MAX_FIELDS: usize = 3;

/// A record described by its wire fields rather than as an [`Event`]: its kind, up to
/// [`MAX_FIELDS`] payload varints, and raw bytes after them (a USER payload, at most
/// [`MAX_USER_PAYLOAD`]). One encode loop serves every kind (the length counts the bytes
/// it writes), so a writer that builds `Fields` itself (the encoder's general path) links neither the
/// [`Event`] match nor a per-kind encoder. Writes the bytes [`encode_with`] writes for the
/// same event ([`Event::fields`]).
///
/// The last payload varint can count time up to the record ([`Fields::elapsed`]): the
/// record's timestamp is known only when it is written, and KEXIT's duration and LOST's
/// `ago` are measured to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields<'d> {
    kind: Kind,
    /// Payload varints used, `1..=MAX_FIELDS`.
    count: u8,
    values: [u64; MAX_FIELDS],
    /// `ts - since` (saturating at 0) is added, saturating, to the last payload varint
    /// when the record is written at `ts`: nothing for `u64::MAX` (no time is above it),
    /// which records that measure nothing hold. A plain `u64` rather than an `Option`:
    /// smaller to build, and no branch to write.
    since: u64,
    /// At most [`MAX_USER_PAYLOAD`] bytes (the constructors cut longer data).
    data: &'d [u8],
}

impl<'d> Fields<'d> {
    /// A record whose payload is the one varint `value` (KENTRY, KEXIT, IRQ, FENTRY,
    /// FEXIT, SWITCH, CLOCKBACK).
    #[inline(always)]
    pub const fn varint(kind: Kind, value: u64) -> Self {
        Fields {
            kind,
            count: 1,
            values: [value, 0, 0],
            since: u64::MAX,
            data: &[],
        }
    }

    /// A record whose one payload varint is `base` plus the ticks from `since` to the
    /// record's time (both saturating): a KEXIT measured from its entry at `since` is
    /// `Fields::elapsed(Kind::KernelExit, 2, since)` ([`ExitDuration::to_wire`]). From
    /// `since == u64::MAX` nothing is measured (no time is later): the varint is `base`.
    #[inline(always)]
    pub const fn elapsed(kind: Kind, base: u64, since: u64) -> Self {
        Fields {
            kind,
            count: 1,
            values: [base, 0, 0],
            since,
            data: &[],
        }
    }

    /// A USER record: id `id`, the first [`MAX_USER_PAYLOAD`] bytes of `data`.
    #[inline(always)]
    pub fn user(id: u32, data: &'d [u8]) -> Self {
        let data = data.get(..MAX_USER_PAYLOAD).unwrap_or(data);
        Fields {
            kind: Kind::User,
            count: 1,
            values: [user_head(id, data.len()), 0, 0],
            since: u64::MAX,
            data,
        }
    }

    /// A THREAD record: thread `thread`, priority `prio`, the first [`MAX_USER_PAYLOAD`]
    /// bytes of `name`.
    #[inline(always)]
    pub fn thread_name(thread: u64, prio: u32, name: &'d [u8]) -> Self {
        let name = name.get(..MAX_USER_PAYLOAD).unwrap_or(name);
        Fields {
            kind: Kind::ThreadName,
            count: 2,
            values: [thread, user_head(prio, name.len()), 0],
            since: u64::MAX,
            data: name,
        }
    }

    /// An IMAGE record.
    #[inline(always)]
    pub const fn image(base: u64, size: u64, id: u64) -> Self {
        Fields {
            kind: Kind::Image,
            count: 3,
            values: [base, size, id],
            since: u64::MAX,
            data: &[],
        }
    }

    /// A LOST record: `count` records lost, the first at `since`.
    #[inline(always)]
    pub const fn lost(count: u64, since: u64) -> Self {
        Fields {
            kind: Kind::Lost,
            count: 2,
            values: [count, 0, 0],
            since,
            data: &[],
        }
    }

    /// The record's kind.
    #[inline(always)]
    pub const fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether the record counts toward its block header's `records`
    /// ([`Event::is_counted`]).
    #[inline(always)]
    pub fn is_counted(&self) -> bool {
        self.kind != Kind::Lost
    }

    /// The one payload varint and the raw bytes, if the record has that shape and no
    /// field depends on its time (what a writer's common path encodes itself).
    #[inline(always)]
    pub fn as_small(&self) -> Option<(u64, &'d [u8])> {
        (self.count == 1 && self.since == u64::MAX).then_some((self.values[0], self.data))
    }

    /// [`Fields::as_small`] for a record written at `ts`, time-dependent ones included:
    /// a record with one payload varint gives that varint as [`Fields::encode_with`]
    /// writes it at `ts` (a [`Fields::elapsed`] varint with the ticks since `since`
    /// added) and its raw bytes; `None` for records with more varints.
    #[inline(always)]
    pub fn small_at(&self, ts: u64) -> Option<(u64, &'d [u8])> {
        if self.count != 1 {
            return None;
        }
        let value = if self.since == u64::MAX {
            self.values[0]
        } else {
            self.values[0].saturating_add(ts.saturating_sub(self.since))
        };
        Some((value, self.data))
    }

    /// The number of bytes [`Fields::encode_with`] writes at `time` (at most
    /// [`MAX_RECORD_LEN`]).
    #[inline(always)]
    pub fn encoded_len(&self, time: Time, ts: u64) -> usize {
        let mut len = 0;
        self.encode_with(time, ts, &mut |_| len += 1);
        len
    }

    /// Writes the record's bytes at time `time` through `put`, first to last: the bytes
    /// [`encode_with`] writes for the same event. `ts` is the record's absolute time
    /// (for [`Fields::elapsed`] and LOST); `Time::Delta` is at most [`MAX_DELTA`].
    ///
    /// One varint loop writes every varint of the record, the timestamp marker's and
    /// the kind's single bytes included (they are the one-byte varints they look like).
    #[inline(always)]
    pub fn encode_with(&self, time: Time, ts: u64, put: &mut impl FnMut(u8)) {
        let kind = self.kind as u64;
        // The varints before the payload: the header, or the marker, the time and the
        // kind.
        let (pre, n_pre) = match time {
            Time::Delta(delta) => ([record_header(delta, kind as u8), 0, 0], 1),
            Time::Absolute(abs) => ([Kind::Timestamp as u64, abs, kind], 3),
        };
        let elapsed = ts.saturating_sub(self.since);
        let count = usize::from(self.count);
        let mut i = 0;
        while i < n_pre + count {
            let v = match pre.get(i) {
                Some(&v) if i < n_pre => v,
                _ => {
                    let j = i - n_pre;
                    let v = self.values.get(j).copied().unwrap_or(0);
                    if j + 1 == count {
                        v.saturating_add(elapsed)
                    } else {
                        v
                    }
                }
            };
            // One 64-bit loop (no 32-bit variant): the smallest code.
            let mut v = v;
            while v >= 0x80 {
                put(v as u8 | 0x80);
                v >>= 7;
            }
            put(v as u8);
            i += 1;
        }
        for &b in self.data {
            put(b);
        }
    }
}

impl Event {
    /// The event's wire fields (its bytes are those [`encode_with`] writes for it).
    #[inline]
    pub fn fields(&self) -> Fields<'_> {
        match *self {
            Event::KernelEntry(entry) => Fields::varint(Kind::KernelEntry, u64::from(entry.0)),
            Event::KernelExit(duration) => Fields::varint(Kind::KernelExit, duration.to_wire()),
            Event::Interrupt { irq } => Fields::varint(Kind::Interrupt, u64::from(irq)),
            Event::FunctionEntry { func } => Fields::varint(Kind::FunctionEntry, func),
            Event::FunctionExit { func } => Fields::varint(Kind::FunctionExit, func),
            Event::ThreadSwitch { thread } => Fields::varint(Kind::ThreadSwitch, thread),
            Event::ClockBack { back } => Fields::varint(Kind::ClockBack, back),
            Event::User { id, ref payload } => Fields::user(id, payload.as_bytes()),
            Event::ThreadName {
                thread,
                prio,
                ref name,
            } => Fields::thread_name(thread, prio, name.as_bytes()),
            Event::Image { base, size, id } => Fields::image(base, size, id),
            Event::Lost { count, since } => Fields::lost(count, since),
        }
    }
}

/// The first payload varint of a USER record: `id << 6 | len` (`len` at most
/// [`MAX_USER_PAYLOAD`]).
#[inline(always)]
pub const fn user_head(id: u32, len: usize) -> u64 {
    ((id as u64) << USER_LEN_BITS) | len as u64
}

/// Bits of a USER record's first varint that hold the payload length.
pub const USER_LEN_BITS: u32 = 6;

/// The id and payload length a USER record's first varint `v` holds, or the field that
/// is out of range.
#[inline(always)]
pub const fn split_user_head(v: u64) -> Result<(u32, usize), DecodeErrorReason> {
    let len = (v & ((1 << USER_LEN_BITS) - 1)) as usize;
    let id = v >> USER_LEN_BITS;
    if id > u32::MAX as u64 {
        return Err(DecodeErrorReason::BadField("user id"));
    }
    if len > MAX_USER_PAYLOAD {
        return Err(DecodeErrorReason::BadField("user payload length"));
    }
    Ok((id as u32, len))
}

/// The priority and name length a THREAD record's second varint `v` holds (the layout
/// of a USER record's first varint, [`user_head`]), or the field that is out of range.
#[inline(always)]
pub const fn split_thread_head(v: u64) -> Result<(u32, usize), DecodeErrorReason> {
    let len = (v & ((1 << USER_LEN_BITS) - 1)) as usize;
    let prio = v >> USER_LEN_BITS;
    if prio > u32::MAX as u64 {
        return Err(DecodeErrorReason::BadField("thread priority"));
    }
    if len > MAX_USER_PAYLOAD {
        return Err(DecodeErrorReason::BadField("thread name length"));
    }
    Ok((prio as u32, len))
}

/// The header varint of a record of kind code `kind` written `delta` ticks after the
/// previous one (`delta` at most [`MAX_DELTA`]).
#[inline(always)]
pub const fn record_header(delta: u64, kind: u8) -> u64 {
    (delta << KIND_BITS) | kind as u64
}

/// Bits at the bottom of a record header that hold the [`Kind`] code.
pub const KIND_BITS: u32 = 4;

/// Encodes `event` at time `time` into `out`; returns the number of bytes used.
#[inline(always)]
pub fn encode(out: &mut [u8; MAX_RECORD_LEN], time: Time, ts: u64, event: &Event) -> usize {
    let mut at = 0;
    encode_with(time, ts, event, &mut |b| {
        out[at] = b;
        at += 1;
    });
    at
}

/// The single byte that ends a block's records.
pub const END_MARKER: u8 = Kind::End as u8;

/// What is wrong with a block's bytes; `offset` is from the start of the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset of the record that could not be decoded, from the first record byte.
    pub offset: usize,
    /// What went wrong.
    pub reason: DecodeErrorReason,
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorReason {
    /// The bytes end in the middle of a record.
    Truncated,
    /// A varint is longer than ten bytes or exceeds 64 bits.
    VarintOverflow,
    /// A kind code no version of this format defines.
    UnknownKind(u8),
    /// A field is out of its range (named).
    BadField(&'static str),
    /// Adding the delta to the running time overflows 64 bits.
    TimeOverflow,
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.reason {
            DecodeErrorReason::Truncated => write!(f, "record truncated"),
            DecodeErrorReason::VarintOverflow => write!(f, "varint longer than 64 bits"),
            DecodeErrorReason::UnknownKind(k) => write!(f, "unknown record kind {k}"),
            DecodeErrorReason::BadField(name) => write!(f, "field {name} out of range"),
            DecodeErrorReason::TimeOverflow => write!(f, "timestamp overflows 64 bits"),
        }
    }
}

/// Decodes the records of one block, oldest first.
///
/// The iterator stops at the end of the bytes or at an [`END_MARKER`]; after an error it
/// yields nothing more (the rest of the block cannot be trusted).
#[derive(Debug, Clone)]
pub struct BlockRecords<'a> {
    bytes: &'a [u8],
    at: usize,
    prev_ts: u64,
    failed: bool,
}

impl<'a> BlockRecords<'a> {
    /// Records in `bytes` (the part of a block after its header), times counted from `base_ts`.
    pub fn new(bytes: &'a [u8], base_ts: u64) -> Self {
        BlockRecords {
            bytes,
            at: 0,
            prev_ts: base_ts,
            failed: false,
        }
    }

    /// Byte offset of the next record, from the first record byte.
    pub fn offset(&self) -> usize {
        self.at
    }

    fn fail(
        &mut self,
        at: usize,
        reason: DecodeErrorReason,
    ) -> Option<Result<Record, DecodeError>> {
        self.failed = true;
        Some(Err(DecodeError { offset: at, reason }))
    }

    #[inline(always)]
    fn varint(&self, at: usize) -> Result<(u64, usize), DecodeErrorReason> {
        varint::read(self.bytes, at).map_err(|e| match e {
            VarintError::Truncated => DecodeErrorReason::Truncated,
            VarintError::Overflow => DecodeErrorReason::VarintOverflow,
        })
    }

    #[inline(always)]
    fn decode_one(&mut self) -> Result<Option<Record>, DecodeErrorReason> {
        loop {
            if self.at >= self.bytes.len() {
                return Ok(None);
            }
            let (header, mut at) = self.varint(self.at)?;
            let code = (header & 0xf) as u8;
            let delta = header >> 4;
            let kind = Kind::from_code(code).ok_or(DecodeErrorReason::UnknownKind(code))?;
            match kind {
                Kind::End => {
                    self.at = self.bytes.len();
                    return Ok(None);
                }
                Kind::Timestamp => {
                    let (abs, next) = self.varint(at)?;
                    self.prev_ts = abs;
                    self.at = next;
                    continue;
                }
                _ => {}
            }
            let ts = self
                .prev_ts
                .checked_add(delta)
                .ok_or(DecodeErrorReason::TimeOverflow)?;
            let event = match kind {
                Kind::KernelEntry => {
                    let (word, next) = self.varint(at)?;
                    at = next;
                    let word = u32::try_from(word)
                        .map_err(|_| DecodeErrorReason::BadField("kernel entry word"))?;
                    Event::KernelEntry(KernelEntry(word))
                }
                Kind::KernelExit => {
                    let (d, next) = self.varint(at)?;
                    at = next;
                    Event::KernelExit(ExitDuration::from_wire(d))
                }
                Kind::Interrupt => {
                    let (irq, next) = self.varint(at)?;
                    at = next;
                    let irq = u32::try_from(irq).map_err(|_| DecodeErrorReason::BadField("irq"))?;
                    Event::Interrupt { irq }
                }
                Kind::FunctionEntry | Kind::FunctionExit => {
                    let (func, next) = self.varint(at)?;
                    at = next;
                    if kind == Kind::FunctionEntry {
                        Event::FunctionEntry { func }
                    } else {
                        Event::FunctionExit { func }
                    }
                }
                Kind::User => {
                    let (v, next) = self.varint(at)?;
                    let (id, len) = split_user_head(v)?;
                    let data = self
                        .bytes
                        .get(next..next + len)
                        .ok_or(DecodeErrorReason::Truncated)?;
                    at = next + len;
                    let payload = UserPayload::new(data)
                        .ok_or(DecodeErrorReason::BadField("user payload"))?;
                    Event::User { id, payload }
                }
                Kind::Image => {
                    let (base, a) = self.varint(at)?;
                    let (size, b) = self.varint(a)?;
                    let (id, c) = self.varint(b)?;
                    at = c;
                    Event::Image { base, size, id }
                }
                Kind::Lost => {
                    let (count, a) = self.varint(at)?;
                    let (ago, b) = self.varint(a)?;
                    at = b;
                    let since = ts
                        .checked_sub(ago)
                        .ok_or(DecodeErrorReason::BadField("lost since"))?;
                    Event::Lost { count, since }
                }
                Kind::ThreadSwitch => {
                    let (thread, next) = self.varint(at)?;
                    at = next;
                    Event::ThreadSwitch { thread }
                }
                Kind::ThreadName => {
                    let (thread, a) = self.varint(at)?;
                    let (v, next) = self.varint(a)?;
                    let (prio, len) = split_thread_head(v)?;
                    let data = self
                        .bytes
                        .get(next..next + len)
                        .ok_or(DecodeErrorReason::Truncated)?;
                    at = next + len;
                    let name =
                        UserPayload::new(data).ok_or(DecodeErrorReason::BadField("thread name"))?;
                    Event::ThreadName { thread, prio, name }
                }
                Kind::ClockBack => {
                    let (back, next) = self.varint(at)?;
                    at = next;
                    Event::ClockBack { back }
                }
                Kind::End | Kind::Timestamp => unreachable_marker(),
            };
            self.prev_ts = ts;
            self.at = at;
            return Ok(Some(Record { ts, event }));
        }
    }
}

#[inline(always)]
const fn unreachable_marker() -> Event {
    // Markers are handled before the event match; this arm cannot be reached, and
    // returning a harmless value keeps the decoder free of panics.
    Event::Lost { count: 0, since: 0 }
}

impl Iterator for BlockRecords<'_> {
    type Item = Result<Record, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let start = self.at;
        match self.decode_one() {
            Ok(Some(record)) => Some(Ok(record)),
            Ok(None) => None,
            Err(reason) => self.fail(start, reason),
        }
    }
}

#[cfg(feature = "defmt")]
mod defmt_impls {
    use super::*;

    impl defmt::Format for Kind {
        fn format(&self, f: defmt::Formatter<'_>) {
            defmt::write!(f, "{=str}", self.name())
        }
    }

    impl defmt::Format for ExitDuration {
        fn format(&self, f: defmt::Formatter<'_>) {
            match self {
                ExitDuration::Ticks(t) => defmt::write!(f, "duration={=u64} ticks", t),
                ExitDuration::NoEntry => defmt::write!(f, "duration=? (no entry)"),
                ExitDuration::NestingOverflow => defmt::write!(f, "duration=? (nesting overflow)"),
            }
        }
    }

    impl defmt::Format for Event {
        fn format(&self, f: defmt::Formatter<'_>) {
            match self {
                Event::KernelEntry(e) => match e.as_syscall() {
                    Some(s) => defmt::write!(
                        f,
                        "KENTRY Syscall sys={=u8} cap={=u8} label={=u32} fastpath={=bool}",
                        s.syscall(),
                        s.cap_type(),
                        s.label(),
                        s.fastpath()
                    ),
                    None => defmt::write!(f, "KENTRY {=str} word={=u32:#x}", e.path().name(), e.0),
                },
                Event::KernelExit(d) => defmt::write!(f, "KEXIT {}", d),
                Event::Interrupt { irq } => defmt::write!(f, "IRQ {=u32}", irq),
                Event::FunctionEntry { func } => defmt::write!(f, "FENTRY {=u64:#x}", func),
                Event::FunctionExit { func } => defmt::write!(f, "FEXIT {=u64:#x}", func),
                Event::User { id, payload } => {
                    defmt::write!(f, "USER id={=u32} data={=[u8]:x}", id, payload.as_bytes())
                }
                Event::Image { base, size, id } => defmt::write!(
                    f,
                    "IMAGE base={=u64:#x} size={=u64} id={=u64:#x}",
                    base,
                    size,
                    id
                ),
                Event::Lost { count, since } => {
                    defmt::write!(f, "LOST {=u64} since {=u64}", count, since)
                }
                Event::ThreadSwitch { thread } => defmt::write!(f, "SWITCH {=u64:#x}", thread),
                Event::ThreadName { thread, prio, name } => defmt::write!(
                    f,
                    "THREAD {=u64:#x} prio={=u32} name={=[u8]:a}",
                    thread,
                    prio,
                    name.as_bytes()
                ),
                Event::ClockBack { back } => defmt::write!(f, "CLOCKBACK back={=u64}", back),
            }
        }
    }

    impl defmt::Format for Record {
        fn format(&self, f: defmt::Formatter<'_>) {
            defmt::write!(f, "{=u64} {}", self.ts, self.event)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sel4::EntryPath;

    fn one_of_each() -> [Event; 13] {
        [
            Event::KernelEntry(KernelEntry::syscall(1, 10, true, 42)),
            Event::KernelEntry(KernelEntry::other(EntryPath::Interrupt, 3, 77)),
            Event::KernelExit(ExitDuration::Ticks(1234)),
            Event::KernelExit(ExitDuration::NoEntry),
            Event::KernelExit(ExitDuration::NestingOverflow),
            Event::Interrupt { irq: 65_535 },
            Event::FunctionEntry { func: 0x0800_1234 },
            Event::FunctionExit { func: u64::MAX },
            Event::User {
                id: u32::MAX,
                payload: UserPayload::new(&[7; MAX_USER_PAYLOAD]).unwrap(),
            },
            Event::Image {
                base: u64::MAX,
                size: 1 << 40,
                id: 0xdead_beef,
            },
            Event::ClockBack { back: u64::MAX },
            Event::ThreadName {
                thread: u64::MAX,
                prio: u32::MAX,
                name: UserPayload::new(&[b'x'; MAX_USER_PAYLOAD]).unwrap(),
            },
            Event::ThreadName {
                thread: 0x2000_0400,
                prio: 3,
                name: UserPayload::new(b"producer").unwrap(),
            },
        ]
    }

    fn round_trip(events: &[(Time, u64, Event)], base: u64) -> ([u8; 4096], usize) {
        let mut block = [0u8; 4096];
        let mut used = 0;
        for (time, ts, event) in events {
            let mut buf = [0u8; MAX_RECORD_LEN];
            let n = encode(&mut buf, *time, *ts, event);
            block[used..used + n].copy_from_slice(&buf[..n]);
            used += n;
        }
        let decoded: Vec<_> = BlockRecords::new(&block[..used], base).collect();
        let expected: Vec<_> = events
            .iter()
            .map(|(_, ts, e)| Ok(Record { ts: *ts, event: *e }))
            .collect();
        assert_eq!(decoded, expected);
        (block, used)
    }

    #[test]
    fn user_payloads_keep_at_most_32_bytes() {
        let data: Vec<u8> = (0..40).collect();
        for n in 0..=40 {
            let p = UserPayload::truncating(&data[..n]);
            assert_eq!(p.as_bytes(), &data[..n.min(MAX_USER_PAYLOAD)]);
            assert_eq!(
                UserPayload::new(&data[..n]).is_some(),
                n <= MAX_USER_PAYLOAD
            );
            if let Some(q) = UserPayload::new(&data[..n]) {
                assert_eq!(q, p);
            }
        }
    }

    #[test]
    fn every_kind_round_trips_with_deltas_and_absolute_times() {
        let mut events = Vec::new();
        let mut ts = 1_000u64;
        for (i, e) in one_of_each().into_iter().enumerate() {
            ts += 1 << (i * 3);
            let time = if i % 3 == 2 {
                Time::Absolute(ts)
            } else {
                Time::Delta(1 << (i * 3))
            };
            events.push((time, ts, e));
        }
        events.push((
            Time::Delta(5),
            ts + 5,
            Event::Lost {
                count: 99,
                since: ts - 10,
            },
        ));
        round_trip(&events, 1_000);
    }

    #[test]
    fn maximum_sizes_fit_the_record_buffer_and_lengths_agree() {
        for e in one_of_each() {
            for time in [
                Time::Absolute(u64::MAX),
                Time::Delta(MAX_DELTA),
                Time::Delta(0),
                Time::Delta(300),
            ] {
                let mut buf = [0u8; MAX_RECORD_LEN];
                let n = encode(&mut buf, time, u64::MAX, &e);
                assert!(n <= MAX_RECORD_LEN);
                assert_eq!(n, encoded_len(time, u64::MAX, &e), "{e:?} {time:?}");
            }
        }
    }

    /// `Fields` (the encoder's general path) writes the bytes of the per-event encoder.
    #[test]
    fn fields_encode_the_bytes_of_encode_with() {
        let mut events = one_of_each().to_vec();
        events.extend([
            Event::Lost {
                count: 3,
                since: 10,
            },
            Event::Lost {
                count: u64::MAX,
                since: u64::MAX,
            },
            Event::User {
                id: 9,
                payload: UserPayload::new(&[]).unwrap(),
            },
            Event::ThreadSwitch { thread: 1 << 40 },
        ]);
        let times = [
            Time::Delta(0),
            Time::Delta(127),
            Time::Delta(1 << 27),
            Time::Delta(MAX_DELTA),
            Time::Absolute(0),
            Time::Absolute(u64::MAX),
        ];
        for e in events {
            for time in times {
                for ts in [0, 5, 1 << 33, u64::MAX] {
                    let mut a = [0u8; MAX_RECORD_LEN];
                    let n = encode(&mut a, time, ts, &e);
                    let mut b = Vec::new();
                    e.fields().encode_with(time, ts, &mut |x| b.push(x));
                    assert_eq!(b, &a[..n], "{e:?} {time:?} {ts}");
                    assert_eq!(e.fields().encoded_len(time, ts), n, "{e:?} {time:?}");
                    assert_eq!(e.fields().kind(), e.kind());
                    assert_eq!(e.fields().is_counted(), e.is_counted());
                }
            }
        }
    }

    /// A KEXIT measured to the record's time writes the duration `ts - since`, as the
    /// event with that duration does; LOST's `ago` likewise.
    #[test]
    fn elapsed_fields_measure_to_the_record_time() {
        for (since, ts) in [(0u64, 0u64), (100, 1000), (1000, 100), (0, u64::MAX)] {
            let event = Event::KernelExit(ExitDuration::Ticks(ts.saturating_sub(since)));
            let fields = Fields::elapsed(Kind::KernelExit, 2, since);
            for time in [Time::Delta(3), Time::Absolute(ts)] {
                let mut a = [0u8; MAX_RECORD_LEN];
                let n = encode(&mut a, time, ts, &event);
                let mut b = Vec::new();
                fields.encode_with(time, ts, &mut |x| b.push(x));
                assert_eq!(b, &a[..n], "{since} {ts}");
                assert_eq!(fields.encoded_len(time, ts), n);
            }
        }
    }

    /// `small_at` gives the payload varint and bytes `encode_with` writes at the same
    /// time (the delta header first, then the varint, then the bytes), for records that
    /// measure and records that do not; `None` for records of several varints.
    #[test]
    fn small_at_is_what_encode_with_writes() {
        let data = [5u8; 7];
        let times = [0u64, 1, 99, 1 << 32, u64::MAX - 1, u64::MAX];
        for ts in times {
            for since in times {
                let cases = [
                    Fields::elapsed(Kind::KernelExit, 2, since),
                    Fields::elapsed(Kind::KernelExit, u64::MAX - 3, since),
                    Fields::varint(Kind::ThreadSwitch, since),
                    Fields::user(9, &data),
                ];
                for fields in cases {
                    let (value, bytes) = fields.small_at(ts).unwrap();
                    let mut want = vec![record_header(3, fields.kind() as u8) as u8];
                    let mut v = value;
                    while v >= 0x80 {
                        want.push(v as u8 | 0x80);
                        v >>= 7;
                    }
                    want.push(v as u8);
                    want.extend_from_slice(bytes);
                    let mut got = Vec::new();
                    fields.encode_with(Time::Delta(3), ts, &mut |x| got.push(x));
                    assert_eq!(got, want, "{ts} {since} {:?}", fields.kind());
                }
            }
        }
        assert_eq!(Fields::image(1, 2, 3).small_at(5), None);
        assert_eq!(Fields::thread_name(1, 2, b"x").small_at(5), None);
    }

    #[test]
    fn fields_cut_user_data_to_the_payload_limit() {
        let data: Vec<u8> = (0..40).collect();
        for n in [0, 1, 32, 33, 40] {
            let event = Event::User {
                id: 77,
                payload: UserPayload::truncating(&data[..n]),
            };
            let mut a = [0u8; MAX_RECORD_LEN];
            let len = encode(&mut a, Time::Delta(1), 1, &event);
            let mut b = Vec::new();
            Fields::user(77, &data[..n]).encode_with(Time::Delta(1), 1, &mut |x| b.push(x));
            assert_eq!(b, &a[..len]);
        }
    }

    #[test]
    fn end_marker_stops_a_block() {
        let mut buf = [0u8; MAX_RECORD_LEN];
        let n = encode(&mut buf, Time::Delta(3), 3, &Event::Interrupt { irq: 5 });
        let mut block = buf[..n].to_vec();
        block.push(END_MARKER);
        block.extend_from_slice(&[0xff; 20]);
        let records: Vec<_> = BlockRecords::new(&block, 0).collect();
        assert_eq!(
            records,
            vec![Ok(Record {
                ts: 3,
                event: Event::Interrupt { irq: 5 }
            })]
        );
    }

    #[test]
    fn compact_sizes() {
        let mut buf = [0u8; MAX_RECORD_LEN];
        // A function entry 500 ticks after the previous record, id 3000: 2 + 2 bytes.
        assert_eq!(
            encode(
                &mut buf,
                Time::Delta(500),
                0,
                &Event::FunctionEntry { func: 3000 }
            ),
            4
        );
        // A kernel exit of 900 ticks, 900 ticks later: 2 + 2 bytes.
        let exit = Event::KernelExit(ExitDuration::Ticks(900));
        assert_eq!(encode(&mut buf, Time::Delta(900), 0, &exit), 4);
    }

    #[test]
    fn errors_name_the_offset() {
        // An interrupt, then a record of unknown kind 13.
        let bytes = [0x12, 0x05, 0x0d];
        let r: Vec<_> = BlockRecords::new(&bytes, 0).collect();
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[1],
            Err(DecodeError {
                offset: 2,
                reason: DecodeErrorReason::UnknownKind(13)
            })
        );
        // A user event claiming 10 bytes with 2 present.
        let bytes = [0x05, 10, 1, 2];
        let r: Vec<_> = BlockRecords::new(&bytes, 0).collect();
        assert_eq!(
            r,
            vec![Err(DecodeError {
                offset: 0,
                reason: DecodeErrorReason::Truncated
            })]
        );
        // Time overflow.
        let mut buf = [0u8; MAX_RECORD_LEN];
        let n = encode(
            &mut buf,
            Time::Delta(MAX_DELTA),
            0,
            &Event::Interrupt { irq: 1 },
        );
        let r: Vec<_> = BlockRecords::new(&buf[..n], u64::MAX - 1).collect();
        assert_eq!(
            r,
            vec![Err(DecodeError {
                offset: 0,
                reason: DecodeErrorReason::TimeOverflow
            })]
        );
    }

    #[test]
    fn kind_names_parse_back() {
        for k in Kind::EVENTS {
            assert_eq!(Kind::from_name(k.name()), Some(k));
            assert_eq!(Kind::from_name(&k.name().to_lowercase()), Some(k));
        }
        assert_eq!(Kind::from_name("END"), None);
    }
}
