//! Encoder to format-decoder round trips: every kind, block switches, wrap-around in
//! both modes, and kernel-exit durations equal to the clock differences the test made.

mod common;

use common::{decode, memory, TestClock};
use tracemark::format::record::UserPayload;
use tracemark::{Config, EntryPath, Event, ExitDuration, KernelEntry, Mode, Outcome, Tracer};

fn config(mode: Mode, block_size: u32) -> Config {
    Config {
        mode,
        block_size,
        clock_hz: 1_000_000,
        ..Config::new()
    }
}

#[test]
fn every_kind_round_trips() {
    let clock = TestClock::default();
    let mut mem = memory(192 + 4 * 1024);
    let t = Tracer::new(&mut mem, &config(Mode::Drop, 1024), &clock).unwrap();
    let entry = KernelEntry::syscall(1, 10, true, 42);
    let mut expect = Vec::new();
    clock.advance(100);
    t.kernel_entry(entry);
    expect.push((100, Event::KernelEntry(entry)));
    clock.advance(7);
    t.interrupt(27);
    expect.push((107, Event::Interrupt { irq: 27 }));
    clock.advance(5000);
    t.function_entry(0x0800_0100);
    expect.push((5107, Event::FunctionEntry { func: 0x0800_0100 }));
    t.function_exit(0x0800_0100);
    expect.push((5107, Event::FunctionExit { func: 0x0800_0100 }));
    clock.advance(1 << 40);
    t.user(9, b"hello");
    let ts = 5107 + (1 << 40);
    expect.push((
        ts,
        Event::User {
            id: 9,
            payload: UserPayload::new(b"hello").unwrap(),
        },
    ));
    t.image(0x4000_0000, 0x2_0000, 0xfeed);
    expect.push((
        ts,
        Event::Image {
            base: 0x4000_0000,
            size: 0x2_0000,
            id: 0xfeed,
        },
    ));
    clock.advance(3);
    t.kernel_exit();
    expect.push((ts + 3, Event::KernelExit(ExitDuration::Ticks(ts + 3 - 100))));
    t.kernel_exit();
    expect.push((ts + 3, Event::KernelExit(ExitDuration::NoEntry)));
    let other = KernelEntry::other(EntryPath::VmFault, 2, 0x12345);
    t.record(Event::KernelEntry(other));
    expect.push((ts + 3, Event::KernelEntry(other)));
    drop(t);
    let (records, view) = decode(&mem);
    let got: Vec<_> = records.iter().map(|r| (r.ts, r.event)).collect();
    assert_eq!(got, expect);
    assert_eq!(view.header.clock_hz.get(), 1_000_000);
}

