//! Output formats for records, written into byte buffers with hand-written formatting
//! (the decode command's hot path).

use tracemark_format::record::ExitDuration;
use tracemark_format::{EntryPath, Event, KernelEntry, SyscallAbi};

use crate::dump::Ring;
use crate::merge::Item;

/// How records are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One line per record:
    /// `cpu0 #51517274 12.345678901 KENTRY Syscall Call cap=CNode label=42 fastpath`.
    /// Columns: CPU, record number (`#-` for LOST records, which have none), time in
    /// seconds (raw ticks if the clock frequency is unknown), kind, details.
    #[default]
    Text,
    /// JSON Lines, one object per record:
    /// `{"cpu":0,"n":12,"ts":123,"time":"0.000000123","kind":"IRQ","irq":27}`.
    /// `n` is null for LOST records; `time` is null if the clock frequency is unknown.
    /// KENTRY: `path`, and `syscall`, `syscall_name`, `cap`, `cap_name`, `label`,
    /// `fastpath` for syscalls or `core`, `word` otherwise. KEXIT: `duration_ticks`
    /// (null when unknown, with `note`), and the entry's `path` and `syscall`,
    /// `syscall_name` when the entry is known. IRQ: `irq`. FENTRY/FEXIT: `func`. USER:
    /// `id`, `data` (hex). IMAGE: `base`, `size`, `id`. LOST: `count`, `since`.
    Json,
    /// CSV with a header line: `cpu,n,ts,time,kind,detail`, where `detail` is the text
    /// format's details.
    Csv,
}

/// Function names by function id or address, for instance from `--elf` files
/// (`symbols::Symbols::names`): FENTRY/FEXIT show the name after the address (text,
/// CSV) or as `symbol` (JSON).
pub type FunctionNames = std::collections::HashMap<u64, String>;

/// Thread names by thread id, for instance from the dump's THREAD records
/// (`threads::names`, issue 17): a SWITCH shows `to=<name>` (text, CSV) or `name`
/// (JSON). Passed in as a value beside [`FunctionNames`], not process-wide state.
pub type ThreadNames = std::collections::HashMap<u64, String>;

/// What the formatter needs to know about a ring.
#[derive(Debug, Clone, Copy)]
pub struct RingCtx<'a> {
    /// CPU number.
    pub cpu: u32,
    /// Clock frequency (0: unknown).
    pub clock_hz: u64,
    /// Syscall numbering.
    pub abi: SyscallAbi,
    /// Function names (`None`: addresses only). Each dump has its own: a value passed
    /// in, not process-wide state.
    pub names: Option<&'a FunctionNames>,
    /// Thread names for SWITCH (`None`: ids only). Each dump has its own, as `names`.
    pub thread_names: Option<&'a ThreadNames>,
}

impl<'a> RingCtx<'a> {
    /// The context of `ring`, without function names.
    pub fn of(ring: &Ring<'_>) -> Self {
        RingCtx {
            cpu: ring.cpu,
            clock_hz: ring.clock_hz,
            abi: ring.abi,
            names: None,
            thread_names: None,
        }
    }

    /// The same context with function names.
    pub fn with_names(self, names: Option<&'a FunctionNames>) -> Self {
        RingCtx { names, ..self }
    }

    /// The same context with thread names.
    pub fn with_thread_names(self, thread_names: Option<&'a ThreadNames>) -> Self {
        RingCtx {
            thread_names,
            ..self
        }
    }

    #[inline]
    fn function_name(&self, func: u64) -> Option<&'a str> {
        self.names?.get(&func).map(String::as_str)
    }

    #[inline]
    fn thread_name(&self, thread: u64) -> Option<&'a str> {
        self.thread_names?.get(&thread).map(String::as_str)
    }
}

#[inline]
fn num(out: &mut Vec<u8>, v: impl itoa::Integer) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(v).as_bytes());
}

#[inline]
fn hex(out: &mut Vec<u8>, v: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"0x");
    let n = (64 - (v | 1).leading_zeros()).div_ceil(4);
    for i in (0..n).rev() {
        out.push(DIGITS[((v >> (i * 4)) & 0xf) as usize]);
    }
}

