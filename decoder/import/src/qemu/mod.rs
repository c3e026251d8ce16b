//! `tracemark import qemu`: a QEMU `-d exec,cpu,in_asm[,nochain]` log of 32-bit ARM
//! code (user or system mode, ARM and Thumb) as a tracemark dump, a syscall table and a
//! function order.
//!
//! - [`log`]: classifies the log's lines;
//! - [`insn`]: what a translation block does to R7 before its `svc`;
//! - [`binder`]: binds each executed `svc` to its number (forward, never backward);
//! - [`syscalls`]: the ARM EABI syscall table;
//! - [`symbols`]: function starts from the program's ELF symbol table;
//! - [`table`]: the syscall table and function order, and their files;
//! - [`writer`]: the dump, written through the encoder.
//!
//! The log is read once, in fixed-size chunks: memory is bounded by the program's code
//! (one small record per distinct translation block), the distinct syscall numbers and
//! functions, and one ring per CPU, not by the log's length.
//!
//! In the dump, a record's timestamp counts guest instructions: the instructions of the
//! blocks the CPU executed before it, as the log shows them (`clock_hz` is 0). A
//! syscall is a kernel entry ([`tracemark_format::SyscallAbi::LinuxArm`]: path
//! UnknownSyscall, number in the word) at its `svc`, and an exit at the start of the
//! next block; a block that starts a function (with `--elf`) is a function entry; an
//! `svc` whose number is not known is user event [`writer::USER_SVC_UNKNOWN`].
//!
//! Function returns: a function entry is written with its exit where the log shows the
//! return, so that exports draw slices of the depth the program really had. The block
//! before a function's first block ends with the call (`bl`, `blx`: QEMU ends a block
//! there); the function returns when its CPU next runs a block at the address after
//! that call (2 or 4 bytes on), whatever the instruction that returns (`bx lr`,
//! `pop {pc}`, `ldm`), and the exit is written at the start of that block, popping
//! whatever was entered since (tail calls, which share their caller's return, and
//! `longjmp`). A function entered without a call just before it (a tail call) returns
//! with the function it replaced. Entries with no return in the log (`main` and
//! `_start` when the process ends with `exit_group`, a function still running at the
//! end, or one left by an exception handler in a system-mode log, which this reads as
//! a tail call) have no exit: they stay open to the end of the dump.

pub mod binder;
pub mod insn;
pub mod log;
pub mod symbols;
pub use tracemark_decoder::syscalls;
pub mod table;
pub mod writer;

use std::collections::HashMap;
use std::io::{Read, Write};

use binder::{Binder, Layout, Syscall};
use insn::{Block, BlockBuilder};
use log::Line;
use symbols::Symbols;
use table::{FunctionOrder, SyscallTable};
use writer::{Event, Writer};

/// Bytes read at a time; also the longest line handled (longer ones are skipped).
pub const CHUNK: usize = 1 << 20;
/// Distinct translation blocks remembered; a log with more (not a real program) stops
/// remembering new ones, with a warning.
pub const MAX_BLOCKS: usize = 1 << 21;
/// CPUs (distinct `Trace N:` indices) accepted; each holds a ring and its events.
pub const MAX_CPUS: usize = 64;
/// Longest symbol name kept from a `Trace` line (the order file without `--elf`).
pub const MAX_NAME: usize = 512;
/// Calls remembered per CPU waiting for their return; past it the oldest is forgotten
/// (its entry then has no exit, counted in [`Report::unreturned`]).
pub const MAX_FRAMES: usize = 4096;

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the log failed.
    #[error("{name}: at byte {at}")]
    Read {
        /// The log's name.
        name: String,
        /// Offset in the log.
        at: u64,
        /// What failed.
        source: std::io::Error,
    },
    /// Writing the dump failed.
    #[error("writing the dump")]
    Write(#[source] std::io::Error),
    /// The log holds another architecture's register dumps.
    #[error(
        "{name}: at byte {at}: register dump of another architecture; \
         only --arch arm (32-bit ARM: R00..R15, PSR) is supported"
    )]
    ForeignArch {
        /// The log's name.
        name: String,
        /// Offset of the first such line.
        at: u64,
    },
    /// More than [`MAX_CPUS`] CPUs.
    #[error("{name}: at byte {at}: more than {MAX_CPUS} CPUs")]
    TooManyCpus {
        /// The log's name.
        name: String,
        /// Offset of the first `Trace` line of the CPU past the limit.
        at: u64,
    },
    /// No `Trace` line at all.
    #[error(
        "{name}: at byte 0: no block executions ('Trace' lines): not a QEMU \
         -d exec,cpu,in_asm log"
    )]
    NotAQemuLog {
        /// The log's name.
        name: String,
    },
}

