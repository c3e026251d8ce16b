//! `--format chrome-json`: the Chrome trace-event JSON format (chrome://tracing,
//! speedscope, Perfetto's legacy importer, older tools).
//!
//! One JSON object `{"displayTimeUnit":"ns","traceEvents":[...]}`, written as records
//! arrive. All events belong to process 1 ("tracemark"); each ring is a thread whose
//! `tid` is the ring index, named "CPU n" by a `thread_name` metadata event. Kernel and
//! function slices are `B`/`E` pairs, nested as [`super::nesting`] keeps them; the other
//! records are thread-scoped instants (`"ph":"i","s":"t"`). A thread a CPU switches to
//! (`SWITCH` records, format version 2) gets a thread of its own, `tid` from the
//! number of rings up, named "Thread 0x... (CPU n)" when first seen, on which its time
//! running on that CPU is a `B`/`E` slice (category `thread`); the switch is also an
//! instant on the CPU's thread. A THREAD record (format version 3) names the thread:
//! its `thread_name` is then "name (0x...) (CPU n)" and its slices "name" (the latest
//! name of the id in the dump, see [`super::thread_names`]), and the record itself is
//! an instant "Thread named". FreeRTOS USER events are named `freertos:QUEUE_SEND` and
//! so on. Times are microseconds with
//! three decimals (nanosecond resolution). Categories (`cat`) and names are those of
//! the Perfetto export.
//!
//! JSON viewers load the whole file into memory: above [`LARGE`] bytes chrome://tracing
//! and most JSON viewers fail or crawl, so the command warns (see
//! [`ChromeJson::written`]).

use std::io::Write;

use tracemark_format::record::ExitDuration;
use tracemark_format::{EntryPath, Event, KernelEntry};

use super::nesting::{Close, Nesting, Open};
use super::{Item, RingInfo, Sink};

/// Output size above which viewers choke (chrome://tracing loads the JSON as one
/// string; around 256 MiB it runs out of memory or string length).
pub const LARGE: u64 = 256 << 20;

const FLUSH_AT: usize = 1 << 20;

/// The Chrome JSON sink.
pub struct ChromeJson<W: Write> {
    out: W,
    buf: Vec<u8>,
    rings: Vec<RingInfo>,
    nesting: Vec<Nesting>,
    last_ts: Vec<u64>,
    lost_reported: Vec<u64>,
    seen: Vec<bool>,
    /// Thread `tid`s by (ring, thread).
    threads: std::collections::HashMap<(usize, u64), u64>,
    /// Per ring: the `tid` of the thread whose running slice is open.
    running: Vec<Option<u64>>,
    namer: Option<Box<super::perfetto::FunctionNamer>>,
    sourcer: Option<Box<super::perfetto::FunctionNamer>>,
    /// Thread names, for the `thread_name` metadata and the running slices.
    thread_names: Option<super::ThreadNames>,
    first: bool,
    /// Bytes written so far.
    pub written: u64,
}

