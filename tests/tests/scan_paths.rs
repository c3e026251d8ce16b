//! The fast scan of `tracemark_format::scan` (what `stats`, `index`, `--hot` and the
//! decode pipeline's counting pass use) against the reference decoder
//! (`BlockRecords`) on real dumps: every block of kernel-sim dumps (both modes, block
//! sizes from 256 bytes to 64 KiB, so records near block ends and wrapped rings), through
//! every entry point this machine runs: the dispatching `scan_block`, the portable
//! gatherer, and the BMI2 one where the processor has a fast `pext`.

use tracemark_decoder::dump::Dump;
use tracemark_format::record::BlockRecords;
use tracemark_format::scan::{self, ScanEnd, Visitor};

/// Each visited record as (time, kind code, first value); user payloads by length.
#[derive(Default)]
struct Collect(Vec<(u64, u8, u64)>);

impl Visitor for Collect {
    fn kernel_entry(&mut self, ts: u64, word: u32) {
        self.0.push((ts, 0, u64::from(word)));
    }
    fn kernel_exit(&mut self, ts: u64, wire: u64) {
        self.0.push((ts, 1, wire));
    }
    fn interrupt(&mut self, ts: u64, irq: u32) {
        self.0.push((ts, 2, u64::from(irq)));
    }
    fn function_entry(&mut self, ts: u64, func: u64) {
        self.0.push((ts, 3, func));
    }
    fn function_exit(&mut self, ts: u64, func: u64) {
        self.0.push((ts, 4, func));
    }
    fn user(&mut self, ts: u64, id: u32, payload: &[u8]) {
        self.0
            .push((ts, 5, u64::from(id) << 8 | payload.len() as u64));
    }
    fn image(&mut self, ts: u64, base: u64, _size: u64, _id: u64) {
        self.0.push((ts, 6, base));
    }
    fn lost(&mut self, ts: u64, count: u64, _since: u64) {
        self.0.push((ts, 7, count));
    }
    fn thread_switch(&mut self, ts: u64, thread: u64) {
        self.0.push((ts, 8, thread));
    }
    fn thread_name(&mut self, ts: u64, thread: u64, prio: u32, _name: &[u8]) {
        self.0.push((ts, 9, thread ^ u64::from(prio) << 48));
    }
    fn clock_back(&mut self, ts: u64, back: u64) {
        self.0.push((ts, 11, back));
    }
}

/// What the reference decoder makes of a block, in the same shape.
fn reference(records: &[u8], base: u64) -> (Vec<(u64, u8, u64)>, usize) {
    use tracemark_format::Event;
    let mut it = BlockRecords::new(records, base);
    let mut out = Vec::new();
    for r in it.by_ref() {
        let r = r.expect("kernel-sim blocks decode without error");
        let (code, value) = match r.event {
            Event::KernelEntry(w) => (0, u64::from(w.0)),
            Event::KernelExit(d) => (1, d.to_wire()),
            Event::Interrupt { irq } => (2, u64::from(irq)),
            Event::FunctionEntry { func } => (3, func),
            Event::FunctionExit { func } => (4, func),
            Event::User { id, payload } => {
                (5, u64::from(id) << 8 | payload.as_bytes().len() as u64)
            }
            Event::Image { base, .. } => (6, base),
            Event::Lost { count, .. } => (7, count),
            Event::ThreadSwitch { thread } => (8, thread),
            Event::ClockBack { back } => (11, back),
            Event::ThreadName { thread, prio, .. } => (9, thread ^ u64::from(prio) << 48),
        };
        out.push((r.ts, code, value));
    }
    (out, it.offset())
}

type ScanFn = fn(&[u8], u64, &mut Collect) -> ScanEnd;

fn entry_points() -> Vec<(&'static str, ScanFn)> {
    let mut v: Vec<(&'static str, ScanFn)> = vec![
        ("scan_block", scan::scan_block),
        ("portable", scan::scan_block_portable),
    ];
    #[cfg(target_arch = "x86_64")]
    if scan::gather::Bmi2::detect().is_some() {
        v.push(("bmi2", |b, base, c| {
            scan::scan_block_bmi2(b, base, c, scan::gather::Bmi2::detect().unwrap())
        }));
    }
    v
}

#[test]
fn every_scan_path_agrees_with_block_records_on_kernel_sim_dumps() {
    let mut blocks = 0;
    for (mode, block, seed) in [
        ("overwrite", 256, 1),
        ("overwrite", 4096, 2),
        ("drop", 1024, 3),
        ("overwrite", 65536, 4),
    ] {
        let sim = crate::common::kernel_sim(60_000, 2, 256 << 10, mode, block, seed);
        let bytes = std::fs::read(&sim.dump).unwrap();
        let dump = Dump::parse(&bytes).unwrap();
        for ring in &dump.rings {
            for b in &ring.blocks {
                let (want, offset) = reference(b.records, b.base_ts);
                for (name, scan) in entry_points() {
                    let mut got = Collect::default();
                    let end = scan(b.records, b.base_ts, &mut got);
                    assert_eq!(got.0, want, "{name}, {mode} block {} seq {}", block, b.seq);
                    assert_eq!(end.records, want.len() as u64, "{name}");
                    assert_eq!(end.error, None, "{name}");
                    assert_eq!(end.offset, offset, "{name}");
                }
                blocks += 1;
            }
        }
    }
    assert!(blocks > 500, "only {blocks} blocks");
}
