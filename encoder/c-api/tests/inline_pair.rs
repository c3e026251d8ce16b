//! The C inline pair writer (`encoder/include/tracemark_inline.h`, issue 15) against the
//! library's own: the committed header is what `tracemark_c::inline_header` generates
//! from the format crate, and a C program that replays random single-owner calls leaves
//! a ring byte-identical to the library's over kernel pairs whose deltas, durations and
//! words cross every varint length the inline writer takes (and those it leaves to the
//! library), with steps back, switches, entries written early with interrupts inside,
//! block and lap boundaries, in overwrite and drop mode.

mod common;

use std::path::Path;
use std::process::Command;

use common::{build_c, build_staticlib, decode, run, REPO};
use tracemark_format::{Event, ExitDuration};

const HEADER: &str = "encoder/include/tracemark_inline.h";

#[test]
fn committed_inline_header_is_generated() {
    let generated = tracemark_c::inline_header::inline_header();
    let path = Path::new(REPO).join(HEADER);
    if std::env::var_os("TM_UPDATE_INLINE_HEADER").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{HEADER} is stale: run TM_UPDATE_INLINE_HEADER=1 cargo test -p tracemark-c --test \
         inline_pair and commit it"
    );
}

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick(&mut self, values: &[u64]) -> u64 {
        values[self.below(values.len() as u64) as usize]
    }
}

/// A gap between two times: mostly inside the inline writer's bound (below 2^10 ticks),
/// and on both sides of every varint length's edge.
fn gap(rng: &mut Rng) -> u64 {
    match rng.below(12) {
        0..=7 => rng.below(1024),
        8 => rng.pick(&[0, 1, 7, 8, 1022, 1023, 1024, 1025]),
        9 => 1024 + rng.below(1 << 14),
        10 => rng.pick(&[(1 << 21) - 1, 1 << 21, 1 << 28, (1 << 28) + 5, 1 << 40]),
        _ => rng.below(1 << 12),
    }
}

/// An entry word: mostly below 2^14 (one or two varint bytes), and on both sides of
/// each varint length's edge, up to the largest.
fn word(rng: &mut Rng) -> u64 {
    match rng.below(6) {
        0..=2 => rng.below(1 << 14),
        3 => rng.pick(&[0, 127, 128, 16383, 16384, 1 << 21, u32::MAX as u64]),
        4 => rng.below(1 << 7),
        _ => rng.below(1 << 32),
    }
}

/// A replay script and the duration of every kernel exit in it, in order.
fn script(seed: u64, ops: usize) -> (String, Vec<u64>) {
    let mut rng = Rng(seed);
    let mut t: u64 = 1 << 20;
    let mut out = String::new();
    let mut exits = Vec::new();
    for _ in 0..ops {
        // The entry: usually after the last record, sometimes a step back before it.
        let entry = if rng.below(40) == 0 {
            t.saturating_sub(1 + rng.below(3000))
        } else {
            t + gap(&mut rng)
        };
        match rng.below(20) {
            0 => {
                // A switch, then the next call's delta counts from it.
                t = entry;
                out += &format!("S {} {t}\n", 0x1000 + rng.below(4) * 0x100);
                continue;
            }
            1 => {
                let irq = entry + gap(&mut rng);
                let exit = irq + gap(&mut rng);
                let next = if rng.below(2) == 0 { 0 } else { 0x2000 };
                out += &format!("E {entry}\nI {} {irq}\n", rng.below(64));
                out += &format!("X {} {next} {exit}\n", word(&mut rng));
                exits.push(exit - entry);
                t = exit;
            }
            _ => {
                let exit = entry + gap(&mut rng);
                let next = if rng.below(16) == 0 { 0x3000 } else { 0 };
                out += &format!("P {entry} {} {next} {exit}\n", word(&mut rng));
                exits.push(exit - entry);
                t = exit;
            }
        }
    }
    (out, exits)
}

#[test]
fn c_inline_pair_writes_the_library_bytes() {
    let work = tempfile::tempdir().unwrap();
    let lib = build_staticlib("sel4-entry-target");
    let src = Path::new(REPO).join("encoder/c-api/tests/c/inline_pair.c");
    let exe = build_c(
        work.path(),
        "inline_pair",
        std::slice::from_ref(&src),
        &["-O2"],
        &lib,
    );
    // `last_ts` as two 32-bit words, as on a target without 64-bit atomics: the same
    // bytes on this little-endian host.
    let split = build_c(
        work.path(),
        "inline_pair_split",
        &[src],
        &["-O2", "-DTM_INLINE_LAST_TS_64=0"],
        &lib,
    );
    for (exe, mode, seed, ops) in [
        (&exe, "overwrite", 0x5eed_0001, 20_000),
        (&exe, "overwrite", 0x5eed_0002, 3_000),
        (&exe, "drop", 0x5eed_0003, 300),
        (&split, "overwrite", 0x5eed_0004, 5_000),
    ] {
        let (text, exits) = script(seed, ops);
        let ops_path = work.path().join(format!("{mode}-{seed}.ops"));
        std::fs::write(&ops_path, text).unwrap();
        let mut images = Vec::new();
        let mut counts = Vec::new();
        for writer in ["inline", "library", "wrapper"] {
            let out = work.path().join(format!("{mode}-{seed}-{writer}.bin"));
            let stdout = run(Command::new(exe)
                .arg(&ops_path)
                .arg(&out)
                .arg(writer)
                .arg(mode))
            .stdout;
            let stdout = String::from_utf8(stdout).unwrap();
            let n: Vec<u64> = stdout
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            counts.push(n);
            images.push(std::fs::read(&out).unwrap());
        }
        let [pairs, inlined, dropped] = counts[0][..] else {
            panic!("{counts:?}")
        };
        for (writer, n) in [("library", &counts[1]), ("wrapper", &counts[2])] {
            assert_eq!(
                *n,
                vec![pairs, 0, dropped],
                "{mode}, {writer}: the same pairs and drops"
            );
        }
        for (writer, image) in [("inline", &images[0]), ("wrapper", &images[2])] {
            let first_diff = image.iter().zip(&images[1]).position(|(a, b)| a != b);
            assert_eq!(
                first_diff, None,
                "{mode} seed {seed:#x}: the {writer} writer's ring differs from the library's"
            );
        }
        // Both writers were exercised: most pairs are short, and some are not (long
        // deltas and words, switches, a full block, a stale cursor, a timestamp marker).
        if mode == "overwrite" {
            assert!(
                inlined * 3 > pairs && (pairs - inlined) * 5 > pairs,
                "{mode}: {inlined} of {pairs} inline"
            );
        } else {
            assert!(inlined > 20 && dropped > 0, "{mode}: {counts:?}");
        }
        // What the ring holds decodes to kernel exits with the script's durations: a
        // contiguous run of them (the newest in overwrite mode, the oldest in drop mode).
        let durations: Vec<u64> = decode(&images[0])
            .into_iter()
            .filter_map(|r| match r.event {
                Event::KernelExit(ExitDuration::Ticks(d)) => Some(d),
                Event::KernelExit(other) => panic!("exit without duration: {other:?}"),
                _ => None,
            })
            .collect();
        assert!(durations.len() > 20, "{mode}: {} exits", durations.len());
        let found = exits
            .windows(durations.len())
            .position(|w| w == &durations[..]);
        let at = found.unwrap_or_else(|| panic!("{mode}: decoded durations not in the script"));
        if mode == "overwrite" {
            assert_eq!(at + durations.len(), exits.len(), "{mode}: the newest");
        } else {
            assert_eq!(at, 0, "{mode}: the oldest");
        }
    }
}
