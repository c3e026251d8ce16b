//! `--format perfetto`: Perfetto's native protobuf trace, for ui.perfetto.dev.
//!
//! The file is a `Trace`: `TracePacket`s written one after the other as they are made
//! (never the whole trace in memory). Each ring is one packet sequence
//! (`trusted_packet_sequence_id` = ring index + 1), with `TrackEvent`s on custom tracks:
//!
//! - a "CPUs" track (uuid [`CPUS_UUID`]) parenting one track per ring, "CPU n" (uuid
//!   [`cpu_uuid`]), described in the first packets of the file;
//! - on a CPU's track, nested slices: kernel entry to exit, named by the syscall
//!   (`Call`, `Recv`, ...) or the entry path (`Interrupt 27`, `VMFault`), with the cap
//!   type, label and fastpath flag (or core and word) as debug annotations on the
//!   begin, and the measured duration on the end; function entry to exit, named by the
//!   symbol (or `0x...` without symbols);
//! - instants: interrupts (`IRQ 27`), user events (`User 5`, with id and payload),
//!   images, lost records (with `previous_packet_dropped` set on that packet), records
//!   overwritten before the oldest block, and exits whose entry is not in the trace.
//!
//! - thread tracks (format version 2, `SWITCH` records): a track per thread a CPU
//!   switches to ("Thread 0x...", uuid [`thread_uuid`], child of the CPU's track), on
//!   which the thread's time running on that CPU, from the switch to it to the next
//!   switch, is one slice (category `thread`); the switch itself is also an instant on
//!   the CPU's track (with the `thread` annotation). A clock that stepped back
//!   (`CLOCKBACK`) is an instant (category `clock`, with `back_ticks`).
//! - thread names (format version 3, `THREAD` records): a thread track is named
//!   `name (0x...)` and its running slices `name`, from [`super::thread_names`] (the
//!   latest THREAD record of the id in the whole dump, computed before the rings are
//!   exported in parallel, so a track is named even where its THREAD record comes after
//!   the first switch). A thread renamed later shows its latest name on every track;
//!   each THREAD record is also an instant "Thread named" (category `thread`, with
//!   `thread`, `prio` and `name`), so the earlier names stay visible where they were
//!   given. Unnamed threads stay `Thread 0x...`.
//! - FreeRTOS USER events (ids in `tracemark_format::freertos`) are instants named as
//!   `tracemark decode` names them (`freertos:QUEUE_SEND`), with the queue, semaphore,
//!   task or timer address as the `object` annotation.
//!
//! Every event carries an interned category (`kernel`, `function`, `irq`, `user`,
//! `image`, `lost`, `thread`, `clock`) so that a reader can count them.
//!
//! # Interning and lost records
//!
//! Event names, categories, debug-annotation names and cap-type strings are interned
//! per sequence (`name_iid`, ...), each defined in the `interned_data` of the first
//! packet that uses it. The first packet of a sequence sets
//! `SEQ_INCREMENTAL_STATE_CLEARED` and the sequence's packet defaults (the CPU's track
//! as the default `track_uuid`, which the events then omit); the packets using interned
//! ids set `SEQ_NEEDS_INCREMENTAL_STATE`. A packet with `previous_packet_dropped` makes the
//! trace processor distrust the sequence's interned state, so the lost-record instant
//! uses plain strings, and the next packet clears the state again and re-interns what
//! it uses.
//!
//! # Nesting
//!
//! Kernel and function slices share the CPU's track and are kept balanced and properly
//! nested by [`Nesting`]; slices still open at the end of a ring are closed at its last
//! time with a `truncated` annotation.

mod fast;
pub mod proto;

use std::io::Write;

use prost::Message;
use tracemark_format::record::ExitDuration;
use tracemark_format::{EntryPath, Event, KernelEntry};

use super::nesting::{Close, Nesting, Open};
use super::{Item, RingInfo, Sink};
use proto::{
    DebugAnnotation, DebugAnnotationName, EventCategory, EventName, InternedData, InternedString,
    TracePacket, TrackDescriptor, TrackEvent,
};

/// Uuid of the "CPUs" parent track.
pub const CPUS_UUID: u64 = 1;

/// Uuid of the track of ring `ring`.
pub fn cpu_uuid(ring: u32) -> u64 {
    1000 + u64::from(ring)
}

/// Uuid of the track of the `k`-th thread (from 0) that ring `ring` switches to. A
/// thread is tracked per CPU: one that runs on two CPUs has a track under each (the
/// rings are exported independently, in parallel), so that the slices of a track come
/// from one packet sequence and stay balanced.
pub fn thread_uuid(ring: u32, k: u64) -> u64 {
    (1 << 62) | (u64::from(ring) << 40) | (k & ((1 << 40) - 1))
}

// THREAD TRACKS, what is not done: function slices stay on the CPU's track (with the
// kernel slices) rather than moving to the running thread's track, so a function
// that spans a switch is shown on the CPU, not on its thread.

/// Bytes buffered before a write.
const FLUSH_AT: usize = 1 << 20;

/// Entries of a sequence's function-name cache.
const FUNC_CACHE: usize = 512;

#[inline]
fn func_slot(f: u64) -> usize {
    (f ^ (f >> 9) ^ (f >> 18)) as usize % FUNC_CACHE
}

/// Event categories (interned per sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cat {
    Kernel = 0,
    Function = 1,
    Irq = 2,
    User = 3,
    Image = 4,
    Lost = 5,
    Thread = 6,
    Clock = 7,
}

const CAT_NAMES: [&str; 8] = [
    "kernel", "function", "irq", "user", "image", "lost", "thread", "clock",
];