#[test]
fn durations_equal_the_clock_differences_including_nesting_and_overflow() {
    let clock = TestClock::default();
    let mut mem = memory(192 + 8 * 1024);
    let t = Tracer::new(&mut mem, &config(Mode::Drop, 1024), &clock).unwrap();
    let mut expected = Vec::new();
    // Nest 10 deep (stack holds 8), with distinct gaps, then unwind.
    let mut starts = Vec::new();
    for depth in 0..10u64 {
        starts.push(clock.advance(10 + depth * 3));
        t.kernel_entry(KernelEntry::other(EntryPath::Interrupt, 0, depth as u32));
    }
    for depth in (0..10u64).rev() {
        let now = clock.advance(1 + depth);
        t.kernel_exit();
        expected.push(if depth >= 8 {
            ExitDuration::NestingOverflow
        } else {
            ExitDuration::Ticks(now - starts[depth as usize])
        });
    }
    assert_eq!(t.entry_depth(), 0);
    drop(t);
    let (records, _) = decode(&mem);
    let exits: Vec<_> = records
        .iter()
        .filter_map(|r| match r.event {
            Event::KernelExit(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(exits, expected);
    assert!(exits.iter().all(|d| *d != ExitDuration::Ticks(0)));
}

#[test]
fn overwrite_keeps_the_newest_and_counts_the_rest() {
    let clock = TestClock::default();
    let mut mem = memory(192 + 4 * 256);
    let t = Tracer::new(&mut mem, &config(Mode::Overwrite, 256), &clock).unwrap();
    let n = 2000u32;
    for i in 0..n {
        clock.advance(13);
        assert_eq!(t.interrupt(i), Outcome::Written);
    }
    let (over, dropped) = t.ring().lost();
    drop(t);
    let (records, view) = decode(&mem);
    assert_eq!(dropped, 0);
    assert_eq!(records.len() as u64 + over, u64::from(n));
    // The survivors are exactly the newest, in order.
    let first = n - records.len() as u32;
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            r.event,
            Event::Interrupt {
                irq: first + i as u32
            }
        );
        assert_eq!(r.ts, 13 * u64::from(first + i as u32 + 1));
    }
    assert_eq!(view.header.overwritten.get(), over);
}

#[test]
fn drop_mode_keeps_the_oldest_and_counts_drops() {
    let clock = TestClock::default();
    let mut mem = memory(192 + 3 * 256);
    let t = Tracer::new(&mut mem, &config(Mode::Drop, 256), &clock).unwrap();
    let n = 1000u32;
    let mut written = 0u64;
    for i in 0..n {
        clock.advance(2);
        if t.interrupt(i) == Outcome::Written {
            written += 1;
        }
    }
    let (over, dropped) = t.ring().lost();
    drop(t);
    let (records, _) = decode(&mem);
    assert_eq!(over, 0);
    assert_eq!(records.len() as u64, written);
    assert_eq!(written + dropped, u64::from(n));
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.event, Event::Interrupt { irq: i as u32 });
    }
}

#[test]
fn a_claimed_ring_cannot_be_initialised_again() {
    let clock = TestClock::default();
    // Leaked: the forgotten ring stays registered as live memory for the whole test
    // binary, so no other test may get this memory.
    let mem: &'static mut common::AlignedBuf = Box::leak(Box::new(memory(192 + 2 * 256)));
    let t = Tracer::new(mem, &config(Mode::Drop, 256), &clock).unwrap();
    let (ptr, len) = t.ring().memory_span();
    std::mem::forget(t); // the session is still live, as in a kernel that never stops
                         // SAFETY: the forgotten tracer never runs again, so this second view of its memory is
                         // the only one in use.
    let again = unsafe { std::slice::from_raw_parts_mut(ptr.cast_mut(), len) };
    assert_eq!(
        Tracer::new(again, &config(Mode::Drop, 256), &clock).err(),
        Some(tracemark::InitError::InUse)
    );
}

#[test]
fn deferred_entries_keep_their_time_and_get_their_word() {
    // seL4's order: entry hook, functions while the syscall is decoded, then the
    // information, a thread switch and the exit; across block switches (256-byte blocks).
    let clock = TestClock::default();
    let mut mem = memory(192 + 64 * 256);
    let t = Tracer::new(&mut mem, &config(Mode::Drop, 256), &clock).unwrap();
    let mut expect = Vec::new();
    for i in 0..200u32 {
        let start = clock.advance(100);
        assert_eq!(t.kernel_entry_deferred(), Outcome::Written);
        let word = KernelEntry::syscall((i % 14 + 1) as u8, (i % 16) as u8, i % 3 == 0, i);
        expect.push((start, Event::KernelEntry(word)));
        for f in 0..(i % 4) {
            let ts = clock.advance(7);
            t.function_entry(0x1000 + u64::from(f));
            expect.push((
                ts,
                Event::FunctionEntry {
                    func: 0x1000 + u64::from(f),
                },
            ));
        }
        assert!(t.kernel_entry_info(word), "entry {i}");
        assert!(!t.kernel_entry_info(word), "entry {i}: filled in twice");
        let ts = clock.advance(3);
        t.thread_switch(0xffff_ff80_0010_0c00 + u64::from(i));
        expect.push((
            ts,
            Event::ThreadSwitch {
                thread: 0xffff_ff80_0010_0c00 + u64::from(i),
            },
        ));
        let end = clock.advance(11);
        t.kernel_exit();
        expect.push((end, Event::KernelExit(ExitDuration::Ticks(end - start))));
    }
    // An entry whose information never comes keeps the placeholder.
    let start = clock.advance(5);
    t.kernel_entry_deferred();
    expect.push((start, Event::KernelEntry(KernelEntry::PENDING)));
    drop(t);
    let (records, view) = decode(&mem);
    let got: Vec<_> = records.iter().map(|r| (r.ts, r.event)).collect();
    assert_eq!(got, expect);
    assert_eq!(view.header.version.get(), 3);
}

