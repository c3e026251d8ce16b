//! Property: arbitrary event sequences (nesting kernel entries deeper than the stack,
//! big clock jumps, wrap-around in overwrite mode, filling up in drop mode) round-trip
//! exactly through the encoder and the format's decoder, and written = decoded + lost.

mod common;

use std::cell::Cell;

use common::model::{Model, Op};
use proptest::prelude::*;
use tracemark::{Config, Mode, Tracer};

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..3000).prop_map(Op::Advance),
        1 => prop_oneof![Just(1u64 << 33), Just(1u64 << 60), Just(u64::MAX / 4)].prop_map(Op::Advance),
        3 => any::<u32>().prop_map(Op::Entry),
        3 => Just(Op::Exit),
        2 => any::<u32>().prop_map(Op::Irq),
        2 => (0u64..5000).prop_map(Op::FnEntry),
        2 => any::<u64>().prop_map(Op::FnExit),
        1 => (any::<u32>(), proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(i, d)| Op::User(i, d)),
        1 => (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(b, s, i)| Op::Image(b, s, i)),
        2 => Just(Op::Deferred),
        2 => any::<u32>().prop_map(Op::Info),
        1 => any::<u64>().prop_map(Op::Switch),
        1 => (any::<u64>(), any::<u32>(), proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(t, p, n)| Op::Name(t, p, n)),
    ]
}

/// Operations per case: under miri (~1000x slower) short sequences, still long enough
/// to wrap a 2-block ring.
const MAX_OPS: usize = if cfg!(miri) { 150 } else { 600 };

fn run(mode: Mode, blocks: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut mem = common::memory(192 + blocks * 256);
    let clock = Cell::new(0u64);
    let config = Config {
        mode,
        block_size: 256,
        ..Config::new()
    };
    let mut model = Model::default();
    {
        let t = Tracer::new(&mut mem, &config, || clock.get()).unwrap();
        for op in ops {
            model.apply(&t, &clock, op);
        }
        prop_assert_eq!(model.calls, model.written.len() as u64 + model.dropped);
    }
    model.check(&mem, mode).map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn overwrite_mode_round_trips(blocks in 2usize..5, ops in proptest::collection::vec(op(), 0..MAX_OPS)) {
        run(Mode::Overwrite, blocks, &ops)?;
    }

    #[test]
    fn drop_mode_round_trips(blocks in 2usize..5, ops in proptest::collection::vec(op(), 0..MAX_OPS)) {
        run(Mode::Drop, blocks, &ops)?;
    }
}