/// What the import found.
#[derive(Debug, Default)]
pub struct Report {
    /// Bytes of log read.
    pub bytes: u64,
    /// Lines.
    pub lines: u64,
    /// Block executions (`Trace` lines).
    pub execs: u64,
    /// Translations (`IN:` blocks).
    pub translations: u64,
    /// Disassembled instructions in them.
    pub insns: u64,
    /// Complete register dumps.
    pub dumps: u64,
    /// `Linking TBs` lines: QEMU chained blocks, so not every execution was logged.
    pub links: u64,
    /// Executions of blocks the log never showed the instructions of.
    pub unknown_blocks: u64,
    /// Distinct translated blocks never logged as executed.
    pub never_executed: u64,
    /// Where dumps sit relative to their `Trace` line.
    pub layout: Option<Layout>,
    /// Syscalls by number.
    pub syscalls: SyscallTable,
    /// Functions in first-execution order.
    pub functions: FunctionOrder,
    /// Function returns written (see the module's documentation).
    pub returns: u64,
    /// Function entries still waiting for their return at the end of the log.
    pub unreturned: u64,
    /// Rings and records written.
    pub rings: u64,
    /// Records written.
    pub records: u64,
    /// Problems worth a line each on stderr.
    pub warnings: Vec<String>,
}

impl Report {
    /// Whether the log was recorded with TB chaining (without `nochain`), so that
    /// block executions, syscalls and first runs may be missing from it.
    pub fn chained(&self) -> bool {
        self.links > 0
    }
}

#[derive(Debug, Clone, Copy)]
struct Known {
    block: Block,
    executed: bool,
}

#[derive(Debug, Default)]
struct CpuClock {
    id: u32,
    /// Guest instructions executed so far.
    now: u64,
    /// `(svc, exit)` times of the syscall the binder holds.
    pending: Option<(u64, u64)>,
    /// Events that happened after a pending syscall, written once it is resolved.
    held: Vec<(u64, Event)>,
    /// Functions entered and not yet returned from, innermost last.
    frames: Vec<Frame>,
    /// The call that ended the last block run, not yet matched to an entry or a return.
    last_call: Option<u32>,
}

/// A function waiting for its return.
#[derive(Debug, Clone, Copy)]
struct Frame {
    /// The function's address.
    function: u32,
    /// The address of its call (`None`: not known, it never returns in the dump).
    call: Option<u32>,
    /// Entered by a tail call: it returns with the frame below it.
    tail: bool,
}

impl Frame {
    /// Whether a block at `pc` is where this function returns to.
    fn returns_to(&self, pc: u32) -> bool {
        self.call.is_some_and(|c| returns_to(c, pc))
    }
}

/// Whether a block at `pc` is the return from the call at `call` (a call is 2 or 4
/// bytes long; a block never starts inside an instruction).
fn returns_to(call: u32, pc: u32) -> bool {
    pc == call.wrapping_add(2) || pc == call.wrapping_add(4)
}

/// The importer: feed it the log with [`Importer::read`], then [`Importer::finish`].
pub struct Importer<W: Write> {
    symbols: Option<Symbols>,
    writer: Writer<W>,
    binder: Binder,
    blocks: HashMap<u32, Known>,
    building: Option<(Option<u32>, BlockBuilder)>,
    regs: [u32; 16],
    regs_seen: u32,
    cpus: Vec<CpuClock>,
    out: Vec<Syscall>,
    report: Report,
    foreign: Option<u64>,
    too_many_cpus: Option<u64>,
}

impl<W: Write> Importer<W> {
    /// An importer writing the dump to `dump` in rings of `ring_len` bytes, naming
    /// functions from `symbols` if given.
    pub fn new(dump: W, symbols: Option<Symbols>, ring_len: usize) -> Self {
        Importer {
            symbols,
            writer: Writer::new(dump, ring_len),
            binder: Binder::new(),
            blocks: HashMap::new(),
            building: None,
            regs: [0; 16],
            regs_seen: 0,
            cpus: Vec::new(),
            out: Vec::new(),
            report: Report::default(),
            foreign: None,
            too_many_cpus: None,
        }
    }