/// Debug-annotation names (interned per sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    Cap = 0,
    Label = 1,
    Fastpath = 2,
    Syscall = 3,
    Core = 4,
    Irq = 5,
    Word = 6,
    DurationTicks = 7,
    DurationNs = 8,
    Id = 9,
    Payload = 10,
    Base = 11,
    Size = 12,
    Func = 13,
    Truncated = 14,
    Note = 15,
    Source = 16,
    Thread = 17,
    Back = 18,
    Name = 19,
    Prio = 20,
    Object = 21,
}

const ARG_NAMES: [&str; 22] = [
    "cap",
    "label",
    "fastpath",
    "syscall",
    "core",
    "irq",
    "word",
    "duration_ticks",
    "duration_ns",
    "id",
    "payload",
    "base",
    "size",
    "func",
    "truncated",
    "note",
    "source",
    "thread",
    "back_ticks",
    "name",
    "prio",
    "object",
];

/// What an event is named after (the key of the name intern table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum NameKey {
    /// A syscall entry, by number.
    Syscall(u8),
    /// An interrupt-path kernel entry, by IRQ.
    InterruptPath(u32),
    /// A Linux syscall of a `LinuxArm` ring, by number ([`crate::linux_syscall`]).
    Linux(u32),
    /// Another entry path.
    Path(u8),
    /// An IRQ record.
    Irq(u32),
    /// A function.
    Func(u64),
    /// A user event id.
    User(u32),
    /// An image record.
    Image,
    /// A kernel exit with no entry to close.
    OrphanKernelExit,
    /// A function exit with no entry to close.
    OrphanFunctionExit,
    /// A thread switch (SWITCH record): the thread that runs next.
    Switch,
    /// The clock stepped back (CLOCKBACK record).
    ClockBack,
    /// A thread's time running on a CPU (slice on its thread track).
    Running(u64),
    /// A THREAD record (a thread named).
    ThreadName,
}

/// One ring's sequence: its intern tables and open slices.
struct Seq {
    info: RingInfo,
    id: u32,
    /// Interned event names.
    names: std::collections::HashMap<NameKey, u64>,
    /// Fast path for syscall names: iid by syscall number (0: not interned).
    syscall_iids: [u64; 16],
    /// Fast path for function names: a direct-mapped cache of (function, iid) in
    /// front of `names` (iid 0: empty); allocated on first use, so that a sink
    /// running one ring of many ([`Perfetto::per_ring`]) pays nothing for the others.
    func_cache: Vec<(u64, u64)>,
    /// Interned categories: iid (0: not interned).
    cats: [u64; CAT_NAMES.len()],
    /// Interned annotation names: iid (0: not interned).
    args: [u64; ARG_NAMES.len()],
    /// Thread tracks described on this sequence: thread -> track uuid.
    threads: std::collections::HashMap<u64, u64>,
    /// The thread track whose running slice is open.
    running: Option<u64>,
    /// Interned source locations (`file:line`) by function: iid.
    sources: std::collections::HashMap<u64, u64>,
    /// Interned cap-type strings by tag: iid (0: not interned).
    caps: [u64; 32],
    next_name: u64,
    next_string: u64,
    next_cat: u64,
    next_arg: u64,
    /// The next packet must clear the incremental state.
    clear: bool,
    /// Open slices.
    nesting: Nesting,
    last_ns: u64,
    seen_any: bool,
    lost_reported: u64,
}

impl Seq {
    fn new(info: RingInfo) -> Self {
        Seq {
            id: info.index + 1,
            info,
            names: std::collections::HashMap::new(),
            syscall_iids: [0; 16],
            func_cache: Vec::new(),
            cats: [0; CAT_NAMES.len()],
            args: [0; ARG_NAMES.len()],
            threads: std::collections::HashMap::new(),
            running: None,
            caps: [0; 32],
            sources: std::collections::HashMap::new(),
            next_name: 1,
            next_string: 1,
            next_cat: 1,
            next_arg: 1,
            clear: true,
            nesting: Nesting::default(),
            last_ns: 0,
            seen_any: false,
            lost_reported: 0,
        }
    }

    /// Forgets every interned id (the incremental state is cleared with the next
    /// packet).
    fn reset_interning(&mut self) {
        self.names.clear();
        self.syscall_iids = [0; 16];
        self.func_cache.fill((0, 0));
        self.cats = [0; CAT_NAMES.len()];
        self.args = [0; ARG_NAMES.len()];
        self.sources.clear();
        self.caps = [0; 32];
        self.next_name = 1;
        self.next_string = 1;
        self.next_cat = 1;
        self.next_arg = 1;
        self.clear = true;
    }
}

/// A function id's display name.
pub type FunctionNamer = dyn Fn(u64) -> Option<String> + Send;

/// The Perfetto sink: writes packets to `out` as records arrive.
pub struct Perfetto<W: Write> {
    out: W,
    /// Packets not yet written; allocated by [`Sink::begin`], so that sinks made ahead
    /// for many rings cost little until they run.
    buf: Vec<u8>,
    /// The sequences: one per ring, or, per ring ([`Perfetto::per_ring`]), only that
    /// ring's (so that N sinks of N rings keep N sequences, not N^2).
    seqs: Vec<Seq>,
    /// Interned data of the packet being built.
    interned: InternedData,
    /// Reused annotation vector.
    annots: Vec<DebugAnnotation>,
    namer: Option<Box<FunctionNamer>>,
    sourcer: Option<Box<FunctionNamer>>,
    /// Thread names, for thread tracks and running slices.
    thread_names: Option<super::ThreadNames>,
    enc: fast::Encoder,
    /// Per-ring mode: the only ring this sink handles.
    only: Option<u32>,
    /// Bytes written so far.
    pub written: u64,
}

