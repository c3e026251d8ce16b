//! Arbitrary bytes as a dump: discovery, full decode in every output format, stats and
//! index building must never panic, and an index built from the bytes must read back.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tracemark_decoder::dump::Dump;
use tracemark_decoder::index::{self, Index};
use tracemark_decoder::merge::{Merged, RingCursor};
use tracemark_decoder::render::{self, Format, RingCtx};
use tracemark_decoder::stats;

fuzz_target!(|data: &[u8]| {
    let Ok(dump) = Dump::parse(data) else {
        return;
    };
    let ctxs: Vec<RingCtx> = dump.rings.iter().map(RingCtx::of).collect();
    let cursors = (0..dump.rings.len() as u32)
        .map(|ri| RingCursor::new(&dump, ri, 0))
        .collect();
    let mut out = Vec::new();
    for item in Merged::new(cursors) {
        for format in [Format::Text, Format::Json, Format::Csv] {
            out.clear();
            render::record(&mut out, format, &item, &ctxs[item.ring as usize]);
        }
    }
    let (summary, _warnings) = stats::compute(&dump, 1, &|_| {});
    let mut text = Vec::new();
    let _ = summary.write_text(&mut text);
    let _ = serde_json::to_vec(&summary);
    let (bytes, _warnings) = index::build(&dump, Path::new("fuzz.bin"), 1, &|_| {});
    let idx = Index::parse(&bytes).expect("an index the decoder built parses");
    idx.check_source(data).expect("and matches its source");
    for ri in 0..idx.rings.len() {
        for e in idx.ring_blocks(ri) {
            let _ = idx.decode(data, ri, e, |_| true);
        }
    }
});
