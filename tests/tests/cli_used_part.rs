//! Ring images of the used part only (FORMAT.md 7.3; issue 16 point 3), through the CLI:
//! two rings not yet round their blocks, each cut at its write position as
//! `tm_frame_uart` ships a seL4 snapshot, laid end to end, decode completely and without
//! a truncation warning; an image cut inside its used part is still truncation (damage).

use std::path::Path;
use std::process::Output;

use crate::common::{json_lines, kernel_sim, tracemark};
use tracemark_format::ring::{RingView, RING_HEADER_LEN};

fn decode(path: &Path) -> Output {
    tracemark(&["decode", path.to_str().unwrap(), "--format", "json"])
}

fn records(out: &Output) -> Vec<serde_json::Value> {
    json_lines(std::str::from_utf8(&out.stdout).expect("utf-8 stdout"))
}

#[test]
fn used_part_images_decode_whole_and_cuts_inside_them_are_damage() {
    // Two CPUs, 64 blocks of 256 bytes each, a few hundred events: first lap.
    let ring_len = RING_HEADER_LEN + 64 * 256;
    let sim = kernel_sim(300, 2, ring_len, "overwrite", 256, 41);
    let bytes = std::fs::read(&sim.dump).unwrap();
    assert_eq!(bytes.len(), 2 * ring_len);
    let whole = decode(&sim.dump);
    assert!(whole.status.success());
    let want = records(&whole);
    assert!(want.len() > 100, "{} records", want.len());

    let rings = [&bytes[..ring_len], &bytes[ring_len..]];
    let used: Vec<usize> = rings
        .iter()
        .map(|r| RingView::parse(r).unwrap().used_len())
        .collect();
    for u in &used {
        assert!(
            *u < ring_len / 2,
            "used part {u} of {ring_len}: not a first-lap ring"
        );
    }
    let dir = sim.dir.path();

    // Both rings, each cut to its used part, one after the other.
    let mut cut = rings[0][..used[0]].to_vec();
    cut.extend_from_slice(&rings[1][..used[1]]);
    let path = dir.join("used.bin");
    std::fs::write(&path, &cut).unwrap();
    let out = decode(&path);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "a used-part image is complete: {err}");
    assert!(!err.contains("truncated"), "{err}");
    assert_eq!(
        records(&out),
        want,
        "every record, numbered as in the whole dump"
    );
    let stats: serde_json::Value = serde_json::from_str(
        &String::from_utf8(tracemark(&["stats", "--json", path.to_str().unwrap()]).stdout).unwrap(),
    )
    .unwrap();
    assert_eq!(stats["torn_blocks"], 0, "{stats}");
    assert_eq!(stats["total_records"], want.len(), "{stats}");

    // One byte short of the used part: the last used block is missing, which is damage.
    let short = &rings[0][..used[0] - 1];
    let path = dir.join("short.bin");
    std::fs::write(&path, short).unwrap();
    let out = decode(&path);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a cut inside the used part is truncation"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
}