impl<W: Write> Perfetto<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> Self {
        Perfetto {
            out,
            buf: Vec::new(),
            seqs: Vec::new(),
            interned: InternedData::default(),
            annots: Vec::with_capacity(8),
            namer: None,
            sourcer: None,
            thread_names: None,
            enc: fast::Encoder::default(),
            only: None,
            written: 0,
        }
    }

    /// Handles ring `ring` only (its descriptor, its records), without the [`header`]:
    /// for running one sink per ring in parallel ([`super::for_each_ring`]), since the
    /// rings are independent packet sequences. The outputs of the rings, cut at packet
    /// boundaries (every write is whole packets), may then be interleaved in any order
    /// after the header: the trace processor orders packets by time, and each
    /// sequence's own packets stay in order.
    pub fn per_ring(mut self, ring: u32) -> Self {
        self.only = Some(ring);
        self
    }

    /// Names functions with `namer` (a symbol table); unnamed ones show as `0x...`.
    pub fn with_function_names(mut self, namer: Box<FunctionNamer>) -> Self {
        self.namer = Some(namer);
        self
    }

    /// Gives function slices a `source` annotation (`file:line`) from `sourcer`.
    pub fn with_function_sources(mut self, sourcer: Box<FunctionNamer>) -> Self {
        self.sourcer = Some(sourcer);
        self
    }

    /// Names thread tracks and running slices from `names` (see
    /// [`super::thread_names`]); unnamed threads show as `Thread 0x...`.
    pub fn with_thread_names(mut self, names: super::ThreadNames) -> Self {
        self.thread_names = Some(names);
        self
    }

    /// The output, once finished.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Adds the `source` annotation of `func`, if known (interned per sequence).
    fn source_arg(&mut self, s: usize, func: u64) {
        let Some(sourcer) = &self.sourcer else {
            return;
        };
        let iid = match self.seqs[s].sources.get(&func) {
            Some(&iid) => iid,
            None => {
                let Some(text) = sourcer(func) else {
                    return;
                };
                let seq = &mut self.seqs[s];
                let iid = seq.next_string;
                seq.next_string += 1;
                seq.sources.insert(func, iid);
                self.interned
                    .debug_annotation_string_values
                    .push(InternedString {
                        iid: Some(iid),
                        str: Some(text.into_bytes()),
                    });
                iid
            }
        };
        let name_iid = Some(self.arg_iid(s, Arg::Source));
        self.annots.push(DebugAnnotation {
            name_iid,
            string_value_iid: Some(iid),
            ..Default::default()
        });
    }

    fn put(&mut self, p: &TracePacket) -> std::io::Result<()> {
        self.buf.push(proto::TRACE_PACKET_TAG);
        // Writing into a Vec cannot fail.
        let _ = p.encode_length_delimited(&mut self.buf);
        if self.buf.len() >= FLUSH_AT {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> std::io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    fn name_iid(&mut self, s: usize, key: NameKey) -> u64 {
        let seq = &mut self.seqs[s];
        if let NameKey::Syscall(n) = key {
            let iid = seq.syscall_iids[(n & 15) as usize];
            if iid != 0 {
                return iid;
            }
        } else if let NameKey::Func(f) = key {
            if seq.func_cache.is_empty() {
                seq.func_cache = vec![(0, 0); FUNC_CACHE];
            }
            let (cf, iid) = seq.func_cache[func_slot(f)];
            if iid != 0 && cf == f {
                return iid;
            }
            if let Some(&iid) = seq.names.get(&key) {
                seq.func_cache[func_slot(f)] = (f, iid);
                return iid;
            }
        } else if let Some(&iid) = seq.names.get(&key) {
            return iid;
        }
        let iid = seq.next_name;
        seq.next_name += 1;
        match key {
            NameKey::Syscall(n) => seq.syscall_iids[(n & 15) as usize] = iid,
            NameKey::Func(f) => {
                seq.func_cache[func_slot(f)] = (f, iid);
                seq.names.insert(key, iid);
            }
            _ => {
                seq.names.insert(key, iid);
            }
        }
        let name = match key {
            NameKey::Syscall(n) => match seq.info.abi.syscall_name(n) {
                Some(name) => name.to_string(),
                None => format!("Syscall #{n}"),
            },
            NameKey::InterruptPath(irq) => format!("Interrupt {irq}"),
            NameKey::Linux(n) => tracemark_decoder::syscalls::name(n)
                .map_or_else(|| format!("Linux syscall {n}"), str::to_string),
            NameKey::Path(p) => EntryPath::from_bits(p).name().to_string(),
            NameKey::Irq(irq) => format!("IRQ {irq}"),
            NameKey::Func(f) => self
                .namer
                .as_ref()
                .and_then(|n| n(f))
                .unwrap_or_else(|| format!("{f:#x}")),
            NameKey::User(id) => super::user_event_name(id),
            NameKey::Image => "Image".to_string(),
            NameKey::OrphanKernelExit => "Kernel exit without entry".to_string(),
            NameKey::OrphanFunctionExit => "Function exit without entry".to_string(),
            NameKey::Switch => "Thread switch".to_string(),
            NameKey::ClockBack => "Clock stepped back".to_string(),
            NameKey::Running(t) => match self.thread_names.as_ref().and_then(|n| n.get(&t)) {
                Some(name) => name.clone(),
                None => format!("Thread {t:#x}"),
            },
            NameKey::ThreadName => "Thread named".to_string(),
        };
        self.interned.event_names.push(EventName {
            iid: Some(iid),
            name: Some(name),
        });
        iid
    }

    fn cat_iid(&mut self, s: usize, c: Cat) -> u64 {
        let seq = &mut self.seqs[s];
        let slot = &mut seq.cats[c as usize];
        if *slot == 0 {
            *slot = seq.next_cat;
            seq.next_cat += 1;
            self.interned.event_categories.push(EventCategory {
                iid: Some(*slot),
                name: Some(CAT_NAMES[c as usize].to_string()),
            });
        }
        *slot
    }

    fn arg_iid(&mut self, s: usize, a: Arg) -> u64 {
        let seq = &mut self.seqs[s];
        let slot = &mut seq.args[a as usize];
        if *slot == 0 {
            *slot = seq.next_arg;
            seq.next_arg += 1;
            self.interned
                .debug_annotation_names
                .push(DebugAnnotationName {
                    iid: Some(*slot),
                    name: Some(ARG_NAMES[a as usize].to_string()),
                });
        }
        *slot
    }

    fn cap_iid(&mut self, s: usize, tag: u8) -> u64 {
        let seq = &mut self.seqs[s];
        let slot = &mut seq.caps[(tag & 31) as usize];
        if *slot == 0 {
            *slot = seq.next_string;
            seq.next_string += 1;
            let name = match seq.info.abi.cap_name(tag) {
                Some(n) => n.to_string(),
                None => format!("cap type {tag}"),
            };
            self.interned
                .debug_annotation_string_values
                .push(InternedString {
                    iid: Some(*slot),
                    str: Some(name.into_bytes()),
                });
        }
        *slot
    }

    fn arg_uint(&mut self, s: usize, a: Arg, v: u64) {
        let name_iid = Some(self.arg_iid(s, a));
        self.annots.push(DebugAnnotation {
            name_iid,
            uint_value: Some(v),
            ..Default::default()
        });
    }

    fn arg_bool(&mut self, s: usize, a: Arg, v: bool) {
        let name_iid = Some(self.arg_iid(s, a));
        self.annots.push(DebugAnnotation {
            name_iid,
            bool_value: Some(v),
            ..Default::default()
        });
    }

    fn arg_str(&mut self, s: usize, a: Arg, v: String) {
        let name_iid = Some(self.arg_iid(s, a));
        self.annots.push(DebugAnnotation {
            name_iid,
            string_value: Some(v),
            ..Default::default()
        });
    }

    /// Writes a track event of type `ty` on ring `s`'s track, with interned name
    /// `name` (none for a slice end), category `cat` and the annotations pushed since
    /// the last event.
    fn event(
        &mut self,
        s: usize,
        ns: u64,
        ty: i32,
        name: Option<u64>,
        cat: Option<u64>,
    ) -> std::io::Result<()> {
        self.event_on(s, ns, ty, name, cat, None)
    }

    /// [`Self::event`] on track `track` (the CPU's track when `None`).
    fn event_on(
        &mut self,
        s: usize,
        ns: u64,
        ty: i32,
        name: Option<u64>,
        cat: Option<u64>,
        track: Option<u64>,
    ) -> std::io::Result<()> {
        let seq = &mut self.seqs[s];
        let mut flags = proto::SEQ_NEEDS_INCREMENTAL_STATE;
        if seq.clear {
            seq.clear = false;
            flags |= proto::SEQ_INCREMENTAL_STATE_CLEARED;
        }
        let interned = (!self.interned.is_empty()).then_some(&self.interned);
        self.enc.packet(
            &mut self.buf,
            &fast::EventPacket {
                ts: ns,
                seq: seq.id,
                flags,
                cat,
                annots: &self.annots,
                ty,
                name,
                // The CPU track is the sequence's default track.
                track,
                default_track: (flags & proto::SEQ_INCREMENTAL_STATE_CLEARED != 0)
                    .then(|| cpu_uuid(seq.info.index)),
                interned,
            },
        );
        self.annots.clear();
        if interned.is_some() {
            self.interned = InternedData::default();
        }
        if self.buf.len() >= FLUSH_AT {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// An instant with plain (not interned) strings and `previous_packet_dropped`:
    /// the record of a loss. The next packet clears the incremental state.
    fn loss(&mut self, s: usize, ns: u64, name: &str, count: u64) -> std::io::Result<()> {
        let seq = &self.seqs[s];
        let p = TracePacket {
            timestamp: Some(ns),
            trusted_packet_sequence_id: Some(seq.id),
            track_event: Some(TrackEvent {
                categories: vec![CAT_NAMES[Cat::Lost as usize].to_string()],
                debug_annotations: vec![DebugAnnotation {
                    name: Some("count".to_string()),
                    uint_value: Some(count),
                    ..Default::default()
                }],
                r#type: Some(proto::TYPE_INSTANT),
                name: Some(name.to_string()),
                track_uuid: Some(cpu_uuid(seq.info.index)),
                ..Default::default()
            }),
            previous_packet_dropped: Some(true),
            ..Default::default()
        };
        self.put(&p)?;
        // Pending interned entries (none: `event` takes them all) would be lost with
        // the state; start over.
        self.interned = InternedData::default();
        self.seqs[s].reset_interning();
        Ok(())
    }

    fn end(&mut self, s: usize, ns: u64) -> std::io::Result<()> {
        self.event(s, ns, proto::TYPE_SLICE_END, None, None)
    }

    /// A SWITCH record: an instant on the CPU's track, the running slice of the
    /// outgoing thread ended, the incoming thread's track described (the first time)
    /// and its running slice begun.
    fn thread_switch(&mut self, s: usize, ns: u64, thread: u64) -> std::io::Result<()> {
        self.arg_uint(s, Arg::Thread, thread);
        self.instant(s, ns, NameKey::Switch, Cat::Thread)?;
        if let Some(track) = self.seqs[s].running.take() {
            self.event_on(s, ns, proto::TYPE_SLICE_END, None, None, Some(track))?;
        }
        let seq = &mut self.seqs[s];
        let track = match seq.threads.get(&thread) {
            Some(&t) => t,
            None => {
                let track = thread_uuid(seq.info.index, seq.threads.len() as u64);
                seq.threads.insert(thread, track);
                let p = TracePacket {
                    trusted_packet_sequence_id: Some(seq.id),
                    track_descriptor: Some(TrackDescriptor {
                        uuid: Some(track),
                        name: Some(super::thread_label(self.thread_names.as_ref(), thread)),
                        parent_uuid: Some(cpu_uuid(seq.info.index)),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                self.put(&p)?;
                track
            }
        };
        let name = self.name_iid(s, NameKey::Running(thread));
        let cat = self.cat_iid(s, Cat::Thread);
        self.arg_uint(s, Arg::Thread, thread);
        self.seqs[s].running = Some(track);
        self.event_on(
            s,
            ns,
            proto::TYPE_SLICE_BEGIN,
            Some(name),
            Some(cat),
            Some(track),
        )
    }

    fn kernel_entry(&mut self, s: usize, ns: u64, e: KernelEntry) -> std::io::Result<()> {
        let key = match (e.as_syscall(), e.as_other()) {
            (Some(sc), _) => NameKey::Syscall(sc.syscall()),
            (None, Some(o)) if e.path() == EntryPath::Interrupt => NameKey::InterruptPath(o.word()),
            _ => match super::linux_syscall(e, self.seqs[s].info.abi) {
                Some((n, _)) => NameKey::Linux(n),
                None => NameKey::Path(e.path().into_bits()),
            },
        };
        let name = self.name_iid(s, key);
        let cat = self.cat_iid(s, Cat::Kernel);
        if let Some(sc) = e.as_syscall() {
            let cap = self.cap_iid(s, sc.cap_type());
            let name_iid = Some(self.arg_iid(s, Arg::Cap));
            self.annots.push(DebugAnnotation {
                name_iid,
                string_value_iid: Some(cap),
                ..Default::default()
            });
            self.arg_uint(s, Arg::Label, u64::from(sc.label()));
            self.arg_bool(s, Arg::Fastpath, sc.fastpath());
            self.arg_uint(s, Arg::Syscall, u64::from(sc.syscall()));
        } else if let Some(o) = e.as_other() {
            self.arg_uint(s, Arg::Core, u64::from(o.core()));
            let a = if e.path() == EntryPath::Interrupt {
                Arg::Irq
            } else {
                Arg::Word
            };
            self.arg_uint(s, a, u64::from(o.word()));
        }
        let ty = if self.seqs[s].nesting.open(Open::Kernel) {
            proto::TYPE_SLICE_BEGIN
        } else {
            proto::TYPE_INSTANT
        };
        self.event(s, ns, ty, Some(name), Some(cat))
    }

    fn duration_args(&mut self, s: usize, d: ExitDuration) {
        match d {
            ExitDuration::Ticks(t) => {
                self.arg_uint(s, Arg::DurationTicks, t);
                let ns = self.seqs[s].info.ns(t);
                if self.seqs[s].info.clock_hz != 0 {
                    self.arg_uint(s, Arg::DurationNs, ns);
                }
            }
            ExitDuration::NoEntry => {
                self.arg_str(s, Arg::Note, "no entry on the target".to_string());
            }
            ExitDuration::NestingOverflow => {
                self.arg_str(s, Arg::Note, "nesting overflow on the target".to_string());
            }
        }
    }

    fn kernel_exit(&mut self, s: usize, ns: u64, d: ExitDuration) -> std::io::Result<()> {
        match self.seqs[s].nesting.close_kernel() {
            Close::Orphan => self.orphan(s, ns, NameKey::OrphanKernelExit, Cat::Kernel, Some(d)),
            Close::Ends(n) => {
                // Function slices left open inside the kernel slice end with it.
                for _ in 1..n {
                    self.end(s, ns)?;
                }
                self.duration_args(s, d);
                self.end(s, ns)
            }
        }
    }

    fn function_exit(&mut self, s: usize, ns: u64, func: u64) -> std::io::Result<()> {
        match self.seqs[s].nesting.close_function(func) {
            Close::Orphan => {
                self.arg_uint(s, Arg::Func, func);
                self.orphan(s, ns, NameKey::OrphanFunctionExit, Cat::Function, None)
            }
            Close::Ends(n) => {
                for _ in 0..n {
                    self.end(s, ns)?;
                }
                Ok(())
            }
        }
    }

    fn orphan(
        &mut self,
        s: usize,
        ns: u64,
        key: NameKey,
        cat: Cat,
        d: Option<ExitDuration>,
    ) -> std::io::Result<()> {
        let name = self.name_iid(s, key);
        let cat = self.cat_iid(s, cat);
        if let Some(d) = d {
            self.duration_args(s, d);
        }
        self.event(s, ns, proto::TYPE_INSTANT, Some(name), Some(cat))
    }

    fn instant(&mut self, s: usize, ns: u64, key: NameKey, cat: Cat) -> std::io::Result<()> {
        let name = self.name_iid(s, key);
        let cat = self.cat_iid(s, cat);
        self.event(s, ns, proto::TYPE_INSTANT, Some(name), Some(cat))
    }
}

/// The packet that starts every trace: the "CPUs" parent track, on a sequence of its
/// own (id: the number of rings + 1). [`Perfetto`] writes it first, unless it runs per
/// ring ([`Perfetto::per_ring`]), where the caller writes it before the rings' output.
pub fn header(rings: &[RingInfo]) -> Vec<u8> {
    let p = TracePacket {
        trusted_packet_sequence_id: Some(rings.len() as u32 + 1),
        track_descriptor: Some(TrackDescriptor {
            uuid: Some(CPUS_UUID),
            name: Some("CPUs".to_string()),
            child_ordering: Some(proto::CHILD_ORDERING_EXPLICIT),
            ..Default::default()
        }),
        sequence_flags: Some(proto::SEQ_INCREMENTAL_STATE_CLEARED),
        first_packet_on_sequence: Some(true),
        ..Default::default()
    };
    let mut v = vec![proto::TRACE_PACKET_TAG];
    // Writing into a Vec cannot fail.
    let _ = p.encode_length_delimited(&mut v);
    v
}

/// Packet defaults of ring track `uuid`'s sequence: events go on that track unless they
/// say otherwise.
fn defaults(uuid: u64) -> proto::TracePacketDefaults {
    proto::TracePacketDefaults {
        track_event_defaults: Some(proto::TrackEventDefaults {
            track_uuid: Some(uuid),
        }),
    }
}

fn hex_string(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

impl<W: Write> Sink for Perfetto<W> {
    type Error = std::io::Error;

    fn begin(&mut self, rings: &[RingInfo]) -> std::io::Result<()> {
        self.buf = Vec::with_capacity(FLUSH_AT + (64 << 10));
        self.seqs = match self.only {
            Some(o) => {
                let info = rings.get(o as usize).copied().ok_or_else(|| {
                    std::io::Error::other(format!("ring {o} of a dump of {}", rings.len()))
                })?;
                vec![Seq::new(info)]
            }
            None => rings.iter().copied().map(Seq::new).collect(),
        };
        if self.only.is_none() {
            let h = header(rings);
            self.buf.extend_from_slice(&h);
        }
        for s in 0..self.seqs.len() {
            let r = self.seqs[s].info;
            let p = TracePacket {
                trusted_packet_sequence_id: Some(self.seqs[s].id),
                track_descriptor: Some(TrackDescriptor {
                    uuid: Some(cpu_uuid(r.index)),
                    name: Some(super::track_name(rings, r.index as usize)),
                    parent_uuid: Some(CPUS_UUID),
                    sibling_order_rank: Some(i32::try_from(r.cpu).unwrap_or(i32::MAX)),
                    ..Default::default()
                }),
                sequence_flags: Some(proto::SEQ_INCREMENTAL_STATE_CLEARED),
                first_packet_on_sequence: Some(true),
                trace_packet_defaults: Some(defaults(cpu_uuid(r.index))),
                ..Default::default()
            };
            self.put(&p)?;
            self.seqs[s].clear = false;
        }
        Ok(())
    }

    fn record(&mut self, item: &Item) -> std::io::Result<()> {
        let s = if self.only.is_some() {
            0
        } else {
            item.ring as usize
        };
        let ns = self.seqs[s].info.ns(item.ts);
        {
            let seq = &mut self.seqs[s];
            // Never let time go backwards on a sequence (a damaged clock).
            let ns = ns.max(seq.last_ns);
            seq.last_ns = ns;
            if !seq.seen_any {
                seq.seen_any = true;
                let overwritten = seq.info.overwritten;
                if overwritten > 0 {
                    self.loss(s, ns, "Overwritten records", overwritten)?;
                }
            }
        }
        let ns = self.seqs[s].last_ns;
        match item.event {
            Event::KernelEntry(e) => self.kernel_entry(s, ns, e)?,
            Event::KernelExit(d) => self.kernel_exit(s, ns, d)?,
            Event::Interrupt { irq } => {
                self.arg_uint(s, Arg::Irq, u64::from(irq));
                self.instant(s, ns, NameKey::Irq(irq), Cat::Irq)?;
            }
            Event::FunctionEntry { func } => {
                let name = self.name_iid(s, NameKey::Func(func));
                let cat = self.cat_iid(s, Cat::Function);
                self.arg_uint(s, Arg::Func, func);
                self.source_arg(s, func);
                let ty = if self.seqs[s].nesting.open(Open::Function(func)) {
                    proto::TYPE_SLICE_BEGIN
                } else {
                    proto::TYPE_INSTANT
                };
                self.event(s, ns, ty, Some(name), Some(cat))?;
            }
            Event::FunctionExit { func } => self.function_exit(s, ns, func)?,
            Event::User { id, payload } => {
                self.arg_uint(s, Arg::Id, u64::from(id));
                if tracemark_format::freertos::event(id).is_some() {
                    if let Some(obj) = tracemark_format::freertos::object(payload.as_bytes()) {
                        self.arg_uint(s, Arg::Object, u64::from(obj));
                    }
                }
                self.arg_str(s, Arg::Payload, hex_string(payload.as_bytes()));
                self.instant(s, ns, NameKey::User(id), Cat::User)?;
            }
            Event::Image { base, size, id } => {
                self.arg_uint(s, Arg::Base, base);
                self.arg_uint(s, Arg::Size, size);
                self.arg_uint(s, Arg::Id, id);
                self.instant(s, ns, NameKey::Image, Cat::Image)?;
            }
            Event::Lost { count, .. } => {
                self.seqs[s].lost_reported += count;
                self.loss(s, ns, "Lost records", count)?;
            }
            Event::ThreadSwitch { thread } => self.thread_switch(s, ns, thread)?,
            Event::ThreadName { thread, prio, name } => {
                self.arg_uint(s, Arg::Thread, thread);
                self.arg_uint(s, Arg::Prio, u64::from(prio));
                self.arg_str(
                    s,
                    Arg::Name,
                    String::from_utf8_lossy(name.as_bytes()).into_owned(),
                );
                self.instant(s, ns, NameKey::ThreadName, Cat::Thread)?;
            }
            Event::ClockBack { back } => {
                self.arg_uint(s, Arg::Back, back);
                self.instant(s, ns, NameKey::ClockBack, Cat::Clock)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        for s in 0..self.seqs.len() {
            let ns = self.seqs[s].last_ns;
            // Slices still open: the trace ended inside them.
            for _ in 0..self.seqs[s].nesting.drain() {
                self.arg_bool(s, Arg::Truncated, true);
                self.end(s, ns)?;
            }
            // The thread running when the ring ends.
            if let Some(track) = self.seqs[s].running.take() {
                self.event_on(s, ns, proto::TYPE_SLICE_END, None, None, Some(track))?;
            }
            // Drops that no LOST record reported (the ring filled up for good).
            let seq = &self.seqs[s];
            let unreported = seq.info.dropped.saturating_sub(seq.lost_reported);
            if unreported > 0 && seq.seen_any {
                self.loss(s, ns, "Dropped records", unreported)?;
            }
        }
        self.flush_buf()?;
        self.out.flush()?;
        // Done: give the memory back (a per-ring sink may wait for the others).
        self.buf = Vec::new();
        self.seqs = Vec::new();
        Ok(())
    }
}

/// A function id's name or source location, shared by the rings' sinks.
pub type SharedNamer = std::sync::Arc<dyn Fn(u64) -> Option<String> + Send + Sync>;

/// Writes the Perfetto trace of `dump` to `out`: its rings (independent packet
/// sequences) exported in parallel on `threads` threads, their packets written after the
/// [`header`] in ring order ([`crate::ordered`]), so that the bytes do not depend on the
/// number of threads. A ring's sink exists only while its ring is exported. `names` and
/// `sources` name functions ([`Perfetto::with_function_names`],
/// [`Perfetto::with_function_sources`]). Returns the outcome and the output.
pub fn write_trace<W: Write + Send>(
    dump: &tracemark_decoder::dump::Dump<'_>,
    out: W,
    threads: usize,
    names: Option<SharedNamer>,
    sources: Option<SharedNamer>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(super::Outcome, W), crate::ordered::OrderedError<std::io::Error>> {
    let infos = super::ring_infos(dump);
    let thread_names = super::thread_names(dump);
    let head = header(&infos);
    crate::ordered::write(out, &head, infos.len() as u32, |rings| {
        let make = |ring: u32| {
            let mut sink = Perfetto::new(rings.writer(ring))
                .per_ring(ring)
                .with_thread_names(thread_names.clone());
            if let Some(n) = &names {
                let n = n.clone();
                sink = sink.with_function_names(Box::new(move |f| n(f)));
            }
            if let Some(n) = &sources {
                let n = n.clone();
                sink = sink.with_function_sources(Box::new(move |f| n(f)));
            }
            sink
        };
        let mut lazy: Vec<Lazy<'_, _>> = (0..infos.len() as u32)
            .map(|ring| Lazy {
                ring,
                make: &make,
                sink: None,
            })
            .collect();
        super::for_each_ring(dump, &infos, &mut lazy, threads, progress)
    })
}

/// A ring's sink made when the ring starts and dropped when it ends (its
/// [`crate::ordered::RingWriter`] then tells the writing thread the ring is done).
struct Lazy<'a, F> {
    ring: u32,
    make: &'a F,
    sink: Option<Perfetto<crate::ordered::RingWriter>>,
}

impl<F: Fn(u32) -> Perfetto<crate::ordered::RingWriter> + Sync> Sink for Lazy<'_, F> {
    type Error = std::io::Error;

    fn begin(&mut self, rings: &[RingInfo]) -> std::io::Result<()> {
        self.sink.insert((self.make)(self.ring)).begin(rings)
    }

    #[inline]
    fn record(&mut self, item: &Item) -> std::io::Result<()> {
        match &mut self.sink {
            Some(s) => s.record(item),
            None => Err(std::io::Error::other("a record before begin")),
        }
    }

    fn finish(&mut self) -> std::io::Result<()> {
        match self.sink.take() {
            Some(mut s) => s.finish(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracemark_format::SyscallAbi;

    fn item(ts: u64, event: Event) -> Item {
        Item {
            ts,
            number: None,
            ring: 0,
            event,
            entry: None,
        }
    }

    /// The packets of a trace written by the sink.
    fn packets(mut bytes: &[u8]) -> Vec<TracePacket> {
        let mut v = Vec::new();
        while !bytes.is_empty() {
            assert_eq!(bytes[0], proto::TRACE_PACKET_TAG);
            bytes = &bytes[1..];
            v.push(TracePacket::decode_length_delimited(&mut bytes).expect("a packet"));
        }
        v
    }

    #[test]
    fn a_loss_marks_the_packet_and_the_next_one_clears_and_reinterns() {
        let info = RingInfo {
            dropped: 10,
            records: 6,
            ..RingInfo::for_test(2, 1_000_000, SyscallAbi::Sel4)
        };
        let mut sink = Perfetto::new(Vec::new());
        sink.begin(&[info]).unwrap();
        let call = KernelEntry::syscall(1, 4, true, 42);
        for it in [
            item(10, Event::KernelEntry(call)),
            item(11, Event::Lost { count: 3, since: 9 }),
            item(12, Event::KernelExit(ExitDuration::Ticks(2))),
            item(13, Event::KernelEntry(call)),
            item(14, Event::FunctionEntry { func: 0x40 }),
        ] {
            sink.record(&it).unwrap();
        }
        sink.finish().unwrap();
        let p = packets(&sink.into_inner());
        // Descriptors: "CPUs", then "CPU 2" under it.
        assert_eq!(
            p[0].track_descriptor.as_ref().unwrap().name.as_deref(),
            Some("CPUs")
        );
        assert_eq!(
            p[0].sequence_flags,
            Some(proto::SEQ_INCREMENTAL_STATE_CLEARED)
        );
        let cpu = p[1].track_descriptor.as_ref().unwrap();
        assert_eq!(cpu.parent_uuid, Some(CPUS_UUID));
        assert_eq!(cpu.name.as_deref(), Some("CPU 2"));
        // The first event defines "Call" as name 1; times are in ns from 1 MHz.
        let call_begin = &p[2];
        assert_eq!(call_begin.timestamp, Some(10_000));
        let names = &call_begin.interned_data.as_ref().unwrap().event_names;
        assert_eq!(names[0].name.as_deref(), Some("Call"));
        let e = call_begin.track_event.as_ref().unwrap();
        assert_eq!(e.r#type, Some(proto::TYPE_SLICE_BEGIN));
        assert_eq!(e.name_iid, names[0].iid);
        assert_eq!(
            e.debug_annotations.len(),
            4,
            "cap, label, fastpath, syscall"
        );
        // The loss: plain strings, previous_packet_dropped.
        let lost = &p[3];
        assert_eq!(lost.previous_packet_dropped, Some(true));
        let le = lost.track_event.as_ref().unwrap();
        assert_eq!(le.name.as_deref(), Some("Lost records"));
        assert_eq!(le.name_iid, None);
        assert!(lost.interned_data.is_none());
        // The next packet clears the state (the exit: a slice end with the duration).
        let end = &p[4];
        assert_eq!(
            end.sequence_flags,
            Some(proto::SEQ_INCREMENTAL_STATE_CLEARED | proto::SEQ_NEEDS_INCREMENTAL_STATE)
        );
        let ee = end.track_event.as_ref().unwrap();
        assert_eq!(ee.r#type, Some(proto::TYPE_SLICE_END));
        assert_eq!(ee.debug_annotations[0].uint_value, Some(2));
        // "Call" is interned again after the clear.
        let again = &p[5];
        let names = &again.interned_data.as_ref().unwrap().event_names;
        assert_eq!(names[0].name.as_deref(), Some("Call"));
        assert_eq!(again.track_event.as_ref().unwrap().name_iid, names[0].iid);
        // The function has no symbol: named by address.
        let f = &p[6];
        let names = &f.interned_data.as_ref().unwrap().event_names;
        assert_eq!(names[0].name.as_deref(), Some("0x40"));
        // At the end: both open slices closed (truncated), then the unreported drops.
        for end in &p[7..9] {
            let e = end.track_event.as_ref().unwrap();
            assert_eq!(e.r#type, Some(proto::TYPE_SLICE_END));
            assert_eq!(end.timestamp, Some(14_000));
        }
        let dropped = p[9].track_event.as_ref().unwrap();
        assert_eq!(dropped.name.as_deref(), Some("Dropped records"));
        assert_eq!(dropped.debug_annotations[0].uint_value, Some(7));
        assert_eq!(p.len(), 10);
    }

    #[test]
    fn thread_switches_make_a_track_per_thread_with_running_slices() {
        let info = RingInfo {
            index: 1,
            records: 5,
            ..RingInfo::for_test(3, 1_000_000_000, SyscallAbi::Sel4)
        };
        let mut sink = Perfetto::new(Vec::new());
        sink.begin(&[info, info]).unwrap();
        let on1 = |ts, event| Item {
            ring: 1,
            ..item(ts, event)
        };
        for it in [
            on1(10, Event::ThreadSwitch { thread: 0xa00 }),
            on1(20, Event::ThreadSwitch { thread: 0xb00 }),
            on1(25, Event::ClockBack { back: 7 }),
            on1(30, Event::ThreadSwitch { thread: 0xa00 }),
        ] {
            sink.record(&it).unwrap();
        }
        sink.finish().unwrap();
        let p = packets(&sink.into_inner());
        // Thread tracks: described once each, under CPU 3's track (ring 1), named.
        let threads: Vec<&TrackDescriptor> = p
            .iter()
            .filter_map(|p| p.track_descriptor.as_ref())
            .filter(|t| t.parent_uuid == Some(cpu_uuid(1)))
            .collect();
        assert_eq!(threads.len(), 2);
        assert_eq!(threads[0].name.as_deref(), Some("Thread 0xa00"));
        assert_eq!(threads[0].uuid, Some(thread_uuid(1, 0)));
        assert_eq!(threads[1].uuid, Some(thread_uuid(1, 1)));
        // Running slices: begin on the incoming thread's track, end on the outgoing
        // one's at the switch; the last one ends at the ring's last time.
        let on_threads: Vec<(u64, i32, u64)> = p
            .iter()
            .filter_map(|p| {
                let e = p.track_event.as_ref()?;
                Some((p.timestamp?, e.r#type?, e.track_uuid?))
            })
            .collect();
        let (a, b) = (thread_uuid(1, 0), thread_uuid(1, 1));
        let (begin, end) = (proto::TYPE_SLICE_BEGIN, proto::TYPE_SLICE_END);
        assert_eq!(
            on_threads,
            [
                (10, begin, a),
                (20, end, a),
                (20, begin, b),
                (30, end, b),
                (30, begin, a),
                (30, end, a)
            ]
        );
        // Switch and clock instants on the CPU track (no track_uuid: the default).
        let instants = p
            .iter()
            .filter_map(|p| p.track_event.as_ref())
            .filter(|e| e.r#type == Some(proto::TYPE_INSTANT) && e.track_uuid.is_none())
            .count();
        assert_eq!(instants, 4);
    }
}
