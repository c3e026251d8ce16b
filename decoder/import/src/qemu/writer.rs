//! Writes the imported events as a tracemark dump, through the real encoder.
//!
//! Each CPU of the log gets rings of [`RING_LEN`] bytes (drop mode, 4 KiB blocks,
//! [`SyscallAbi::LinuxArm`]). Events are buffered per CPU; when a buffer holds enough
//! to fill a ring, a ring is initialised over a fixed memory area, filled until one block
//! is left, appended to the output file and released, and the memory is used again for
//! the next ring. Memory stays bounded whatever the log's length, and no record is ever
//! dropped (the ring is never let fill up): a long log makes a dump with several rings
//! per CPU, in time order, which the decoder merges.
//!
//! The clock is the log itself: a record's timestamp is the number of guest
//! instructions the CPU's logged blocks executed before it (`clock_hz` 0: no wall time).

use std::cell::Cell;
use std::io::Write;

use tracemark::{Config, KernelEntry, Mode, SyscallAbi, Tracer};
use tracemark_format::ring::{offsets, RING_HEADER_LEN};
use tracemark_format::EntryPath;
use zerocopy::IntoBytes;

/// Bytes of each ring written.
pub const RING_LEN: usize = 4 << 20;

/// Bytes of each block of the rings written.
pub const BLOCK_SIZE: u32 = 4096;

/// The smallest ring accepted: the header and four blocks.
pub const MIN_RING_LEN: usize = RING_HEADER_LEN + 4 * BLOCK_SIZE as usize;

/// User-event id: an `svc` whose number could not be found (payload: its address, u32 LE).
pub const USER_SVC_UNKNOWN: u32 = 1;
/// User-event id: a syscall number too wide for the 26-bit entry word (payload: the
/// `svc` address and the number, u32 LE each); no kernel entry is written for it.
pub const USER_SVC_WIDE: u32 = 2;

/// Largest number a kernel-entry word holds.
pub const MAX_ENTRY_WORD: u32 = KernelEntry::MAX_WORD;

/// One event to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A block that starts a function.
    Function(u32),
    /// The return from that function (to the address after its call).
    FunctionExit(u32),
    /// A Linux syscall entry.
    Syscall(u32),
    /// Return from the syscall.
    SyscallExit,
    /// A user event with up to 8 bytes of payload.
    User {
        /// Event id.
        id: u32,
        /// Payload bytes.
        data: [u8; 8],
        /// Payload length.
        len: u8,
    },
}

#[derive(Debug)]
struct CpuRings {
    cpu: u32,
    buf: Vec<(u64, Event)>,
    rings: u64,
}

/// The dump writer.
pub struct Writer<W: Write> {
    out: W,
    mem: Vec<u64>,
    cpus: Vec<CpuRings>,
    /// Events that fill a ring, at most (flush threshold per CPU).
    batch: usize,
    rings: u64,
    records: u64,
}

impl<W: Write> Writer<W> {
    /// A writer of rings of `ring_len` bytes (a multiple of [`BLOCK_SIZE`], at least
    /// [`MIN_RING_LEN`]).
    pub fn new(out: W, ring_len: usize) -> Self {
        let ring_len = ring_len.max(MIN_RING_LEN);
        Writer {
            out,
            mem: vec![0u64; ring_len.div_ceil(8)],
            cpus: Vec::new(),
            // Records take 2 bytes at least: a buffer of half the ring's bytes in events
            // always fills a ring or is the end of the CPU's events.
            batch: ring_len / 2,
            rings: 0,
            records: 0,
        }
    }

    /// Rings written so far.
    pub fn rings(&self) -> u64 {
        self.rings
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Makes sure CPU `cpu` gets a ring in the dump, even with no event.
    pub fn cpu(&mut self, cpu: u32) -> usize {
        match self.cpus.iter().position(|c| c.cpu == cpu) {
            Some(i) => i,
            None => {
                self.cpus.push(CpuRings {
                    cpu,
                    buf: Vec::new(),
                    rings: 0,
                });
                self.cpus.len() - 1
            }
        }
    }

    /// Adds an event of CPU `cpu` at time `ts` (not before the CPU's previous event).
    pub fn push(&mut self, cpu: u32, ts: u64, event: Event) -> std::io::Result<()> {
        let i = self.cpu(cpu);
        self.cpus[i].buf.push((ts, event));
        // Flush only where no syscall is open, so that an exit is in its entry's ring.
        if self.cpus[i].buf.len() >= self.batch && !matches!(event, Event::Syscall(_)) {
            self.ring(i)?;
        }
        Ok(())
    }

    /// Writes one ring of CPU `i`'s buffered events (as many as fit).
    fn ring(&mut self, i: usize) -> std::io::Result<()> {
        let c = &mut self.cpus[i];
        let mem = self.mem.as_mut_bytes();
        mem.fill(0);
        let config = Config {
            block_size: BLOCK_SIZE,
            mode: Mode::Drop,
            clock_hz: 0,
            cpu_id: c.cpu,
            producer_id: 0,
            syscall_abi: SyscallAbi::LinuxArm,
        };
        let now = Cell::new(0u64);
        let tracer = Tracer::new(mem, &config, || now.get())
            .map_err(|e| std::io::Error::other(format!("ring setup: {e}")))?;
        let g = tracer.ring().geometry();
        let mut n = 0;
        let mut unchecked = 32;
        for (k, &(ts, ev)) in c.buf.iter().enumerate() {
            // One block of headroom: fewer than 64 records of at most 60 bytes cannot fill
            // it. A syscall's exit always goes into its entry's ring.
            if unchecked >= 32 && ev != Event::SyscallExit {
                unchecked = 0;
                let mut pos = [0u8; 4];
                tracer.ring().read_at(offsets::COMMIT_POS, &mut pos);
                let seq = g.split(u32::from_le_bytes(pos)).seq;
                if seq + 2 >= g.block_count {
                    break;
                }
            }
            unchecked += 1;
            now.set(ts);
            let outcome = match ev {
                Event::Function(f) => tracer.function_entry(u64::from(f)),
                Event::FunctionExit(f) => tracer.function_exit(u64::from(f)),
                Event::Syscall(nr) => tracer.kernel_entry(KernelEntry::other(
                    EntryPath::UnknownSyscall,
                    0,
                    nr & MAX_ENTRY_WORD,
                )),
                Event::SyscallExit => tracer.kernel_exit(),
                Event::User { id, data, len } => tracer.user(id, &data[..usize::from(len)]),
            };
            if outcome != tracemark::Outcome::Written {
                return Err(std::io::Error::other("ring full despite headroom (bug)"));
            }
            n = k + 1;
        }
        let out = &mut self.out;
        tracer.ring().dump(|b| out.write_all(b))?;
        drop(tracer);
        c.buf.drain(..n);
        c.rings += 1;
        self.rings += 1;
        self.records += n as u64;
        Ok(())
    }

    /// Writes what is buffered; returns the output, the rings and the records written.
    pub fn finish(mut self) -> std::io::Result<(W, u64, u64)> {
        for i in 0..self.cpus.len() {
            while !self.cpus[i].buf.is_empty() || self.cpus[i].rings == 0 {
                self.ring(i)?;
            }
        }
        self.out.flush()?;
        Ok((self.out, self.rings, self.records))
    }
}
