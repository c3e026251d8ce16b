//! Kernel and function slices of one ring, kept properly nested for timeline formats.
//!
//! Kernel and function slices share a CPU's track, one stack per ring. An exit closes
//! the innermost matching slice, first closing (at the same time) the slices left open
//! above it (a function whose exit was lost); a function exit never closes a kernel
//! slice; an exit with nothing to close is an orphan (shown as an instant). Slices
//! still open at the end are closed by the sink at the ring's last time. The stack is
//! at most [`MAX_DEPTH`] deep, and holds at most [`MAX_FUNCTION_DEPTH`] function
//! slices: deeper entries become instants, and so do their exits, so memory stays
//! bounded on hostile input, and function entries whose exits were never recorded (a
//! `tracemark import qemu` dump records calls, not returns) make a staircase at most
//! [`MAX_FUNCTION_DEPTH`] deep rather than one level per call.

/// Deepest slice nesting kept per ring.
pub const MAX_DEPTH: usize = 1024;

/// Most function slices open at once on a ring (the 65th nested function entry is an
/// instant). Deeper real call chains lose their slices beyond it, shown as instants.
pub const MAX_FUNCTION_DEPTH: usize = 64;

/// A slice open on a ring's track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// A kernel entry.
    Kernel,
    /// A function entry, by id.
    Function(u64),
}

/// What an exit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// End this many slices, innermost first; the last is the one the exit closes.
    Ends(usize),
    /// Nothing to close: show the exit as an instant.
    Orphan,
}

/// The open slices of one ring.
#[derive(Debug, Clone, Default)]
pub struct Nesting {
    stack: Vec<Open>,
    /// Function slices in `stack`.
    functions: usize,
    kernel_overflow: u64,
    function_overflow: u64,
}

impl Nesting {
    /// Opens `o`: `true` if it is a slice, `false` if it is too deep and must be shown
    /// as an instant.
    pub fn open(&mut self, o: Open) -> bool {
        let too_many_functions =
            matches!(o, Open::Function(_)) && self.functions >= MAX_FUNCTION_DEPTH;
        if self.stack.len() >= MAX_DEPTH || too_many_functions {
            match o {
                Open::Kernel => self.kernel_overflow += 1,
                Open::Function(_) => self.function_overflow += 1,
            }
            return false;
        }
        if matches!(o, Open::Function(_)) {
            self.functions += 1;
        }
        self.stack.push(o);
        true
    }

    /// Pops the slices from `at` up.
    fn close_from(&mut self, at: usize) -> Close {
        let n = self.stack.len() - at;
        self.functions -= self.stack[at..]
            .iter()
            .filter(|o| matches!(o, Open::Function(_)))
            .count();
        self.stack.truncate(at);
        Close::Ends(n)
    }

    /// A kernel exit.
    pub fn close_kernel(&mut self) -> Close {
        if self.kernel_overflow > 0 {
            self.kernel_overflow -= 1;
            return Close::Orphan;
        }
        match self.stack.iter().rposition(|o| *o == Open::Kernel) {
            Some(at) => self.close_from(at),
            None => Close::Orphan,
        }
    }

    /// A function exit.
    pub fn close_function(&mut self, func: u64) -> Close {
        let pos = self
            .stack
            .iter()
            .rposition(|o| *o == Open::Function(func))
            .filter(|&p| self.stack[p + 1..].iter().all(|o| *o != Open::Kernel));
        match pos {
            Some(at) => self.close_from(at),
            None => {
                self.function_overflow = self.function_overflow.saturating_sub(1);
                Close::Orphan
            }
        }
    }

    /// Closes everything still open: the number of slices to end.
    pub fn drain(&mut self) -> usize {
        let n = self.stack.len();
        self.stack.clear();
        self.functions = 0;
        n
    }

    /// Slices open.
    pub fn depth(&self) -> usize {
        self.stack.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_close_the_innermost_match_and_what_is_left_open_above_it() {
        let mut n = Nesting::default();
        assert!(n.open(Open::Function(1)));
        assert!(n.open(Open::Kernel));
        assert!(n.open(Open::Function(2)));
        assert!(n.open(Open::Function(3)));
        // f3's exit was lost: f2's exit closes both.
        assert_eq!(n.close_function(2), Close::Ends(2));
        // A function exit never closes the kernel slice.
        assert_eq!(n.close_function(1), Close::Orphan);
        assert_eq!(n.close_kernel(), Close::Ends(1));
        assert_eq!(n.close_kernel(), Close::Orphan);
        assert_eq!(n.close_function(1), Close::Ends(1));
        assert_eq!(n.depth(), 0);
    }

    /// Function entries without exits (an imported dump's calls): at most
    /// MAX_FUNCTION_DEPTH slices, the rest instants; kernel slices still open above
    /// them, and closing the outer ones makes room again.
    #[test]
    fn function_entries_without_exits_stop_at_the_function_depth() {
        let mut n = Nesting::default();
        assert!(n.open(Open::Function(0)));
        let opened = (1..170u64).filter(|f| n.open(Open::Function(*f))).count();
        assert_eq!(opened + 1, MAX_FUNCTION_DEPTH);
        assert!(n.open(Open::Kernel));
        assert_eq!(n.close_kernel(), Close::Ends(1));
        assert_eq!(n.close_function(0), Close::Ends(MAX_FUNCTION_DEPTH));
        assert!(n.open(Open::Function(1)));
        assert_eq!(n.depth(), 1);
    }

    #[test]
    fn depth_is_bounded() {
        let mut n = Nesting::default();
        for _ in 0..MAX_DEPTH {
            assert!(n.open(Open::Kernel));
        }
        assert!(!n.open(Open::Kernel));
        // The too-deep entry's exit comes first and is an orphan.
        assert_eq!(n.close_kernel(), Close::Orphan);
        assert_eq!(n.close_kernel(), Close::Ends(1));
        assert_eq!(n.drain(), MAX_DEPTH - 1);
    }
}
