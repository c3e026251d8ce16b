//! What one simulated CPU does: user time, syscalls with kernel time that depends on the
//! syscall and on the fastpath, interrupts (some nested inside a syscall), function call
//! trees inside the kernel, user events.
//!
//! The workload is a stream of [`Step`]s: advance the clock by `dt` ticks, then record
//! `op`. It is produced an *episode* at a time (one syscall with everything inside it, one
//! interrupt taken from user mode, ...) into a reused buffer, so nothing is allocated per
//! event.

use crate::rng::Rng;

/// seL4 (non-MCS) syscall numbers as the kernel-entry word stores them.
pub mod sys {
    /// `seL4_Call`.
    pub const CALL: u8 = 1;
    /// `seL4_ReplyRecv`.
    pub const REPLY_RECV: u8 = 2;
    /// `seL4_Send`.
    pub const SEND: u8 = 3;
    /// `seL4_NBSend`.
    pub const NB_SEND: u8 = 4;
    /// `seL4_Recv`.
    pub const RECV: u8 = 5;
    /// `seL4_Reply`.
    pub const REPLY: u8 = 6;
    /// `seL4_Yield`.
    pub const YIELD: u8 = 7;
    /// `seL4_NBRecv`.
    pub const NB_RECV: u8 = 8;
}

/// seL4 `cap_tag_t` values of the capabilities the workload invokes.
pub mod cap {
    /// Null cap (Yield invokes none).
    pub const NULL: u8 = 0;
    /// Untyped memory.
    pub const UNTYPED: u8 = 2;
    /// Endpoint.
    pub const ENDPOINT: u8 = 4;
    /// Notification.
    pub const NOTIFICATION: u8 = 6;
    /// Reply object.
    pub const REPLY: u8 = 8;
    /// CNode.
    pub const CNODE: u8 = 10;
    /// Thread control block.
    pub const THREAD: u8 = 12;
}

/// The IRQ numbers the simulated platform raises; slot 0 is the timer.
pub const IRQS: [u32; 5] = [27, 33, 48, 79, 112];

/// Number of distinct function ids (`0..FUNCTIONS`).
pub const FUNCTIONS: u32 = 4096;

/// Deepest function call tree.
const MAX_CALL_DEPTH: usize = 8;

/// One tracer call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The image record written at start.
    Image,
    /// A syscall kernel entry.
    Syscall {
        /// Syscall number (see [`sys`]).
        sys: u8,
        /// Cap type (see [`cap`]).
        cap: u8,
        /// Entered through the fastpath.
        fast: bool,
        /// Invocation label.
        label: u32,
    },
    /// A kernel entry for an interrupt (path `Interrupt`, word = IRQ number).
    IrqEntry {
        /// Index into [`IRQS`].
        slot: u8,
    },
    /// Kernel exit of the innermost open entry.
    Exit,
    /// The interrupt record itself.
    Irq {
        /// Index into [`IRQS`].
        slot: u8,
    },
    /// Function entry.
    FEntry(u16),
    /// Function exit.
    FExit(u16),
    /// User event with `len` payload bytes.
    User {
        /// Event id.
        id: u16,
        /// Payload length, at most 32.
        len: u8,
    },
}

/// Advance the clock by `dt` ticks, then do `op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Ticks before the call.
    pub dt: u32,
    /// The call.
    pub op: Op,
}

/// The workload generator of one CPU.
pub struct Workload {
    rng: Rng,
    steps: Vec<Step>,
    at: usize,
    started: bool,
}

impl Workload {
    /// The workload of CPU `cpu` for `seed`.
    pub fn new(seed: u64, cpu: u32) -> Self {
        Workload {
            rng: Rng::new(seed, u64::from(cpu)),
            steps: Vec::with_capacity(128),
            at: 0,
            started: false,
        }
    }

