//! Opening inputs: dumps as they are, UART logs reassembled ([`DumpBytes`]).

use tracemark::{Config, KernelEntry, Mode};
use tracemark_decoder::dump::{Category, Dump};
use tracemark_decoder::input::{DumpBytes, Input};
use tracemark_tests::{ring_image, uart_log};

fn ring(cpu: u32) -> Vec<u8> {
    let config = Config {
        mode: Mode::Drop,
        block_size: 256,
        clock_hz: 1_000_000,
        cpu_id: cpu,
        ..Config::new()
    };
    ring_image(&config, 8, 1000, |t, clock| {
        for i in 0..40 {
            t.kernel_entry(KernelEntry::syscall(3, 10, true, i));
            clock.advance(50);
            t.kernel_exit();
            clock.advance(50);
        }
    })
}

#[test]
fn a_dump_is_taken_as_it_is() {
    let bytes = DumpBytes::new(Input::Owned(ring(0))).unwrap();
    assert!(bytes.valid.is_none());
    assert!(bytes.warnings.is_empty());
    assert_eq!(bytes.dump().unwrap().rings.len(), 1);
}

/// A log with two dumps, the second with a corrupt chunk: both laid end to end, the
/// corrupt chunk's bytes outside the verified ranges, one warning at its log offset
/// that summarises the dump's chunks.
#[test]
fn a_uart_log_is_reassembled_with_its_problems() {
    let (a, b) = (ring(0), ring(1));
    let mut log = b"boot\n".to_vec();
    log.extend(uart_log(0x2a, &a));
    let mut damaged = uart_log(0x2b, &b);
    let chunk = damaged
        .windows(18)
        .position(|w| w == b"@TM:D,0000002b,10,")
        .expect("chunk 10 of dump 0x2b");
    damaged[chunk + 30] ^= 1;
    let damaged_at = log.len();
    log.extend(damaged);

    let bytes = DumpBytes::new(Input::Owned(log)).unwrap();
    assert_eq!(bytes.input.bytes().len(), a.len() + b.len());
    assert_eq!(&bytes.input.bytes()[..a.len()], &a[..]);
    let valid = bytes.valid.as_deref().unwrap();
    let covered: usize = valid.iter().map(|r| r.len()).sum();
    assert!(covered < a.len() + b.len(), "{valid:?}");
    assert!(valid[0].start == 0 && valid[0].end >= a.len(), "{valid:?}");
    // The dump's summary at its begin line, then the chunk's own problem at its line.
    let [summary, corrupt] = &bytes.warnings[..] else {
        panic!("{:?}", bytes.warnings)
    };
    for w in [summary, corrupt] {
        assert!(w.damage && w.category == Category::Uart, "{w:?}");
    }
    assert_eq!(
        summary.offset,
        damaged_at + "[console] ".len(),
        "the begin line"
    );
    assert!(
        summary.message.starts_with("dump 0x0000002b of ")
            && summary.message.ends_with("1 corrupt (10)"),
        "{}",
        summary.message
    );
    let line = damaged_at + chunk - "[console] ".len();
    assert!(
        (line..=line + "[console] ".len()).contains(&corrupt.offset),
        "{corrupt:?}"
    );
    assert!(
        corrupt.message.contains("chunk 10 is corrupt"),
        "{}",
        corrupt.message
    );
    assert_eq!(bytes.dump().unwrap().rings.len(), 2);
}

#[test]
fn a_log_without_a_dump_is_an_error_naming_its_first_problem() {
    let log = b"boot\n@TM:D,0000002a,0,AAAA,00000000\nmore text\n".to_vec();
    let e = DumpBytes::new(Input::Owned(log))
        .err()
        .expect("nothing to reassemble");
    let text = e.to_string();
    assert!(
        text.starts_with("at byte ")
            && text.ends_with("(this is a UART log, and no dump could be reassembled from it)"),
        "{text}"
    );
}

/// A ring dumped up to its used length (`Ring::dump`, FORMAT.md 7.3) alone, and two such
/// dumps back to back (two CPUs' dumps concatenated): each ring reads as its whole image
/// does, with no block missing and no warning. Before, the first ring was taken to run
/// to its full length, into the second, and a lone prefix was "truncated".
#[test]
fn dumps_of_the_used_part_read_as_whole_rings() {
    let images = |cpu: u32, calls: u32| {
        let config = Config {
            mode: Mode::Overwrite,
            block_size: 256,
            clock_hz: 1_000_000,
            cpu_id: cpu,
            ..Config::new()
        };
        let mut prefix = Vec::new();
        let whole = ring_image(&config, 16, 1000, |t, clock| {
            for i in 0..calls {
                t.kernel_entry(KernelEntry::syscall(3, 10, true, i));
                clock.advance(50);
                t.kernel_exit();
                clock.advance(50);
            }
            t.ring()
                .dump(|c| {
                    prefix.extend_from_slice(c);
                    Ok::<(), ()>(())
                })
                .unwrap();
        });
        assert!(prefix.len() < whole.len(), "{} bytes", prefix.len());
        // The owner word is cleared when the tracer goes, after the dump.
        let owner = tracemark::format::ring::offsets::OWNER;
        prefix[owner..owner + 4].fill(0);
        assert_eq!(prefix[..], whole[..prefix.len()]);
        (prefix, whole)
    };
    let (p0, w0) = images(0, 90);
    let (p1, w1) = images(1, 30);
    let blocks = |bytes: &[u8]| {
        let dump = Dump::parse(bytes).unwrap();
        assert!(dump.warnings.is_empty(), "{:?}", dump.warnings);
        dump.rings
            .iter()
            .map(|r| {
                assert_eq!((r.missing_blocks, r.torn_blocks), (0, 0));
                (
                    r.cpu,
                    r.blocks
                        .iter()
                        .map(|b| b.records.to_vec())
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(blocks(&p0), blocks(&w0));
    let both = [p0.clone(), p1.clone()].concat();
    let want = blocks(&[w0, w1].concat());
    assert_eq!(want.len(), 2);
    assert_eq!(blocks(&both), want);
    // Through the UART framing as well.
    let log = uart_log(7, &both);
    let bytes = DumpBytes::new(Input::Owned(log)).unwrap();
    assert_eq!(blocks(bytes.input.bytes()), want);
}