#[test]
fn a_deferred_entry_overwritten_before_its_information_is_not_patched() {
    let clock = TestClock::default();
    let mut mem = memory(192 + 4 * 256);
    let t = Tracer::new(&mut mem, &config(Mode::Overwrite, 256), &clock).unwrap();
    clock.advance(10);
    t.kernel_entry_deferred();
    // More than a ring's worth of records inside the entry.
    for i in 0..400u32 {
        clock.advance(1);
        t.interrupt(i);
    }
    assert!(!t.kernel_entry_info(KernelEntry::syscall(7, 0, false, 0)));
    drop(t);
    let (records, _) = decode(&mem);
    // Nothing but the interrupts survived, none of them damaged by a late patch.
    assert!(records
        .iter()
        .all(|r| matches!(r.event, Event::Interrupt { .. })));
}

/// A clock that steps back leaves a CLOCKBACK record saying by how much, right before the
/// first record read after the step; a kernel exit measured across the step carries 0
/// ticks, and the CLOCKBACK between entry and exit says why. In drop mode with no room
/// the CLOCKBACK record is neither written nor counted as a drop.
#[test]
fn a_clock_stepping_back_is_recorded() {
    let clock = TestClock::default();
    let mut mem = memory(192 + 4 * 256);
    let t = Tracer::new(&mut mem, &config(Mode::Overwrite, 256), &clock).unwrap();
    clock.0.set(1000);
    t.kernel_entry(KernelEntry::syscall(1, 2, false, 3));
    clock.0.set(400);
    t.kernel_exit();
    clock.0.set(450);
    t.interrupt(7);
    clock.0.set(440);
    t.interrupt(8);
    drop(t);
    let (records, _) = decode(&mem);
    let got: Vec<_> = records.iter().map(|r| (r.ts, r.event)).collect();
    assert_eq!(
        got,
        vec![
            (
                1000,
                Event::KernelEntry(KernelEntry::syscall(1, 2, false, 3))
            ),
            (400, Event::ClockBack { back: 600 }),
            (400, Event::KernelExit(ExitDuration::Ticks(0))),
            (450, Event::Interrupt { irq: 7 }),
            (440, Event::ClockBack { back: 10 }),
            (440, Event::Interrupt { irq: 8 }),
        ]
    );

    // Drop mode, ring full: the step is not written and not counted as a drop.
    let mut mem = memory(192 + 2 * 256);
    let t = Tracer::new(&mut mem, &config(Mode::Drop, 256), &clock).unwrap();
    clock.0.set(10);
    while t.interrupt(1) == Outcome::Written {
        clock.advance(1);
    }
    let dropped = t.ring().lost().1;
    clock.0.set(0);
    assert_eq!(t.interrupt(2), Outcome::Dropped);
    assert_eq!(t.ring().lost().1, dropped + 1);
}

