//! Incremental, consistent reads of a ring in the memory of a running target.
//!
//! [`LiveRing::poll`] copies the blocks closed since the last poll, re-reads the
//! ring's `write_pos` and keeps a block only if the writer cannot have reclaimed it
//! during the copy ([`tracemark_format::live::block_survives`], FORMAT.md section
//! 7.2). Kept blocks are returned as *ring images* (FORMAT.md section 7.3, "Live
//! captures"): a fresh ring holding the run of kept blocks renumbered from sequence 0,
//! whose `overwritten` is the number of the run's first record, closed by an empty
//! current block. A capture is these images end to end, a valid dump that every
//! subcommand reads; the record numbers of consecutive images continue each other
//! except where records were lost, and every loss is counted in [`LiveStats`].

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use tracemark_format::live::{block_survives, pending_block};
use tracemark_format::record::END_MARKER;
use tracemark_format::ring::{
    offsets, BlockHeader, Geometry, RingView, BLOCK_HEADER_LEN, BLOCK_MAGIC, HEADER_CRC,
    RING_HEADER_LEN, STATIC_HEADER_LEN,
};
use tracemark_format::RingHeader;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

use crate::memory::TargetMemory;

/// Counters of a live capture of one ring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Polls done.
    pub polls: u64,
    /// Blocks kept (stored).
    pub blocks: u64,
    /// Event records in the kept blocks.
    pub records: u64,
    /// Blocks copied but rejected: reclaimed by the writer during the copy, or torn.
    pub rejected: u64,
    /// Blocks overwritten between two polls (never copied).
    pub missed: u64,
    /// Event records the capture lost: in rejected and missed blocks, and dropped by
    /// the writer (a gap in the record numbers of the stored images).
    pub lost_records: u64,
    /// Polls whose blocks could not be numbered exactly (the writer opened a block
    /// during the copy and nothing joined them to the blocks kept before): copied
    /// again at the next poll.
    pub retried: u64,
    /// Polls that left closed blocks for a later one because a deferred kernel entry
    /// in them was still to be filled in (FORMAT.md 9.5).
    pub held_back: u64,
    /// Records the writer dropped (ring header `dropped`) at the last poll.
    pub dropped: u64,
    /// Total time the target was halted for polls (halting back ends).
    pub paused: Duration,
    /// The longest pause.
    pub max_pause: Duration,
}

/// A ring being read while its target runs.
#[derive(Debug)]
pub struct LiveRing {
    addr: u64,
    geometry: Geometry,
    header: RingHeader,
    /// The next sequence number to copy (`None` before the first poll).
    next: Option<u32>,
    /// The number of the next record expected and the block it is in: the one after
    /// the last kept block (`None` before the first kept block).
    next_record: Option<(u32, u64)>,
    /// `(seq, records)` of the blocks kept, newest last, at most `block_count`.
    kept: VecDeque<(u32, u32)>,
    stats: LiveStats,
}

/// Why a live ring cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The target's memory could not be read.
    #[error("reading target memory at {addr:#x}")]
    Read {
        /// Where.
        addr: u64,
        /// What failed.
        source: io::Error,
    },
    /// No valid ring header at the address.
    #[error("no tracemark ring at {addr:#x}: {why}")]
    NoRing {
        /// Where.
        addr: u64,
        /// The header check that failed.
        why: String,
    },
    /// The static header changed: the target re-initialised its ring.
    #[error("the ring at {0:#x} was re-initialised under the capture")]
    Reinitialised(u64),
}

fn read(mem: &mut dyn TargetMemory, addr: u64, buf: &mut [u8]) -> Result<(), LiveError> {
    mem.read(addr, buf)
        .map_err(|source| LiveError::Read { addr, source })
}

fn resumed<T>(
    mem: &mut dyn TargetMemory,
    addr: u64,
    r: Result<T, LiveError>,
) -> Result<T, LiveError> {
    let resumed = mem
        .resume()
        .map_err(|source| LiveError::Read { addr, source });
    let v = r?;
    resumed?;
    Ok(v)
}

fn word(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
}

fn dword(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().expect("8 bytes"))
}

/// What one poll produced.
#[derive(Debug, Default)]
pub struct Poll {
    /// Ring images of the runs of kept blocks, in order (usually one).
    pub images: Vec<Vec<u8>>,
    /// How long the target was halted (zero for back ends that do not halt).
    pub pause: Duration,
}

impl LiveRing {
    /// Checks the ring header at `addr`.
    pub fn attach(mem: &mut dyn TargetMemory, addr: u64) -> Result<Self, LiveError> {
        mem.halt()
            .map_err(|source| LiveError::Read { addr, source })?;
        let mut bytes = [0u8; RING_HEADER_LEN];
        let r = read(mem, addr, &mut bytes);
        resumed(mem, addr, r)?;
        let view = RingView::parse(&bytes).map_err(|e| LiveError::NoRing {
            addr,
            why: e.to_string(),
        })?;
        Ok(LiveRing {
            addr,
            geometry: view.geometry,
            header: view.header,
            next: None,
            next_record: None,
            kept: VecDeque::new(),
            stats: LiveStats::default(),
        })
    }

