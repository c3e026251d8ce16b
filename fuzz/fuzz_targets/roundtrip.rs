//! Anything the encoder can write, the decoder reads back identically: arbitrary
//! operation sequences on a small ring (overwrite or drop mode) are checked against the
//! reference model shared with the encoder's property test.
#![no_main]

use std::cell::Cell;

use libfuzzer_sys::fuzz_target;
use tracemark::{Config, Mode, Tracer};

#[path = "../../encoder/tests/common/model.rs"]
#[allow(dead_code)]
mod model;

use model::{Model, Op};

fn take<const N: usize>(data: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = data.split_first_chunk::<N>()?;
    *data = rest;
    Some(*head)
}

fn next_op(data: &mut &[u8]) -> Option<Op> {
    let [tag] = take::<1>(data)?;
    Some(match tag % 14 {
        0 => Op::Advance(u64::from(u16::from_le_bytes(take(data)?))),
        1 => Op::Advance(u64::from_le_bytes(take(data)?) >> (tag >> 4)),
        2 => Op::Entry(u32::from_le_bytes(take(data)?)),
        3 => Op::Exit,
        4 => Op::Irq(u32::from_le_bytes(take(data)?)),
        5 => Op::FnEntry(u64::from(u16::from_le_bytes(take(data)?))),
        6 => Op::FnExit(u64::from_le_bytes(take(data)?)),
        7 => {
            let id = u32::from_le_bytes(take(data)?);
            let [len] = take::<1>(data)?;
            let len = usize::from(len % 40).min(data.len());
            let (payload, rest) = data.split_at(len);
            *data = rest;
            Op::User(id, payload.to_vec())
        }
        8 => Op::Image(
            u64::from_le_bytes(take(data)?),
            u64::from_le_bytes(take(data)?),
            u64::from_le_bytes(take(data)?),
        ),
        9 => Op::Deferred,
        10 => Op::Info(u32::from_le_bytes(take(data)?)),
        11 => Op::Switch(u64::from_le_bytes(take(data)?)),
        12 => {
            let thread = u64::from_le_bytes(take(data)?);
            let prio = u32::from_le_bytes(take(data)?);
            let [len] = take::<1>(data)?;
            let len = usize::from(len % 40).min(data.len());
            let (name, rest) = data.split_at(len);
            *data = rest;
            Op::Name(thread, prio, name.to_vec())
        }
        _ => Op::Exit,
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let mode = if first & 1 == 0 { Mode::Overwrite } else { Mode::Drop };
    let blocks = 2 + usize::from(first >> 1) % 3;
    let mut words = vec![0u64; (192 + blocks * 256) / 8];
    // SAFETY: the Vec<u64> holds `words.len() * 8` initialised bytes, 8-byte aligned;
    // the byte view is the only reference used while it exists.
    let mem = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 8) };
    let clock = Cell::new(0u64);
    let config = Config { mode, block_size: 256, ..Config::new() };
    let mut model = Model::default();
    {
        let t = Tracer::new(&mut *mem, &config, || clock.get()).expect("valid config");
        while let Some(op) = next_op(&mut rest) {
            model.apply(&t, &clock, &op);
        }
    }
    if let Err(e) = model.check(mem, mode) {
        panic!("round trip failed: {e}");
    }
});