/// A clock near the top of the 64-bit range, then wrapping to small values: the fast
/// path's single delta bound never writes the wrap as a small forward delta; the times
/// decode exactly and the wrap is a CLOCKBACK.
#[test]
fn a_clock_wrapping_at_2_pow_64_is_a_step_back() {
    let clock = TestClock::default();
    let mut mem = memory(192 + 4 * 256);
    let t = Tracer::new(&mut mem, &config(Mode::Overwrite, 256), &clock).unwrap();
    let mut expected = Vec::new();
    for start in [u64::MAX - 40, (1 << 63) - 10] {
        clock.0.set(start);
        for irq in 0..8 {
            t.interrupt(irq);
            expected.push((clock.0.get(), Event::Interrupt { irq }));
            clock.0.set(clock.0.get().wrapping_add(5));
        }
        let before = expected.last().unwrap().0;
        clock.0.set(3);
        t.interrupt(99);
        expected.push((3, Event::ClockBack { back: before - 3 }));
        expected.push((3, Event::Interrupt { irq: 99 }));
    }
    drop(t);
    let (records, _) = decode(&mem);
    let got: Vec<_> = records.iter().map(|r| (r.ts, r.event)).collect();
    assert_eq!(got, expected);
}

/// Memory that overlaps a ring in use is refused, wherever the overlap is (the owner
/// token alone caught only the same start address); memory next to it is fine, and the
/// memory is free again once the ring is dropped.
#[test]
fn memory_overlapping_a_live_ring_is_refused() {
    let clock = TestClock::default();
    // Leaked: the ring forgotten below stays registered, so its memory must never be
    // handed to another test.
    let mem: &'static mut common::AlignedBuf = Box::leak(Box::new(memory(4 * 4096)));
    let base = mem.as_mut_ptr();
    let cfg = config(Mode::Overwrite, 256);
    let ring_len = 192 + 4 * 256;
    // SAFETY: every view lies inside the leaked allocation. A view that overlaps the
    // forgotten ring's memory is only created after that ring's last use, and is only
    // passed to `Tracer::new`, which refuses it before touching it.
    let view =
        |off: usize, len: usize| unsafe { std::slice::from_raw_parts_mut(base.add(off), len) };
    // A dropped ring frees its memory.
    drop(Tracer::new(view(4096, ring_len), &cfg, &clock).unwrap());
    drop(Tracer::new(view(4096 + 8, ring_len), &cfg, &clock).unwrap());
    // A ring that is never dropped, as a kernel's.
    std::mem::forget(Tracer::new(view(4096, ring_len), &cfg, &clock).unwrap());
    for (off, len) in [
        (4096 + 8, ring_len),        // starts inside
        (4096 - 8, ring_len),        // ends inside, covers the header
        (4096 + ring_len - 8, 2048), // starts in its last bytes
        (4096 - 512, 2 * ring_len),  // covers it
    ] {
        assert_eq!(
            Tracer::new(view(off, len), &cfg, &clock).err(),
            Some(tracemark::InitError::InUse),
            "{off}+{len}"
        );
    }
    // Right before and right after: fine.
    drop(Tracer::new(view(4096 - ring_len, ring_len), &cfg, &clock).unwrap());
    drop(Tracer::new(view(4096 + ring_len, ring_len), &cfg, &clock).unwrap());
}

