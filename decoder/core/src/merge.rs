//! Records of one ring in order, and of all rings merged by timestamp.
//!
//! Each ring's records come out oldest first, numbered (see [`crate::dump`]), with every
//! kernel exit matched to the kernel entry it closes through a per-CPU stack of open
//! entries. The rings are merged by timestamp (ties: ring order).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use tracemark_format::numbering::RecordNumbers;
use tracemark_format::record::{BlockRecords, DecodeError};
use tracemark_format::{Event, KernelEntry};

use crate::dump::{count_warning, Block, Category, Dump, Warning};

/// One decoded record with its place in the trace.
#[derive(Debug, Clone, Copy)]
pub struct Item {
    /// Absolute time in ticks.
    pub ts: u64,
    /// The record number on its CPU; `None` for `Lost` records.
    pub number: Option<u64>,
    /// Index of the ring in [`Dump::rings`].
    pub ring: u32,
    /// The event.
    pub event: Event,
    /// For a kernel exit: the entry it closes, if known.
    pub entry: Option<KernelEntry>,
}

/// Deepest nesting of open kernel entries kept; deeper entries push the oldest out.
pub const MAX_STACK: usize = 256;

/// The kernel entries open on one CPU, innermost last.
#[derive(Debug, Clone, Default)]
pub struct EntryStack {
    open: Vec<KernelEntry>,
}

impl EntryStack {
    /// A stack holding `entries` (innermost last).
    pub fn from_entries(entries: &[KernelEntry]) -> Self {
        let keep = entries.len().saturating_sub(MAX_STACK);
        EntryStack {
            open: entries[keep..].to_vec(),
        }
    }

    /// Follows `event`: pushes an entry, pops on an exit; returns the entry an exit closes.
    #[inline]
    pub fn apply(&mut self, event: &Event) -> Option<KernelEntry> {
        match event {
            Event::KernelEntry(e) => {
                if self.open.len() == MAX_STACK {
                    self.open.remove(0);
                }
                self.open.push(*e);
                None
            }
            Event::KernelExit(_) => self.open.pop(),
            _ => None,
        }
    }

    /// The open entries, innermost last.
    pub fn entries(&self) -> &[KernelEntry] {
        &self.open
    }
}

/// The records of one block as [`Item`]s: numbered by the format's rule
/// ([`RecordNumbers`]) from the block's first record number, with kernel exits matched
/// through the caller's [`EntryStack`]. Every reader of records goes through this.
#[derive(Debug, Clone)]
pub struct BlockItems<'a> {
    records: BlockRecords<'a>,
    numbers: RecordNumbers,
    ring: u32,
}

impl<'a> BlockItems<'a> {
    /// The records of `block` of ring `ring` (index into [`Dump::rings`]).
    #[inline]
    pub fn new(block: &Block<'a>, ring: u32) -> Self {
        BlockItems {
            records: block.decode(),
            numbers: RecordNumbers::starting_at(block.first_record),
            ring,
        }
    }

    /// The next record, following `stack`; after a decoding error, nothing more.
    #[inline(always)]
    pub fn next_item(&mut self, stack: &mut EntryStack) -> Option<Result<Item, DecodeError>> {
        Some(self.records.next()?.map(|rec| Item {
            ts: rec.ts,
            number: self.numbers.number(&rec.event),
            ring: self.ring,
            entry: stack.apply(&rec.event),
            event: rec.event,
        }))
    }
}

/// Decodes `block` of ring `ring`, calling `f` for each record. Returns the byte offset
/// (from the start of the records) and message of a decoding error, after which the rest
/// of the block is skipped.
#[inline]
pub fn decode_block(
    block: &Block<'_>,
    ring: u32,
    stack: &mut EntryStack,
    mut f: impl FnMut(Item),
) -> Result<(), (usize, String)> {
    let mut items = BlockItems::new(block, ring);
    while let Some(r) = items.next_item(stack) {
        match r {
            Ok(item) => f(item),
            Err(e) => return Err((e.offset, e.to_string())),
        }
    }
    Ok(())
}

/// The warning for a decoding error in `block`.
pub fn block_warning(cpu: u32, block: &Block<'_>, offset: usize, msg: &str) -> Warning {
    Warning {
        offset: block.records_offset() + offset,
        damage: true,
        category: Category::CorruptBlock,
        message: format!(
            "cpu{cpu}: block {}: {msg}; rest of the block skipped",
            block.seq
        ),
    }
}

