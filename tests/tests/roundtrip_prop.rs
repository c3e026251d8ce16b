//! Property: any sequence of events, recorded by the real encoder into a tiny ring
//! (2 to 4 blocks of 256 bytes, so overwrite mode wraps and drop mode fills), decodes
//! with the decoder library to exactly the newest (overwrite) or oldest (drop) events
//! written, with their timestamps, and `written = decoded + overwritten` (overwrite) or
//! `written + dropped = generated` with every written event decoded (drop).

use std::cell::Cell;

use proptest::prelude::*;
use tracemark::format::record::UserPayload;
use tracemark::{Config, EntryPath, Event, ExitDuration, KernelEntry, Mode, Outcome, Tracer};
use tracemark_decoder::dump::Dump;
use tracemark_decoder::merge::RingCursor;
use tracemark_format::ring::RING_HEADER_LEN;

/// One tracer call after `dt` ticks.
#[derive(Debug, Clone)]
enum Call {
    Syscall(u8, u8, bool, u32),
    OtherEntry(u8, u8, u32),
    Exit,
    Irq(u32),
    FEntry(u64),
    FExit(u64),
    User(u32, Vec<u8>),
    Image(u64, u64, u64),
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        3 => (0u8..16, 0u8..32, any::<bool>(), 0u32..(1 << 19))
            .prop_map(|(s, c, f, l)| Call::Syscall(s, c, f, l)),
        1 => (0u8..8, 0u8..8, 0u32..(1 << 26)).prop_map(|(p, c, w)| Call::OtherEntry(p, c, w)),
        4 => Just(Call::Exit),
        2 => any::<u32>().prop_map(Call::Irq),
        2 => prop_oneof![0u64..4096, any::<u64>()].prop_map(Call::FEntry),
        2 => prop_oneof![0u64..4096, any::<u64>()].prop_map(Call::FExit),
        1 => (0u32..(1 << 26), proptest::collection::vec(any::<u8>(), 0..=32))
            .prop_map(|(i, d)| Call::User(i, d)),
        1 => (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(a, b, c)| Call::Image(a, b, c)),
    ]
}

fn dt() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..16,
        3 => 0u64..5000,
        1 => 0u64..(1 << 40),
    ]
}

/// 8-byte aligned ring memory.
fn memory(len: usize) -> Vec<u64> {
    vec![0u64; len.div_ceil(8)]
}

/// Records `calls`; returns (event, ts) of every written event, the number dropped, and
/// the ring image.
fn record(mode: Mode, blocks: usize, calls: &[(u64, Call)]) -> (Vec<(u64, Event)>, u64, Vec<u8>) {
    use zerocopy::IntoBytes;
    let len = RING_HEADER_LEN + blocks * 256;
    let mut words = memory(len);
    let clock = Cell::new(1u64);
    let config = Config {
        mode,
        block_size: 256,
        clock_hz: 1_000_000,
        cpu_id: 3,
        ..Config::new()
    };
    let mut written = Vec::new();
    let mut dropped = 0u64;
    {
        let t = Tracer::new(&mut words.as_mut_bytes()[..len], &config, || clock.get()).unwrap();
        let mut open: Vec<u64> = Vec::new();
        for (d, c) in calls {
            let ts = clock.get() + d;
            clock.set(ts);
            let (outcome, event) = match c {
                Call::Syscall(s, cap, f, l) => {
                    open.push(ts);
                    let e = KernelEntry::syscall(*s, *cap, *f, *l);
                    (t.kernel_entry(e), Event::KernelEntry(e))
                }
                Call::OtherEntry(p, core, w) => {
                    open.push(ts);
                    let e = KernelEntry::other(EntryPath::from_bits(*p), *core, *w);
                    (t.kernel_entry(e), Event::KernelEntry(e))
                }
                Call::Exit => {
                    let depth = open.len();
                    let d = match open.pop() {
                        None => ExitDuration::NoEntry,
                        Some(_) if depth > 8 => ExitDuration::NestingOverflow,
                        Some(start) => ExitDuration::Ticks(ts - start),
                    };
                    (t.kernel_exit(), Event::KernelExit(d))
                }
                Call::Irq(i) => (t.interrupt(*i), Event::Interrupt { irq: *i }),
                Call::FEntry(f) => (t.function_entry(*f), Event::FunctionEntry { func: *f }),
                Call::FExit(f) => (t.function_exit(*f), Event::FunctionExit { func: *f }),
                Call::User(id, data) => (
                    t.user(*id, data),
                    Event::User {
                        id: *id,
                        payload: UserPayload::new(data).unwrap(),
                    },
                ),
                Call::Image(b, s, i) => (
                    t.image(*b, *s, *i),
                    Event::Image {
                        base: *b,
                        size: *s,
                        id: *i,
                    },
                ),
            };
            match outcome {
                Outcome::Written => written.push((ts, event)),
                Outcome::Dropped => dropped += 1,
            }
        }
        let (over, drop) = t.ring().lost();
        assert_eq!(drop, dropped, "the ring counts the drops it reported");
        assert!(mode == Mode::Drop || over <= written.len() as u64);
    }
    (written, dropped, words.as_bytes()[..len].to_vec())
}

fn decoded(image: &[u8]) -> (Vec<(u64, Event)>, Vec<tracemark_decoder::merge::Item>, u64) {
    let dump = Dump::parse(image).expect("the image parses");
    assert!(dump.warnings.is_empty(), "{:?}", dump.warnings);
    assert_eq!(dump.rings.len(), 1);
    assert_eq!(dump.rings[0].cpu, 3);
    let items: Vec<_> = RingCursor::new(&dump, 0, 0).collect();
    let events = items
        .iter()
        .filter(|i| !matches!(i.event, Event::Lost { .. }))
        .map(|i| (i.ts, i.event))
        .collect();
    (events, items, dump.rings[0].overwritten)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn overwrite_keeps_exactly_the_newest(
        blocks in 2usize..=4,
        calls in proptest::collection::vec((dt(), call()), 0..600),
    ) {
        let (written, dropped, image) = record(Mode::Overwrite, blocks, &calls);
        prop_assert_eq!(dropped, 0);
        let (got, items, overwritten) = decoded(&image);
        prop_assert_eq!(written.len() as u64, got.len() as u64 + overwritten);
        prop_assert_eq!(&got[..], &written[written.len() - got.len()..]);
        // Numbers run on from the overwritten records.
        for (k, item) in items.iter().enumerate() {
            prop_assert_eq!(item.number, Some(overwritten + k as u64));
        }
    }

    #[test]
    fn drop_keeps_exactly_the_oldest(
        blocks in 2usize..=4,
        calls in proptest::collection::vec((dt(), call()), 0..600),
    ) {
        let (written, dropped, image) = record(Mode::Drop, blocks, &calls);
        prop_assert_eq!(written.len() as u64 + dropped, calls.len() as u64);
        let (got, items, overwritten) = decoded(&image);
        prop_assert_eq!(overwritten, 0);
        // Everything written is there, in order; after the first drop, small events may
        // still fit at the end of the last block.
        prop_assert_eq!(&got, &written);
        // Lost records report drops that happened before them, never more than dropped.
        let reported: u64 = items
            .iter()
            .filter_map(|i| match i.event { Event::Lost { count, .. } => Some(count), _ => None })
            .sum();
        prop_assert!(reported <= dropped);
    }
}
