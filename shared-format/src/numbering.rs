//! Record numbers: the one rule every reader uses (FORMAT.md section 12).
//!
//! Each CPU numbers its event records 0, 1, 2, ... in the order they were written
//! (`Lost` records get no number). A ring's numbering starts at its header's
//! `overwritten` count and each block of the window starts where the block before it
//! ended by that block's header `records` count. Numbers are `u64`: a ring whose
//! numbering would not fit (a damaged `overwritten` or `records` field) is damage, and
//! is numbered from 0 instead, so that every output and the index agree and no number
//! ever wraps.

use crate::ring::BLOCK_HEADER_LEN;
use crate::Event;

/// Most event records a block of `block_size` bytes can hold (each takes a byte at
/// least). A header `records` count above it is damage.
#[inline]
pub const fn max_block_records(block_size: u32) -> u64 {
    (block_size as u64).saturating_sub(BLOCK_HEADER_LEN as u64)
}

/// Whether a block header's `records` count is possible for a block of `block_size`.
#[inline]
pub const fn plausible_block_records(block_size: u32, records: u32) -> bool {
    records as u64 <= max_block_records(block_size)
}

/// Whether a ring numbered from `start` (its `overwritten` count) with `blocks` blocks of
/// `block_size` bytes can number every record it can hold without passing `u64::MAX`.
/// When not, its counters are damaged: number it from 0 ([`RingNumbering::new`] does).
#[inline]
pub const fn ring_numbering_fits(start: u64, blocks: u32, block_size: u32) -> bool {
    let most = (blocks as u64).saturating_mul(max_block_records(block_size));
    start.checked_add(most).is_some()
}

/// Whether a block's event records, as decoded, agree with its header's `records` count
/// (FORMAT.md 7.1 and 12): `decoded` is the event records (`Lost` records excluded)
/// decoded from the block, `complete` whether decoding reached the end of its record
/// bytes (END marker, or the end of the bytes) without an error. The writer counts every
/// record it stores in the block, so no block decodes to more than its count; a closed
/// block holds exactly its count; the current block (the one the commit position points
/// into) may count reservations not yet committed, so it may decode to fewer. Anything
/// else is damage: record bytes overwritten (zeroed bytes decode as kernel entries) or a
/// damaged count, which would give records numbers that another block also uses, or
/// leave a gap.
#[inline]
pub const fn block_count_consistent(
    header: u32,
    decoded: u64,
    is_current: bool,
    complete: bool,
) -> bool {
    let header = header as u64;
    decoded <= header && (decoded == header || is_current || !complete)
}

/// Whether a block's `lost_before` agrees with its ring's header counters (FORMAT.md 11):
/// `lost_before` is `overwritten + dropped` at the moment the block was opened, and both
/// counters only grow, so it can never exceed their sum as dumped. A sum past
/// `u64::MAX` is itself impossible (each counter counts records the writer handled).
#[inline]
pub const fn lost_before_consistent(lost_before: u64, overwritten: u64, dropped: u64) -> bool {
    match overwritten.checked_add(dropped) {
        Some(sum) => lost_before <= sum,
        None => false,
    }
}

/// The numbering of one ring's blocks, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingNumbering {
    next: u64,
    overflow: bool,
}

impl RingNumbering {
    /// The numbering of a ring whose header says `overwritten`, of `blocks` blocks of
    /// `block_size` bytes. If its numbers could pass `u64::MAX`
    /// ([`RingNumbering::overflowed`]), it starts at 0.
    pub const fn new(overwritten: u64, blocks: u32, block_size: u32) -> Self {
        let fits = ring_numbering_fits(overwritten, blocks, block_size);
        RingNumbering {
            next: if fits { overwritten } else { 0 },
            overflow: !fits,
        }
    }

    /// Whether the ring's counters were impossible and numbering restarted at 0.
    pub const fn overflowed(&self) -> bool {
        self.overflow
    }

    /// The number of the next block's first event record.
    pub const fn next(&self) -> u64 {
        self.next
    }

    /// Moves past a block whose header counts `records` event records (the caller has
    /// checked it with [`plausible_block_records`]). Saturates: with the check of
    /// [`RingNumbering::new`] the sum cannot overflow.
    pub fn advance(&mut self, records: u64) {
        self.next = self.next.saturating_add(records);
    }
}

/// The numbers of the records of one block, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordNumbers {
    next: Option<u64>,
}

impl RecordNumbers {
    /// Numbers starting at `first` (the block's first event record).
    #[inline]
    pub const fn starting_at(first: u64) -> Self {
        RecordNumbers { next: Some(first) }
    }

    /// The number of the next record, which holds `event`: `None` for a `Lost` record,
    /// and for any record past `u64::MAX` (only a damaged count gets there, see
    /// [`RingNumbering`]).
    #[inline(always)]
    pub fn number(&mut self, event: &Event) -> Option<u64> {
        if matches!(event, Event::Lost { .. }) {
            return None;
        }
        let n = self.next?;
        self.next = n.checked_add(1);
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_never_wrap() {
        let mut n = RecordNumbers::starting_at(u64::MAX - 1);
        let e = Event::Interrupt { irq: 1 };
        assert_eq!(n.number(&e), Some(u64::MAX - 1));
        assert_eq!(n.number(&Event::Lost { count: 1, since: 0 }), None);
        assert_eq!(n.number(&e), Some(u64::MAX));
        assert_eq!(n.number(&e), None);
        assert_eq!(n.number(&e), None);
    }

    #[test]
    fn a_ring_that_cannot_fit_starts_at_zero() {
        let r = RingNumbering::new(5, 4, 1024);
        assert!(!r.overflowed());
        assert_eq!(r.next(), 5);
        let r = RingNumbering::new(u64::MAX - 100, 4, 1024);
        assert!(r.overflowed());
        assert_eq!(r.next(), 0);
        assert!(plausible_block_records(256, 224));
        assert!(!plausible_block_records(256, 225));
    }

    #[test]
    fn block_counts_agree_only_as_the_writer_leaves_them() {
        // A closed block decodes to exactly its count.
        assert!(block_count_consistent(250, 250, false, true));
        assert!(!block_count_consistent(250, 249, false, true));
        // More records than counted: never (zeroed bytes decoding as entries).
        assert!(!block_count_consistent(250, 251, false, true));
        assert!(!block_count_consistent(250, 251, true, true));
        assert!(!block_count_consistent(250, 251, false, false));
        // The current block may count reservations not yet committed.
        assert!(block_count_consistent(250, 120, true, true));
        // A block cut by a decoding error is already reported as corrupt.
        assert!(block_count_consistent(250, 120, false, false));
    }

    #[test]
    fn lost_before_is_bounded_by_the_counters() {
        assert!(lost_before_consistent(16_400, 16_400, 0));
        assert!(lost_before_consistent(16_400, 16_000, 400));
        assert!(!lost_before_consistent(16_400, 0, 0));
        assert!(!lost_before_consistent(0, 1 << 63, 1 << 63));
    }
}