/// Writes `ts` as seconds with nine decimals (raw ticks if `hz` is 0).
#[inline]
pub fn seconds(out: &mut Vec<u8>, ts: u64, hz: u64) {
    if hz == 0 {
        num(out, ts);
        return;
    }
    let (whole, rem) = if hz == 1_000_000_000 {
        // The common case, with a division the compiler turns into a multiplication.
        (ts / 1_000_000_000, ts % 1_000_000_000)
    } else {
        (ts / hz, ts % hz)
    };
    num(out, whole);
    let ns = if hz == 1_000_000_000 {
        rem
    } else if hz < 18_000_000_000 {
        rem * 1_000_000_000 / hz
    } else {
        (u128::from(rem) * 1_000_000_000 / u128::from(hz)) as u64
    };
    fraction9(out, ns as u32);
}

/// [`seconds`] for a stream of nearby times: remembers the text of the last whole
/// second, so that only the nine decimals are formatted for most records.
#[derive(Debug, Clone, Default)]
pub struct SecondsCache {
    /// The whole seconds cached, if any.
    whole: Option<u64>,
    /// Their decimal text.
    text: Vec<u8>,
}

impl SecondsCache {
    /// Writes `ts` as [`seconds`] does.
    #[inline]
    pub fn write(&mut self, out: &mut Vec<u8>, ts: u64, hz: u64) {
        if hz != 1_000_000_000 {
            seconds(out, ts, hz);
            return;
        }
        let whole = ts / 1_000_000_000;
        if self.whole != Some(whole) {
            self.whole = Some(whole);
            self.text.clear();
            num(&mut self.text, whole);
        }
        out.extend_from_slice(&self.text);
        fraction9(out, (ts % 1_000_000_000) as u32);
    }
}

/// Two decimal digits of every value below 100.
const PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Writes `.` and nine digits of `ns` (below 10^9).
#[inline(always)]
fn fraction9(out: &mut Vec<u8>, ns: u32) {
    let mut d = [b'.'; 10];
    let mut v = ns % 1_000_000_000;
    for i in (0..4).rev() {
        let p = (v % 100) as usize * 2;
        v /= 100;
        d[2 + 2 * i] = PAIRS[p];
        d[3 + 2 * i] = PAIRS[p + 1];
    }
    d[1] = b'0' + v as u8;
    out.extend_from_slice(&d);
}

/// A record number kept as decimal text and counted up in place, cheaper than
/// formatting consecutive numbers one by one.
#[derive(Debug, Clone)]
pub struct Counter {
    digits: [u8; 24],
    start: usize,
}

impl Counter {
    /// The counter at `n`.
    pub fn new(n: u64) -> Self {
        let mut c = Counter {
            digits: [b'0'; 24],
            start: 24,
        };
        let mut b = itoa::Buffer::new();
        let s = b.format(n).as_bytes();
        c.start = 24 - s.len();
        c.digits[c.start..].copy_from_slice(s);
        c
    }

    /// The number as text.
    #[inline(always)]
    pub fn text(&self) -> &[u8] {
        &self.digits[self.start..]
    }

    /// Adds one.
    #[inline(always)]
    pub fn incr(&mut self) {
        let mut i = self.digits.len();
        while i > self.start {
            i -= 1;
            if self.digits[i] == b'9' {
                self.digits[i] = b'0';
            } else {
                self.digits[i] += 1;
                return;
            }
        }
        // All nines: one more digit (20 digits at most for a u64).
        if self.start > 0 {
            self.start -= 1;
            self.digits[self.start] = b'1';
        }
    }
}

/// Writes a duration of `ticks` as ` (1.234 us)` (nothing if `hz` is 0).
fn duration_time(out: &mut Vec<u8>, ticks: u64, hz: u64) {
    if hz == 0 {
        return;
    }
    let ns = u128::from(ticks) * 1_000_000_000 / u128::from(hz);
    out.extend_from_slice(b" (");
    if ns < 1000 {
        num(out, ns as u64);
        out.extend_from_slice(b" ns)");
        return;
    }
    let (div, unit): (u128, &[u8]) = if ns < 1_000_000 {
        (1, b" us)")
    } else if ns < 1_000_000_000 {
        (1000, b" ms)")
    } else {
        (1_000_000, b" s)")
    };
    let v = ns / div; // in thousandths of the unit
    num(out, (v / 1000) as u64);
    out.push(b'.');
    let f = (v % 1000) as u16;
    out.extend_from_slice(&[
        b'0' + (f / 100) as u8,
        b'0' + (f / 10 % 10) as u8,
        b'0' + (f % 10) as u8,
    ]);
    out.extend_from_slice(unit);
}