    /// Reads a whole log from `input`, in chunks of [`CHUNK`] bytes. `name` is used in
    /// messages.
    pub fn read(&mut self, input: &mut dyn Read, name: &str) -> Result<(), Error> {
        let mut buf = vec![0u8; CHUNK];
        let (mut start, mut end) = (0usize, 0usize);
        let mut base = 0u64; // log offset of buf[0]
        let mut skipping = false;
        loop {
            if start > 0 {
                buf.copy_within(start..end, 0);
                base += start as u64;
                end -= start;
                start = 0;
            }
            if end == buf.len() {
                self.report.warnings.push(format!(
                    "{name}: at byte {base}: line longer than {CHUNK} bytes skipped"
                ));
                skipping = true;
                base += end as u64;
                end = 0;
            }
            let n = match input.read(&mut buf[end..]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(Error::Read {
                        name: name.to_string(),
                        at: base + end as u64,
                        source,
                    })
                }
            };
            if n == 0 {
                if end > start && !skipping {
                    self.line(&buf[start..end], base + start as u64)
                        .map_err(Error::Write)?;
                }
                self.report.bytes = base + end as u64;
                break;
            }
            let scan_from = end;
            end += n;
            for nl in memchr::memchr_iter(b'\n', &buf[scan_from..end]) {
                let nl = scan_from + nl;
                if skipping {
                    skipping = false;
                } else {
                    self.line(&buf[start..nl], base + start as u64)
                        .map_err(Error::Write)?;
                }
                start = nl + 1;
            }
            if let Some(at) = self.foreign {
                let name = name.to_string();
                return Err(Error::ForeignArch { name, at });
            }
            if let Some(at) = self.too_many_cpus {
                let name = name.to_string();
                return Err(Error::TooManyCpus { name, at });
            }
        }
        if self.report.execs == 0 {
            let name = name.to_string();
            return Err(Error::NotAQemuLog { name });
        }
        Ok(())
    }

    fn cpu(&mut self, id: u32) -> usize {
        match self.cpus.iter().position(|c| c.id == id) {
            Some(i) => i,
            None => {
                self.writer.cpu(id);
                self.cpus.push(CpuClock {
                    id,
                    ..CpuClock::default()
                });
                self.cpus.len() - 1
            }
        }
    }

    /// Handles one line (without its newline) at log offset `at`.
    pub fn line(&mut self, line: &[u8], at: u64) -> std::io::Result<()> {
        self.report.lines += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let l = log::classify(line);
        if let Line::Insn { pc, text } = l {
            self.report.insns += 1;
            if let Some((first, b)) = &mut self.building {
                first.get_or_insert(pc);
                b.push(pc, text);
            }
            return Ok(());
        }
        self.end_translation();
        match l {
            Line::Translation => {
                self.report.translations += 1;
                self.building = Some((None, BlockBuilder::new()));
            }
            Line::Exec { cpu, pc, sym } => {
                if self.cpus.len() >= MAX_CPUS && !self.cpus.iter().any(|c| c.id == cpu) {
                    self.too_many_cpus.get_or_insert(at);
                    return Ok(());
                }
                self.exec(cpu, pc, sym)?;
            }
            Line::Regs {
                first,
                count,
                values,
            } => {
                for (k, v) in values.iter().take(usize::from(count)).enumerate() {
                    let r = usize::from(first) + k;
                    if r < 16 {
                        self.regs[r] = *v;
                        self.regs_seen |= 1 << r;
                    }
                }
                if self.regs_seen == 0xffff {
                    self.report.dumps += 1;
                    self.regs_seen = 0;
                    let regs = self.regs;
                    self.binder.dump(&regs, &mut self.out);
                    self.resolved()?;
                }
            }
            Line::Psr => self.regs_seen = 0,
            Line::ForeignRegs => {
                self.foreign.get_or_insert(at);
            }
            Line::Link => self.report.links += 1,
            Line::Insn { .. } | Line::Other => {}
        }
        Ok(())
    }

    fn end_translation(&mut self) {
        if let Some((Some(pc), b)) = self.building.take() {
            if self.blocks.len() < MAX_BLOCKS || self.blocks.contains_key(&pc) {
                let executed = self.blocks.get(&pc).is_some_and(|k| k.executed);
                self.blocks.insert(
                    pc,
                    Known {
                        block: b.finish(),
                        executed,
                    },
                );
            } else if self.blocks.len() == MAX_BLOCKS {
                self.report.warnings.push(format!(
                    "more than {MAX_BLOCKS} distinct blocks: later ones are not analysed"
                ));
            }
        }
    }

    fn exec(&mut self, cpu: u32, pc: u32, sym: &[u8]) -> std::io::Result<()> {
        self.report.execs += 1;
        let block = match self.blocks.get_mut(&pc) {
            Some(k) => {
                k.executed = true;
                Some(k.block)
            }
            None => {
                self.report.unknown_blocks += 1;
                None
            }
        };
        let i = self.cpu(cpu);
        let start = self.cpus[i].now;
        let insns = block.map_or(1, |b| u64::from(b.insns.max(1)));
        self.cpus[i].now = start + insns;
        // The function this block starts, and the first-run order.
        let mut function = None;
        match &self.symbols {
            Some(s) => {
                if let Some(name) = s.function_at(pc) {
                    self.report.functions.saw(name);
                    function = Some(pc & !1);
                }
            }
            None => {
                if let Ok(name) = std::str::from_utf8(sym) {
                    if !name.is_empty() && name.len() <= MAX_NAME {
                        self.report.functions.saw(name);
                    }
                }
            }
        }
        // Syscalls the binder resolves now belong to its previous pending svc.
        self.binder.exec(cpu, pc, block.as_ref(), &mut self.out);
        self.resolved()?;
        self.returns(i, pc, start)?;
        if let Some(f) = function {
            self.emit(i, start, Event::Function(f))?;
            let c = &mut self.cpus[i];
            // Called just now, or a tail call that returns where its caller would.
            let frame = match c.last_call.take() {
                Some(call) => Frame {
                    function: f,
                    call: Some(call),
                    tail: false,
                },
                None => Frame {
                    function: f,
                    call: c.frames.last().and_then(|f| f.call),
                    tail: !c.frames.is_empty(),
                },
            };
            if c.frames.len() == MAX_FRAMES {
                c.frames.remove(0);
                self.report.unreturned += 1;
            }
            c.frames.push(frame);
        }
        if let Some(call) = block.and_then(|b| b.call) {
            self.cpus[i].last_call = Some(call);
        }
        if block.is_some_and(|b| b.svc.is_some()) && self.binder.is_pending(cpu) {
            self.cpus[i].pending = Some((start + insns - 1, start + insns));
        }
        Ok(())
    }

    /// Writes the exits of the functions of CPU index `i` that a block at `pc`, run at
    /// `ts`, returns from: the innermost one returning there and all entered since.
    fn returns(&mut self, i: usize, pc: u32, ts: u64) -> std::io::Result<()> {
        let c = &mut self.cpus[i];
        if c.last_call.is_some_and(|call| returns_to(call, pc)) {
            // A call to code without a symbol came back.
            c.last_call = None;
        }
        let Some(mut k) = c.frames.iter().rposition(|f| f.returns_to(pc)) else {
            return Ok(());
        };
        // A function entered by a tail call returns with the one it replaced (not with
        // a recursive call from the same place, which has a frame of its own).
        while k > 0 && c.frames[k].tail {
            k -= 1;
        }
        let popped: Vec<Frame> = c.frames.drain(k..).rev().collect();
        for f in popped {
            self.report.returns += 1;
            self.emit(i, ts, Event::FunctionExit(f.function))?;
        }
        Ok(())
    }

    /// Writes `event` of CPU index `i`, or holds it while a syscall before it is pending.
    fn emit(&mut self, i: usize, ts: u64, event: Event) -> std::io::Result<()> {
        let c = &mut self.cpus[i];
        if c.pending.is_some() {
            c.held.push((ts, event));
            Ok(())
        } else {
            self.writer.push(c.id, ts, event)
        }
    }

    /// Writes the syscalls the binder resolved, and what was held behind them.
    fn resolved(&mut self) -> std::io::Result<()> {
        for k in 0..self.out.len() {
            let s = self.out[k];
            self.report.syscalls.add(&s);
            let i = self.cpu(s.cpu);
            let (svc, exit) = self.cpus[i].pending.take().unwrap_or_else(|| {
                let now = self.cpus[i].now;
                (now, now)
            });
            let id = self.cpus[i].id;
            match s.number {
                Some(n) if n <= writer::MAX_ENTRY_WORD => {
                    self.writer.push(id, svc, Event::Syscall(n))?;
                    self.writer.push(id, exit, Event::SyscallExit)?;
                }
                Some(n) => {
                    let mut data = [0u8; 8];
                    data[..4].copy_from_slice(&s.svc.to_le_bytes());
                    data[4..].copy_from_slice(&n.to_le_bytes());
                    let e = Event::User {
                        id: writer::USER_SVC_WIDE,
                        data,
                        len: 8,
                    };
                    self.writer.push(id, svc, e)?;
                }
                None => {
                    let mut data = [0u8; 8];
                    data[..4].copy_from_slice(&s.svc.to_le_bytes());
                    let e = Event::User {
                        id: writer::USER_SVC_UNKNOWN,
                        data,
                        len: 4,
                    };
                    self.writer.push(id, svc, e)?;
                }
            }
            for (ts, e) in std::mem::take(&mut self.cpus[i].held) {
                self.writer.push(id, ts, e)?;
            }
        }
        self.out.clear();
        Ok(())
    }

    /// Resolves what is pending, writes the rest of the dump, and returns the report
    /// and the dump's writer.
    pub fn finish(mut self) -> std::io::Result<(Report, W)> {
        self.end_translation();
        self.binder.finish(&mut self.out);
        self.resolved()?;
        let mut r = self.report;
        r.unreturned += self.cpus.iter().map(|c| c.frames.len() as u64).sum::<u64>();
        r.layout = self.binder.layout();
        r.never_executed = self.blocks.values().filter(|k| !k.executed).count() as u64;
        let (out, rings, records) = self.writer.finish()?;
        r.rings = rings;
        r.records = records;
        if r.chained() {
            let never = match r.never_executed {
                0 => String::new(),
                n => format!(", {n} translated blocks never logged as run"),
            };
            r.warnings.push(format!(
                "the log was recorded with block chaining ({} 'Linking TBs' lines{never}): \
                 QEMU does not log a block entered through a chained jump, so syscall \
                 counts and first runs may be missing; record with \
                 -d exec,cpu,in_asm,nochain for a complete table",
                r.links
            ));
        }
        if r.translations > 0 && r.insns == 0 {
            r.warnings.push(
                "the in_asm blocks hold no disassembly (a QEMU built without capstone \
                 prints OBJD lines): svc instructions cannot be seen"
                    .to_string(),
            );
        } else if r.execs > 0 && r.translations == 0 {
            r.warnings.push(
                "the log has no in_asm blocks: svc instructions cannot be seen; \
                 record with -d exec,cpu,in_asm,nochain"
                    .to_string(),
            );
        } else if r.unknown_blocks > 0 {
            r.warnings.push(format!(
                "{} executions of blocks whose instructions the log does not show \
                 (translated before the log started?): a syscall in them is not seen",
                r.unknown_blocks
            ));
        }
        if r.execs > 0 && r.dumps == 0 {
            r.warnings.push(
                "the log has no register dumps (-d cpu): syscall numbers come only from \
                 the blocks' own instructions"
                    .to_string(),
            );
        }
        if r.syscalls.corrected > 0 {
            r.warnings.push(format!(
                "{} syscalls: the next register dump's R7 disagreed with the number the \
                 svc block sets itself (after rt_sigreturn or execve, or blocks missing \
                 from the log, as with -dfilter); the block's own number was used",
                r.syscalls.corrected
            ));
        }
        if let Some(u) = r.syscalls.unknown {
            r.warnings.push(format!(
                "{} svc with a number neither a register dump nor the block's \
                 instructions tell (first at {:#010x})",
                u.count, u.first_pc
            ));
        }
        Ok((r, out))
    }
}

