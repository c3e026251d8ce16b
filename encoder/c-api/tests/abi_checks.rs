//! The C ABI's argument checks, called as C calls them: out-of-range fields are refused
//! with an error and leave nothing in the ring, a clock stepping back is recorded, seL4's
//! own packed `kernel_entry_t` is accepted, and overlapping ring memory is refused.
//!
//! Every test uses its own CPU slot (the slot table is global and tests run in parallel).

use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};

use tracemark_c::*;
use tracemark_format::ring::{BlockState, RingView};
use tracemark_format::{Event, ExitDuration, KernelEntry, Record};

/// 8-byte aligned ring memory that lives for the whole test binary.
fn ring_memory(len: usize) -> *mut c_void {
    Box::leak(vec![0u64; len.div_ceil(8)].into_boxed_slice())
        .as_mut_ptr()
        .cast()
}

fn config(clock: extern "C" fn() -> u64, abi: u32) -> TmConfig {
    TmConfig {
        block_size: 256,
        mode: TM_MODE_OVERWRITE,
        clock: Some(clock),
        clock_hz: 1_000_000,
        producer_id: 7,
        syscall_abi: abi,
    }
}

/// The records of `cpu`'s ring, from a snapshot (sized with `tm_snapshot(cpu, NULL, 0, ..)`).
fn records(cpu: u32) -> Vec<Record> {
    let mut len = 0usize;
    assert_eq!(
        // SAFETY: a NULL buffer of capacity 0 asks for the size; `len` is a valid out pointer.
        unsafe { tm_snapshot(cpu, std::ptr::null_mut(), 0, &mut len) },
        TM_ERR_TOO_SMALL
    );
    let mut image = vec![0u8; len];
    assert_eq!(
        // SAFETY: `image` has room for `len` bytes; `len` is a valid out pointer.
        unsafe { tm_snapshot(cpu, image.as_mut_ptr(), image.len(), &mut len) },
        TM_OK
    );
    let view = RingView::parse(&image[..len]).expect("a ring");
    let mut out = Vec::new();
    for block in view.blocks() {
        if block.state == BlockState::Valid {
            out.extend(block.decode().map(|r| r.expect("record")));
        }
    }
    out
}

static CLOCK_RANGE: AtomicU64 = AtomicU64::new(100);
extern "C" fn clock_range() -> u64 {
    CLOCK_RANGE.load(Ordering::Relaxed)
}

#[test]
fn out_of_range_fields_are_refused_and_record_nothing() {
    let cpu = 1;
    let mem = ring_memory(192 + 4 * 256);
    assert_eq!(
        // SAFETY: `mem` is valid, aligned and reserved for this slot; the config is valid.
        unsafe { tm_init(cpu, mem, 192 + 4 * 256, &config(clock_range, TM_ABI_SEL4)) },
        TM_OK
    );
    let refused = [
        ("syscall 16", tm_kernel_entry_syscall(cpu, 16, 0, false, 0)),
        (
            "syscall -1",
            tm_kernel_entry_syscall(cpu, (-1i32) as u32, 0, false, 0),
        ),
        ("cap type 32", tm_kernel_entry_syscall(cpu, 1, 32, false, 0)),
        (
            "label 2^19",
            tm_kernel_entry_syscall(cpu, 1, 4, false, 1 << 19),
        ),
        (
            "path syscall",
            tm_kernel_entry_other(cpu, TM_PATH_SYSCALL, 0, 5),
        ),
        ("path 8", tm_kernel_entry_other(cpu, 8, 0, 5)),
        (
            "core 8",
            tm_kernel_entry_other(cpu, TM_PATH_INTERRUPT, 8, 5),
        ),
        (
            "word 2^26",
            tm_kernel_entry_other(cpu, TM_PATH_INTERRUPT, 0, 1 << 26),
        ),
    ];
    for (what, rc) in refused {
        assert_eq!(rc, TM_ERR_RANGE, "{what}");
    }
    assert_eq!(
        // SAFETY: NULL data with a length is exactly what is being refused; nothing is read.
        unsafe { tm_user(cpu, 3, std::ptr::null(), 5) },
        TM_ERR_BAD_ARG
    );
    // A bad CPU is reported as such even when a field is also out of range.
    assert_eq!(
        tm_kernel_entry_syscall(TM_MAX_CPUS, 16, 0, false, 0),
        TM_ERR_BAD_CPU
    );
    assert!(records(cpu).is_empty(), "nothing was recorded");
    // The largest values that fit are accepted as given.
    assert_eq!(
        tm_kernel_entry_syscall(cpu, 15, 31, true, (1 << 19) - 1),
        TM_OK
    );
    assert_eq!(
        tm_kernel_entry_other(cpu, TM_PATH_VCPU_FAULT, 7, (1 << 26) - 1),
        TM_OK
    );
    // SAFETY: NULL with length 0 is an empty payload.
    assert_eq!(unsafe { tm_user(cpu, 3, std::ptr::null(), 0) }, TM_OK);
    let got: Vec<Event> = records(cpu).into_iter().map(|r| r.event).collect();
    assert_eq!(
        got,
        vec![
            Event::KernelEntry(KernelEntry::syscall(15, 31, true, (1 << 19) - 1)),
            Event::KernelEntry(KernelEntry::other(
                tracemark_format::EntryPath::VcpuFault,
                7,
                (1 << 26) - 1
            )),
            Event::User {
                id: 3,
                payload: tracemark_format::UserPayload::new(&[]).unwrap(),
            },
        ]
    );
    // SAFETY: nothing else uses the slot.
    assert_eq!(unsafe { tm_release(cpu) }, TM_OK);
}

