//! loom models: the writer's reserve/commit, with a nested producer injected at a chosen
//! atomic access of the outer write, against a reader on another core that copies the
//! committed part of the ring. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p tracemark --release --lib loom`.

use loom::sync::Arc;
use std::vec::Vec;

use tracemark_format::record::BlockRecords;
use tracemark_format::ring::{offsets, BLOCK_HEADER_LEN, BLOCK_MAGIC, RING_HEADER_LEN};
use tracemark_format::Event;

use crate::sync::preempt;
use crate::{Config, Mode, Tracer};

type Clock = std::sync::Arc<std::sync::atomic::AtomicU64>;

fn tracer(clock: &Clock) -> Tracer<'static, impl crate::Clock + Send + Sync + 'static> {
    let c = clock.clone();
    let now = move || c.fetch_add(5, std::sync::atomic::Ordering::Relaxed) + 5;
    let config = Config {
        mode: Mode::Overwrite,
        block_size: 256,
        ..Config::new()
    };
    Tracer::new_model(RING_HEADER_LEN + 2 * 256, &config, now).unwrap()
}

fn word(t: &Tracer<'_, impl crate::Clock>, off: usize) -> u32 {
    let mut b = [0u8; 4];
    t.ring().read_at(off, &mut b);
    u32::from_le_bytes(b)
}

/// What a reader on another core sees: the committed records of the current block.
fn read_committed(t: &Tracer<'_, impl crate::Clock>) -> Vec<u32> {
    let g = t.ring().geometry();
    let commit = g.split(word(t, offsets::COMMIT_POS));
    if commit.offset == 0 {
        return Vec::new();
    }
    let block = g.block_offset(g.slot(commit.seq));
    assert_eq!(word(t, block + offsets::BLOCK_MAGIC), BLOCK_MAGIC);
    assert_eq!(word(t, block + offsets::BLOCK_SEQ), commit.seq);
    let base = u64::from(word(t, block + offsets::BLOCK_BASE_TS))
        | u64::from(word(t, block + offsets::BLOCK_BASE_TS + 4)) << 32;
    let mut bytes = std::vec![0u8; commit.offset as usize - BLOCK_HEADER_LEN];
    t.ring().read_at(block + BLOCK_HEADER_LEN, &mut bytes);
    BlockRecords::new(&bytes, base)
        .map(|r| match r.expect("committed bytes decode").event {
            Event::Interrupt { irq } => irq,
            e => panic!("unexpected {e:?}"),
        })
        .collect()
}

/// The atomic accesses the outer write (`interrupt(2)` after `interrupt(1)`) makes when
/// nothing interrupts it. The writer's accesses do not depend on the reader (it only
/// reads), so every access number below this is reached in every execution of the model.
fn accesses_of_outer_write() -> u64 {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let out = count.clone();
    loom::model(move || {
        let clock = Clock::default();
        let t = tracer(&clock);
        t.interrupt(1);
        let seen = out.clone();
        preempt::set(Some(std::boxed::Box::new(move |op| {
            seen.fetch_max(op + 1, std::sync::atomic::Ordering::Relaxed);
        })));
        t.interrupt(2);
        preempt::set(None);
    });
    count.load(std::sync::atomic::Ordering::Relaxed)
}

/// Runs the model with a nested writer injected before the outer write's atomic access
/// number `k`; returns how many executions loom explored. Every execution checks that the
/// injection happened, so a change in the number of accesses cannot make it test nothing.
fn model_with_nested_write_at(k: u64) -> usize {
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = runs.clone();
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let clock = Clock::default();
        let t = Arc::new(tracer(&clock));
        t.interrupt(1);
        let reader = {
            let t = t.clone();
            loom::thread::spawn(move || {
                let seen = read_committed(&t);
                // A prefix of what the writer commits: 1 first, each at most once.
                assert_eq!(seen.first(), Some(&1));
                let mut sorted = seen.clone();
                sorted.sort();
                sorted.dedup();
                assert_eq!(sorted.len(), seen.len(), "{seen:?}");
                assert!(seen.iter().all(|i| (1..=3).contains(i)));
            })
        };
        let nested = t.clone();
        let injected = std::rc::Rc::new(std::cell::Cell::new(false));
        let flag = injected.clone();
        preempt::set(Some(std::boxed::Box::new(move |op| {
            if op == k {
                flag.set(true);
                nested.interrupt(3);
            }
        })));
        t.interrupt(2);
        preempt::set(None);
        assert!(injected.get(), "access {k} was never reached");
        reader.join().unwrap();
        let mut all = read_committed(&t);
        all.sort();
        assert_eq!(all, [1, 2, 3]);
    });
    runs.load(std::sync::atomic::Ordering::Relaxed)
}