#[cfg(test)]
mod tests {
    //! The binder on hand-written log excerpts, in QEMU's own shapes.

    use super::*;

    /// `IN:` block at `pc` with `insns` (4 bytes apart).
    fn tb(pc: u32, insns: &[&str]) -> String {
        let mut s = format!("----------------\nIN: f{pc:x}\n");
        for (i, t) in insns.iter().enumerate() {
            s += &format!("0x{:08x}:  e1a00000  {t}\n", pc + 4 * i as u32);
        }
        s + "\n"
    }

    fn trace(pc: u32) -> String {
        format!("Trace 0: 0x7f0000001000 [00800400/{pc:08x}/00000000/00000200] f{pc:x}\n")
    }

    /// A register dump with R15 = `pc`, R7 = `r7`, R12 = `r12`.
    fn dump(pc: u32, r7: u32, r12: u32) -> String {
        format!(
            "R00=00000001 R01=00000002 R02=00000003 R03=00000004\n\
             R04=00000000 R05=00000000 R06=00000000 R07={r7:08x}\n\
             R08=00000000 R09=00000000 R10=00000000 R11=00000000\n\
             R12={r12:08x} R13=40800000 R14=00010001 R15={pc:08x}\n\
             PSR=60000010 -ZC- A usr32\n"
        )
    }

