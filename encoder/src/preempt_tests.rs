//! Exhaustive interrupt-nesting tests: a nested writer is injected before every single
//! atomic access of an outer write (the only points where an interrupt can change what
//! the outer writer sees), in every situation the writer handles: room in the block, a
//! block switch, an overwrite that reclaims a block, a nested writer that itself opens a
//! block, kernel entry/exit pairs, and two levels of nesting. After each run the ring
//! must decode with no damage, hold every record exactly once with the right times, and
//! be fully committed.

use std::cell::Cell;
use std::vec;
use std::vec::Vec;

use tracemark_format::ring::{BlockState, RingView};
use tracemark_format::{EntryPath, Event, ExitDuration, KernelEntry, Record};

use crate::sync::preempt;
use crate::{Clock, Config, Mode, Tracer};

/// Every read returns a new, larger time.
struct StepClock(Cell<u64>);

impl Clock for &'static StepClock {
    fn now(&self) -> u64 {
        let t = self.0.get() + 3;
        self.0.set(t);
        t
    }
}

type T = Tracer<'static, &'static StepClock>;

fn tracer(mode: Mode, blocks: usize) -> &'static T {
    let words: &'static mut [u64] = Vec::leak(std::vec![0u64; (192 + blocks * 256) / 8]);
    let len = words.len() * 8;
    // SAFETY: the leaked allocation is `len` initialised bytes, aligned to 8, and lives
    // forever; the `&mut [u64]` is consumed here, so the tracer holds the only reference.
    let mem: &'static mut [u8] =
        unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) };
    let clock: &'static StepClock =
        std::boxed::Box::leak(std::boxed::Box::new(StepClock(Cell::new(1000))));
    let config = Config {
        mode,
        block_size: 256,
        ..Config::new()
    };
    std::boxed::Box::leak(std::boxed::Box::new(
        Tracer::new(mem, &config, clock).unwrap(),
    ))
}

/// The ring's bytes, read through its atomics as another core would.
fn image(t: &T) -> Vec<u8> {
    let mut out = std::vec![0u8; t.ring().len()];
    t.ring().read_at(0, &mut out);
    out
}

/// Decodes a ring image; panics on any damage. Returns records and the overwritten count.
fn decode(image: &[u8]) -> (Vec<Record>, u64) {
    let view = RingView::parse(image).unwrap();
    let mut out = Vec::new();
    for b in view.blocks() {
        match b.state {
            BlockState::Valid => {
                let mut n = 0;
                for r in b.decode() {
                    let r = r.unwrap();
                    n += u32::from(!matches!(r.event, Event::Lost { .. }));
                    out.push(r);
                }
                if !b.is_current {
                    assert_eq!(n, b.header.records.get(), "records in block {}", b.seq);
                }
            }
            BlockState::Empty => {}
            s => panic!("block {} {s:?}", b.seq),
        }
    }
    assert_eq!(
        view.header.commit_pos.get(),
        view.header.write_pos.get(),
        "fully committed"
    );
    assert_eq!(view.header.nest.get(), 0);
    (out, view.header.overwritten.get())
}

fn irq(n: u32) -> Event {
    Event::Interrupt { irq: n }
}