static CLOCK_BACK: AtomicU64 = AtomicU64::new(0);
extern "C" fn clock_back() -> u64 {
    CLOCK_BACK.load(Ordering::Relaxed)
}

#[test]
fn a_clock_stepping_back_is_recorded_as_such() {
    let cpu = 2;
    let mem = ring_memory(192 + 4 * 256);
    assert_eq!(
        // SAFETY: as above.
        unsafe { tm_init(cpu, mem, 192 + 4 * 256, &config(clock_back, TM_ABI_SEL4)) },
        TM_OK
    );
    CLOCK_BACK.store(5_000, Ordering::Relaxed);
    assert_eq!(tm_kernel_entry_syscall(cpu, 1, 4, false, 9), TM_OK);
    CLOCK_BACK.store(4_000, Ordering::Relaxed);
    assert_eq!(tm_kernel_exit(cpu), TM_OK);
    let got: Vec<(u64, Event)> = records(cpu).into_iter().map(|r| (r.ts, r.event)).collect();
    assert_eq!(
        got,
        vec![
            (
                5_000,
                Event::KernelEntry(KernelEntry::syscall(1, 4, false, 9))
            ),
            (4_000, Event::ClockBack { back: 1_000 }),
            (4_000, Event::KernelExit(ExitDuration::Ticks(0))),
        ]
    );
    // SAFETY: nothing else uses the slot.
    assert_eq!(unsafe { tm_release(cpu) }, TM_OK);
}

static CLOCK_OVERLAP: AtomicU64 = AtomicU64::new(0);
extern "C" fn clock_overlap() -> u64 {
    CLOCK_OVERLAP.fetch_add(1, Ordering::Relaxed)
}

/// `tm_init(1, A + 8, ..)` while CPU 0 owns `A` used to return 0 and make CPU 0's ring
/// undecodable; any overlap with a ring in use is now refused, and CPU 0's ring still
/// decodes afterwards.
#[test]
fn overlapping_ring_memory_is_refused() {
    let (a, b) = (3, 4);
    let len = 192 + 4 * 256;
    let mem = ring_memory(3 * len).cast::<u8>();
    let cfg = config(clock_overlap, TM_ABI_RAW);
    // SAFETY: `mem + len .. mem + 2 * len` is valid, aligned, and reserved for slot `a`.
    assert_eq!(unsafe { tm_init(a, mem.add(len).cast(), len, &cfg) }, TM_OK);
    assert_eq!(tm_interrupt(a, 1), TM_OK);
    for (off, n) in [
        (len + 8, len),
        (len - 8, len),
        (2 * len - 8, len - 8),
        (0, 3 * len),
    ] {
        // SAFETY: inside the allocation; refused before anything is written.
        let rc = unsafe { tm_init(b, mem.add(off).cast(), n, &cfg) };
        assert_eq!(rc, TM_ERR_IN_USE, "{off}+{n}");
    }
    assert_eq!(tm_interrupt(a, 2), TM_OK);
    let irqs: Vec<Event> = records(a).into_iter().map(|r| r.event).collect();
    assert_eq!(
        irqs,
        vec![Event::Interrupt { irq: 1 }, Event::Interrupt { irq: 2 }]
    );
    // Adjacent memory is fine.
    // SAFETY: `mem .. mem + len` is valid, aligned and not used by slot `a`.
    assert_eq!(unsafe { tm_init(b, mem.cast(), len, &cfg) }, TM_OK);
    // SAFETY: nothing else uses the slots.
    unsafe {
        assert_eq!(tm_release(b), TM_OK);
        assert_eq!(tm_release(a), TM_OK);
    }
}

