//! Arbitrary bytes never make the format's decoders panic: as block records, as a ring
//! image (header checks, block iteration, record decoding), and when scanned as a raw
//! memory image.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracemark_format::record::BlockRecords;
use tracemark_format::ring::{find_rings, RingView};

fuzz_target!(|data: &[u8]| {
    let base = data.first().map_or(0, |b| u64::from(*b) << 56);
    for record in BlockRecords::new(data, base) {
        let _ = record;
    }
    if let Ok(view) = RingView::parse(data) {
        for block in view.blocks() {
            for record in block.decode() {
                let _ = record;
            }
        }
    }
    for at in find_rings(data).take(16) {
        let _ = RingView::parse(&data[at..]);
    }
});