/// Runs `prepare`, then `outer` with `nested` injected before atomic access `k`, for
/// every `k` until the outer write completes without reaching `k`. Calls `check` with
/// the decoded records, the overwritten count and whether the nested write happened.
fn for_every_point(
    mode: Mode,
    blocks: usize,
    prepare: impl Fn(&'static T),
    outer: impl Fn(&'static T),
    nested: impl Fn(&'static T) + Clone + 'static,
    check: impl Fn(&[Record], u64, bool),
) -> u64 {
    let mut k = 0u64;
    loop {
        let t = tracer(mode, blocks);
        prepare(t);
        let fired = std::rc::Rc::new(Cell::new(false));
        let (f, n) = (fired.clone(), nested.clone());
        preempt::set(Some(std::boxed::Box::new(move |op| {
            if op == k {
                f.set(true);
                n(t);
            }
        })));
        outer(t);
        preempt::set(None);
        let (records, overwritten) = decode(&image(t));
        check(&records, overwritten, fired.get());
        if !fired.get() {
            return k;
        }
        // Every point natively; a sample under miri, which is ~1000x slower.
        k += if cfg!(miri) { 5 } else { 1 };
    }
}

fn kinds(records: &[Record]) -> Vec<Event> {
    records.iter().map(|r| r.event).collect()
}

fn assert_times_increase(records: &[Record]) {
    for w in records.windows(2) {
        assert!(w[0].ts < w[1].ts, "times must increase: {w:?}");
    }
}

#[test]
fn nested_write_at_every_point_with_room_in_the_block() {
    let points = for_every_point(
        Mode::Drop,
        4,
        |t| {
            t.interrupt(100);
        },
        |t| {
            t.interrupt(1);
        },
        |t| {
            t.interrupt(2);
        },
        |records, _, fired| {
            let mut got = kinds(records);
            assert_eq!(got.remove(0), irq(100));
            got.sort_by_key(|e| match e {
                Event::Interrupt { irq } => *irq,
                _ => 0,
            });
            assert_eq!(
                got,
                if fired {
                    vec![irq(1), irq(2)]
                } else {
                    vec![irq(1)]
                }
            );
            assert_times_increase(records);
        },
    );
    assert!(points >= 12, "only {points} preemption points");
}

/// Fills the current block so that the next interrupt record does not fit.
fn fill_block(t: &'static T) {
    // Each interrupt record here is 2 bytes; 256-byte blocks hold 224 record bytes and
    // never fill the last byte.
    for i in 0..(256 - 32 - 1) / 2 {
        t.interrupt(i as u32 % 100);
    }
}

#[test]
fn nested_write_at_every_point_of_a_block_switch() {
    for_every_point(
        Mode::Drop,
        4,
        fill_block,
        |t| {
            t.interrupt(1000);
        },
        |t| {
            t.interrupt(2000);
        },
        |records, _, fired| {
            let n = (256 - 32 - 1) / 2;
            assert_eq!(records.len(), n + 1 + usize::from(fired));
            let mut tail = kinds(&records[n..]);
            tail.sort_by_key(|e| match e {
                Event::Interrupt { irq } => *irq,
                _ => 0,
            });
            assert_eq!(
                tail,
                if fired {
                    vec![irq(1000), irq(2000)]
                } else {
                    vec![irq(1000)]
                }
            );
            assert_times_increase(records);
        },
    );
}

#[test]
fn nested_write_at_every_point_of_an_overwrite() {
    for_every_point(
        Mode::Overwrite,
        2,
        |t| {
            fill_block(t);
            for _ in 0..3 {
                t.interrupt(7);
                fill_block(t);
            }
        },
        |t| {
            t.interrupt(1000);
        },
        |t| {
            t.user(5, &[0xaa; 32]);
        },
        |records, overwritten, fired| {
            let total = 4 * ((256 - 32 - 1) / 2) + 3 + 1 + usize::from(fired);
            assert_eq!(records.len() as u64 + overwritten, total as u64);
            let tail = kinds(&records[records.len() - 2..]);
            assert!(tail.contains(&irq(1000)), "{tail:?}");
            let user = Event::User {
                id: 5,
                payload: tracemark_format::UserPayload::new(&[0xaa; 32]).unwrap(),
            };
            assert_eq!(tail.contains(&user), fired, "{tail:?}");
            assert_times_increase(records);
        },
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "thousands of ring set-ups: too slow under miri; runs natively"
)]
fn two_levels_of_nesting_at_every_pair_of_points() {
    let mut k1 = 0u64;
    loop {
        let mut fired_outer = false;
        for k2 in 0..60u64 {
            let t = tracer(Mode::Drop, 4);
            fill_block(t);
            let fired = std::rc::Rc::new(Cell::new(0u8));
            let f = fired.clone();
            preempt::set(Some(std::boxed::Box::new(move |op| {
                if op == k1 {
                    f.set(1);
                    // Level 1: a kernel entry/exit pair; level 2 interrupts it at k2
                    // (counted from the start of level 1).
                    let f2 = f.clone();
                    let base = op;
                    preempt::set(Some(std::boxed::Box::new(move |op2| {
                        if op2 == base + 1 + k2 {
                            f2.set(2);
                            t.user(9, b"deep");
                        }
                    })));
                    t.kernel_entry(KernelEntry::other(EntryPath::Interrupt, 0, 5));
                    t.kernel_exit();
                }
            })));
            t.interrupt(1000);
            preempt::set(None);
            let (records, _) = decode(&image(t));
            let evs = kinds(&records);
            assert!(evs.contains(&irq(1000)));
            let n = (256 - 32 - 1) / 2;
            if fired.get() >= 1 {
                fired_outer = true;
                assert!(evs.contains(&Event::KernelEntry(KernelEntry::other(
                    EntryPath::Interrupt,
                    0,
                    5
                ))));
                let entry = records
                    .iter()
                    .find(|r| matches!(r.event, Event::KernelEntry(_)))
                    .unwrap();
                let exit = records
                    .iter()
                    .find(|r| matches!(r.event, Event::KernelExit(_)))
                    .unwrap();
                assert_eq!(
                    exit.event,
                    Event::KernelExit(ExitDuration::Ticks(exit.ts - entry.ts))
                );
            }
            let expected =
                n + 1 + usize::from(fired.get() >= 1) * 2 + usize::from(fired.get() == 2);
            assert_eq!(records.len(), expected, "k1={k1} k2={k2}");
            assert_times_increase(records.as_slice());
            if fired.get() < 2 {
                break;
            }
        }
        if !fired_outer {
            break;
        }
        k1 += 1;
    }
    assert!(k1 > 20);
}

#[test]
fn kernel_exit_durations_survive_nesting_at_every_point() {
    for_every_point(
        Mode::Drop,
        4,
        |t| {
            t.kernel_entry(KernelEntry::syscall(1, 4, false, 7));
        },
        |t| {
            t.kernel_exit();
        },
        |t| {
            t.kernel_entry(KernelEntry::other(EntryPath::Interrupt, 0, 27));
            t.interrupt(27);
            t.kernel_exit();
        },
        |records, _, fired| {
            // Pair entries and exits by nesting, in stream order.
            let mut open = Vec::new();
            let mut pairs = 0;
            for r in records {
                match r.event {
                    Event::KernelEntry(_) => open.push(r.ts),
                    Event::KernelExit(d) => {
                        let start = open.pop().expect("exit without entry");
                        assert_eq!(d, ExitDuration::Ticks(r.ts - start));
                        pairs += 1;
                    }
                    _ => {}
                }
            }
            assert_eq!(pairs, 1 + usize::from(fired));
            assert!(open.is_empty());
        },
    );
}

/// A deferred entry held by a single-context call is written by the next write, here a
/// nesting-safe interrupt record, with another interrupt nested before every atomic
/// access of that write (the flush of the held entry included). The ring always decodes
/// undamaged and fully committed, with the entry, both interrupts, each once. Where the
/// nested record lands between the flush's claim of the entry and its write, the entry
/// comes after it, with a CLOCKBACK saying so.
#[test]
fn nested_write_at_every_point_of_writing_a_held_entry() {
    let points = for_every_point(
        Mode::Overwrite,
        4,
        |t| {
            t.interrupt(100);
            // SAFETY: one thread; no write runs during the call (the hook is not set).
            unsafe { t.masked() }.kernel_entry_deferred();
        },
        |t| {
            t.interrupt(1);
        },
        |t| {
            t.interrupt(2);
        },
        |records, _, fired| {
            let mut got: Vec<Event> = kinds(records)
                .into_iter()
                .filter(|e| !matches!(e, Event::ClockBack { .. }))
                .collect();
            assert_eq!(got.remove(0), irq(100));
            let entry = got
                .iter()
                .position(|e| *e == Event::KernelEntry(KernelEntry::PENDING))
                .expect("the held entry is written");
            got.remove(entry);
            got.sort_by_key(|e| match e {
                Event::Interrupt { irq } => *irq,
                _ => 0,
            });
            let want = if fired {
                vec![irq(1), irq(2)]
            } else {
                vec![irq(1)]
            };
            assert_eq!(got, want);
            // The entry precedes the outer interrupt it was flushed by.
            let pos = |e: Event| records.iter().position(|r| r.event == e).unwrap();
            assert!(pos(Event::KernelEntry(KernelEntry::PENDING)) < pos(irq(1)));
        },
    );
    assert!(points >= 12, "only {points} preemption points");
}

/// A deferred entry whose write is interrupted, at every atomic access, by a nested
/// context that records its own kernel entry and exit (a signal or interrupt; issue 20,
/// point 18): the information still lands in the deferred entry, never in the nested
/// records, and the ring decodes with no placeholder left. Before, a nested write right
/// after the entry's reservation moved `write_pos`, the entry's position was read from
/// it, and the information was refused (`TM_DROPPED`, the entry decoded as "Unknown
/// core=7 word=67108863"). Checked in a block with room, across a block switch and
/// across an overwrite.
#[test]
fn a_deferred_entry_keeps_its_information_when_nested_at_every_point() {
    let word = KernelEntry::syscall(3, 9, false, 77);
    let nested_word = KernelEntry::other(EntryPath::Interrupt, 0, 27);
    type Prepare = fn(&'static T);
    let cases: [(Mode, usize, Prepare); 3] = [
        (Mode::Drop, 4, |t| {
            t.interrupt(1);
        }),
        (Mode::Drop, 4, fill_block),
        (Mode::Overwrite, 2, |t| {
            for _ in 0..3 {
                fill_block(t);
                t.interrupt(7);
            }
            fill_block(t);
        }),
    ];
    // Under miri (about 1000x slower) the case with room in the block only; all three
    // natively.
    let cases = if cfg!(miri) { &cases[..1] } else { &cases[..] };
    for &(mode, blocks, prepare) in cases {
        let points = for_every_point(
            mode,
            blocks,
            prepare,
            move |t| {
                t.kernel_entry_deferred();
                assert_eq!(t.fill_entry_info(word), crate::EntryInfo::Filled);
                t.kernel_exit();
            },
            move |t| {
                t.kernel_entry(nested_word);
                t.kernel_exit();
            },
            move |records, _, fired| {
                let entries: Vec<KernelEntry> = records
                    .iter()
                    .filter_map(|r| match r.event {
                        Event::KernelEntry(e) => Some(e),
                        _ => None,
                    })
                    .collect();
                let mut want = vec![word];
                if fired {
                    want.push(nested_word);
                }
                let mut got = entries.clone();
                got.sort_by_key(|e| e.0);
                want.sort_by_key(|e| e.0);
                assert_eq!(got, want, "{mode:?}: {entries:?}");
                assert_times_increase(records);
            },
        );
        assert!(points >= 10, "{mode:?}: only {points} preemption points");
    }
}

/// What `fill_entry_info` says when there is nothing to fill in (issue 20, point 22):
/// `NotPending` with nothing recorded and after the information came, `Lost` for an
/// entry dropped in drop mode (which the ring counts).
#[test]
fn fill_entry_info_tells_lost_from_not_pending() {
    let t = tracer(Mode::Drop, 2);
    let word = KernelEntry::syscall(1, 1, false, 1);
    assert_eq!(t.fill_entry_info(word), crate::EntryInfo::NotPending);
    t.kernel_entry_deferred();
    assert_eq!(t.fill_entry_info(word), crate::EntryInfo::Filled);
    assert_eq!(t.fill_entry_info(word), crate::EntryInfo::NotPending);
    t.kernel_exit();
    // Fill the ring, then a deferred entry is dropped.
    while t.interrupt(3) == crate::Outcome::Written {}
    let (_, dropped) = t.ring().lost();
    assert_eq!(t.kernel_entry_deferred(), crate::Outcome::Dropped);
    assert_eq!(t.ring().lost().1, dropped + 1);
    assert_eq!(t.fill_entry_info(word), crate::EntryInfo::Lost);
    assert_eq!(t.fill_entry_info(word), crate::EntryInfo::NotPending);
}

/// A THREAD record (the general path only) with a nested writer at every point, in
/// overwrite mode across a block switch: both records land whole, once.
#[test]
fn nested_write_at_every_point_of_a_thread_name() {
    let name = tracemark_format::UserPayload::new(b"consumer-task").unwrap();
    let thread = Event::ThreadName {
        thread: 0x2000_0400,
        prio: 4,
        name,
    };
    let points = for_every_point(
        Mode::Overwrite,
        3,
        fill_block,
        |t| {
            t.thread_name(0x2000_0400, 4, b"consumer-task");
        },
        |t| {
            t.thread_switch(0x2000_0800);
        },
        |records, overwritten, fired| {
            let n = (256 - 32 - 1) / 2;
            assert_eq!(
                records.len() as u64 + overwritten,
                (n + 1 + usize::from(fired)) as u64
            );
            let tail = kinds(&records[records.len() - 1 - usize::from(fired)..]);
            assert!(tail.contains(&thread), "{tail:?}");
            assert_eq!(
                tail.contains(&Event::ThreadSwitch {
                    thread: 0x2000_0800
                }),
                fired,
                "{tail:?}"
            );
            assert_times_increase(records);
        },
    );
    assert!(points >= 12, "only {points} preemption points");
}

/// One clock read per record (issue 15, goal 3): a write that leaves the fast path keeps
/// the fast path's clock reading only while no writer has reserved since it was taken.
/// Here the outer write reaches the general path because an entry is held: it writes the
/// held entry first, and a nested interrupt injected at every atomic access (between the
/// entry's reservation and its publication, among others) writes its record in between.
/// The entry's publication then hides the nested record's later time, so a reading kept
/// from before the nested write would put the outer interrupt after the nested one in the
/// ring but before it in time: a false step back, of the kind the Cortex-M3 firmware
/// check showed with commit 935f9b5's rule (keep the reading unless it is below the
/// published `last_ts`), which fails this test. The interrupts' times must increase in
/// ring order (the held entry and its CLOCKBACK are the one record allowed to be older).
#[test]
fn a_kept_clock_reading_never_goes_back_past_a_nested_record() {
    // Under miri, one of the two (each is a few hundred ring builds and decodes).
    let values: &[u32] = if cfg!(miri) { &[1] } else { &[1, u32::MAX] };
    for &outer_value in values {
        let points = for_every_point(
            Mode::Overwrite,
            4,
            |t| {
                t.interrupt(100);
                // SAFETY: one thread; no write runs during the call (the hook is not set).
                unsafe { t.masked() }.kernel_entry_deferred();
            },
            move |t| {
                t.interrupt(outer_value);
            },
            |t| {
                t.interrupt(2);
            },
            |records, _, _| {
                let irqs: Vec<Record> = records
                    .iter()
                    .filter(|r| matches!(r.event, Event::Interrupt { .. }))
                    .copied()
                    .collect();
                assert_times_increase(&irqs);
            },
        );
        assert!(points >= 12, "only {points} preemption points");
    }
}
