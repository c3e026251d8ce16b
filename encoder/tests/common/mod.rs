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

/// 8-byte aligned memory for a ring, seen as bytes.
pub struct AlignedBuf(Vec<u64>);

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the Vec<u64> holds `len * 8` initialised bytes; u8 has alignment 1 and no
        // invalid values; the borrow of `self` covers the returned slice.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast::<u8>(), self.0.len() * 8) }
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, with the unique borrow of `self` covering the slice.
        unsafe {
            std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<u8>(), self.0.len() * 8)
        }
    }
}

/// 8-byte aligned, zeroed memory for a ring of at least `len` bytes.
pub fn memory(len: usize) -> AlignedBuf {
    AlignedBuf(vec![0u64; len.div_ceil(8)])
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
