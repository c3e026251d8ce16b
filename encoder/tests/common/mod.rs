//! Helpers shared by the encoder's integration tests.
#![allow(dead_code)]

pub mod model;

use std::cell::Cell;

use tracemark::format::ring::{BlockState, RingView};
use tracemark::format::Record;

/// A clock the test drives: every read returns the current value, `advance` moves it.
#[derive(Default)]
pub struct TestClock(pub Cell<u64>);

impl TestClock {
    pub fn advance(&self, ticks: u64) -> u64 {
        self.0.set(self.0.get() + ticks);
        self.0.get()
    }
}

impl tracemark::Clock for &TestClock {
    fn now(&self) -> u64 {
        self.0.get()
    }
}

/// 8-byte aligned memory for a ring.
pub fn memory(len: usize) -> Vec<u8> {
    let words = vec![0u64; len.div_ceil(8)];
    let mut bytes = std::mem::ManuallyDrop::new(words);
    // Reinterpret the u64 vector as bytes (same allocation, alignment 8).
    let (ptr, cap) = (bytes.as_mut_ptr(), bytes.capacity());
    // SAFETY: the allocation holds `cap * 8` initialised bytes, u8 has alignment 1, and
    // the allocator is given back the same size (len = cap = words * 8 bytes).
    unsafe { Vec::from_raw_parts(ptr.cast::<u8>(), cap * 8, cap * 8) }
}

/// All records of a ring image, oldest first, with the number of torn blocks.
pub fn decode(image: &[u8]) -> (Vec<Record>, RingView<'_>) {
    let view = RingView::parse(image).expect("ring header");
    let mut out = Vec::new();
    for block in view.blocks() {
        match block.state {
            BlockState::Valid => {
                let mut n = 0u32;
                for r in block.decode() {
                    let r =
                        r.unwrap_or_else(|e| panic!("block {} at {}: {e}", block.seq, e.offset));
                    if !matches!(r.event, tracemark::Event::Lost { .. }) {
                        n += 1;
                    }
                    out.push(r);
                }
                if !block.is_current {
                    assert_eq!(
                        n,
                        block.header.records.get(),
                        "block {} record count",
                        block.seq
                    );
                }
            }
            BlockState::Empty => {}
            s => panic!("block {} is {s:?}", block.seq),
        }
    }
    (out, view)
}
