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

pub mod binder;
pub mod insn;
pub mod log;
pub mod symbols;
pub mod syscalls;
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
pub const MAX_BLOCKS: usize = 1 << 22;

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
        }
    }

    /// Reads a whole log from `input`, in chunks of [`CHUNK`] bytes. `name` is used in
    /// messages.
    pub fn read(&mut self, input: &mut dyn Read, name: &str) -> anyhow::Result<()> {
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
                Err(e) => anyhow::bail!("{name}: at byte {}: {e}", base + end as u64),
            };
            if n == 0 {
                if end > start && !skipping {
                    self.line(&buf[start..end], base + start as u64)?;
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
                    self.line(&buf[start..nl], base + start as u64)?;
                }
                start = nl + 1;
            }
            if let Some(at) = self.foreign {
                anyhow::bail!(
                    "{name}: at byte {at}: register dump of another architecture; \
                     only --arch arm (32-bit ARM: R00..R15, PSR) is supported"
                );
            }
        }
        Ok(())
    }

    fn cpu(&mut self, id: u32) -> usize {
        match self.cpus.iter().position(|c| c.id == id) {
            Some(i) => i,
            None => {
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
        let l = log::classify(line);
        if let Line::Insn { pc, text } = l {
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
            Line::Exec { cpu, pc, sym } => self.exec(cpu, pc, sym)?,
            Line::Regs {
                first,
                count,
                values,
            } => {
                for k in 0..usize::from(count) {
                    let r = usize::from(first) + k;
                    if r < 16 {
                        self.regs[r] = values[k];
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
                    if !name.is_empty() {
                        self.report.functions.saw(name);
                    }
                }
            }
        }
        // Syscalls the binder resolves now belong to its previous pending svc.
        self.binder.exec(cpu, pc, block.as_ref(), &mut self.out);
        self.resolved()?;
        if let Some(f) = function {
            self.emit(i, start, Event::Function(f))?;
        }
        if block.is_some_and(|b| b.svc.is_some()) && self.binder.is_pending(cpu) {
            self.cpus[i].pending = Some((start + insns - 1, start + insns));
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
        r.layout = self.binder.layout();
        r.never_executed = self.blocks.values().filter(|k| !k.executed).count() as u64;
        let (out, rings, records) = self.writer.finish()?;
        r.rings = rings;
        r.records = records;
        if r.chained() {
            r.warnings.push(format!(
                "the log was recorded with block chaining ({} 'Linking TBs' lines, {} \
                 translated blocks never logged as run): QEMU does not log a block \
                 entered through a chained jump, so syscall counts and first runs may \
                 be missing; record with -d exec,cpu,in_asm,nochain for a complete table",
                r.links, r.never_executed
            ));
        }
        if r.execs > 0 && r.translations == 0 {
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