    /// The ring's CPU.
    pub fn cpu(&self) -> u32 {
        self.header.cpu_id.get()
    }

    /// The ring's length in target memory.
    pub fn len(&self) -> usize {
        self.geometry.ring_len()
    }

    /// Always false: a ring has at least two blocks.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The counters so far.
    pub fn stats(&self) -> LiveStats {
        self.stats
    }

    fn block_addr(&self, seq: u32) -> u64 {
        self.addr + self.geometry.block_offset(self.geometry.slot(seq)) as u64
    }

    /// Copies the blocks closed since the last poll and returns those that are
    /// consistent, as ring images. A halting back end is halted for the poll.
    pub fn poll(&mut self, mem: &mut dyn TargetMemory) -> Result<Poll, LiveError> {
        let start = Instant::now();
        mem.halt().map_err(|source| LiveError::Read {
            addr: self.addr,
            source,
        })?;
        let r = self.copy(mem);
        let r = resumed(mem, self.addr, r);
        let pause = if mem.halts() {
            start.elapsed()
        } else {
            Duration::ZERO
        };
        self.stats.polls += 1;
        self.stats.paused += pause;
        self.stats.max_pause = self.stats.max_pause.max(pause);
        let copied = r?;
        Ok(Poll {
            images: self.keep(copied),
            pause,
        })
    }

    /// The copying half of a poll: header, blocks, then `write_pos` again.
    fn copy(&mut self, mem: &mut dyn TargetMemory) -> Result<Copied, LiveError> {
        let g = self.geometry;
        let mut head = [0u8; RING_HEADER_LEN];
        read(mem, self.addr, &mut head)?;
        if head[..STATIC_HEADER_LEN] != self.header.as_bytes()[..STATIC_HEADER_LEN] {
            return Err(LiveError::Reinitialised(self.addr));
        }
        let commit_pos = word(&head, offsets::COMMIT_POS);
        let overwritten = dword(&head, offsets::OVERWRITTEN);
        let write_pos = word(&head, offsets::WRITE_POS);
        let dropped = dword(&head, offsets::DROPPED);
        let mut copied = Copied {
            commit_pos,
            write_pos_after: commit_pos,
            overwritten,
            dropped,
            older: 0,
            missed: 0,
            stable: false,
            continues: false,
            held: false,
            blocks: Vec::new(),
        };
        if commit_pos == 0 || g.split(commit_pos).seq >= g.seq_modulus {
            return Ok(copied);
        }
        let c_seq = g.split(commit_pos).seq;
        let oldest = g.seq_back(c_seq, g.block_count - 1);
        let first = match self.next {
            None => oldest,
            Some(n) if g.distance(n, c_seq) < g.block_count => n,
            Some(n) => {
                copied.missed = g.distance(n, oldest);
                oldest
            }
        };
        // Records of the window's blocks before `first` (kept earlier, or read now):
        // the number of `first`'s first record is `overwritten` plus these.
        let mut seq = oldest;
        while seq != first {
            let records = match self.kept.iter().find(|&&(s, _)| s == seq) {
                Some(&(_, r)) => r,
                None => {
                    let mut h = [0u8; BLOCK_HEADER_LEN];
                    read(mem, self.block_addr(seq), &mut h)?;
                    let h = BlockHeader::read_from_bytes(&h).expect("32 bytes");
                    if h.magic.get() == BLOCK_MAGIC && h.seq.get() == seq {
                        h.records.get()
                    } else {
                        0
                    }
                }
            };
            copied.older += u64::from(records);
            seq = g.next_seq(seq);
        }
        // A deferred kernel entry that may still be patched (FORMAT.md 9.5) holds its
        // block and the later ones back until a later poll. `pending_pos` is read
        // after `commit_pos` (a separate read unless the target is halted).
        let pending_pos = if mem.halts() {
            word(&head, offsets::PENDING_POS)
        } else {
            let mut p = [0u8; 4];
            read(mem, self.addr + offsets::PENDING_POS as u64, &mut p)?;
            u32::from_le_bytes(p)
        };
        let limit = match pending_block(&g, commit_pos, pending_pos) {
            Some(p) if g.distance(first, c_seq) >= g.distance(p, c_seq) => {
                copied.held = true;
                p
            }
            _ => c_seq,
        };
        let mut seq = first;
        while seq != limit {
            let mut block = vec![0u8; g.block_size() as usize];
            read(mem, self.block_addr(seq), &mut block)?;
            copied.blocks.push((seq, block));
            seq = g.next_seq(seq);
        }
        // write_pos, commit_pos and overwritten again, in that order.
        let mut tail = [0u8; 16];
        read(mem, self.addr + offsets::WRITE_POS as u64, &mut tail)?;
        copied.write_pos_after = word(&tail, 0);
        // Stable: no block was opened from the first read of write_pos to the last,
        // and none was being opened then (write_pos in the commit block), so
        // `overwritten` and the window's headers agree (FORMAT.md section 13: an
        // opening moves write_pos, then adds to overwritten, then commits).
        copied.stable = g.split(write_pos).seq == c_seq
            && g.split(copied.write_pos_after).seq == c_seq
            && dword(&tail, 8) == overwritten;
        copied.continues = self.next_record.is_some_and(|(seq, _)| seq == first);
        if copied.continues || copied.stable {
            self.next = Some(limit);
        }
        Ok(copied)
    }