static CLOCK_ABI: AtomicU64 = AtomicU64::new(10);
extern "C" fn clock_abi() -> u64 {
    CLOCK_ABI.fetch_add(1, Ordering::Relaxed)
}

/// Only the `TM_ABI_*` values the header lists are accepted (issue 20, point 22): 16,
/// the format crate's Linux numbering, was accepted before although a C kernel cannot
/// mean it; values from 5 up are refused with `TM_ERR_BAD_ARG`, and every listed value
/// works and writes its wire ABI into the header.
#[test]
fn only_the_listed_syscall_abis_are_accepted() {
    let cpu = 5;
    let len = 192 + 4 * 256;
    let mem = ring_memory(len);
    for abi in [5, 15, 16, 17, 255, 256, u32::MAX] {
        assert_eq!(
            // SAFETY: `mem` is valid, aligned and reserved for this slot.
            unsafe { tm_init(cpu, mem, len, &config(clock_abi, abi)) },
            TM_ERR_BAD_ARG,
            "ABI {abi}"
        );
    }
    for (abi, wire) in [
        (TM_ABI_RAW, 0),
        (TM_ABI_SEL4, 1),
        (TM_ABI_SEL4_MCS, 2),
        (TM_ABI_SEL4_LEGACY, 1),
        (TM_ABI_SEL4_LEGACY_MCS, 2),
    ] {
        assert_eq!(
            // SAFETY: as above.
            unsafe { tm_init(cpu, mem, len, &config(clock_abi, abi)) },
            TM_OK,
            "ABI {abi}"
        );
        let mut n = 0usize;
        // SAFETY: a size query: NULL with capacity 0, `n` a valid out pointer.
        unsafe { tm_snapshot(cpu, std::ptr::null_mut(), 0, &mut n) };
        let mut image = vec![0u8; n];
        assert_eq!(
            // SAFETY: `image` has room for `n` bytes.
            unsafe { tm_snapshot(cpu, image.as_mut_ptr(), n, &mut n) },
            TM_OK
        );
        let view = RingView::parse(&image).unwrap();
        assert_eq!(view.header.syscall_abi, wire, "ABI {abi}");
        // SAFETY: nothing else uses the slot.
        assert_eq!(unsafe { tm_release(cpu) }, TM_OK);
    }
}

/// Errors come in the order the header documents (issue 20, point 23): the CPU, then
/// its slot, then the arguments. Before, `tm_dump`, `tm_dump_uart`, `tm_snapshot` and
/// `tm_memory_span` said `TM_ERR_BAD_ARG` for a NULL argument on a bad CPU.
#[test]
fn errors_come_in_the_documented_order() {
    let null = std::ptr::null_mut();
    // SAFETY: every call below is refused before it touches a pointer.
    unsafe {
        for (cpu, want) in [(TM_MAX_CPUS, TM_ERR_BAD_CPU), (6, TM_ERR_NOT_INIT)] {
            assert_eq!(tm_dump(cpu, None, null), want, "tm_dump {cpu}");
            assert_eq!(tm_dump_uart(cpu, 1, None, null), want, "tm_dump_uart {cpu}");
            assert_eq!(tm_snapshot(cpu, null.cast(), 5, null.cast()), want);
            assert_eq!(tm_memory_span(cpu, null.cast(), null.cast()), want);
            assert_eq!(tm_user(cpu, 1, null, 3), want);
            assert_eq!(tm_kernel_entry_syscall(cpu, 99, 99, false, 0), want);
            assert_eq!(tm_kernel_entry_info(cpu, 0), want);
        }
        assert_eq!(
            tm_init(TM_MAX_CPUS, null, 0, std::ptr::null()),
            TM_ERR_BAD_CPU
        );
        assert_eq!(tm_init(6, null, 0, std::ptr::null()), TM_ERR_BAD_ARG);
    }
}