fn syscall_name(out: &mut Vec<u8>, abi: SyscallAbi, n: u8) {
    match abi.syscall_name(n) {
        Some(name) => out.extend_from_slice(name.as_bytes()),
        None => {
            out.push(b'#');
            num(out, n);
        }
    }
}

/// `Syscall Call` or `Interrupt`: how an entry is named on its exit line.
fn entry_name(out: &mut Vec<u8>, e: KernelEntry, abi: SyscallAbi) {
    out.extend_from_slice(e.path().name().as_bytes());
    if let Some(s) = e.as_syscall() {
        out.push(b' ');
        syscall_name(out, abi, s.syscall());
    } else if let Some(name) = linux_name(e, abi) {
        out.push(b' ');
        out.extend_from_slice(name.as_bytes());
    }
}

/// The Linux name of an entry of a [`SyscallAbi::LinuxArm`] ring (`tracemark import
/// qemu`): path UnknownSyscall, the number in the word.
fn linux_name(e: KernelEntry, abi: SyscallAbi) -> Option<&'static str> {
    match (abi, e.path(), e.as_other()) {
        (SyscallAbi::LinuxArm, EntryPath::UnknownSyscall, Some(o)) => {
            crate::syscalls::name(o.word())
        }
        _ => None,
    }
}

/// Writes the details of a record (everything after the kind) in the text format.
pub fn details(out: &mut Vec<u8>, item: &Item, ctx: &RingCtx) {
    match &item.event {
        Event::KernelEntry(e) => {
            out.extend_from_slice(e.path().name().as_bytes());
            if let Some(s) = e.as_syscall() {
                out.push(b' ');
                syscall_name(out, ctx.abi, s.syscall());
                out.extend_from_slice(b" cap=");
                match ctx.abi.cap_name(s.cap_type()) {
                    Some(n) => out.extend_from_slice(n.as_bytes()),
                    None => num(out, s.cap_type()),
                }
                out.extend_from_slice(b" label=");
                num(out, s.label());
                if s.fastpath() {
                    out.extend_from_slice(b" fastpath");
                }
            } else if let Some(o) = e.as_other() {
                out.extend_from_slice(b" core=");
                num(out, o.core());
                out.extend_from_slice(if e.path() == EntryPath::Interrupt {
                    b" irq="
                } else {
                    b" word="
                });
                num(out, o.word());
                if let Some(name) = linux_name(*e, ctx.abi) {
                    out.extend_from_slice(b" linux=");
                    out.extend_from_slice(name.as_bytes());
                }
            }
        }
        Event::KernelExit(d) => {
            if let Some(e) = item.entry {
                entry_name(out, e, ctx.abi);
                out.push(b' ');
            }
            match d {
                ExitDuration::Ticks(t) => {
                    out.extend_from_slice(b"duration=");
                    num(out, *t);
                    out.extend_from_slice(b" ticks");
                    duration_time(out, *t, ctx.clock_hz);
                }
                ExitDuration::NoEntry => out.extend_from_slice(b"duration=? (no entry)"),
                ExitDuration::NestingOverflow => {
                    out.extend_from_slice(b"duration=? (nesting overflow)")
                }
            }
        }
        Event::Interrupt { irq } => num(out, *irq),
        Event::FunctionEntry { func } | Event::FunctionExit { func } => {
            hex(out, *func);
            if let Some(name) = ctx.function_name(*func) {
                out.push(b' ');
                out.extend_from_slice(name.as_bytes());
            }
        }
        Event::ThreadSwitch { thread } => {
            out.extend_from_slice(b"thread=");
            hex(out, *thread);
            if let Some(name) = ctx.thread_name(*thread) {
                out.extend_from_slice(b" to=");
                out.extend_from_slice(name.as_bytes());
            }
        }
        Event::ThreadName { thread, prio, name } => {
            out.extend_from_slice(b"thread=");
            hex(out, *thread);
            out.extend_from_slice(b" prio=");
            num(out, *prio);
            out.extend_from_slice(b" name=");
            out.extend_from_slice(String::from_utf8_lossy(name.as_bytes()).as_bytes());
        }
        Event::User { id, payload } => {
            out.extend_from_slice(b"id=");
            num(out, *id);
            if let Some(e) = tracemark_format::freertos::event(*id) {
                out.extend_from_slice(b" freertos=");
                out.extend_from_slice(e.name.as_bytes());
            }
            out.extend_from_slice(b" data=");
            hex_bytes(out, payload.as_bytes());
        }
        Event::Image { base, size, id } => {
            out.extend_from_slice(b"base=");
            hex(out, *base);
            out.extend_from_slice(b" size=");
            hex(out, *size);
            out.extend_from_slice(b" id=");
            hex(out, *id);
        }
        Event::Lost { count, since } => {
            out.extend_from_slice(b"count=");
            num(out, *count);
            out.extend_from_slice(b" since=");
            seconds(out, *since, ctx.clock_hz);
        }
        Event::ClockBack { back } => {
            out.extend_from_slice(b"back=");
            num(out, *back);
            out.extend_from_slice(b" ticks (the clock stepped back)");
        }
    }
}