    /// The checking half of a poll: applies the reclaim rule, numbers the kept blocks,
    /// counts the losses and builds the images.
    fn keep(&mut self, copied: Copied) -> Vec<Vec<u8>> {
        let g = self.geometry;
        let first_poll = self.stats.polls == 1;
        self.stats.dropped = copied.dropped;
        if !copied.continues && !copied.stable {
            // Nothing numbers these blocks exactly: copy them again at the next poll
            // (`next` did not move); those overwritten by then count as missed.
            self.stats.retried += 1;
            return Vec::new();
        }
        self.stats.missed += u64::from(copied.missed);
        self.stats.held_back += u64::from(copied.held);
        // Two ways to number a block: from the last kept block (while the blocks kept
        // follow each other), and, in a stable poll, from `overwritten` and the
        // window's older blocks.
        let mut number = if copied.continues {
            self.next_record.map(|(_, n)| n)
        } else {
            None
        };
        let mut stable_number = copied.stable.then_some(copied.overwritten + copied.older);
        let mut runs: Vec<Vec<(u32, Vec<u8>, u64)>> = Vec::new();
        let mut run_open = false;
        for (seq, block) in copied.blocks {
            let h = BlockHeader::read_from_prefix(&block).expect("a block").0;
            let valid = h.magic.get() == BLOCK_MAGIC && h.seq.get() == seq;
            let records = h.records.get();
            if first_poll && h.magic.get() == 0 && copied.overwritten == 0 {
                // Never used (a fresh ring's first pass).
                continue;
            }
            let survives = block_survives(&g, seq, copied.commit_pos, copied.write_pos_after);
            let n = number.or(stable_number);
            stable_number = stable_number.map(|n| n + u64::from(if valid { records } else { 0 }));
            let Some(n) = n.filter(|_| valid && survives) else {
                // Reclaimed during the copy, torn, or not numbered exactly: its records
                // are lost, counted in the gap before the next kept block's number.
                self.stats.rejected += 1;
                run_open = false;
                number = None;
                continue;
            };
            if !run_open {
                runs.push(Vec::new());
                run_open = true;
            }
            runs.last_mut().expect("a run").push((seq, block, n));
            if let Some((_, expected)) = self.next_record {
                self.stats.lost_records += n.saturating_sub(expected);
            }
            number = Some(n + u64::from(records));
            self.next_record = Some((g.next_seq(seq), n + u64::from(records)));
            self.stats.blocks += 1;
            self.stats.records += u64::from(records);
            self.kept.push_back((seq, records));
            if self.kept.len() > g.block_count as usize {
                self.kept.pop_front();
            }
        }
        runs.into_iter()
            .map(|run| self.image(&run, copied.dropped))
            .collect()
    }

    /// A fresh ring holding `run` as sequence numbers `0..n`, closed by an empty
    /// current block `n`, numbered from the run's first record.
    fn image(&self, run: &[(u32, Vec<u8>, u64)], dropped: u64) -> Vec<u8> {
        let bs = self.geometry.block_size();
        let n = run.len() as u32;
        let g = Geometry::new(bs, (n + 1).max(2)).expect("fewer blocks than the ring");
        // The target's static header with the new geometry; live and scratch fields
        // zero except those set below.
        let mut h = RingHeader::new_zeroed();
        h.as_mut_bytes()[..STATIC_HEADER_LEN]
            .copy_from_slice(&self.header.as_bytes()[..STATIC_HEADER_LEN]);
        h.block_count.set(g.block_count);
        h.seq_modulus.set(g.seq_modulus);
        h.static_crc
            .set(HEADER_CRC.checksum(&h.as_bytes()[..STATIC_HEADER_LEN]));
        let current = g.join(n, BLOCK_HEADER_LEN as u32 + 1);
        h.commit_pos.set(current);
        h.write_pos.set(current);
        h.owner.set(0);
        h.overwritten.set(run[0].2);
        h.dropped.set(dropped);
        let mut out = vec![0u8; g.ring_len()];
        out[..RING_HEADER_LEN].copy_from_slice(h.as_bytes());
        for (i, (_, block, _)) in run.iter().enumerate() {
            let at = g.block_offset(g.slot(i as u32));
            out[at..at + bs as usize].copy_from_slice(block);
            out[at + 4..at + 8].copy_from_slice(&(i as u32).to_le_bytes());
        }
        let last = BlockHeader::read_from_prefix(&run[run.len() - 1].1)
            .expect("a block")
            .0;
        let at = g.block_offset(g.slot(n));
        let mut cur = last;
        cur.seq.set(n);
        cur.records.set(0);
        cur.reserved.set(0);
        out[at..at + BLOCK_HEADER_LEN].copy_from_slice(cur.as_bytes());
        out[at + BLOCK_HEADER_LEN] = END_MARKER;
        out
    }
}

