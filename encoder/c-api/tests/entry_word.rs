//! The header works in a `-ffreestanding -nostdinc` kernel build (issue 20, point 21:
//! it included `<string.h>`, so seL4 re-declared the API), and its entry-word helpers
//! build exactly the word the format crate defines, refusing what does not fit
//! (point 19: the header said `tm_kernel_entry_info` takes seL4's `kernel_entry_t`
//! layout, which records wrong fields with `TM_OK`).

mod common;

use std::path::Path;
use std::process::Command;

use common::{build_c, build_staticlib, decode, run, REPO};
use tracemark_c::{TM_ERR_RANGE, TM_OK};
use tracemark_format::{Event, ExitDuration, KernelEntry};

#[test]
fn a_freestanding_unit_builds_entry_words_as_the_format_crate() {
    let work = tempfile::tempdir().unwrap();
    let lib = build_staticlib("entry-word-target");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let obj = work.path().join("freestanding.o");
    run(Command::new(&cc)
        .args(["-c", "-O2", "-Wall", "-Wextra", "-Werror", "-std=c11"])
        .args(["-ffreestanding", "-nostdinc", "-fno-builtin"])
        .arg("-I")
        .arg(Path::new(REPO).join("encoder/include"))
        .arg(Path::new(REPO).join("encoder/c-api/tests/c/freestanding.c"))
        .arg("-o")
        .arg(&obj));
    let driver = Path::new(REPO).join("encoder/c-api/tests/c/entry_word.c");
    let exe = build_c(work.path(), "entry_word", &[driver, obj], &[], &lib);
    let ring = work.path().join("ring.bin");
    let out = run(Command::new(&exe).arg(&ring));
    let stdout = String::from_utf8(out.stdout).unwrap();

    let (mut syscalls, mut others, mut refused) = (0, 0, 0);
    let mut bits = Vec::new();
    for line in stdout.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let n = |i: usize| -> u64 { f[i].parse().unwrap() };
        match f[0] {
            "S" => {
                let want =
                    KernelEntry::try_syscall(n(1) as u32, n(2) as u32, n(3) != 0, n(4) as u32);
                let rc = f[5].parse::<i32>().unwrap();
                match want {
                    Ok(e) => {
                        assert_eq!((rc, n(6) as u32), (TM_OK, e.0), "{line}");
                        syscalls += 1;
                    }
                    Err(_) => {
                        assert_eq!(
                            (rc, n(6)),
                            (TM_ERR_RANGE, 0),
                            "{line}: refused, nothing stored"
                        );
                        refused += 1;
                    }
                }
            }
            "O" => {
                let want = KernelEntry::try_other(n(1) as u32, n(2) as u32, n(3) as u32);
                let rc = f[4].parse::<i32>().unwrap();
                match want {
                    Ok(e) => {
                        assert_eq!((rc, n(5) as u32), (TM_OK, e.0), "{line}");
                        others += 1;
                    }
                    Err(_) => {
                        assert_eq!((rc, n(5)), (TM_ERR_RANGE, 0), "{line}");
                        refused += 1;
                    }
                }
            }
            "B" => bits.push(n(1)),
            "R" => assert_eq!(f[1], "0", "the deferred entry got its word"),
            _ => panic!("unexpected line {line}"),
        }
    }
    assert!(
        syscalls > 50 && others > 30 && refused > 50,
        "{syscalls} {others} {refused}"
    );
    // Little-endian, cut at the size given (and at 8 bytes).
    assert_eq!(bits, [0x44_3322_1106, 0x7766_5544_3322_1106]);

    let word = KernelEntry::syscall(1, 12, false, 3);
    let events: Vec<Event> = decode(&std::fs::read(&ring).unwrap())
        .into_iter()
        .map(|r| r.event)
        .collect();
    assert_eq!(
        events,
        [
            Event::KernelEntry(word),
            Event::KernelExit(ExitDuration::Ticks(5))
        ]
    );
}