fn hex_bytes(out: &mut Vec<u8>, data: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in data {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
}

/// Writes one record as a text line.
#[inline]
pub fn text(out: &mut Vec<u8>, item: &Item, ctx: &RingCtx) {
    match item.number {
        Some(n) => {
            let mut b = itoa::Buffer::new();
            let number = Some(b.format(n).as_bytes());
            text_numbered(out, item, ctx, number, &mut SecondsCache::default());
        }
        None => text_numbered(out, item, ctx, None, &mut SecondsCache::default()),
    }
}

/// Writes one record as a text line, with its number already formatted (`None`: a
/// `LOST` record, without one).
#[inline]
pub fn text_numbered(
    out: &mut Vec<u8>,
    item: &Item,
    ctx: &RingCtx,
    number: Option<&[u8]>,
    time: &mut SecondsCache,
) {
    out.extend_from_slice(b"cpu");
    num(out, ctx.cpu);
    out.extend_from_slice(b" #");
    match number {
        Some(n) => out.extend_from_slice(n),
        None => out.push(b'-'),
    }
    out.push(b' ');
    time.write(out, item.ts, ctx.clock_hz);
    out.push(b' ');
    out.extend_from_slice(item.event.kind().name().as_bytes());
    out.push(b' ');
    details(out, item, ctx);
    out.push(b'\n');
}

/// The CSV header line.
pub const CSV_HEADER: &[u8] = b"cpu,n,ts,time,kind,detail\n";

/// Writes one record as a CSV line (see [`Format::Csv`]).
#[inline]
pub fn csv(out: &mut Vec<u8>, item: &Item, ctx: &RingCtx) {
    num(out, ctx.cpu);
    out.push(b',');
    if let Some(n) = item.number {
        num(out, n);
    }
    out.push(b',');
    num(out, item.ts);
    out.push(b',');
    if ctx.clock_hz != 0 {
        seconds(out, item.ts, ctx.clock_hz);
    }
    out.push(b',');
    out.extend_from_slice(item.event.kind().name().as_bytes());
    out.push(b',');
    // The details never contain commas, quotes or newlines.
    details(out, item, ctx);
    out.push(b'\n');
}

fn key(out: &mut Vec<u8>, k: &[u8]) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(k);
    out.extend_from_slice(b"\":");
}

fn key_num(out: &mut Vec<u8>, k: &[u8], v: impl itoa::Integer) {
    key(out, k);
    num(out, v);
}

fn key_str(out: &mut Vec<u8>, k: &[u8], v: &str) {
    // Every string written here is an ASCII name from the format crate: no escaping.
    key(out, k);
    out.push(b'"');
    out.extend_from_slice(v.as_bytes());
    out.push(b'"');
}

fn json_syscall(out: &mut Vec<u8>, e: KernelEntry, abi: SyscallAbi) {
    key_str(out, b"path", e.path().name());
    if let Some(s) = e.as_syscall() {
        key_num(out, b"syscall", s.syscall());
        if let Some(n) = abi.syscall_name(s.syscall()) {
            key_str(out, b"syscall_name", n);
        }
    }
}

