//! Binds each executed `svc` to its syscall number.
//!
//! QEMU's `-d cpu` dump is the entry state of one block execution. QEMU prints it right
//! after that execution's `Trace` line (layout [`Layout::DumpAfterExec`]; 7.2 on this
//! machine); the tools this project grew from described it as coming before the block
//! (layout [`Layout::DumpBeforeExec`]); both are read. Either way, the register dump that tells an `svc`'s
//! syscall number is the **next** one after the `svc` block's own entry state: the
//! kernel preserves R7, so the state at the entry of whatever block runs next holds the
//! number the block set, even when it set R7 in the same block as the `svc` (which
//! its own entry state cannot show). The rules:
//!
//! - a syscall binds forward to the first register dump after its block, never backward:
//!   a block without a dump of its own (an orphan) in between does not take the number;
//! - a second `svc` block before any dump, a syscall still pending at the end of the log
//!   (`exit_group` has no block after it), or too many blocks without a dump: the number
//!   is recovered from the block's instructions and its entry state ([`super::insn`]);
//! - when the recovered number is certain and the forward dump disagrees (after
//!   `rt_sigreturn` or `execve` the next state is not the caller's), the recovered one
//!   wins and the syscall is marked [`How::Corrected`].
//!
//! The layout is detected from the first dump whose R15 matches an adjacent `Trace`.

use super::insn::Block;

/// Blocks executed after an `svc` without any register dump before the syscall is
/// resolved from its own instructions (bounds what a caller must hold back).
pub const MAX_WAIT: u32 = 64;

/// Where QEMU prints a block's entry state relative to its `Trace` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `Trace` then its dump (QEMU as shipped).
    DumpAfterExec,
    /// The dump, then the `Trace` of the block it is the entry state of.
    DumpBeforeExec,
}

/// How a syscall number was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum How {
    /// From the next register dump (R7).
    Forward,
    /// From the block's own instructions and entry state (no dump followed).
    Recovered,
    /// From the block's instructions, which disagree with the next dump's R7 (that value).
    Corrected(u32),
    /// Not found: no dump followed and the block's instructions do not tell.
    Unknown,
}

/// An executed `svc` with its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syscall {
    /// CPU index of the `Trace` line.
    pub cpu: u32,
    /// The block's address.
    pub block: u32,
    /// The `svc` instruction's address.
    pub svc: u32,
    /// Which execution of this CPU (0-based count of its `Trace` lines) ran the block.
    pub exec: u64,
    /// The syscall number, if found.
    pub number: Option<u32>,
    /// How.
    pub how: How,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    block_pc: u32,
    block: Block,
    exec: u64,
    entry: Option<[u32; 16]>,
    /// Still waiting for its own entry dump (layout DumpAfterExec, right after its Trace).
    own_dump_next: bool,
    waited: u32,
}

#[derive(Debug, Default, Clone)]
struct Cpu {
    id: u32,
    execs: u64,
    pending: Option<Pending>,
}

#[derive(Debug, Clone, Copy)]
enum Prev {
    None,
    Exec { cpu: usize, pc: u32 },
    Dump { pc: u32, regs: [u32; 16] },
}

/// The binder state machine. Feed it executions and register dumps in log order.
#[derive(Debug, Clone)]
pub struct Binder {
    cpus: Vec<Cpu>,
    prev: Prev,
    last_cpu: usize,
    layout: Option<Layout>,
}

impl Default for Binder {
    fn default() -> Self {
        Self::new()
    }
}

impl Binder {
    /// A binder that has seen nothing.
    pub fn new() -> Self {
        Binder {
            cpus: Vec::new(),
            prev: Prev::None,
            last_cpu: 0,
            layout: None,
        }
    }

    /// The layout detected so far.
    pub fn layout(&self) -> Option<Layout> {
        self.layout
    }

    /// Whether CPU `cpu` has a syscall waiting for its number.
    pub fn is_pending(&self, cpu: u32) -> bool {
        self.cpus.iter().any(|c| c.id == cpu && c.pending.is_some())
    }