    struct Out {
        report: Report,
        dump: Vec<u8>,
    }

    fn import(log: &str) -> Out {
        let mut imp = Importer::new(Vec::new(), None, writer::MIN_RING_LEN);
        imp.read(&mut log.as_bytes(), "test.log").unwrap();
        let (report, dump) = imp.finish().unwrap();
        Out { report, dump }
    }

    fn rows(r: &Report) -> Vec<(u32, u64, u32)> {
        r.syscalls
            .rows
            .iter()
            .map(|(n, row)| (*n, row.count, row.first_pc))
            .collect()
    }

    const SVC_GETPID: &[&str] = &["push     {r7}", "mov      r7, #0x14", "svc      #0"];
    const AFTER: &[&str] = &["pop      {r7}", "bx       lr"];

    #[test]
    fn svc_in_the_same_block_binds_to_the_next_dump() {
        // The svc block's own entry state has R7 = 0x68000 (set inside the block).
        let log = tb(0x1000, SVC_GETPID)
            + &trace(0x1000)
            + &dump(0x1000, 0x68000, 0)
            + &tb(0x100c, AFTER)
            + &trace(0x100c)
            + &dump(0x100c, 20, 0);
        let out = import(&log);
        assert_eq!(rows(&out.report), vec![(20, 1, 0x1008)]);
        assert_eq!(out.report.layout, Some(Layout::DumpAfterExec));
        assert_eq!(out.report.syscalls.recovered, 0);
        assert!(out.report.warnings.is_empty(), "{:?}", out.report.warnings);
        // The dump holds the entry at the svc (3rd instruction: t = 2) and the exit.
        let text = decode(&out.dump);
        assert!(
            text.contains(" 2 KENTRY UnknownSyscall core=0 word=20 linux=getpid"),
            "{text}"
        );
        assert!(
            text.contains(" 3 KEXIT UnknownSyscall getpid duration=1"),
            "{text}"
        );
    }