/// Writes one record as a JSON line (see [`Format::Json`]).
#[inline]
pub fn json(out: &mut Vec<u8>, item: &Item, ctx: &RingCtx) {
    out.extend_from_slice(b"{\"cpu\":");
    num(out, ctx.cpu);
    key(out, b"n");
    match item.number {
        Some(n) => num(out, n),
        None => out.extend_from_slice(b"null"),
    }
    key_num(out, b"ts", item.ts);
    key(out, b"time");
    if ctx.clock_hz == 0 {
        out.extend_from_slice(b"null");
    } else {
        out.push(b'"');
        seconds(out, item.ts, ctx.clock_hz);
        out.push(b'"');
    }
    key_str(out, b"kind", item.event.kind().name());
    match &item.event {
        Event::KernelEntry(e) => {
            key_str(out, b"path", e.path().name());
            if let Some(s) = e.as_syscall() {
                key_num(out, b"syscall", s.syscall());
                if let Some(n) = ctx.abi.syscall_name(s.syscall()) {
                    key_str(out, b"syscall_name", n);
                }
                key_num(out, b"cap", s.cap_type());
                if let Some(n) = ctx.abi.cap_name(s.cap_type()) {
                    key_str(out, b"cap_name", n);
                }
                key_num(out, b"label", s.label());
                key(out, b"fastpath");
                out.extend_from_slice(if s.fastpath() { b"true" } else { b"false" });
            } else if let Some(o) = e.as_other() {
                key_num(out, b"core", o.core());
                key_num(out, b"word", o.word());
                if let Some(name) = linux_name(*e, ctx.abi) {
                    key_str(out, b"linux_syscall", name);
                }
            }
        }
        Event::KernelExit(d) => {
            match d {
                ExitDuration::Ticks(t) => key_num(out, b"duration_ticks", *t),
                ExitDuration::NoEntry => {
                    key(out, b"duration_ticks");
                    out.extend_from_slice(b"null");
                    key_str(out, b"note", "no entry");
                }
                ExitDuration::NestingOverflow => {
                    key(out, b"duration_ticks");
                    out.extend_from_slice(b"null");
                    key_str(out, b"note", "nesting overflow");
                }
            }
            if let Some(e) = item.entry {
                json_syscall(out, e, ctx.abi);
            }
        }
        Event::Interrupt { irq } => key_num(out, b"irq", *irq),
        Event::FunctionEntry { func } | Event::FunctionExit { func } => {
            key_num(out, b"func", *func);
            if let Some(name) = ctx.function_name(*func) {
                // Symbols come from a file: escaped.
                key(out, b"symbol");
                let _ = serde_json::to_writer(&mut *out, name);
            }
        }
        Event::ThreadSwitch { thread } => {
            key_num(out, b"thread", *thread);
            if let Some(name) = ctx.thread_name(*thread) {
                key(out, b"name");
                let _ = serde_json::to_writer(&mut *out, name);
            }
        }
        Event::ThreadName { thread, prio, name } => {
            key_num(out, b"thread", *thread);
            key_num(out, b"prio", *prio);
            key(out, b"name");
            let _ = serde_json::to_writer(&mut *out, &String::from_utf8_lossy(name.as_bytes()));
        }
        Event::User { id, payload } => {
            key_num(out, b"id", *id);
            if let Some(e) = tracemark_format::freertos::event(*id) {
                key_str(out, b"freertos", e.name);
            }
            key(out, b"data");
            out.push(b'"');
            hex_bytes(out, payload.as_bytes());
            out.push(b'"');
        }
        Event::Image { base, size, id } => {
            key_num(out, b"base", *base);
            key_num(out, b"size", *size);
            key_num(out, b"id", *id);
        }
        Event::Lost { count, since } => {
            key_num(out, b"count", *count);
            key_num(out, b"since", *since);
        }
        Event::ClockBack { back } => key_num(out, b"back", *back),
    }
    out.extend_from_slice(b"}\n");
}