impl<W: Write> ChromeJson<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> Self {
        ChromeJson {
            out,
            buf: Vec::with_capacity(FLUSH_AT + (64 << 10)),
            rings: Vec::new(),
            nesting: Vec::new(),
            last_ts: Vec::new(),
            lost_reported: Vec::new(),
            seen: Vec::new(),
            threads: std::collections::HashMap::new(),
            running: Vec::new(),
            namer: None,
            sourcer: None,
            thread_names: None,
            first: true,
            written: 0,
        }
    }

    /// Names threads from `names` (see [`super::thread_names`]): the `thread_name`
    /// metadata of a thread's `tid` and its running slices; unnamed threads show as
    /// `Thread 0x...`.
    pub fn with_thread_names(mut self, names: super::ThreadNames) -> Self {
        self.thread_names = Some(names);
        self
    }

    /// Names functions with `namer`; unnamed ones show as `0x...`.
    pub fn with_function_names(mut self, namer: Box<super::perfetto::FunctionNamer>) -> Self {
        self.namer = Some(namer);
        self
    }

    /// Gives function slices a `source` argument (`file:line`) from `sourcer`.
    pub fn with_function_sources(mut self, sourcer: Box<super::perfetto::FunctionNamer>) -> Self {
        self.sourcer = Some(sourcer);
        self
    }

    /// The output, once finished.
    pub fn into_inner(self) -> W {
        self.out
    }

    fn flush_buf(&mut self) -> std::io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Starts an event object: `{"ph":"B","pid":1,"tid":N,"ts":U.NNN`.
    fn start(&mut self, ph: &str, ring: usize, ns: u64) {
        let b = &mut self.buf;
        if !self.first {
            b.extend_from_slice(b",\n");
        }
        self.first = false;
        b.extend_from_slice(b"{\"ph\":\"");
        b.extend_from_slice(ph.as_bytes());
        b.extend_from_slice(b"\",\"pid\":1,\"tid\":");
        num(b, ring as u64);
        b.extend_from_slice(b",\"ts\":");
        num(b, ns / 1000);
        let f = (ns % 1000) as u16;
        b.extend_from_slice(&[
            b'.',
            b'0' + (f / 100) as u8,
            b'0' + (f / 10 % 10) as u8,
            b'0' + (f % 10) as u8,
        ]);
    }

    fn name(&mut self, name: &str, cat: &str) {
        self.buf.extend_from_slice(b",\"name\":");
        string(&mut self.buf, name);
        self.buf.extend_from_slice(b",\"cat\":\"");
        self.buf.extend_from_slice(cat.as_bytes());
        self.buf.push(b'"');
    }

    fn end_event(&mut self) -> std::io::Result<()> {
        self.buf.push(b'}');
        if self.buf.len() >= FLUSH_AT {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn ends(
        &mut self,
        ring: usize,
        ns: u64,
        n: usize,
        d: Option<ExitDuration>,
    ) -> std::io::Result<()> {
        for i in 0..n {
            self.start("E", ring, ns);
            if i + 1 == n {
                if let Some(d) = d {
                    self.buf.extend_from_slice(b",\"args\":{");
                    duration_args(&mut self.buf, d, &self.rings[ring]);
                    self.buf.push(b'}');
                }
            }
            self.end_event()?;
        }
        Ok(())
    }

    fn func_name(&self, func: u64) -> String {
        self.namer
            .as_ref()
            .and_then(|n| n(func))
            .unwrap_or_else(|| format!("{func:#x}"))
    }

    /// A kernel exit: the slices it closes ended, or an instant when there is none.
    fn kernel_exit(&mut self, r: usize, ns: u64, d: ExitDuration) -> std::io::Result<()> {
        match self.nesting[r].close_kernel() {
            Close::Ends(n) => self.ends(r, ns, n, Some(d)),
            Close::Orphan => {
                let mut args = Vec::new();
                duration_args(&mut args, d, &self.rings[r]);
                let args = String::from_utf8_lossy(&args).into_owned();
                self.instant(r, ns, "Kernel exit without entry", "kernel", &args)
            }
        }
    }

    /// A function entry: a slice begun (an instant past the nesting bound).
    fn function_entry(&mut self, r: usize, ns: u64, func: u64) -> std::io::Result<()> {
        let name = self.func_name(func);
        let ph = if self.nesting[r].open(Open::Function(func)) {
            "B"
        } else {
            "i"
        };
        self.start(ph, r, ns);
        if ph == "i" {
            self.buf.extend_from_slice(b",\"s\":\"t\"");
        }
        self.name(&name, "function");
        self.buf.extend_from_slice(b",\"args\":{\"func\":");
        num(&mut self.buf, func);
        if let Some(src) = self.sourcer.as_ref().and_then(|f| f(func)) {
            self.buf.extend_from_slice(b",\"source\":");
            string(&mut self.buf, &src);
        }
        self.buf.push(b'}');
        self.end_event()
    }

    /// A function exit: the slices it closes ended, or an instant when there is none.
    fn function_exit(&mut self, r: usize, ns: u64, func: u64) -> std::io::Result<()> {
        match self.nesting[r].close_function(func) {
            Close::Ends(n) => self.ends(r, ns, n, None),
            Close::Orphan => self.instant(
                r,
                ns,
                "Function exit without entry",
                "function",
                &format!("\"func\":{func}"),
            ),
        }
    }

    /// A user event: an instant with its id and payload in hex.
    fn user(&mut self, r: usize, ns: u64, id: u32, payload: &[u8]) -> std::io::Result<()> {
        let mut hex = String::with_capacity(2 * payload.len());
        for b in payload {
            hex.push_str(&format!("{b:02x}"));
        }
        self.instant(
            r,
            ns,
            &super::user_event_name(id),
            "user",
            &format!("\"id\":{id},\"payload\":\"{hex}\""),
        )
    }

    fn kernel_entry(&mut self, ring: usize, ns: u64, e: KernelEntry) -> std::io::Result<()> {
        let abi = self.rings[ring].abi;
        let name = match (e.as_syscall(), e.as_other()) {
            (Some(sc), _) => match abi.syscall_name(sc.syscall()) {
                Some(n) => n.to_string(),
                None => format!("Syscall #{}", sc.syscall()),
            },
            (None, Some(o)) if e.path() == EntryPath::Interrupt => {
                format!("Interrupt {}", o.word())
            }
            _ => match crate::linux_syscall(e, abi) {
                Some((_, n)) => n.to_string(),
                None => e.path().name().to_string(),
            },
        };
        let ph = if self.nesting[ring].open(Open::Kernel) {
            "B"
        } else {
            "i"
        };
        self.start(ph, ring, ns);
        if ph == "i" {
            self.buf.extend_from_slice(b",\"s\":\"t\"");
        }
        self.name(&name, "kernel");
        let b = &mut self.buf;
        b.extend_from_slice(b",\"args\":{");
        if let Some(sc) = e.as_syscall() {
            b.extend_from_slice(b"\"cap\":");
            match abi.cap_name(sc.cap_type()) {
                Some(n) => string(b, n),
                None => string(b, &format!("cap type {}", sc.cap_type())),
            }
            b.extend_from_slice(b",\"label\":");
            num(b, u64::from(sc.label()));
            b.extend_from_slice(if sc.fastpath() {
                b",\"fastpath\":true"
            } else {
                b",\"fastpath\":false"
            });
            b.extend_from_slice(b",\"syscall\":");
            num(b, u64::from(sc.syscall()));
        } else if let Some(o) = e.as_other() {
            b.extend_from_slice(b"\"core\":");
            num(b, u64::from(o.core()));
            b.extend_from_slice(if e.path() == EntryPath::Interrupt {
                b",\"irq\":"
            } else {
                b",\"word\":"
            });
            num(b, u64::from(o.word()));
        }
        b.push(b'}');
        self.end_event()
    }

    /// A SWITCH record: an instant on the CPU, the outgoing thread's running slice
    /// ended, the incoming thread named (the first time) and its slice begun.
    fn thread_switch(&mut self, r: usize, ns: u64, thread: u64) -> std::io::Result<()> {
        let args = format!("\"thread\":{thread}");
        self.instant(r, ns, "Thread switch", "thread", &args)?;
        if let Some(tid) = self.running[r].take() {
            self.start("E", tid as usize, ns);
            self.end_event()?;
        }
        let label = super::thread_label(self.thread_names.as_ref(), thread);
        let name = match self.thread_names.as_ref().and_then(|n| n.get(&thread)) {
            Some(n) => n.clone(),
            None => label.clone(),
        };
        let tid = match self.threads.get(&(r, thread)) {
            Some(&tid) => tid,
            None => {
                let tid = (self.rings.len() + self.threads.len()) as u64;
                self.threads.insert((r, thread), tid);
                let b = &mut self.buf;
                b.extend_from_slice(b",\n{\"ph\":\"M\",\"pid\":1,\"tid\":");
                num(b, tid);
                b.extend_from_slice(b",\"name\":\"thread_name\",\"args\":{\"name\":");
                string(b, &format!("{label} (CPU {})", self.rings[r].cpu));
                b.extend_from_slice(b"}},\n{\"ph\":\"M\",\"pid\":1,\"tid\":");
                num(b, tid);
                b.extend_from_slice(b",\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":");
                num(b, 1000 + tid);
                b.extend_from_slice(b"}}");
                tid
            }
        };
        self.running[r] = Some(tid);
        self.start("B", tid as usize, ns);
        self.name(&name, "thread");
        self.buf.extend_from_slice(b",\"args\":{");
        self.buf.extend_from_slice(args.as_bytes());
        self.buf.push(b'}');
        self.end_event()
    }

    fn instant(
        &mut self,
        ring: usize,
        ns: u64,
        name: &str,
        cat: &str,
        args: &str,
    ) -> std::io::Result<()> {
        self.start("i", ring, ns);
        self.buf.extend_from_slice(b",\"s\":\"t\"");
        self.name(name, cat);
        if !args.is_empty() {
            self.buf.extend_from_slice(b",\"args\":{");
            self.buf.extend_from_slice(args.as_bytes());
            self.buf.push(b'}');
        }
        self.end_event()
    }
}

fn num(out: &mut Vec<u8>, v: u64) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(v).as_bytes());
}