    #[test]
    fn dumps_before_their_block_bind_the_same_way() {
        let log = dump(0x1000, 0x68000, 0)
            + &tb(0x1000, SVC_GETPID)
            + &trace(0x1000)
            + &dump(0x100c, 20, 0)
            + &tb(0x100c, AFTER)
            + &trace(0x100c);
        let out = import(&log);
        assert_eq!(rows(&out.report), vec![(20, 1, 0x1008)]);
        assert_eq!(out.report.layout, Some(Layout::DumpBeforeExec));
    }

    #[test]
    fn an_orphan_block_does_not_take_the_number() {
        // The svc block, then a block with no dump of its own (orphan), then the next
        // dump: its R7 is the svc's number, and the orphan gets no syscall.
        let log = tb(0x1000, &["mov      r7, #4", "svc      #0"])
            + &trace(0x1000)
            + &dump(0x1000, 0, 0)
            + &tb(0x2000, &["mov      r0, #1", "b        #0x3000"])
            + &trace(0x2000)
            + &tb(0x3000, AFTER)
            + &trace(0x3000)
            + &dump(0x3000, 4, 0);
        let out = import(&log);
        assert_eq!(rows(&out.report), vec![(4, 1, 0x1004)]);
    }

    #[test]
    fn an_orphan_svc_block_is_not_bound_backward() {
        // Two svc blocks before any dump after the first: the dump that follows belongs
        // to the second (forward); the first is recovered from its own instructions. The
        // backward-binding bug would give both (or the first) the number 20.
        let log = tb(0x1000, &["mov      r7, #4", "svc      #0"])
            + &trace(0x1000)
            + &dump(0x1000, 0, 0)
            + &tb(0x2000, SVC_GETPID)
            + &trace(0x2000)
            + &tb(0x3000, AFTER)
            + &trace(0x3000)
            + &dump(0x3000, 20, 0);
        let out = import(&log);
        assert_eq!(rows(&out.report), vec![(4, 1, 0x1004), (20, 1, 0x2008)]);
        assert_eq!(out.report.syscalls.recovered, 1);
    }

    #[test]
    fn exit_group_at_the_end_is_recovered_from_the_block() {
        // glibc's Thumb __libc_do_syscall: the number comes in ip; nothing follows.
        let log = tb(0x1000, SVC_GETPID)
            + &trace(0x1000)
            + &dump(0x1000, 0, 0)
            + &tb(0x100c, AFTER)
            + &trace(0x100c)
            + &dump(0x100c, 20, 0)
            + &tb(
                0x4000,
                &["push     {r7, lr}", "mov      r7, ip", "svc      #0"],
            )
            + &trace(0x4000)
            + &dump(0x4000, 0x1234, 0xf8);
        let out = import(&log);
        assert_eq!(rows(&out.report), vec![(20, 1, 0x1008), (248, 1, 0x4008)]);
        assert_eq!(out.report.syscalls.recovered, 1);
        let text = decode(&out.dump);
        assert!(text.contains("linux=exit_group"), "{text}");
    }

