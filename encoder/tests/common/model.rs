//! A reference model of what the encoder must record, shared by the property test and
//! the round-trip fuzz target: apply the same operations to a tracer and to the model,
//! then compare the decoded ring with the model's expectation.

use std::cell::Cell;

use tracemark::format::record::{ExitDuration, UserPayload};
use tracemark::format::ring::ENTRY_STACK_DEPTH;
use tracemark::format::ring::{BlockState, RingView};
use tracemark::{Event, KernelEntry, Mode, Outcome, Tracer};

/// One thing a kernel does.
#[derive(Debug, Clone)]
pub enum Op {
    /// Advance the clock.
    Advance(u64),
    /// `kernel_entry`.
    Entry(u32),
    /// `kernel_exit`.
    Exit,
    /// `interrupt`.
    Irq(u32),
    /// `function_entry`.
    FnEntry(u64),
    /// `function_exit`.
    FnExit(u64),
    /// `user` (payload cut to 32 bytes by the encoder).
    User(u32, Vec<u8>),
    /// `image`.
    Image(u64, u64, u64),
    /// `kernel_entry_deferred`.
    Deferred,
    /// `kernel_entry_info` with this word.
    Info(u32),
    /// `thread_switch`.
    Switch(u64),
    /// `thread_name(thread, prio, name)` (format version 3; `name` cut to 32 bytes).
    Name(u64, u32, Vec<u8>),
}

/// Expected state.
#[derive(Default)]
pub struct Model {
    pub now: u64,
    depth: usize,
    stack: [u64; ENTRY_STACK_DEPTH],
    /// (timestamp, event) of every record the encoder said it wrote.
    pub written: Vec<(u64, Event)>,
    pub dropped: u64,
    pub calls: u64,
    /// Index in `written` of the deferred entry still to be filled in.
    pending: Option<usize>,
    /// Deferred entries the tracer declined to fill in: they must have been overwritten
    /// by the time the ring is checked.
    unpatched: Vec<usize>,
}

impl Model {
    /// Applies `op` to the tracer and to the model.
    pub fn apply<C: tracemark::Clock>(&mut self, t: &Tracer<'_, C>, clock: &Cell<u64>, op: &Op) {
        let (outcome, event) = match op {
            Op::Advance(d) => {
                self.now = self.now.saturating_add(*d);
                clock.set(self.now);
                return;
            }
            Op::Entry(word) => {
                let e = KernelEntry(*word);
                let o = t.kernel_entry(e);
                if self.depth < ENTRY_STACK_DEPTH {
                    self.stack[self.depth] = self.now;
                }
                self.depth += 1;
                (o, Event::KernelEntry(e))
            }
            Op::Exit => {
                let d = if self.depth == 0 {
                    ExitDuration::NoEntry
                } else {
                    self.depth -= 1;
                    if self.depth < ENTRY_STACK_DEPTH {
                        // The wire saturates durations at u64::MAX - 2 (FORMAT.md).
                        ExitDuration::Ticks((self.now - self.stack[self.depth]).min(u64::MAX - 2))
                    } else {
                        ExitDuration::NestingOverflow
                    }
                };
                (t.kernel_exit(), Event::KernelExit(d))
            }
            Op::Irq(irq) => (t.interrupt(*irq), Event::Interrupt { irq: *irq }),
            Op::FnEntry(f) => (t.function_entry(*f), Event::FunctionEntry { func: *f }),
            Op::FnExit(f) => (t.function_exit(*f), Event::FunctionExit { func: *f }),
            Op::User(id, data) => {
                let data = &data[..data.len().min(32)];
                let payload = UserPayload::new(data).expect("at most 32 bytes");
                (t.user(*id, data), Event::User { id: *id, payload })
            }
            Op::Deferred => {
                let o = t.kernel_entry_deferred();
                if self.depth < ENTRY_STACK_DEPTH {
                    self.stack[self.depth] = self.now;
                }
                self.depth += 1;
                self.pending = match o {
                    Outcome::Written => Some(self.written.len()),
                    Outcome::Dropped => None,
                };
                (o, Event::KernelEntry(KernelEntry::PENDING))
            }
            Op::Info(word) => {
                let patched = t.kernel_entry_info(KernelEntry(*word));
                match self.pending.take() {
                    Some(i) if patched => {
                        self.written[i].1 = Event::KernelEntry(KernelEntry(*word))
                    }
                    Some(i) => self.unpatched.push(i),
                    None => assert!(!patched, "filled in an entry that was not pending"),
                }
                // Not a record: `calls` counts records written or dropped.
                return;
            }
            Op::Switch(thread) => (
                t.thread_switch(*thread),
                Event::ThreadSwitch { thread: *thread },
            ),
            Op::Name(thread, prio, name) => (
                t.thread_name(*thread, *prio, name),
                Event::ThreadName {
                    thread: *thread,
                    prio: *prio,
                    name: UserPayload::truncating(name),
                },
            ),
            Op::Image(b, s, i) => (
                t.image(*b, *s, *i),
                Event::Image {
                    base: *b,
                    size: *s,
                    id: *i,
                },
            ),
        };
        self.calls += 1;
        match outcome {
            Outcome::Written => self.written.push((self.now, event)),
            Outcome::Dropped => self.dropped += 1,
        }
    }

    /// Checks a ring image against the model: the decoded events are exactly the newest
    /// (overwrite) or oldest (drop) written ones, with their times, and
    /// `written = decoded + lost`.
    pub fn check(&self, image: &[u8], mode: Mode) -> Result<(), String> {
        let view = RingView::parse(image).map_err(|e| e.to_string())?;
        let mut decoded = Vec::new();
        for block in view.blocks() {
            match block.state {
                BlockState::Valid => {
                    for r in block.decode() {
                        let r = r.map_err(|e| format!("block {}: {e}", block.seq))?;
                        if !matches!(r.event, Event::Lost { .. }) {
                            decoded.push((r.ts, r.event));
                        }
                    }
                }
                BlockState::Empty => {}
                s => return Err(format!("block {} is {s:?}", block.seq)),
            }
        }
        let overwritten = view.header.overwritten.get();
        let dropped = view.header.dropped.get();
        if dropped != self.dropped {
            return Err(format!("dropped {dropped}, model {}", self.dropped));
        }
        if decoded.len() as u64 + overwritten != self.written.len() as u64 {
            return Err(format!(
                "decoded {} + overwritten {overwritten} != written {}",
                decoded.len(),
                self.written.len()
            ));
        }
        if mode == Mode::Drop && overwritten != 0 {
            return Err("drop mode overwrote".into());
        }
        if let Some(&i) = self.unpatched.iter().find(|&&i| i as u64 >= overwritten) {
            return Err(format!(
                "deferred entry {i} was not filled in but is still in the ring ({overwritten} overwritten)"
            ));
        }
        let expected = &self.written[overwritten as usize..];
        if decoded != expected {
            let at = decoded.iter().zip(expected).position(|(a, b)| a != b);
            let show = at.map(|i| (decoded[i], expected[i]));
            return Err(format!(
                "first difference at {at:?} of {} (decoded, expected): {show:?}",
                decoded.len()
            ));
        }
        Ok(())
    }
}