/// What a poll copied, before the checks.
struct Copied {
    commit_pos: u32,
    write_pos_after: u32,
    overwritten: u64,
    dropped: u64,
    /// Records of the window's blocks before the first copied one.
    older: u64,
    /// Blocks overwritten since the last poll.
    missed: u32,
    /// No block opened during the copy: `overwritten + older` numbers the first block.
    stable: bool,
    /// The first copied block follows the last kept one: `next_record` numbers it.
    continues: bool,
    /// Blocks were left for a later poll: a deferred entry in them may be patched.
    held: bool,
    blocks: Vec<(u32, Vec<u8>)>,
}

/// Where the rings are in target memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rings {
    /// One ring at this address (`--addr`, or an ELF symbol's address).
    At(u64),
    /// Every ring whose header is in `start..start + len` (`--addr --len`: a scan).
    Scan {
        /// First address.
        start: u64,
        /// Bytes to scan.
        len: u64,
    },
}

/// How target memory is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stub {
    /// A GDB remote-protocol stub, `HOST:PORT`.
    Gdb(String),
    /// QEMU's QMP socket (`pmemsave` while the guest runs: the racy test back end).
    Qmp(std::path::PathBuf),
    /// An SWD/JTAG debug probe through probe-rs (`--probe`; reads a running target).
    Probe(crate::probe::ProbeConfig),
}

impl std::fmt::Display for Stub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stub::Gdb(a) => write!(f, "gdb {a}"),
            Stub::Qmp(p) => write!(f, "qmp {}", p.display()),
            Stub::Probe(p) => p.fmt(f),
        }
    }
}

/// A live capture of rings in target memory ([`crate::source::Source::Gdb`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GdbSource {
    /// The back end.
    pub stub: Stub,
    /// Where the rings are.
    pub rings: Rings,
    /// Time between polls.
    pub interval: Duration,
}

/// The most memory a ring scan reads (a RAM range of a microcontroller or a board).
pub const MAX_SCAN: u64 = 256 << 20;

/// Finds and attaches the rings of `rings`.
pub fn attach_all(mem: &mut dyn TargetMemory, rings: &Rings) -> Result<Vec<LiveRing>, LiveError> {
    match *rings {
        Rings::At(addr) => Ok(vec![LiveRing::attach(mem, addr)?]),
        Rings::Scan { start, len } => {
            let too_big = || LiveError::NoRing {
                addr: start,
                why: format!("a scan of {len} bytes is more than {MAX_SCAN}"),
            };
            let n = usize::try_from(len)
                .ok()
                .filter(|_| len <= MAX_SCAN)
                .ok_or_else(too_big)?;
            let mut bytes = vec![0u8; n];
            mem.halt().map_err(|source| LiveError::Read {
                addr: start,
                source,
            })?;
            let r = read(mem, start, &mut bytes);
            resumed(mem, start, r)?;
            let found: Vec<u64> = tracemark_format::ring::find_rings(&bytes)
                .map(|o| start + o as u64)
                .collect();
            if found.is_empty() {
                return Err(LiveError::NoRing {
                    addr: start,
                    why: format!("no ring header in the {len} bytes scanned"),
                });
            }
            found
                .into_iter()
                .map(|a| LiveRing::attach(mem, a))
                .collect()
        }
    }
}

/// One line of counters for the user: the sum over `rings`.
pub fn summary(rings: &[LiveRing]) -> String {
    let mut t = LiveStats::default();
    for r in rings {
        let s = r.stats();
        t.polls = t.polls.max(s.polls);
        t.blocks += s.blocks;
        t.records += s.records;
        t.rejected += s.rejected;
        t.missed += s.missed;
        t.lost_records += s.lost_records;
        t.retried += s.retried;
        t.held_back += s.held_back;
        t.dropped += s.dropped;
        t.paused += s.paused;
        t.max_pause = t.max_pause.max(s.max_pause);
    }
    let avg = t
        .paused
        .checked_div(t.polls.max(1) as u32)
        .unwrap_or_default();
    format!(
        "{} polls, {} blocks, {} records kept; lost {} records ({} blocks overwritten \
         between polls, {} rejected as reclaimed during the copy, {} polls retried), \
         {} dropped by the target; pause per poll {:.3} ms avg, {:.3} ms max; \
         {} polls waited for a deferred entry's information",
        t.polls,
        t.blocks,
        t.records,
        t.lost_records,
        t.missed,
        t.rejected,
        t.retried,
        t.dropped,
        avg.as_secs_f64() * 1e3,
        t.max_pause.as_secs_f64() * 1e3,
        t.held_back,
    )
}