    /// The next step.
    #[inline]
    pub fn next_step(&mut self) -> Step {
        if self.at == self.steps.len() {
            self.steps.clear();
            self.at = 0;
            if self.started {
                self.episode();
            } else {
                self.started = true;
                self.push(0, Op::Image);
            }
        }
        let s = self.steps[self.at];
        self.at += 1;
        s
    }

    #[inline(always)]
    fn push(&mut self, dt: u32, op: Op) {
        self.steps.push(Step { dt, op });
    }

    fn irq_slot(&mut self) -> u8 {
        // The timer dominates; devices share the rest.
        if self.rng.percent(70) {
            0
        } else {
            self.rng.range(1, IRQS.len() as u32 - 1) as u8
        }
    }

    fn function_id(&mut self) -> u16 {
        // A few hot functions and a long tail.
        if self.rng.percent(70) {
            self.rng.below(64) as u16
        } else {
            self.rng.below(FUNCTIONS) as u16
        }
    }

    /// A call tree of `calls` functions; an interrupt is taken after `irq_after` events
    /// if given. Returns the ticks it spans.
    fn burst(&mut self, calls: u32, irq_after: Option<u32>) -> u64 {
        let mut stack = [0u16; MAX_CALL_DEPTH];
        let mut depth = 0usize;
        let mut entered = 0;
        let mut events = 0;
        let mut ticks = 0u64;
        while entered < calls || depth > 0 {
            if irq_after == Some(events) {
                ticks += self.nested_interrupt();
            }
            let dt = self.rng.range(5, 40);
            ticks += u64::from(dt);
            let enter =
                entered < calls && depth < MAX_CALL_DEPTH && (depth == 0 || self.rng.percent(55));
            if enter {
                let f = self.function_id();
                stack[depth] = f;
                depth += 1;
                entered += 1;
                self.push(dt, Op::FEntry(f));
            } else {
                depth -= 1;
                self.push(dt, Op::FExit(stack[depth]));
            }
            events += 1;
        }
        if irq_after.is_some_and(|n| n >= events) {
            ticks += self.nested_interrupt();
        }
        ticks
    }

    /// An interrupt handled in the kernel: entry, IRQ record, maybe a few handler
    /// functions, exit. Returns the ticks it spans.
    fn interrupt(&mut self, dt: u32, nested: bool) -> u64 {
        let slot = self.irq_slot();
        self.push(dt, Op::IrqEntry { slot });
        let mut ticks = u64::from(self.rng.range(10, 40));
        self.push(ticks as u32, Op::Irq { slot });
        if self.rng.percent(if nested { 30 } else { 50 }) {
            let calls = self.rng.range(1, 4);
            ticks += self.burst(calls, None);
        }
        let tail = self.rng.range(100, 600);
        ticks += u64::from(tail);
        self.push(tail, Op::Exit);
        ticks
    }

    fn nested_interrupt(&mut self) -> u64 {
        let dt = self.rng.range(5, 60);
        u64::from(dt) + self.interrupt(dt, true)
    }

    /// One episode: some user time, then a syscall, an interrupt, user events or a
    /// user-space call tree.
    fn episode(&mut self) {
        let user = self.rng.range(200, 4000);
        let r = self.rng.below(100);
        if r < 10 {
            self.interrupt(user, false);
        } else if r < 18 {
            let n = self.rng.range(1, 3);
            let mut dt = user;
            for _ in 0..n {
                let id = self.rng.below(16) as u16;
                let len = self.rng.range(0, 32) as u8;
                self.push(dt, Op::User { id, len });
                dt = self.rng.range(20, 300);
            }
        } else if r < 22 {
            let calls = self.rng.range(2, 12);
            let first = self.steps.len();
            self.burst(calls, None);
            self.steps[first].dt += user;
        } else {
            self.syscall(user);
        }
    }