/// The records of one ring, oldest first.
pub struct RingCursor<'d, 'a> {
    ring: u32,
    cpu: u32,
    blocks: &'d [Block<'a>],
    next_block: usize,
    current: Option<(usize, BlockItems<'a>)>,
    stack: EntryStack,
    /// Blocks whose records could not all be decoded.
    pub corrupt_blocks: u64,
    /// Decoding errors.
    pub warnings: Vec<Warning>,
    /// Stop after the first record later than this.
    pub until: u64,
    /// Event records decoded from the current block so far.
    decoded: u64,
}

impl<'d, 'a> RingCursor<'d, 'a> {
    /// A cursor over ring `ring` of `dump`, starting at its block `first_block`.
    pub fn new(dump: &'d Dump<'a>, ring: u32, first_block: usize) -> Self {
        let r = &dump.rings[ring as usize];
        RingCursor {
            ring,
            cpu: r.cpu,
            blocks: &r.blocks,
            next_block: first_block,
            current: None,
            stack: EntryStack::default(),
            corrupt_blocks: 0,
            warnings: Vec::new(),
            until: u64::MAX,
            decoded: 0,
        }
    }

    /// Reads no block from index `end` of the ring's blocks on.
    pub fn with_end(mut self, end: usize) -> Self {
        self.blocks = &self.blocks[..end.min(self.blocks.len())];
        self
    }

    /// Starts with these open entries (innermost last).
    pub fn with_stack(mut self, stack: EntryStack) -> Self {
        self.stack = stack;
        self
    }
}

impl Iterator for RingCursor<'_, '_> {
    type Item = Item;

    #[inline]
    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some((bi, items)) = &mut self.current {
                match items.next_item(&mut self.stack) {
                    Some(Ok(item)) => {
                        if item.ts > self.until {
                            self.current = None;
                            self.next_block = self.blocks.len();
                            return None;
                        }
                        self.decoded += u64::from(!matches!(item.event, Event::Lost { .. }));
                        return Some(item);
                    }
                    Some(Err(e)) => {
                        let block = &self.blocks[*bi];
                        self.corrupt_blocks += 1;
                        self.warnings.push(block_warning(
                            self.cpu,
                            block,
                            e.offset,
                            &e.to_string(),
                        ));
                        self.warnings
                            .extend(count_warning(self.cpu, block, self.decoded, false));
                        self.current = None;
                    }
                    None => {
                        let block = &self.blocks[*bi];
                        self.warnings
                            .extend(count_warning(self.cpu, block, self.decoded, true));
                        self.current = None;
                    }
                }
            }
            let block = self.blocks.get(self.next_block)?;
            self.current = Some((self.next_block, BlockItems::new(block, self.ring)));
            self.decoded = 0;
            self.next_block += 1;
        }
    }
}

/// Records of several rings merged by timestamp.
pub struct Merged<'d, 'a> {
    cursors: Vec<RingCursor<'d, 'a>>,
    heads: Vec<Option<Item>>,
    heap: BinaryHeap<Reverse<(u64, usize)>>,
}

impl<'d, 'a> Merged<'d, 'a> {
    /// Merges `cursors`.
    pub fn new(mut cursors: Vec<RingCursor<'d, 'a>>) -> Self {
        let mut heads = Vec::with_capacity(cursors.len());
        let mut heap = BinaryHeap::new();
        for (i, c) in cursors.iter_mut().enumerate() {
            let head = c.next();
            if let Some(item) = &head {
                heap.push(Reverse((item.ts, i)));
            }
            heads.push(head);
        }
        Merged {
            cursors,
            heads,
            heap,
        }
    }

    /// The cursors (for their counters and warnings once the merge is done).
    pub fn cursors(&self) -> &[RingCursor<'d, 'a>] {
        &self.cursors
    }
}

impl Iterator for Merged<'_, '_> {
    type Item = Item;

    #[inline]
    fn next(&mut self) -> Option<Item> {
        if self.cursors.len() == 1 {
            let head = self.heads[0].take();
            if head.is_some() {
                self.heads[0] = self.cursors[0].next();
            }
            return head;
        }
        let Reverse((_, i)) = self.heap.pop()?;
        let item = self.heads[i].take();
        let next = self.cursors[i].next();
        if let Some(n) = &next {
            self.heap.push(Reverse((n.ts, i)));
        }
        self.heads[i] = next;
        item
    }
}