/// Frames `image` as UART dump `dump_id` (FORMAT.md section 17) into `out`: the form
/// a live capture stores, so that the capture directory holds what a console capture
/// holds and the framer saves each image to `dumps/`.
pub fn frame(dump_id: u32, image: &[u8], out: &mut Vec<u8>) {
    let _ = tracemark_format::uart::write_framed(dump_id, image, 0, &mut |line: &[u8]| {
        out.extend_from_slice(line);
        Ok::<(), ()>(())
    });
}

/// The source thread of `--gdb`: connects, attaches, then polls every `interval` and
/// sends the framed images as data. Ends when the capture stops listening.
pub(crate) fn run_gdb(src: &GdbSource, tx: &std::sync::mpsc::SyncSender<crate::source::Event>) {
    use crate::source::Event;
    let fail = |e: String| {
        let _ = tx.send(Event::Failed(io::Error::other(e)));
    };
    let connected = match &src.stub {
        Stub::Gdb(addr) => {
            crate::gdb::Gdb::connect(addr, Duration::from_secs(10)).and_then(|mut g| {
                // An all-stop stub halts the target when a client connects: let it run.
                g.resume()?;
                Ok(Box::new(g) as Box<dyn TargetMemory>)
            })
        }
        Stub::Qmp(path) => {
            crate::qmp::Qmp::connect(path).map(|q| Box::new(q) as Box<dyn TargetMemory>)
        }
        Stub::Probe(config) => crate::probe::open(config).map_err(io::Error::other),
    };
    let mut gdb = match connected {
        Ok(g) => g,
        Err(e) => return fail(e.to_string()),
    };
    let gdb = &mut *gdb;
    // A firmware sets its ring up after it starts: wait for a valid header.
    let mut waiting = false;
    let mut rings = loop {
        match attach_all(gdb, &src.rings) {
            Ok(r) => break r,
            Err(e @ LiveError::NoRing { .. }) => {
                if !waiting {
                    waiting = true;
                    let line = format!("{}: waiting for a ring ({})", src.stub, chain(&e));
                    if tx.send(Event::Status(line, true)).is_err() {
                        return;
                    }
                }
                std::thread::sleep(src.interval);
            }
            Err(LiveError::Read { source, .. }) if gone(&source) => {
                let _ = tx.send(Event::Eof);
                return;
            }
            Err(e) => return fail(chain(&e)),
        }
    };
    let where_ = rings
        .iter()
        .map(|r| format!("cpu{} at {:#x}", r.cpu(), r.addr))
        .collect::<Vec<_>>()
        .join(", ");
    if tx
        .send(Event::Status(
            format!("{}: reading {where_}", src.stub),
            true,
        ))
        .is_err()
    {
        return;
    }
    let mut dump_id = 0u32;
    let mut last_report = Instant::now();
    let mut last_lost = 0;
    loop {
        let started = Instant::now();
        let mut out = Vec::new();
        for ring in &mut rings {
            match ring.poll(gdb) {
                Ok(poll) => {
                    for image in poll.images {
                        dump_id = dump_id.wrapping_add(1);
                        frame(dump_id, &image, &mut out);
                    }
                }
                Err(LiveError::Read { source, .. }) if gone(&source) => {
                    // The target exited (QEMU quits with its firmware): the end of
                    // the stream, like the end of standard input.
                    let _ = tx.send(Event::Status(
                        format!(
                            "{}: the stub closed the connection; {}",
                            src.stub,
                            summary(&rings)
                        ),
                        false,
                    ));
                    let _ = tx.send(Event::Eof);
                    return;
                }
                Err(e) => return fail(chain(&e)),
            }
        }
        if !out.is_empty() {
            let n = out.len();
            if tx.send(Event::Data(out, n)).is_err() {
                return;
            }
        }
        let lost: u64 = rings.iter().map(|r| r.stats().lost_records).sum();
        if lost != last_lost || last_report.elapsed() >= Duration::from_secs(5) {
            last_lost = lost;
            last_report = Instant::now();
            let line = format!("{}: {}", src.stub, summary(&rings));
            if tx.send(Event::Status(line, true)).is_err() {
                return;
            }
        }
        std::thread::sleep(src.interval.saturating_sub(started.elapsed()));
    }
}

/// The address of symbol `name` in the ELF file `elf` (`--elf --symbol`).
pub fn symbol_address(elf: &std::path::Path, name: &str) -> Result<u64, String> {
    use object::{Object, ObjectSymbol};
    let data = std::fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let file = object::File::parse(&*data).map_err(|e| format!("{}: {e}", elf.display()))?;
    file.symbols()
        .chain(file.dynamic_symbols())
        .find(|s| s.name() == Ok(name) && s.address() != 0)
        .map(|s| s.address())
        .ok_or_else(|| format!("{}: no symbol {name:?} with an address", elf.display()))
}