    #[test]
    fn pending_at_the_end_without_a_way_to_tell_is_listed_apart() {
        let log = tb(0x1000, &["ldr      r7, [sp]", "svc      #0"])
            + &trace(0x1000)
            + &dump(0x1000, 0, 0);
        let out = import(&log);
        assert!(rows(&out.report).is_empty());
        let u = out.report.syscalls.unknown.unwrap();
        assert_eq!((u.count, u.first_pc), (1, 0x1004));
        assert!(out
            .report
            .warnings
            .iter()
            .any(|w| w.contains("svc with a number")));
        let text = decode(&out.dump);
        assert!(text.contains("USER id=1 data=04100000"), "{text}");
    }

    #[test]
    fn sigreturn_is_corrected_from_the_instructions() {
        // After rt_sigreturn the next state is the interrupted code's, not the caller's.
        let log = tb(0x1000, &["mov      r7, #0xad", "svc      #0"])
            + &trace(0x1000)
            + &dump(0x1000, 0, 0)
            + &tb(0x5000, AFTER)
            + &trace(0x5000)
            + &dump(0x5000, 3, 0);
        let out = import(&log);
        assert_eq!(rows(&out.report), vec![(173, 1, 0x1004)]);
        assert_eq!(out.report.syscalls.corrected, 1);
    }

