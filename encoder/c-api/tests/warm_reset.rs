//! A ring that survives a reset is recovered (issue 7, point 12): a first "boot" records
//! into ring memory that outlives it (a file mapped shared, as a `.noinit` section
//! outlives a warm reset) and crashes with the ring claimed; before, the next boot got
//! `TM_ERR_IN_USE` forever. Now `tm_init` says `TM_ERR_PREVIOUS`, `tm_init_recover`
//! hands the earlier boot's ring to a sink and starts a new session in the same memory,
//! and both decode: the earlier boot's records from the recovered image, the new boot's
//! from the new dump.

mod common;

use std::path::Path;
use std::process::Command;

use common::{build_c, build_staticlib, decode, run, REPO};
use tracemark_format::ring::{BlockState, RingView};
use tracemark_format::{Event, Record};

/// The IRQ numbers and user ids of boot `boot` in `records`, and whether any record of
/// another boot is there.
fn of_boot(records: &[Record], boot: u32) -> (usize, bool) {
    let mut mine = 0;
    let mut other = false;
    for r in records {
        match r.event {
            Event::Interrupt { irq } => {
                if irq / 100 == boot {
                    mine += 1;
                } else {
                    other = true;
                }
            }
            Event::User { id, .. } => {
                if id == boot {
                    mine += 1;
                } else {
                    other = true;
                }
            }
            _ => {}
        }
    }
    (mine, other)
}

#[test]
fn an_earlier_boots_ring_is_recovered_and_a_new_session_starts() {
    let work = tempfile::tempdir().unwrap();
    let lib = build_staticlib("warm-reset-target");
    let src = Path::new(REPO).join("encoder/c-api/tests/c/warm_reset.c");
    let exe = build_c(work.path(), "warm_reset", &[src], &[], &lib);
    let memfile = work.path().join("ram.bin");

    // Boot 1 crashes with its ring claimed.
    let out = Command::new(&exe)
        .arg(&memfile)
        .args(["crash", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "boot 1 should have crashed");

    // Boot 2 recovers boot 1's ring, then records its own.
    let (prev, cur) = (work.path().join("prev.bin"), work.path().join("cur.bin"));
    run(Command::new(&exe)
        .arg(&memfile)
        .args(["boot", "2"])
        .arg(&prev)
        .arg(&cur));
    let prev_image = std::fs::read(&prev).unwrap();
    let cur_image = std::fs::read(&cur).unwrap();
    let prev_view = RingView::parse(&prev_image).unwrap();
    assert_eq!(prev_view.header.producer_id.get(), 1, "boot 1's ring");
    let (n1, other1) = of_boot(&decode(&prev_image), 1);
    // The ring (8 blocks of 1 KiB) wrapped: boot 1's newest records survive, the user
    // event it wrote last among them.
    assert!(n1 > 100, "boot 1: {n1} records recovered");
    assert!(!other1, "only boot 1's records in the recovered ring");
    assert!(decode(&prev_image)
        .iter()
        .any(|r| matches!(r.event, Event::User { id: 1, .. })));
    assert_eq!(
        RingView::parse(&cur_image)
            .unwrap()
            .header
            .producer_id
            .get(),
        2
    );
    let (n2, other2) = of_boot(&decode(&cur_image), 2);
    assert!(
        n2 > 100 && !other2,
        "boot 2: {n2} records, other boots: {other2}"
    );

    // Boot 3, after boot 2 released its ring cleanly: tm_init_recover still hands it
    // over (its records are as worth reading as a crashed boot's), then replaces it.
    let (prev3, cur3) = (work.path().join("prev3.bin"), work.path().join("cur3.bin"));
    run(Command::new(&exe)
        .arg(&memfile)
        .args(["boot", "3"])
        .arg(&prev3)
        .arg(&cur3)
        .arg("released"));
    let prev3_image = std::fs::read(&prev3).unwrap();
    assert_eq!(
        RingView::parse(&prev3_image)
            .unwrap()
            .header
            .producer_id
            .get(),
        2
    );
    let (n2_again, other) = of_boot(&decode(&prev3_image), 2);
    assert_eq!(
        (n2_again, other),
        (n2, false),
        "boot 2's ring, as boot 2 dumped it"
    );
    let (n3, other3) = of_boot(&decode(&std::fs::read(&cur3).unwrap()), 3);
    assert!(n3 > 100 && !other3);
}

/// A warm reset into a smaller ring at the same address (issue 20, point 20): before,
/// `tm_init` and `tm_init_recover` both returned `TM_ERR_PREVIOUS` for ever, since the
/// earlier ring did not fit the memory given. Now the recovery hands over the part that
/// fits (a cut image: the blocks in it decode; the others are reported missing, or, when
/// the earlier ring had not written past the cut, empty: FORMAT.md 7.3) and the new
/// session starts.
#[test]
fn a_smaller_ring_at_the_same_address_recovers_the_part_that_fits() {
    let work = tempfile::tempdir().unwrap();
    let lib = build_staticlib("warm-reset-target");
    let src = Path::new(REPO).join("encoder/c-api/tests/c/warm_reset.c");
    let exe = build_c(work.path(), "warm_reset", &[src], &[], &lib);
    let memfile = work.path().join("ram.bin");
    let out = Command::new(&exe)
        .arg(&memfile)
        .args(["crash", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "boot 1 should have crashed");
    let (prev, cur) = (work.path().join("prev.bin"), work.path().join("cur.bin"));
    run(Command::new(&exe)
        .arg(&memfile)
        .args(["boot", "2"])
        .arg(&prev)
        .arg(&cur)
        .arg("smaller"));
    let prev_image = std::fs::read(&prev).unwrap();
    assert_eq!(
        prev_image.len(),
        192 + 4 * 1024,
        "cut to the new, smaller memory"
    );
    let view = RingView::parse(&prev_image).unwrap();
    assert_eq!(view.header.producer_id.get(), 1, "boot 1's ring");
    let mut kept = 0;
    let (mut missing, mut empty) = (0, 0);
    for block in view.blocks() {
        match block.state {
            BlockState::Valid => {
                for r in block.decode() {
                    let r = r.expect("record");
                    if let Event::Interrupt { irq } = r.event {
                        assert_eq!(irq / 100, 1, "only boot 1's records");
                        kept += 1;
                    }
                }
            }
            BlockState::Missing => missing += 1,
            BlockState::Empty => empty += 1,
            s => panic!("block {} is {s:?}", block.seq),
        }
    }
    // Boot 1 wrote less than the smaller memory holds, so the image holds all it wrote
    // (a used prefix, FORMAT.md 7.3): the 4 blocks beyond were never written.
    assert!(view.is_used_prefix());
    assert_eq!(missing, 0);
    assert!(
        empty >= 4,
        "the 4 blocks beyond the smaller memory: {empty} empty"
    );
    assert!(kept > 50, "boot 1's records in the blocks that fit: {kept}");
    let cur_image = std::fs::read(&cur).unwrap();
    let cur_view = RingView::parse(&cur_image).unwrap();
    assert_eq!(cur_view.header.producer_id.get(), 2);
    assert_eq!(cur_view.ring_len(), 192 + 4 * 1024);
    let (n2, other2) = of_boot(&decode(&cur_image), 2);
    assert!(
        n2 > 100 && !other2,
        "boot 2: {n2} records, other boots: {other2}"
    );
}