/// A JSON string literal.
fn string(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn duration_args(b: &mut Vec<u8>, d: ExitDuration, info: &RingInfo) {
    match d {
        ExitDuration::Ticks(t) => {
            b.extend_from_slice(b"\"duration_ticks\":");
            num(b, t);
            if info.clock_hz != 0 {
                b.extend_from_slice(b",\"duration_ns\":");
                num(b, info.ns(t));
            }
        }
        ExitDuration::NoEntry => b.extend_from_slice(b"\"note\":\"no entry on the target\""),
        ExitDuration::NestingOverflow => {
            b.extend_from_slice(b"\"note\":\"nesting overflow on the target\"")
        }
    }
}

impl<W: Write> Sink for ChromeJson<W> {
    type Error = std::io::Error;

    fn begin(&mut self, rings: &[RingInfo]) -> std::io::Result<()> {
        self.rings = rings.to_vec();
        self.nesting = vec![Nesting::default(); rings.len()];
        self.last_ts = vec![0; rings.len()];
        self.lost_reported = vec![0; rings.len()];
        self.seen = vec![false; rings.len()];
        self.running = vec![None; rings.len()];
        self.buf
            .extend_from_slice(b"{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
        self.buf.extend_from_slice(
            b"{\"ph\":\"M\",\"pid\":1,\"tid\":0,\"name\":\"process_name\",\"args\":{\"name\":\"tracemark\"}}",
        );
        self.first = false;
        for r in rings {
            self.buf
                .extend_from_slice(b",\n{\"ph\":\"M\",\"pid\":1,\"tid\":");
            num(&mut self.buf, u64::from(r.index));
            self.buf
                .extend_from_slice(b",\"name\":\"thread_name\",\"args\":{\"name\":\"");
            // Digits, letters, spaces, commas and parentheses: nothing to escape.
            self.buf
                .extend_from_slice(crate::track_name(rings, r.index as usize).as_bytes());
            self.buf
                .extend_from_slice(b"\"}},\n{\"ph\":\"M\",\"pid\":1,\"tid\":");
            num(&mut self.buf, u64::from(r.index));
            self.buf
                .extend_from_slice(b",\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":");
            num(&mut self.buf, u64::from(r.cpu));
            self.buf.extend_from_slice(b"}}");
        }
        Ok(())
    }

    fn record(&mut self, item: &Item) -> std::io::Result<()> {
        let r = item.ring as usize;
        let ns = self.rings[r].ns(item.ts).max(self.last_ts[r]);
        self.last_ts[r] = ns;
        if !self.seen[r] {
            self.seen[r] = true;
            let n = self.rings[r].overwritten;
            if n > 0 {
                self.instant(
                    r,
                    ns,
                    "Overwritten records",
                    "lost",
                    &format!("\"count\":{n}"),
                )?;
            }
        }
        match item.event {
            Event::KernelEntry(e) => self.kernel_entry(r, ns, e)?,
            Event::KernelExit(d) => self.kernel_exit(r, ns, d)?,
            Event::Interrupt { irq } => self.instant(
                r,
                ns,
                &format!("IRQ {irq}"),
                "irq",
                &format!("\"irq\":{irq}"),
            )?,
            Event::FunctionEntry { func } => self.function_entry(r, ns, func)?,
            Event::FunctionExit { func } => self.function_exit(r, ns, func)?,
            Event::User { id, payload } => self.user(r, ns, id, payload.as_bytes())?,
            Event::Image { base, size, id } => self.instant(
                r,
                ns,
                "Image",
                "image",
                &format!("\"base\":{base},\"size\":{size},\"id\":{id}"),
            )?,
            Event::Lost { count, .. } => {
                self.lost_reported[r] += count;
                self.instant(r, ns, "Lost records", "lost", &format!("\"count\":{count}"))?;
            }
            Event::ThreadSwitch { thread } => self.thread_switch(r, ns, thread)?,
            Event::ThreadName { thread, prio, name } => {
                let mut args = format!("\"thread\":{thread},\"prio\":{prio},\"name\":");
                let mut b = Vec::new();
                string(&mut b, &String::from_utf8_lossy(name.as_bytes()));
                args.push_str(&String::from_utf8_lossy(&b));
                self.instant(r, ns, "Thread named", "thread", &args)?;
            }
            Event::ClockBack { back } => self.instant(
                r,
                ns,
                "Clock stepped back",
                "clock",
                &format!("\"back_ticks\":{back}"),
            )?,
        }
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        for r in 0..self.rings.len() {
            let ns = self.last_ts[r];
            let n = self.nesting[r].drain();
            for _ in 0..n {
                self.start("E", r, ns);
                self.buf
                    .extend_from_slice(b",\"args\":{\"truncated\":true}");
                self.end_event()?;
            }
            if let Some(tid) = self.running[r].take() {
                self.start("E", tid as usize, ns);
                self.end_event()?;
            }
            let unreported = self.rings[r].dropped.saturating_sub(self.lost_reported[r]);
            if unreported > 0 && self.seen[r] {
                self.instant(
                    r,
                    ns,
                    "Dropped records",
                    "lost",
                    &format!("\"count\":{unreported}"),
                )?;
            }
        }
        self.buf.extend_from_slice(b"\n]}\n");
        self.flush_buf()?;
        self.out.flush()?;
        Ok(())
    }
}
