//! `tm_frame_uart` (seL4's user-level snapshots, issue 16 point 3): a ring image taken
//! elsewhere goes out framed as `tm_dump_uart` frames a ring, but only its used part
//! (FORMAT.md 7.3) while the ring is not yet round its blocks, and whole once it has;
//! the lines carry exactly the image's bytes, and the shipped part decodes to every
//! record of the image.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use common::{decode, init_cpu0, RingMem};
use tracemark_c::*;
use tracemark_format::ring::{RingView, RING_HEADER_LEN};
use tracemark_format::uart::{parse_line, Line};

static NOW: AtomicU64 = AtomicU64::new(0);

extern "C" fn clock() -> u64 {
    NOW.fetch_add(5, Ordering::Relaxed) + 5
}

const BLOCKS: usize = 16;
const LEN: usize = RING_HEADER_LEN + BLOCKS * 256;

extern "C" fn collect(ctx: *mut core::ffi::c_void, data: *const u8, len: usize) -> i32 {
    // SAFETY: `ctx` is the `Vec<u8>` the test passes; `data` is valid for `len` bytes
    // during the call (tm_frame_uart's contract).
    unsafe {
        let out = &mut *ctx.cast::<Vec<u8>>();
        out.extend_from_slice(std::slice::from_raw_parts(data, len));
    }
    0
}

/// Frames `image` with tm_frame_uart and reassembles the payload from the lines.
fn frame(image: &[u8]) -> Vec<u8> {
    let mut text = Vec::new();
    // SAFETY: `image` is valid for its length; `collect` gets `text` as its context.
    let r = unsafe {
        tm_frame_uart(
            image.as_ptr(),
            image.len(),
            7,
            Some(collect),
            (&raw mut text).cast(),
        )
    };
    assert_eq!(r, TM_OK);
    let mut payload = Vec::new();
    let mut total = None;
    for line in text.split_inclusive(|&b| b == b'\n') {
        match parse_line(line).expect("a valid framing line") {
            Some(Line::Begin(b)) => {
                assert_eq!(b.dump_id, 7);
                total = Some(b.total_len as usize);
            }
            Some(Line::Data(d)) => {
                let mut chunk = [0u8; 256];
                let n = d.decode(&mut chunk).expect("chunk");
                payload.extend_from_slice(&chunk[..n]);
            }
            Some(Line::End(_)) => {}
            None => panic!("a line without marker: {line:?}"),
        }
    }
    assert_eq!(total, Some(payload.len()));
    payload
}

fn snapshot() -> Vec<u8> {
    let mut image = vec![0u8; LEN];
    let mut len = 0usize;
    // SAFETY: `image` is valid for LEN bytes, `len` for a write.
    let r = unsafe { tm_snapshot(0, image.as_mut_ptr(), image.len(), &mut len) };
    assert_eq!(r, TM_OK);
    image.truncate(len);
    image
}

#[test]
fn frames_the_used_part_of_a_first_lap_ring_and_the_whole_of_a_wrapped_one() {
    static mut MEM: RingMem<LEN> = RingMem([0; LEN]);
    // SAFETY: MEM is valid for its size and used only by the library until tm_release.
    let r = unsafe { init_cpu0(&raw mut MEM, TM_MODE_OVERWRITE, TM_ABI_RAW, clock) };
    assert_eq!(r, TM_OK);
    // About two and a half blocks of switches: slots 0 to 2 used, 13 never opened.
    let mut written = 0;
    while RingView::parse(&snapshot()).unwrap().commit.seq < 2 {
        assert_eq!(tm_thread_switch(0, 0x1000 + written), TM_OK);
        written += 1;
    }
    let image = snapshot();
    let shipped = frame(&image);
    let used = RingView::parse(&image).unwrap().used_len();
    assert_eq!(shipped.len(), used, "up to the write position");
    assert!(
        used > RING_HEADER_LEN + 2 * 256 && used <= RING_HEADER_LEN + 3 * 256,
        "{used}: inside slot 2"
    );
    assert_eq!(shipped[..], image[..shipped.len()]);
    let all = decode(&image);
    assert_eq!(all.len() as u64, written);
    assert_eq!(decode(&shipped), all, "the used part holds every record");

    // Wrapped: the whole ring goes out.
    for i in 0..2000 {
        assert_eq!(tm_thread_switch(0, 0x9000 + i), TM_OK);
    }
    let image = snapshot();
    let shipped = frame(&image);
    assert_eq!(shipped, image, "a wrapped ring is shipped whole");

    // Not a ring: refused, nothing sent.
    let junk = [0x55u8; 300];
    let mut text: Vec<u8> = Vec::new();
    // SAFETY: as above.
    let r = unsafe {
        tm_frame_uart(
            junk.as_ptr(),
            junk.len(),
            1,
            Some(collect),
            (&raw mut text).cast(),
        )
    };
    assert_eq!(r, TM_ERR_BAD_ARG);
    assert!(text.is_empty());
    // SAFETY: nothing records into MEM any more.
    assert_eq!(unsafe { tm_release(0) }, TM_OK);
}