    #[test]
    fn private_and_out_of_table_numbers_are_listed_apart() {
        let mut log = String::new();
        for (i, nr) in [0xf0005u32, 999, 4].into_iter().enumerate() {
            let pc = 0x1000 + 0x100 * i as u32;
            log += &(tb(pc, &["mov      r0, r0", "svc      #0"])
                + &trace(pc)
                + &dump(pc, nr, 0)
                + &tb(pc + 8, AFTER)
                + &trace(pc + 8)
                + &dump(pc + 8, nr, 0));
        }
        let out = import(&log);
        let mut csv = Vec::new();
        out.report.syscalls.write_csv(&mut csv).unwrap();
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "number,name,count,first_pc\n\
             4,write,1,0x00001204\n\
             983045,set_tls,1,0x00001004\n\
             999,unknown,1,0x00001104\n"
        );
    }

    #[test]
    fn function_returns_are_written_where_the_caller_resumes() {
        // main calls f twice; f tail-calls g each time (`b`, not a call), so f and g
        // both return when main resumes after its call. main never returns.
        let log = tb(0x1000, &["push     {r4, lr}", "bl       #0x2000"])
            + &tb(0x2000, &["push     {lr}", "b        #0x3000"])
            + &tb(0x3000, &["bx       lr"])
            + &tb(0x1008, &["mov      r0, r1", "bl       #0x2000"])
            + &tb(0x1010, &["pop      {r4, pc}"])
            + &trace(0x1000)
            + &trace(0x2000)
            + &trace(0x3000)
            + &trace(0x1008)
            + &trace(0x2000)
            + &trace(0x3000)
            + &trace(0x1010);
        let symbols = Symbols::from_functions([
            (0x1000, "main".to_string()),
            (0x2000, "f".to_string()),
            (0x3000, "g".to_string()),
        ]);
        let mut imp = Importer::new(Vec::new(), Some(symbols), writer::MIN_RING_LEN);
        imp.read(&mut log.as_bytes(), "calls.log").unwrap();
        let (report, dump) = imp.finish().unwrap();
        assert_eq!((report.returns, report.unreturned), (4, 1));
        let text = decode(&dump);
        let kinds: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_whitespace().find(|w| w.starts_with('F')))
            .collect();
        assert_eq!(
            kinds,
            [
                "FENTRY", "FENTRY", "FENTRY", "FEXIT", "FEXIT", "FENTRY", "FENTRY", "FEXIT",
                "FEXIT"
            ],
            "{text}"
        );
        // The exits are at the start of the block main resumes at: g (0x3000) first.
        let exits: Vec<&str> = text.lines().filter(|l| l.contains("FEXIT")).collect();
        assert!(
            exits[0].contains("3000") && exits[1].contains("2000"),
            "{text}"
        );
    }

    #[test]
    fn chaining_is_detected_and_warned() {
        let log = tb(0x1000, SVC_GETPID)
            + &trace(0x1000)
            + &dump(0x1000, 0, 0)
            + "Linking TBs 0x7f0000001000 index 0 -> 0x7f0000002000\n"
            + &tb(0x100c, AFTER)
            + &trace(0x100c)
            + &dump(0x100c, 20, 0);
        let out = import(&log);
        assert!(out.report.chained());
        assert!(out.report.warnings.iter().any(|w| w.contains("chaining")));
    }

    #[test]
    fn a_foreign_register_dump_is_an_error() {
        let log = "Trace 0: 0x1 [0/00400000/0/0] f\nPC=0000000000400000 X00=0\n";
        let mut imp = Importer::new(Vec::new(), None, writer::MIN_RING_LEN);
        let e = imp.read(&mut log.as_bytes(), "a64.log").unwrap_err();
        assert!(e.to_string().starts_with("a64.log: at byte 32:"), "{e}");
    }

    #[test]
    fn long_logs_make_several_rings_in_bounded_memory() {
        // Enough syscalls to need more than one minimum-size ring.
        let mut log = tb(0x1000, SVC_GETPID) + &tb(0x100c, AFTER);
        for _ in 0..30_000 {
            log += &(trace(0x1000) + &dump(0x1000, 0, 0) + &trace(0x100c) + &dump(0x100c, 20, 0));
        }
        let out = import(&log);
        assert_eq!(rows(&out.report), vec![(20, 30_000, 0x1008)]);
        assert!(out.report.rings > 1, "{}", out.report.rings);
        let text = decode(&out.dump);
        assert_eq!(text.matches("KENTRY").count(), 30_000);
        assert_eq!(text.matches("duration=1 ticks").count(), 30_000);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_or_line_mix_is_handled_without_panic(
            raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000),
            picks in proptest::collection::vec((0usize..9, 0u32..0x40, 0u32..300), 0..60),
        ) {
            let mut imp = Importer::new(Vec::new(), None, writer::MIN_RING_LEN);
            let _ = imp.read(&mut raw.as_slice(), "random");
            let _ = imp.finish().unwrap();
            // Realistic lines in random order: whatever the binder makes of them, the
            // dump it writes decodes without a warning.
            let mut log = String::new();
            for (k, pc, v) in picks {
                let pc = 0x1000 + 4 * pc;
                log += &match k {
                    0 => tb(pc, SVC_GETPID),
                    1 => tb(pc, AFTER),
                    2 => tb(pc, &["mov      r7, ip", "svc      #0"]),
                    3 | 4 => trace(pc),
                    5 | 6 => dump(pc, v, v),
                    7 => "Linking TBs 0x1 index 0 -> 0x2\n".to_string(),
                    _ => "R07=0000\nR00=00000001 R01=2\n".to_string(),
                };
            }
            let mut imp = Importer::new(Vec::new(), None, writer::MIN_RING_LEN);
            if imp.read(&mut log.as_bytes(), "mix").is_ok() {
                let (_, bytes) = imp.finish().unwrap();
                decode(&bytes);
            }
        }
    }

    #[test]
    fn not_a_qemu_log_is_an_error() {
        let mut imp = Importer::new(Vec::new(), None, writer::MIN_RING_LEN);
        let e = imp.read(&mut &b"hello\nworld\n"[..], "x.log").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("x.log: at byte 0: no block executions"),
            "{e}"
        );
    }

    #[test]
    fn crlf_lines_are_read() {
        let log = (tb(0x1000, SVC_GETPID)
            + &trace(0x1000)
            + &dump(0x1000, 0, 0)
            + &tb(0x100c, AFTER)
            + &trace(0x100c)
            + &dump(0x100c, 20, 0))
            .replace('\n', "\r\n");
        assert_eq!(rows(&import(&log).report), vec![(20, 1, 0x1008)]);
    }

    /// The dump as `tracemark decode` prints it; no decoding warning allowed.
    fn decode(dump: &[u8]) -> String {
        let d = tracemark_decoder::dump::Dump::parse(dump).unwrap();
        assert!(d.warnings.is_empty(), "{:?}", d.warnings);
        let rings: Vec<u32> = (0..d.rings.len() as u32).collect();
        let filters = vec![tracemark_decoder::filter::Filter::default().for_ring(0); d.rings.len()];
        let mut out = Vec::new();
        let w = tracemark_decoder::pipeline::write_records(
            &d,
            &rings,
            &filters,
            tracemark_decoder::render::Format::Text,
            1,
            &mut out,
            &|_| {},
        )
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        String::from_utf8(out).unwrap()
    }
}