/// A nested writer injected before every atomic access of the outer write, in turn
/// (early in the reservation, between reserve and commit, during the commit, ...).
#[test]
fn loom_nested_producer_at_every_access_of_the_outer_write() {
    let n = accesses_of_outer_write();
    // The fast path alone makes more than ten accesses (nest, positions, lap cache,
    // reservation, record count, last_ts/last_pos, commit): fewer means the count broke.
    assert!(n > 10, "the outer write made only {n} atomic accesses");
    for k in 0..n {
        let runs = model_with_nested_write_at(k);
        assert!(
            runs >= 10,
            "access {k}: loom explored only {runs} executions"
        );
    }
}

/// A deferred kernel entry (issue 20, point 18) with a nested interrupt record injected
/// before each atomic access of `kernel_entry_deferred`, against a reader on another
/// core: the reader always sees decodable committed records, and the information filled
/// in afterwards always lands in the deferred entry (it was refused before when the
/// nested record came right after the entry's reservation).
#[test]
fn loom_deferred_entry_with_a_nested_write_at_every_access() {
    use tracemark_format::KernelEntry;
    let info = KernelEntry::syscall(2, 3, false, 4);
    let mut k = 0u64;
    loop {
        let reached = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen_k = reached.clone();
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(2);
        builder.check(move || {
            let clock = Clock::default();
            let t = Arc::new(tracer(&clock));
            t.interrupt(1);
            let reader = {
                let t = t.clone();
                loom::thread::spawn(move || {
                    let g = t.ring().geometry();
                    let commit = g.split(word(&t, offsets::COMMIT_POS));
                    let block = g.block_offset(g.slot(commit.seq));
                    let mut bytes =
                        std::vec![0u8; (commit.offset as usize).saturating_sub(BLOCK_HEADER_LEN)];
                    t.ring().read_at(block + BLOCK_HEADER_LEN, &mut bytes);
                    for r in BlockRecords::new(&bytes, 0) {
                        let r = r.expect("committed bytes decode");
                        assert!(
                            matches!(r.event, Event::Interrupt { .. } | Event::KernelEntry(_)),
                            "{r:?}"
                        );
                    }
                })
            };
            let nested = t.clone();
            let flag = seen_k.clone();
            preempt::set(Some(std::boxed::Box::new(move |op| {
                if op == k {
                    flag.store(true, std::sync::atomic::Ordering::Relaxed);
                    nested.interrupt(3);
                }
            })));
            t.kernel_entry_deferred();
            preempt::set(None);
            assert_eq!(t.fill_entry_info(info), crate::EntryInfo::Filled);
            reader.join().unwrap();
        });
        if !reached.load(std::sync::atomic::Ordering::Relaxed) {
            assert!(k > 10, "the deferred entry made only {k} atomic accesses");
            return;
        }
        k += 1;
    }
}

/// The single-owner writer (`Tracer::owned`) against a reader on another core: an
/// entry and exit written as one reservation (the short pair), then one written record
/// by record (an interrupt inside the entry); the reader always sees whole, decodable
/// records, in order, a prefix of what the writer commits (the bytes are stored before
/// the Release store of `commit_pos`).
#[test]
fn loom_owned_pair_against_a_reader() {
    use tracemark_format::{ExitDuration, KernelEntry};
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let clock = Clock::default();
        let t = Arc::new(tracer(&clock));
        t.interrupt(1);
        let expected = [
            Event::Interrupt { irq: 1 },
            Event::KernelEntry(KernelEntry(62)),
            Event::KernelExit(ExitDuration::Ticks(12)),
            Event::KernelEntry(KernelEntry(62)),
            Event::Interrupt { irq: 3 },
            Event::KernelExit(ExitDuration::Ticks(20)),
        ];
        let reader = {
            let t = t.clone();
            loom::thread::spawn(move || {
                let g = t.ring().geometry();
                let commit = g.split(word(&t, offsets::COMMIT_POS));
                let block = g.block_offset(g.slot(commit.seq));
                let mut bytes =
                    std::vec![0u8; (commit.offset as usize).saturating_sub(BLOCK_HEADER_LEN)];
                t.ring().read_at(block + BLOCK_HEADER_LEN, &mut bytes);
                // The second entry's word is patched in place after its commit: the
                // reader may see the placeholder, or a word being patched.
                let seen: Vec<Event> = BlockRecords::new(&bytes, 0)
                    .enumerate()
                    .map(|(i, r)| match r.expect("committed bytes decode").event {
                        Event::KernelEntry(_) if i == 3 => Event::KernelEntry(KernelEntry(62)),
                        e => e,
                    })
                    .collect();
                assert!(seen.len() <= expected.len(), "{seen:?}");
                assert_eq!(seen[..], expected[..seen.len()]);
            })
        };
        // SAFETY: this thread is the ring's only writer, and nothing is recorded inside
        // the held entries before `kernel_entry` writes them.
        let o = unsafe { t.owned() };
        let at = clock.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            o.kernel_pair(at + 10, KernelEntry(62), 0, at + 22),
            crate::Outcome::Written
        );
        o.kernel_entry(at + 30);
        o.interrupt(3, at + 40);
        o.kernel_exit(KernelEntry(62), 0, at + 50);
        reader.join().unwrap();
    });
}