fn gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracemark::{Config, KernelEntry, Tracer};
    use tracemark_decoder::dump::Dump;
    use tracemark_format::record::Event;
    use tracemark_tests::{TestClock, TestTracer};

    const BASE: u64 = 0x2000_0000;

    /// A target running the real encoder: each event is a user record holding a
    /// sequence counter. `per_read` events are written during every memory read
    /// (a target read while it runs); `per_resume` while it runs between polls.
    struct Target<'t, 'm, 'c> {
        tracer: &'t TestTracer<'m, 'c>,
        clock: &'c TestClock,
        counter: u32,
        per_read: u32,
        per_resume: u32,
        halting: bool,
        /// Every 40 events a deferred kernel entry (single-context, FORMAT.md 9.5):
        /// held, written with its placeholder by an interrupt, and filled in 30
        /// events later with a syscall whose label is the counter of the first event
        /// after it.
        entries: bool,
    }

    impl Target<'_, '_, '_> {
        fn run(&mut self, n: u32) {
            for _ in 0..n {
                self.clock.advance(3);
                // SAFETY: this thread is the ring's only writer, and no call nests in
                // another.
                let m = unsafe { self.tracer.masked() };
                if self.entries && self.counter % 40 == 0 {
                    m.kernel_entry_deferred();
                    self.clock.advance(1);
                    m.interrupt(7);
                }
                self.tracer.user(1, &self.counter.to_le_bytes());
                if self.entries && self.counter % 40 == 30 {
                    m.kernel_entry_info(KernelEntry::syscall(1, 0, false, self.counter - 30));
                    m.kernel_exit();
                }
                self.counter += 1;
            }
        }
    }

    impl TargetMemory for Target<'_, '_, '_> {
        fn read(&mut self, addr: u64, buf: &mut [u8]) -> io::Result<()> {
            let n = self.per_read;
            self.run(n);
            self.tracer.ring().read_at((addr - BASE) as usize, buf);
            Ok(())
        }
        fn resume(&mut self) -> io::Result<()> {
            let n = self.per_resume;
            self.run(n);
            Ok(())
        }
        fn halts(&self) -> bool {
            self.halting
        }
    }

    /// Decodes the images and checks every record's number is its counter; returns
    /// the counters seen.
    fn check_images(images: &[Vec<u8>]) -> Vec<u64> {
        let mut seen = Vec::new();
        for image in images {
            let dump = Dump::parse(image).expect("an image is a valid dump");
            assert_eq!(dump.rings.len(), 1);
            for block in &dump.rings[0].blocks {
                let mut number = block.first_record;
                for r in block.decode() {
                    let r = r.expect("records decode");
                    if let Event::User { payload, .. } = r.event {
                        let c = u32::from_le_bytes(payload.as_bytes().try_into().unwrap());
                        // Record numbers are the counters: no jump inside a kept
                        // block, and every loss is counted.
                        assert_eq!(number, u64::from(c), "block seq {}", block.seq);
                        seen.push(number);
                        number += 1;
                    }
                }
            }
            assert!(dump.warnings.is_empty(), "{:?}", dump.warnings);
        }
        seen
    }

    /// What `tracemark stats` says the images, stored end to end, lost.
    fn stats_lost(images: &[Vec<u8>]) -> u64 {
        let all = images.concat();
        let dump = Dump::parse(&all).expect("images end to end are a dump");
        tracemark_decoder::stats::compute(&dump, 1, &|_| ()).0.lost
    }

    fn capture(
        per_read: u32,
        per_resume: u32,
        halting: bool,
        polls: u32,
    ) -> (Vec<u64>, LiveStats, u32) {
        let (images, stats, counter) = capture_images(per_read, per_resume, halting, polls, false);
        (check_images(&images), stats, counter)
    }

    fn capture_images(
        per_read: u32,
        per_resume: u32,
        halting: bool,
        polls: u32,
        entries: bool,
    ) -> (Vec<Vec<u8>>, LiveStats, u32) {
        let config = Config {
            block_size: 256,
            ..Config::new()
        };
        let len = RING_HEADER_LEN + 8 * 256;
        let mut words = vec![0u64; len / 8];
        let clock = TestClock::new(100);
        let tracer = Tracer::new(&mut words.as_mut_bytes()[..len], &config, &clock).unwrap();
        let mut target = Target {
            tracer: &tracer,
            clock: &clock,
            counter: 0,
            per_read: 0,
            per_resume: 0,
            halting,
            entries,
        };
        target.run(5);
        let mut ring = LiveRing::attach(&mut target, BASE).unwrap();
        target.per_read = per_read;
        target.per_resume = per_resume;
        let mut images = Vec::new();
        for _ in 0..polls {
            images.extend(ring.poll(&mut target).unwrap().images);
        }
        let counter = target.counter;
        let stats = ring.stats();
        if !images.is_empty() {
            // Stats of the stored capture count exactly the losses the capture counted
            // after its first kept block (the first image's own `overwritten` is what
            // was lost before the capture started).
            let first = Dump::parse(&images[0]).unwrap().rings[0].overwritten;
            assert_eq!(stats_lost(&images), first + stats.lost_records, "{stats:?}");
        }
        (images, stats, counter)
    }

    #[test]
    fn a_halted_target_polled_often_enough_loses_nothing() {
        // 8 blocks of 256 bytes hold about 8 * 224 / 8 records; 60 per poll is less
        // than a ring.
        let (seen, stats, _) = capture(0, 60, true, 50);
        assert_eq!(stats.rejected, 0);
        assert_eq!(stats.missed, 0);
        assert_eq!(stats.lost_records, 0);
        assert_eq!(seen.len() as u64, stats.records);
        // Consecutive from the first record ever written.
        assert_eq!(seen, (0..seen.len() as u64).collect::<Vec<_>>());
        assert!(seen.len() > 2500);
    }

    #[test]
    fn blocks_overwritten_between_polls_are_counted_exactly() {
        // 500 records between polls: more than the ring holds.
        let (seen, stats, _) = capture(0, 500, true, 20);
        assert!(stats.missed > 0);
        assert_eq!(stats.rejected, 0);
        // The gaps in the counters add up to the records reported lost.
        let gaps: u64 = seen.windows(2).map(|w| w[1] - w[0] - 1).sum();
        assert!(gaps > 0);
        assert_eq!(gaps, stats.lost_records);
        assert_eq!(seen.len() as u64, stats.records);
    }

    #[test]
    fn blocks_reclaimed_during_the_copy_are_rejected_never_kept() {
        // The target writes while every read runs: the oldest blocks of the window
        // are reclaimed under the copy.
        let (seen, stats, _) = capture(3, 225, false, 60);
        assert!(stats.rejected > 0, "{stats:?}");
        assert!(stats.blocks > 20, "{stats:?}");
        let gaps: u64 = seen.windows(2).map(|w| w[1] - w[0] - 1).sum();
        assert_eq!(gaps, stats.lost_records, "{stats:?}");
        assert_eq!(seen.len() as u64, stats.records);
        assert_eq!(stats.paused, Duration::ZERO);
    }

    #[test]
    fn every_kept_record_is_numbered_exactly_whatever_the_race() {
        // Records written during each read and between polls, from far less than a
        // block to more than a ring: check_images asserts that each record's number
        // is its counter, so no kept block holds a jump and losses add up.
        let mut rejected = 0;
        for per_read in [0, 1, 3, 7, 20] {
            for per_resume in [10, 100, 200, 230, 260, 400] {
                let (seen, stats, _) = capture(per_read, per_resume, false, 25);
                let gaps: u64 = seen.windows(2).map(|w| w[1] - w[0] - 1).sum();
                assert_eq!(
                    gaps, stats.lost_records,
                    "{per_read} {per_resume} {stats:?}"
                );
                assert_eq!(seen.len() as u64, stats.records);
                rejected += stats.rejected;
            }
        }
        assert!(rejected > 0);
    }

    /// Every record of the images as (number, event, time), in order.
    fn records_of(images: &[Vec<u8>]) -> Vec<(u64, Event, u64)> {
        let mut out = Vec::new();
        for image in images {
            let dump = Dump::parse(image).expect("an image is a valid dump");
            assert!(dump.warnings.is_empty(), "{:?}", dump.warnings);
            for block in &dump.rings[0].blocks {
                let mut number = block.first_record;
                for r in block.decode() {
                    let r = r.expect("records decode");
                    if matches!(r.event, Event::Lost { .. }) {
                        continue;
                    }
                    out.push((number, r.event, r.ts));
                    number += 1;
                }
            }
        }
        out
    }

    /// A single-context writer's deferred kernel entry (FORMAT.md 9.5) across polls:
    /// held (not written) during one poll, written with its placeholder by an
    /// interrupt, its block closed and polled before the information patches the
    /// placeholder in place. The capture holds it once, with its information and its
    /// entry time, and loses nothing.
    #[test]
    fn a_deferred_entry_patched_after_its_block_closed_is_captured_once_with_its_word() {
        let config = Config {
            block_size: 256,
            ..Config::new()
        };
        let len = RING_HEADER_LEN + 8 * 256;
        let mut words = vec![0u64; len / 8];
        let clock = TestClock::new(100);
        let tracer = Tracer::new(&mut words.as_mut_bytes()[..len], &config, &clock).unwrap();
        let mut target = Target {
            tracer: &tracer,
            clock: &clock,
            counter: 0,
            per_read: 0,
            per_resume: 0,
            halting: false,
            entries: false,
        };
        // SAFETY: this thread is the ring's only writer, and no call nests in another.
        let m = unsafe { tracer.masked() };
        let first = KernelEntry::syscall(3, 2, false, 17);
        let second = KernelEntry::syscall(5, 1, true, 4);
        target.run(5);
        let mut ring = LiveRing::attach(&mut target, BASE).unwrap();
        let mut images = Vec::new();
        let mut poll = |target: &mut Target| images.extend(ring.poll(target).unwrap().images);

        // Held across a poll: in no block yet.
        clock.advance(3);
        let t_first = clock.get();
        assert_eq!(m.kernel_entry_deferred(), tracemark::Outcome::Written);
        poll(&mut target);
        // An interrupt writes the held entry (placeholder) before itself; then enough
        // records to close its block and the next (the entry's block is not the
        // window's oldest).
        clock.advance(3);
        m.interrupt(9);
        target.run(70);
        poll(&mut target);
        // The information comes: the placeholder in the closed block is patched.
        clock.advance(3);
        assert!(m.kernel_entry_info(first));
        m.kernel_exit();
        target.run(30);
        poll(&mut target);
        // Held across a poll, its information with nothing in between: written once,
        // minimal, with the exit.
        clock.advance(3);
        let t_second = clock.get();
        m.kernel_entry_deferred();
        poll(&mut target);
        clock.advance(3);
        m.kernel_exit_deferred(second, 0);
        target.run(70);
        poll(&mut target);

        let records = records_of(&images);
        // Nothing lost, nothing twice: consecutive numbers.
        let numbers: Vec<u64> = records.iter().map(|r| r.0).collect();
        assert_eq!(
            numbers,
            (numbers[0]..numbers[0] + numbers.len() as u64).collect::<Vec<_>>()
        );
        assert_eq!(ring.stats().lost_records, 0, "{:?}", ring.stats());
        let entries: Vec<(KernelEntry, u64)> = records
            .iter()
            .filter_map(|(_, e, ts)| match e {
                Event::KernelEntry(k) => Some((*k, *ts)),
                _ => None,
            })
            .collect();
        assert_eq!(entries, [(first, t_first), (second, t_second)]);
        // Each exit follows its own entry.
        let exits = records
            .iter()
            .filter(|(_, e, _)| matches!(e, Event::KernelExit { .. }))
            .count();
        assert_eq!(exits, 2);
        assert!(ring.stats().held_back > 0, "{:?}", ring.stats());
    }

    /// Deferred entries filled in after their block closed, under every race of the
    /// reads with the writer: no kept entry holds the placeholder, each has the word
    /// its information gave it, and losses are the gaps in the numbers.
    #[test]
    fn no_deferred_entry_is_kept_before_its_information_whatever_the_race() {
        let mut entries_seen = 0;
        let mut held_back = 0;
        for per_read in [0, 1, 3, 7] {
            for per_resume in [10, 35, 100, 230, 400] {
                let (images, stats, _) = capture_images(per_read, per_resume, false, 25, true);
                let records = records_of(&images);
                let ns: Vec<u64> = records.iter().map(|r| r.0).collect();
                let gaps: u64 = ns.windows(2).map(|w| w[1] - w[0] - 1).sum();
                assert_eq!(
                    gaps, stats.lost_records,
                    "{per_read} {per_resume} {stats:?}"
                );
                assert_eq!(ns.len() as u64, stats.records);
                for (i, (n, e, _)) in records.iter().enumerate() {
                    let Event::KernelEntry(k) = e else { continue };
                    assert_ne!(*k, KernelEntry::PENDING, "#{n} ({per_read} {per_resume})");
                    // IRQ, then the event whose counter is the label (if kept).
                    if let Some((m, Event::User { payload, .. }, _)) = records.get(i + 2) {
                        if *m == n + 2 {
                            let c = u32::from_le_bytes(payload.as_bytes().try_into().unwrap());
                            assert_eq!(*k, KernelEntry::syscall(1, 0, false, c), "#{n}");
                        }
                    }
                    entries_seen += 1;
                }
                held_back += stats.held_back;
            }
        }
        assert!(entries_seen > 100, "{entries_seen}");
        assert!(held_back > 0);
    }

    #[test]
    fn a_scan_finds_every_ring_in_the_range() {
        let config = |cpu| Config {
            block_size: 256,
            cpu_id: cpu,
            ..Config::new()
        };
        let ring = |cpu| {
            tracemark_tests::ring_image(&config(cpu), 4, 10, |t, _| {
                for i in 0u32..50 {
                    t.user(1, &i.to_le_bytes());
                }
            })
        };
        // Two rings in RAM among other data, 8-byte aligned.
        let mut bytes = vec![0x55u8; 4096];
        bytes.extend(ring(0));
        bytes.extend(vec![0xaa; 64]);
        let second = bytes.len() as u64;
        bytes.extend(ring(1));
        let mut mem = crate::memory::Buffer { base: BASE, bytes };
        let len = mem.bytes.len() as u64;
        let rings = attach_all(&mut mem, &Rings::Scan { start: BASE, len }).unwrap();
        let found: Vec<(u32, u64)> = rings.iter().map(|r| (r.cpu(), r.addr)).collect();
        assert_eq!(found, [(0, BASE + 4096), (1, BASE + second)]);
        // Nothing there: an error naming the range.
        let e = attach_all(
            &mut mem,
            &Rings::Scan {
                start: BASE,
                len: 4096,
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("0x20000000"), "{e}");
        // A ring read at its address gives its blocks.
        let mut r = LiveRing::attach(&mut mem, BASE + 4096).unwrap();
        let poll = r.poll(&mut mem).unwrap();
        assert_eq!(check_images(&poll.images).len() as u64, r.stats().records);
        assert!(r.stats().records > 0);
    }
}