    fn cpu(&mut self, id: u32) -> usize {
        match self.cpus.iter().position(|c| c.id == id) {
            Some(i) => i,
            None => {
                self.cpus.push(Cpu {
                    id,
                    ..Cpu::default()
                });
                self.cpus.len() - 1
            }
        }
    }

    /// An execution of the block at `pc` on CPU `cpu` (`block`: its translation, if
    /// the log showed it). Resolved syscalls are appended to `out`.
    pub fn exec(&mut self, cpu: u32, pc: u32, block: Option<&Block>, out: &mut Vec<Syscall>) {
        let i = self.cpu(cpu);
        // A dump just before, of this very block: layout DumpBeforeExec.
        let mut entry = None;
        if let Prev::Dump { pc: dpc, regs } = self.prev {
            if dpc == pc && self.layout != Some(Layout::DumpAfterExec) {
                self.layout = Some(Layout::DumpBeforeExec);
                entry = Some(regs);
            }
        }
        let c = &mut self.cpus[i];
        if let Some(p) = &mut c.pending {
            p.own_dump_next = false;
            p.waited += 1;
            let svc_here = block.is_some_and(|b| b.svc.is_some());
            if svc_here || p.waited > MAX_WAIT {
                // No dump came between this svc and the next (or for too long): the
                // next dump belongs to a later block; never bind it backward.
                out.push(recovered(c.id, p));
                c.pending = None;
            }
        }
        if let Some(b) = block.filter(|b| b.svc.is_some()) {
            c.pending = Some(Pending {
                block_pc: pc,
                block: *b,
                exec: c.execs,
                entry,
                own_dump_next: true,
                waited: 0,
            });
        }
        c.execs += 1;
        self.last_cpu = i;
        self.prev = Prev::Exec { cpu: i, pc };
    }

    /// A complete register dump (R0..R15). Resolved syscalls are appended to `out`.
    pub fn dump(&mut self, regs: &[u32; 16], out: &mut Vec<Syscall>) {
        let pc = regs[15];
        let (i, own) = match self.prev {
            Prev::Exec { cpu, pc: epc }
                if epc == pc && self.layout != Some(Layout::DumpBeforeExec) =>
            {
                self.layout = Some(Layout::DumpAfterExec);
                (cpu, true)
            }
            // Layout DumpBeforeExec: the dump belongs to the next Trace, whose CPU is not
            // known yet; logs with several CPUs interleave Trace-then-dump anyway.
            _ => (self.last_cpu, false),
        };
        self.prev = Prev::Dump { pc, regs: *regs };
        let Some(c) = self.cpus.get_mut(i) else {
            return;
        };
        let Some(p) = &mut c.pending else {
            return;
        };
        if own && p.own_dump_next {
            // The svc block's own entry state: not its number (R7 may be set later in
            // the block), but what instruction recovery starts from.
            p.entry = Some(*regs);
            p.own_dump_next = false;
            return;
        }
        let forward = regs[7];
        let how = match p.block.r7.resolve(p.entry.as_ref()) {
            Some(r) if r != forward => How::Corrected(forward),
            _ => How::Forward,
        };
        let number = match how {
            How::Corrected(_) => p.block.r7.resolve(p.entry.as_ref()),
            _ => Some(forward),
        };
        out.push(Syscall {
            cpu: c.id,
            block: p.block_pc,
            svc: p.block.svc.unwrap_or(p.block_pc),
            exec: p.exec,
            number,
            how,
        });
        c.pending = None;
    }

    /// The end of the log: syscalls still pending are resolved from their instructions.
    pub fn finish(&mut self, out: &mut Vec<Syscall>) {
        for c in &mut self.cpus {
            if let Some(p) = c.pending.take() {
                out.push(recovered(c.id, &p));
            }
        }
    }
}

fn recovered(cpu: u32, p: &Pending) -> Syscall {
    let number = p.block.r7.resolve(p.entry.as_ref());
    Syscall {
        cpu,
        block: p.block_pc,
        svc: p.block.svc.unwrap_or(p.block_pc),
        exec: p.exec,
        number,
        how: if number.is_some() {
            How::Recovered
        } else {
            How::Unknown
        },
    }
}
