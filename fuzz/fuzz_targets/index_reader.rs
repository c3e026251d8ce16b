//! Arbitrary bytes as an index file, used against a small valid dump: parsing, the
//! staleness check, lookups and decoding through the index must never panic. Half of the
//! inputs are spliced into a real index of that dump, to get past the header checks.
#![no_main]

use std::cell::Cell;
use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tracemark::{Config, KernelEntry, Mode, Tracer};
use tracemark_decoder::dump::Dump;
use tracemark_decoder::index::{self, Index};

/// A dump of two small wrapped rings, and its index.
fn sample() -> &'static (Vec<u8>, Vec<u8>) {
    static SAMPLE: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let mut dump = Vec::new();
        for cpu in 0..2u32 {
            let len = 192 + 4 * 256;
            let mut words = vec![0u64; len / 8];
            let bytes: &mut [u8] = zerocopy::IntoBytes::as_mut_bytes(&mut words[..]);
            let clock = Cell::new(10u64);
            let config = Config {
                mode: Mode::Overwrite,
                block_size: 256,
                clock_hz: 1_000_000,
                cpu_id: cpu,
                ..Config::new()
            };
            let t = Tracer::new(bytes, &config, || clock.get()).expect("ring");
            for i in 0..400u32 {
                clock.set(clock.get() + u64::from(i % 7) * 50 + 1);
                match i % 5 {
                    0 => drop(t.kernel_entry(KernelEntry::syscall(
                        1 + (i % 8) as u8,
                        4,
                        i % 3 == 0,
                        i,
                    ))),
                    1 => drop(t.function_entry(u64::from(i % 64))),
                    2 => drop(t.function_exit(u64::from(i % 64))),
                    3 => drop(t.interrupt(27)),
                    _ => drop(t.kernel_exit()),
                }
            }
            drop(t);
            dump.extend_from_slice(zerocopy::IntoBytes::as_bytes(&words[..]));
        }
        let parsed = Dump::parse(&dump).expect("sample dump");
        let (idx, _) = index::build(&parsed, Path::new("sample.bin"), 1, &|_| {});
        (dump, idx)
    })
}

fn exercise(idx_bytes: &[u8], dump: &[u8]) {
    let Ok(idx) = Index::parse(idx_bytes) else {
        return;
    };
    let _ = idx.check_source(dump);
    let _ = idx.source_ctxs(dump);
    for ri in 0..idx.rings.len() {
        let blocks = idx.ring_blocks(ri);
        for e in blocks {
            let _ = idx.check_entry(e);
            let _ = Index::stack(e);
            let _ = idx.decode(dump, ri, e, |_| true);
            let _ = idx.find_record(ri, e.first_record.get());
            let _ = idx.find_time(ri, e.first_ts.get());
        }
        for n in [0, 1, 100, 1000, u64::MAX] {
            let _ = idx.find_record(ri, n);
            let _ = idx.find_time(ri, n);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (dump, real) = sample();
    exercise(data, dump);
    // Splice: the first two bytes choose where in the real index the rest goes.
    if data.len() > 2 {
        let at = usize::from(u16::from_le_bytes([data[0], data[1]])) % real.len();
        let mut idx = real.clone();
        let n = (data.len() - 2).min(idx.len() - at);
        idx[at..at + n].copy_from_slice(&data[2..2 + n]);
        exercise(&idx, dump);
        idx.truncate(at);
        exercise(&idx, dump);
    }
});
