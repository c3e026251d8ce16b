//! The single-owner C calls (`tm_owned_*`) as seL4's hooks make them: the handle taken
//! once, entry times kept by the caller, an entry and its exit written together, an
//! entry with an interrupt inside written first and its word patched at the exit, a
//! switch; then, in drop mode, calls until the ring is full. The ring decoded holds
//! those records at the caller's times, and `TM_DROPPED` matches `tm_lost`.

mod common;

use common::{decode, init_cpu0, RingMem};
use tracemark_c::*;
use tracemark_format::ring::offsets;
use tracemark_format::{Event, ExitDuration, KernelEntry};

extern "C" fn clock() -> u64 {
    // The general path reads the ring's clock only for records the caller did not time
    // (none here but block openings, which take the record's own time).
    0
}

#[test]
fn owned_calls_record_at_the_callers_times() {
    static mut MEM: RingMem<{ 192 + 4 * 256 }> = RingMem([0; 192 + 4 * 256]);
    assert!(tm_owned_ring(0).is_null(), "no ring yet");
    assert!(tm_owned_ring(TM_MAX_CPUS).is_null());
    // SAFETY: MEM is used only by this test, through the library.
    let r = unsafe { init_cpu0(&raw mut MEM, TM_MODE_DROP, TM_ABI_SEL4, clock) };
    assert_eq!(r, TM_OK);
    let t = tm_owned_ring(0);
    assert!(!t.is_null());
    // The inline writer's state: NULL arguments are refused, the state left as it was;
    // a fresh ring has no block open, so its first pair is the library's.
    let mut inl = core::mem::MaybeUninit::<TmOwnedInline>::zeroed();
    // SAFETY: NULL handles are refused before anything is read or written.
    unsafe {
        assert_eq!(
            tm_owned_inline_sync(core::ptr::null(), inl.as_mut_ptr()),
            TM_ERR_BAD_ARG
        );
        assert_eq!(
            tm_owned_inline_sync(t, core::ptr::null_mut()),
            TM_ERR_BAD_ARG
        );
    }
    // SAFETY: all zeroes is a valid `TmOwnedInline` (null pointers, zero integers).
    assert!(unsafe { inl.assume_init_ref() }.ring.is_null(), "untouched");
    // SAFETY: `t` is slot 0's handle; `inl` is valid for a write; nothing records.
    assert_eq!(unsafe { tm_owned_inline_sync(t, inl.as_mut_ptr()) }, TM_OK);
    // SAFETY: tm_owned_inline_sync wrote it.
    let inl = unsafe { inl.assume_init() };
    let ring = (&raw const MEM).cast::<u8>().cast_mut();
    assert_eq!(inl.ring, ring);
    assert!(
        inl.next > inl.last,
        "no short pair before the first block opens"
    );
    let yield_word = KernelEntry::syscall(6, 0, false, 0).0;
    let call_word = KernelEntry::syscall(1, 12, true, 0x7_ffff).0;
    let mut expect = Vec::new();
    // SAFETY: (every tm_owned_* call below) `t` is slot 0's handle, not released; this
    // thread is the ring's only writer, and every entry with something recorded inside
    // it is written first by tm_owned_kernel_entry. `tm_lost`'s pointers are valid;
    // nothing records into slot 0 at `tm_release`.
    unsafe {
        // A held Yield: entry and exit in one reservation.
        assert_eq!(tm_owned_kernel_pair(t, 100, yield_word, 0, 130), TM_OK);
        expect.push((100, Event::KernelEntry(KernelEntry(yield_word))));
        expect.push((130, Event::KernelExit(ExitDuration::Ticks(30))));
        // Taken again, the state places the next pair right after this one.
        let mut after = inl;
        assert_eq!(tm_owned_inline_sync(t, &mut after), TM_OK);
        assert!(after.next <= after.last && after.next > inl.ring);
        let write_pos = ring.add(offsets::WRITE_POS).cast::<u32>().read_volatile();
        assert_eq!((after.last_ts, after.pos), (130, write_pos));
        // A Call with a 5-byte word and a long duration (no short pair), and a switch.
        assert_eq!(
            tm_owned_kernel_pair(t, 5_000, call_word, 0xffff_ff80_1ffc_8400, 9_000_000),
            TM_OK
        );
        expect.push((5_000, Event::KernelEntry(KernelEntry(call_word))));
        expect.push((
            9_000_000,
            Event::ThreadSwitch {
                thread: 0xffff_ff80_1ffc_8400,
            },
        ));
        expect.push((9_000_000, Event::KernelExit(ExitDuration::Ticks(8_995_000))));
        // An interrupt inside the entry: the entry is written first.
        assert_eq!(tm_owned_kernel_entry(t, 9_000_100), TM_OK);
        assert_eq!(tm_owned_interrupt(t, 27, 9_000_110), TM_OK);
        let irq_word = KernelEntry::other(tracemark_format::EntryPath::Interrupt, 0, 27).0;
        assert_eq!(tm_owned_kernel_exit(t, irq_word, 0, 9_000_150), TM_OK);
        expect.push((9_000_100, Event::KernelEntry(KernelEntry(irq_word))));
        expect.push((9_000_110, Event::Interrupt { irq: 27 }));
        expect.push((9_000_150, Event::KernelExit(ExitDuration::Ticks(50))));
        assert_eq!(tm_owned_thread_switch(t, 0x42, 9_000_160), TM_OK);
        expect.push((9_000_160, Event::ThreadSwitch { thread: 0x42 }));
        // Fill the ring: pairs until they are dropped; every one written is expected.
        let mut ts = 9_001_000u64;
        let mut dropped_calls = 0u64;
        for _ in 0..1000 {
            match tm_owned_kernel_pair(t, ts, yield_word, 0, ts + 12) {
                TM_OK => {
                    expect.push((ts, Event::KernelEntry(KernelEntry(yield_word))));
                    expect.push((ts + 12, Event::KernelExit(ExitDuration::Ticks(12))));
                }
                TM_DROPPED => dropped_calls += 1,
                r => panic!("tm_owned_kernel_pair: {r}"),
            }
            ts += 40;
        }
        assert!(dropped_calls > 500, "{dropped_calls} pairs dropped");
        let (mut overwritten, mut dropped) = (0u64, 0u64);
        assert_eq!(tm_lost(0, &mut overwritten, &mut dropped), TM_OK);
        // A pair that does not fit drops its entry and its exit, each counted.
        assert_eq!((overwritten, dropped), (0, 2 * dropped_calls));
        assert_eq!(tm_release(0), TM_OK);
    }
    let mem = &raw const MEM;
    // SAFETY: the library no longer uses the memory.
    let got: Vec<_> = decode(unsafe { &(*mem).0 })
        .into_iter()
        .filter(|r| !matches!(r.event, Event::Lost { .. }))
        .map(|r| (r.ts, r.event))
        .collect();
    assert_eq!(got, expect);
}