/// Writes `item` in `format`.
#[inline]
pub fn record(out: &mut Vec<u8>, format: Format, item: &Item, ctx: &RingCtx) {
    match format {
        Format::Text => text(out, item, ctx),
        Format::Json => json(out, item, ctx),
        Format::Csv => csv(out, item, ctx),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn times() {
        assert_eq!(
            s(|o| seconds(o, 12_345_678_901, 1_000_000_000)),
            "12.345678901"
        );
        assert_eq!(s(|o| seconds(o, 5, 0)), "5");
        assert_eq!(s(|o| seconds(o, 3, 4)), "0.750000000");
        assert_eq!(s(|o| seconds(o, u64::MAX, u64::MAX - 1)), "1.000000000");
        assert_eq!(s(|o| duration_time(o, 1234, 1_000_000_000)), " (1.234 us)");
        assert_eq!(s(|o| duration_time(o, 12, 1_000_000_000)), " (12 ns)");
        assert_eq!(s(|o| duration_time(o, 1_500_000, 1_000_000)), " (1.500 s)");
        assert_eq!(s(|o| seconds(o, 7, 1_000_000_000)), "0.000000007");
        assert_eq!(s(|o| seconds(o, 999_999_999, 1_000_000_000)), "0.999999999");
        let mut c = Counter::new(98);
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(String::from_utf8(c.text().to_vec()).unwrap());
            c.incr();
        }
        assert_eq!(seen, ["98", "99", "100", "101"]);
        assert_eq!(Counter::new(0).text(), b"0");
        let mut cache = SecondsCache::default();
        for ts in [
            5,
            999_999_999,
            1_000_000_000,
            12_345_678_901,
            12_000_000_000,
        ] {
            assert_eq!(
                s(|o| cache.write(o, ts, 1_000_000_000)),
                s(|o| seconds(o, ts, 1_000_000_000))
            );
        }
        assert_eq!(s(|o| hex(o, 0)), "0x0");
        assert_eq!(s(|o| hex(o, 0x800_0100)), "0x8000100");
    }

    #[test]
    fn kentry_line_matches_the_issue() {
        let item = Item {
            ts: 12_345_678_901,
            number: Some(51_517_274),
            ring: 0,
            event: Event::KernelEntry(KernelEntry::syscall(1, 10, true, 42)),
            entry: None,
        };
        let ctx = RingCtx {
            cpu: 0,
            clock_hz: 1_000_000_000,
            abi: SyscallAbi::Sel4,
            names: None,
            thread_names: None,
        };
        assert_eq!(
            s(|o| text(o, &item, &ctx)),
            "cpu0 #51517274 12.345678901 KENTRY Syscall Call cap=CNode label=42 fastpath\n"
        );
        let exit = Item {
            ts: 12_345_680_134,
            number: Some(51_517_376),
            event: Event::KernelExit(ExitDuration::Ticks(1234)),
            entry: Some(KernelEntry::syscall(1, 10, true, 42)),
            ..item
        };
        assert_eq!(
            s(|o| text(o, &exit, &ctx)),
            "cpu0 #51517376 12.345680134 KEXIT Syscall Call duration=1234 ticks (1.234 us)\n"
        );
        let j = s(|o| json(o, &exit, &ctx));
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["duration_ticks"], 1234);
        assert_eq!(v["syscall_name"], "Call");
    }

    /// Thread names are the context's own (issue 19's habit, applied to issue 17's
    /// names): two contexts in one process show their own names for the same thread id,
    /// and a context without names shows the id only. rtos's process-wide table set once
    /// would have given the first map's names to both.
    #[test]
    fn switch_names_come_from_the_context() {
        let item = Item {
            ts: 1_000,
            number: Some(7),
            ring: 0,
            event: Event::ThreadSwitch {
                thread: 0x2000_0400,
            },
            entry: None,
        };
        let base = RingCtx {
            cpu: 0,
            clock_hz: 1_000_000_000,
            abi: SyscallAbi::Raw,
            names: None,
            thread_names: None,
        };
        let a: ThreadNames = [(0x2000_0400, "consumer".into())].into();
        let b: ThreadNames = [(0x2000_0400, "logger".into())].into();
        let ctx_a = base.with_thread_names(Some(&a));
        let ctx_b = base.with_thread_names(Some(&b));
        assert_eq!(
            s(|o| text(o, &item, &ctx_a)),
            "cpu0 #7 0.000001000 SWITCH thread=0x20000400 to=consumer\n"
        );
        assert_eq!(
            s(|o| text(o, &item, &ctx_b)),
            "cpu0 #7 0.000001000 SWITCH thread=0x20000400 to=logger\n"
        );
        assert_eq!(
            s(|o| text(o, &item, &base)),
            "cpu0 #7 0.000001000 SWITCH thread=0x20000400\n"
        );
        let j: serde_json::Value = serde_json::from_str(&s(|o| json(o, &item, &ctx_b))).unwrap();
        assert_eq!(j["name"], "logger");
        let j: serde_json::Value = serde_json::from_str(&s(|o| json(o, &item, &base))).unwrap();
        assert!(j.get("name").is_none(), "{j}");
    }
}