static USED_CLOCK: AtomicU64 = AtomicU64::new(1_000);

extern "C" fn clock_used() -> u64 {
    USED_CLOCK.fetch_add(13, Ordering::Relaxed)
}

extern "C" fn collect_lines(ctx: *mut c_void, data: *const u8, len: usize) -> i32 {
    // SAFETY: `ctx` is the `Vec<Vec<u8>>` the test passes; `data` is valid for `len`
    // bytes for the call.
    let (lines, line) = unsafe {
        (
            &mut *ctx.cast::<Vec<Vec<u8>>>(),
            std::slice::from_raw_parts(data, len),
        )
    };
    lines.push(line.to_vec());
    0
}

/// `tm_dump_uart` sends only the used part of a ring (issue 15; FORMAT.md 7.3): a 4 MiB
/// ring holding about 900 KB of records sends 900 KB, and the lines reassemble into an
/// image that reads as the whole ring. Prints the line counts (BENCHMARKS.md, "Target
/// cost"). Before, it sent the whole 4 MiB: 87,384 lines.
#[test]
fn a_uart_dump_sends_the_used_part_only() {
    use tracemark_format::uart::{parse_line, Line};

    let cpu = 7;
    let len = 192 + 64 * 65536;
    let mem = ring_memory(len);
    let cfg = TmConfig {
        block_size: 65536,
        ..config(clock_used, TM_ABI_SEL4)
    };
    // SAFETY: `mem` is valid, aligned and reserved for this slot; the config is valid.
    assert_eq!(unsafe { tm_init(cpu, mem, len, &cfg) }, TM_OK);
    let payload = [0x5au8; 24];
    let mut i = 0u32;
    let recorded = loop {
        assert_eq!(
            // SAFETY: `payload` is valid for its 24 bytes.
            unsafe { tm_user(cpu, i % 100, payload.as_ptr().cast(), 24) },
            TM_OK
        );
        assert_eq!(tm_interrupt(cpu, i % 64), TM_OK);
        i += 1;
        if i % 1000 == 0 {
            let mut image = vec![0u8; len];
            let mut n = 0usize;
            // SAFETY: `image` has room for `len` bytes; `n` is a valid out pointer.
            let rc = unsafe { tm_snapshot(cpu, image.as_mut_ptr(), len, &mut n) };
            assert_eq!(rc, TM_OK);
            if RingView::parse(&image).unwrap().used_len() > 900_000 {
                break records(cpu);
            }
        }
    };
    let mut lines: Vec<Vec<u8>> = Vec::new();
    // SAFETY: the sink is safe to call with `ctx`, the `Vec` it fills.
    let rc = unsafe {
        tm_dump_uart(
            cpu,
            0x77,
            Some(collect_lines),
            (&raw mut lines).cast::<c_void>(),
        )
    };
    assert_eq!(rc, TM_OK);
    let mut image = Vec::new();
    let mut begin = None;
    for line in &lines {
        match parse_line(line).unwrap().unwrap() {
            Line::Begin(b) => begin = Some(b),
            Line::Data(d) => {
                let mut chunk = [0u8; 96];
                let n = d.decode(&mut chunk).unwrap();
                image.extend_from_slice(&chunk[..n]);
            }
            Line::End(_) => {}
        }
    }
    let begin = begin.unwrap();
    let whole_lines = 2 + len.div_ceil(begin.chunk_len as usize);
    eprintln!(
        "4 MiB ring, {} bytes used: {} UART lines (the whole ring: {whole_lines})",
        image.len(),
        lines.len()
    );
    assert_eq!(begin.total_len as usize, image.len());
    assert_eq!(lines.len() as u64, 2 + begin.chunk_count());
    assert!(
        (900_000..1_000_000).contains(&image.len()),
        "{} bytes",
        image.len()
    );
    // Every record is in the used part, and no block is missing.
    let view = RingView::parse(&image).unwrap();
    assert!(view.is_used_prefix());
    let mut decoded = Vec::new();
    for b in view.blocks() {
        assert!(
            matches!(b.state, BlockState::Valid | BlockState::Empty),
            "{b:?}"
        );
        decoded.extend(b.decode().map(|r| r.unwrap()));
    }
    assert_eq!(decoded, recorded);
    // SAFETY: no other call uses this slot.
    assert_eq!(unsafe { tm_release(cpu) }, TM_OK);
}
