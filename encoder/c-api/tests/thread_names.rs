//! `tm_thread_name` and `tm_thread_switch_named` (format version 3) through the C ABI:
//! the THREAD records decode with their id, priority and name (cut to 32 bytes), a
//! thread is named once per block however often it is switched to, and bad arguments get
//! the documented errors with nothing recorded.

use std::sync::atomic::{AtomicU64, Ordering};

mod common;

use common::{decode, init_cpu0, RingMem};
use tracemark_c::*;
use tracemark_format::{Event, UserPayload};

static NOW: AtomicU64 = AtomicU64::new(0);

extern "C" fn clock() -> u64 {
    NOW.fetch_add(3, Ordering::Relaxed) + 3
}

#[test]
fn thread_names_through_the_c_abi() {
    static mut MEM: RingMem<{ 192 + 8 * 256 }> = RingMem([0; 192 + 8 * 256]);
    let name = b"consumer";
    // SAFETY: `name` is valid for its length.
    let r = unsafe { tm_thread_name(0, 1, name.as_ptr().cast(), 8, 2) };
    assert_eq!(r, TM_ERR_NOT_INIT);
    // SAFETY: MEM is valid for its size and used only by the library until tm_release.
    let r = unsafe { init_cpu0(&raw mut MEM, TM_MODE_DROP, TM_ABI_RAW, clock) };
    assert_eq!(r, TM_OK);
    let long = [b'L'; 40];
    // SAFETY: (each call) the names are valid for the lengths given; `stamp` is a
    // local `u32` no one else touches; MEM is not used after tm_release.
    unsafe {
        assert_eq!(tm_thread_name(0, 0x100, name.as_ptr().cast(), 8, 2), TM_OK);
        assert_eq!(tm_thread_name(0, 0x200, long.as_ptr().cast(), 40, 7), TM_OK);
        assert_eq!(tm_thread_name(0, 0x300, core::ptr::null(), 0, 0), TM_OK);
        assert_eq!(
            tm_thread_name(0, 0x400, core::ptr::null(), 3, 0),
            TM_ERR_BAD_ARG
        );
        let mut stamp = 0u32;
        for _ in 0..3 {
            assert_eq!(
                tm_thread_switch_named(0, 0x100, name.as_ptr().cast(), 8, 2, &mut stamp),
                TM_OK
            );
        }
        assert_ne!(stamp, 0);
        assert_eq!(
            tm_thread_switch_named(0, 0x100, name.as_ptr().cast(), 8, 2, core::ptr::null_mut()),
            TM_ERR_BAD_ARG
        );
        assert_eq!(tm_release(0), TM_OK);
    }
    let mem = &raw const MEM;
    // SAFETY: the library no longer uses the memory.
    let got: Vec<Event> = decode(unsafe { &(*mem).0 })
        .into_iter()
        .map(|r| r.event)
        .collect();
    let named = |thread, prio, name: &[u8]| Event::ThreadName {
        thread,
        prio,
        name: UserPayload::new(name).unwrap(),
    };
    assert_eq!(
        got,
        vec![
            named(0x100, 2, b"consumer"),
            named(0x200, 7, &[b'L'; 32]),
            named(0x300, 0, b""),
            // Three switches, named once in the block, after the first.
            Event::ThreadSwitch { thread: 0x100 },
            named(0x100, 2, b"consumer"),
            Event::ThreadSwitch { thread: 0x100 },
            Event::ThreadSwitch { thread: 0x100 },
        ]
    );
}
