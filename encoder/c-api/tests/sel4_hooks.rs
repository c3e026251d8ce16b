//! The C ABI functions the seL4 kernel hooks use (`tm_kernel_entry_deferred`,
//! `tm_kernel_entry_info`, `tm_thread_switch`), called as the kernel calls them, then the
//! ring decoded: the entry keeps its time and gets its word, the exit is measured from
//! it, and the errors are the documented ones.

use std::sync::atomic::{AtomicU64, Ordering};

mod common;

use common::{decode, init_cpu0, RingMem};
use tracemark_c::*;
use tracemark_format::{Event, ExitDuration, KernelEntry};

static NOW: AtomicU64 = AtomicU64::new(0);

extern "C" fn clock() -> u64 {
    NOW.load(Ordering::Relaxed)
}

fn advance(t: u64) -> u64 {
    NOW.fetch_add(t, Ordering::Relaxed) + t
}

#[test]
fn deferred_entry_info_and_thread_switch_through_the_c_abi() {
    static mut MEM: RingMem<{ 192 + 8 * 256 }> = RingMem([0; 192 + 8 * 256]);
    // Before tm_init: the documented error, nothing recorded.
    assert_eq!(tm_kernel_entry_deferred(0), TM_ERR_NOT_INIT);
    assert_eq!(tm_kernel_entry_info(0, 0), TM_ERR_NOT_INIT);
    assert_eq!(tm_thread_switch(0, 1), TM_ERR_NOT_INIT);
    assert_eq!(tm_thread_switch(TM_MAX_CPUS, 1), TM_ERR_BAD_CPU);
    // SAFETY: MEM is used only by this test, through the library, until tm_release.
    let r = unsafe { init_cpu0(&raw mut MEM, TM_MODE_DROP, TM_ABI_SEL4, clock) };
    assert_eq!(r, TM_OK);

    let start = advance(100);
    assert_eq!(tm_kernel_entry_deferred(0), TM_OK);
    advance(5);
    assert_eq!(tm_function_entry(0, 0x40), TM_OK);
    let word = KernelEntry::syscall(1, 12, false, 3).0;
    assert_eq!(tm_kernel_entry_info(0, word), TM_OK);
    // Nothing pending any more: said so, not TM_DROPPED (nothing was lost; issue 20,
    // point 22).
    assert_eq!(tm_kernel_entry_info(0, word), TM_ERR_NO_PENDING);
    let (mut overwritten, mut dropped) = (1u64, 1u64);
    // SAFETY: both pointers are valid for writes.
    assert_eq!(unsafe { tm_lost(0, &mut overwritten, &mut dropped) }, TM_OK);
    assert_eq!((overwritten, dropped), (0, 0));
    let sw = advance(2);
    assert_eq!(tm_thread_switch(0, 0xffff_ff80_1ffc_8400), TM_OK);
    let end = advance(9);
    assert_eq!(tm_kernel_exit(0), TM_OK);
    // SAFETY: nothing records into slot 0 any more.
    assert_eq!(unsafe { tm_release(0) }, TM_OK);

    let mem = &raw const MEM;
    // SAFETY: the library no longer uses the memory.
    let got: Vec<_> = decode(unsafe { &(*mem).0 })
        .into_iter()
        .map(|r| (r.ts, r.event))
        .collect();
    assert_eq!(
        got,
        vec![
            (start, Event::KernelEntry(KernelEntry(word))),
            (start + 5, Event::FunctionEntry { func: 0x40 }),
            (
                sw,
                Event::ThreadSwitch {
                    thread: 0xffff_ff80_1ffc_8400
                }
            ),
            (end, Event::KernelExit(ExitDuration::Ticks(end - start))),
        ]
    );
}
