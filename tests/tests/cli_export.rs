//! `tracemark export` from the command line: outputs on kernel-sim dumps, and bad input
//! (a one-line error naming the file, a non-zero exit, no half-written output).
//! The formats' contents are checked against `stats` by an independent reader in
//! `scripts/test-export.sh`.

mod common;

use common::{kernel_sim, tracemark};

#[test]
fn perfetto_and_chrome_json_outputs_are_written_whole() {
    let sim = kernel_sim(20_000, 2, 64 << 10, "overwrite", 1024, 5);
    let dir = sim.dir.path();
    for (format, name) in [("perfetto", "t.perfetto-trace"), ("chrome-json", "t.json")] {
        let out_path = dir.join(name);
        let out = tracemark(&[
            "export",
            sim.dump_str(),
            "--format",
            format,
            "-o",
            out_path.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes = std::fs::read(&out_path).unwrap();
        assert!(bytes.len() > 20_000, "{format}: {} bytes", bytes.len());
        // No temporary file is left behind.
        assert!(!dir.join(format!("{name}.tmp")).exists());
        if format == "chrome-json" {
            let v: serde_json::Value = serde_json::from_slice(&bytes).expect("valid JSON");
            let events = v["traceEvents"].as_array().unwrap();
            // Metadata (process, 2 threads x name and sort index) and one event per
            // record at least (a KEXIT may be an instant too; LOST/IMAGE are instants).
            assert!(events.len() > 5 + 10_000, "{}", events.len());
        } else {
            // A Trace: repeated field 1, length-delimited.
            assert_eq!(bytes[0], 0x0a);
        }
    }
}

#[test]
fn bad_input_is_one_line_naming_the_file_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("random.bin");
    std::fs::write(
        &bad,
        (0..5000u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let out_path = dir.path().join("out.perfetto-trace");
    let out = tracemark(&[
        "export",
        bad.to_str().unwrap(),
        "--format",
        "perfetto",
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("random.bin"), "{err}");
    assert!(!out_path.exists());
    assert!(!dir.path().join("out.perfetto-trace.tmp").exists());
}

#[test]
fn an_elf_that_is_not_one_is_named_in_the_error() {
    let sim = kernel_sim(2_000, 1, 16 << 10, "overwrite", 1024, 1);
    let not_elf = sim.dir.path().join("firmware.elf");
    std::fs::write(&not_elf, b"not an ELF file at all").unwrap();
    let out_path = sim.dir.path().join("t.json");
    let out = tracemark(&[
        "export",
        sim.dump_str(),
        "--elf",
        not_elf.to_str().unwrap(),
        "--format",
        "chrome-json",
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("firmware.elf") && err.contains("ELF"), "{err}");
    assert!(!out_path.exists());
}