    fn syscall(&mut self, user: u32) {
        const WEIGHTS: [(u8, u32); 8] = [
            (sys::CALL, 30),
            (sys::REPLY_RECV, 25),
            (sys::SEND, 8),
            (sys::NB_SEND, 5),
            (sys::RECV, 10),
            (sys::REPLY, 7),
            (sys::YIELD, 5),
            (sys::NB_RECV, 10),
        ];
        let mut pick = self.rng.below(100);
        let mut sys = sys::CALL;
        for (s, w) in WEIGHTS {
            if pick < w {
                sys = s;
                break;
            }
            pick -= w;
        }
        let r = self.rng.below(100);
        let cap = match sys {
            sys::CALL => match r {
                0..=59 => cap::ENDPOINT,
                60..=71 => cap::CNODE,
                72..=83 => cap::THREAD,
                _ => cap::UNTYPED,
            },
            sys::REPLY_RECV => cap::ENDPOINT,
            sys::SEND if r < 50 => cap::ENDPOINT,
            sys::NB_SEND | sys::NB_RECV if r < 35 => cap::ENDPOINT,
            sys::RECV if r < 60 => cap::ENDPOINT,
            sys::REPLY => cap::REPLY,
            sys::YIELD => cap::NULL,
            _ => cap::NOTIFICATION,
        };
        let fast = matches!(sys, sys::CALL | sys::REPLY_RECV)
            && cap == cap::ENDPOINT
            && self.rng.percent(75);
        let (lo, hi) = if fast {
            (150, 400)
        } else {
            match (sys, cap) {
                (sys::CALL, cap::ENDPOINT) => (700, 1500),
                (sys::CALL, cap::CNODE) => (1200, 2600),
                (sys::CALL, cap::THREAD) => (900, 2000),
                (sys::CALL, _) => (1500, 3000),
                (sys::REPLY_RECV, _) => (600, 1400),
                (sys::SEND, _) => (400, 900),
                (sys::RECV, _) => (500, 1200),
                (sys::REPLY, _) => (300, 800),
                (sys::YIELD, _) => (250, 600),
                _ => (300, 800),
            }
        };
        let target = u64::from(self.rng.range(lo, hi));
        let label = if sys == sys::CALL && cap != cap::ENDPOINT {
            self.rng.range(1, 60)
        } else {
            self.rng.below(1 << 12)
        };
        self.push(
            user,
            Op::Syscall {
                sys,
                cap,
                fast,
                label,
            },
        );
        let mut elapsed = 0u64;
        if !fast {
            // Long object invocations have preemption points where interrupts come in.
            let irq_percent = if matches!(cap, cap::CNODE | cap::UNTYPED) {
                15
            } else {
                3
            };
            let irq = self.rng.percent(irq_percent);
            if self.rng.percent(70) {
                let calls = self.rng.range(2, 10);
                let irq_after = irq.then(|| self.rng.below(2 * calls + 1));
                elapsed += self.burst(calls, irq_after);
            } else if irq {
                elapsed += self.nested_interrupt();
            }
        }
        let tail = target.saturating_sub(elapsed).max(20);
        self.push(tail as u32, Op::Exit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_exits_balance_and_nest() {
        let mut w = Workload::new(1, 0);
        let mut kernel = 0i32;
        let mut funcs = Vec::new();
        let mut syscalls = 0;
        let mut nested = 0;
        assert_eq!(w.next_step().op, Op::Image);
        for _ in 0..200_000 {
            let s = w.next_step();
            match s.op {
                Op::Syscall { .. } => {
                    assert_eq!(kernel, 0);
                    kernel += 1;
                    syscalls += 1;
                }
                Op::IrqEntry { .. } => {
                    nested += i32::from(kernel > 0);
                    kernel += 1;
                }
                Op::Exit => {
                    kernel -= 1;
                    assert!(kernel >= 0);
                }
                Op::FEntry(f) => funcs.push(f),
                Op::FExit(f) => assert_eq!(funcs.pop(), Some(f)),
                Op::User { len, .. } => assert!(len <= 32),
                Op::Irq { .. } | Op::Image => {}
            }
        }
        assert!(syscalls > 1000 && nested > 10, "{syscalls} {nested}");
    }
}