/// Memory that holds the ring of an earlier session (claimed, as a crash across a warm
/// reset leaves it) is refused by `new` with `PreviousSession`, and `recover` hands its
/// bytes over (or keeps them untouched if asked) before a new session starts there.
#[test]
fn an_earlier_sessions_ring_is_recovered() {
    let clock = TestClock::default();
    let mut mem = memory(192 + 4 * 256);
    let cfg = config(Mode::Overwrite, 256);
    {
        let t = Tracer::new(&mut mem, &cfg, &clock).unwrap();
        for irq in 0..50 {
            clock.advance(3);
            t.interrupt(irq);
        }
    }
    // The crash: the ring was never released (Drop cleared the owner; put it back).
    let owner = tracemark::format::ring::offsets::OWNER;
    mem[owner..owner + 4].copy_from_slice(&tracemark::format::ring::OWNER_TOKEN.to_le_bytes());
    let before = mem.to_vec();
    assert_eq!(
        Tracer::new(&mut mem, &cfg, &clock).err(),
        Some(tracemark::InitError::PreviousSession)
    );
    assert_eq!(
        Tracer::recover(&mut mem, &cfg, &clock, |_| false).err(),
        Some(tracemark::InitError::PreviousSession)
    );
    assert_eq!(mem.to_vec(), before, "kept untouched");
    let mut old = Vec::new();
    let t = Tracer::recover(&mut mem, &cfg, &clock, |bytes| {
        old = bytes.to_vec();
        true
    })
    .unwrap();
    t.interrupt(999);
    drop(t);
    let (earlier, _) = decode(&old);
    let irqs: Vec<_> = earlier
        .iter()
        .map(|r| match r.event {
            Event::Interrupt { irq } => irq,
            e => panic!("{e:?}"),
        })
        .collect();
    assert_eq!(
        irqs.last(),
        Some(&49),
        "the earlier session's newest record"
    );
    assert!(irqs.len() > 20);
    let (now, _) = decode(&mem);
    assert_eq!(
        now.iter().map(|r| r.event).collect::<Vec<_>>(),
        vec![Event::Interrupt { irq: 999 }]
    );
}

/// THREAD records (format version 3) round-trip with their id, priority and name (cut to
/// 32 bytes), and `thread_switch_named` names a thread once per block: in an
/// overwrite-mode ring that lost the creations, every block holding a SWITCH to a thread
/// still names it (FORMAT.md 8.4.1).
#[test]
fn thread_names_round_trip_and_are_re_emitted_once_per_block() {
    let clock = TestClock::default();
    let mut mem = memory(192 + 4 * 256);
    let t = Tracer::new(&mut mem, &config(Mode::Overwrite, 256), &clock).unwrap();
    let long = [b'n'; 40];
    let threads: [(u64, u32, &[u8]); 3] = [
        (0x2000_0100, 1, b"IDLE"),
        (0x2000_0400, 3, b"producer"),
        (0x2000_0800, u32::MAX, &long),
    ];
    let mut stamps = [0u32; 3];
    for (id, prio, name) in threads {
        clock.advance(5);
        assert_eq!(t.thread_name(id, prio, name), Outcome::Written);
    }
    // Many switches: the creations are overwritten long before the end.
    for i in 0..600usize {
        clock.advance(11);
        let k = i * 7 % 3;
        let (id, prio, name) = threads[k];
        t.thread_switch_named(id, prio, name, &mut stamps[k]);
        t.interrupt(15);
    }
    let over = t.ring().lost().0;
    drop(t);
    assert!(over > 0, "the ring wrapped");
    let view = tracemark::format::ring::RingView::parse(&mem).unwrap();
    let mut blocks_checked = 0;
    for block in view.blocks() {
        if block.state != tracemark::format::ring::BlockState::Valid {
            continue;
        }
        let mut named = std::collections::HashMap::new();
        let mut names_in_block = 0;
        let mut switched = Vec::new();
        for r in block.decode() {
            match r.unwrap().event {
                Event::ThreadName { thread, prio, name } => {
                    let (_, p, n) = threads.iter().find(|x| x.0 == thread).unwrap();
                    assert_eq!(prio, *p);
                    assert_eq!(name.as_bytes(), &n[..n.len().min(32)]);
                    assert!(named.insert(thread, ()).is_none(), "named twice in a block");
                    names_in_block += 1;
                }
                Event::ThreadSwitch { thread } => {
                    switched.push(thread);
                }
                _ => {}
            }
        }
        for thread in switched {
            assert!(
                named.contains_key(&thread),
                "switch to {thread:#x} in block {} with no name in the block",
                block.seq
            );
        }
        assert!(names_in_block <= 3);
        blocks_checked += 1;
    }
    assert!(blocks_checked >= 3);
}
