//! Tests of UART-log extraction: framing, damage, limits and properties.

use super::*;
use proptest::prelude::*;
use std::ops::Range;

use tracemark_format::uart::{
    self, encode_data_line, write_framed, Begin, ChunkError, LineError, DEFAULT_CHUNK_LEN,
    MAX_CHUNK_LEN, MAX_LINE_LEN,
};

/// Deterministic pseudo-random bytes (xorshift64*).
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

/// The framing lines of a dump, each with its `\n`.
fn frame_lines(dump_id: u32, data: &[u8], chunk_len: usize) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    write_framed(dump_id, data, chunk_len, &mut |line: &[u8]| {
        lines.push(line.to_vec());
        Ok::<(), std::convert::Infallible>(())
    })
    .unwrap();
    lines
}

const NOISE: &[&str] = &[
    "[    0.000000] Linux version 6.6.0 (gcc 13) #1 SMP\n",
    "[    1.234567] random: crng init done\n",
    "\n",
    "login: root\n",
    "mail me @ TM: or at TM:D,00000001,0,AAAA,00000000\n",
    "@TM\n",
    "\x1b[32mOK\x1b[0m  Started tracemark dump\n",
    "binary junk \u{0}\u{7f}\u{ff}\n",
];

/// Joins lines, with a noise line before each one and after the last.
fn with_noise(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut log = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        log.extend_from_slice(NOISE[i % NOISE.len()].as_bytes());
        log.extend_from_slice(line);
    }
    log.extend_from_slice(NOISE[lines.len() % NOISE.len()].as_bytes());
    log
}

/// Where line `index` of `lines` starts in `with_noise(lines)`.
fn noisy_location(lines: &[Vec<u8>], index: usize) -> Location {
    let mut offset = 0;
    let mut line = 1;
    for (i, l) in lines.iter().enumerate() {
        let noise = NOISE[i % NOISE.len()];
        offset += noise.len();
        line += 1;
        if i == index {
            return Location { line, offset };
        }
        offset += l.len();
        line += 1;
    }
    panic!("no line {index}")
}

fn assert_complete(dump: &Dump, dump_id: u32, data: &[u8], chunk_len: usize) {
    let chunk_len = uart::effective_chunk_len(chunk_len);
    assert_eq!(dump.dump_id, dump_id);
    assert_eq!(dump.declared_len, data.len() as u64);
    assert_eq!(dump.chunk_len as usize, chunk_len);
    assert_eq!(dump.chunk_count, data.len().div_ceil(chunk_len) as u64);
    assert_eq!(dump.payload_crc, uart::payload_crc(data));
    assert!(dump.data == data, "payload differs");
    assert_eq!(dump.missing, Vec::<u64>::new());
    assert_eq!(dump.corrupt, Vec::<u64>::new());
    assert_eq!(dump.conflicting, Vec::<u64>::new());
    assert_eq!(dump.duplicates, 0);
    assert!(dump.payload_crc_ok);
    assert!(!dump.payload_changed);
    let expected_valid: Vec<Range<usize>> = if data.is_empty() {
        vec![]
    } else {
        std::iter::once(0..data.len()).collect()
    };
    assert_eq!(dump.valid, expected_valid);
    assert_eq!(dump.error, None);
    assert!(dump.is_complete());
}

#[test]
fn round_trip_sizes() {
    let cases = [
        (0, 0),
        (1, 0),
        (DEFAULT_CHUNK_LEN - 1, 0),
        (DEFAULT_CHUNK_LEN, 0),
        (DEFAULT_CHUNK_LEN + 1, 0),
        (100 * 1024, 0),
        (1000, 1),
        (1000, 57),
        (1000, MAX_CHUNK_LEN),
    ];
    for (i, &(len, chunk_len)) in cases.iter().enumerate() {
        let data = random_bytes(len, i as u64 + 1);
        let lines = frame_lines(0x1234_5678, &data, chunk_len);
        let log = with_noise(&lines);
        let report = extract(&log);
        assert_eq!(report.issues, vec![], "case {len}/{chunk_len}");
        assert_eq!(report.issues_dropped, 0);
        assert_eq!(report.framing_lines, lines.len());
        assert_eq!(report.dumps.len(), 1);
        let dump = &report.dumps[0];
        assert_complete(dump, 0x1234_5678, &data, chunk_len);
        assert_eq!(dump.begin, Some(noisy_location(&lines, 0)));
        assert_eq!(dump.end, Some(noisy_location(&lines, lines.len() - 1)));
        assert!(report.is_clean());
    }
}

#[test]
fn crlf_and_stray_carriage_returns() {
    let data = random_bytes(5000, 7);
    let lines = frame_lines(3, &data, 0);
    let lf = with_noise(&lines);
    let reference = extract(&lf);
    assert_complete(&reference.dumps[0], 3, &data, 0);
    for ending in [&b"\r\n"[..], b"\r\r\n", b"\n\r", b"\r"] {
        let mut log = Vec::new();
        for &b in &lf {
            if b == b'\n' {
                log.extend_from_slice(ending);
            } else {
                log.push(b);
            }
        }
        let report = extract(&log);
        assert_eq!(report.issues, vec![]);
        assert_eq!(report.dumps.len(), 1);
        assert_complete(&report.dumps[0], 3, &data, 0);
        // Line numbers count '\n' only.
        let begin = report.dumps[0].begin.unwrap();
        let expected_line = if ending.contains(&b'\n') { 2 } else { 1 };
        assert_eq!(begin.line, expected_line);
        assert_eq!(begin.offset, NOISE[0].len() - 1 + ending.len());
    }
}

#[test]
fn dropped_line_is_exactly_one_missing_chunk() {
    let data = random_bytes(1000, 11);
    let mut lines = frame_lines(0x42, &data, 48);
    assert_eq!(lines.len(), 2 + 21);
    lines.remove(1 + 5); // data line of chunk 5
    let report = extract(&with_noise(&lines));
    assert_eq!(report.issues, vec![]);
    assert_eq!(report.dumps.len(), 1);
    let dump = &report.dumps[0];
    assert_eq!(dump.missing, vec![5]);
    assert_eq!(dump.corrupt, Vec::<u64>::new());
    assert_eq!(dump.valid, vec![0..240, 288..1000]);
    assert_eq!(dump.data[..240], data[..240]);
    assert_eq!(dump.data[240..288], [0; 48]);
    assert_eq!(dump.data[288..], data[288..]);
    assert!(!dump.payload_crc_ok);
    assert!(!dump.is_complete());
    assert!(!report.is_clean());
    assert!(dump.is_range_valid(0..240));
    assert!(dump.is_range_valid(300..1000));
    assert!(!dump.is_range_valid(200..250));
    assert!(!dump.is_range_valid(240..241));
    assert!(!dump.is_range_valid(0..1000));
    assert!(!dump.is_range_valid(999..1001));
    assert_eq!(dump.chunk_range(5), Some(240..288));
    assert_eq!(dump.chunk_range(20), Some(960..1000));
    assert_eq!(dump.chunk_range(21), None);
}

#[test]
fn dropped_first_and_last_chunks() {
    let data = random_bytes(100, 5);
    let mut lines = frame_lines(1, &data, 10);
    lines.remove(10); // chunk 9
    lines.remove(1); // chunk 0
    let report = extract(&with_noise(&lines));
    let dump = &report.dumps[0];
    assert_eq!(dump.missing, vec![0, 9]);
    assert_eq!(dump.valid, vec![10..90]);
}

/// Replaces the byte at `index` of the base64 field of `line`, returning
/// the byte it replaced.
fn garble_payload(line: &mut [u8], index: usize, byte: u8) -> u8 {
    let start = line
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b',')
        .nth(2)
        .unwrap()
        .0
        + 1;
    std::mem::replace(&mut line[start + index], byte)
}

#[test]
fn garbled_base64_character_is_a_corrupt_chunk() {
    let data = random_bytes(1000, 12);
    for (byte, expect_crc_error) in [(b'~', false), (0xff, false), (b'A', true), (b'z', true)] {
        let mut lines = frame_lines(0x42, &data, 48);
        let old = garble_payload(&mut lines[1 + 7], 10, byte);
        assert_ne!(old, byte);
        let log = with_noise(&lines);
        let report = extract(&log);
        assert_eq!(report.dumps.len(), 1);
        let dump = &report.dumps[0];
        assert_eq!(dump.corrupt, vec![7]);
        assert_eq!(dump.missing, Vec::<u64>::new());
        assert_eq!(dump.valid, vec![0..336, 384..1000]);
        assert_eq!(dump.data[336..384], [0; 48]);
        assert!(!dump.payload_crc_ok);
        assert_eq!(report.issues.len(), 1);
        let ExtractError::CorruptChunk {
            at,
            dump_id,
            seq,
            error,
        } = report.issues[0]
        else {
            panic!("{:?}", report.issues)
        };
        assert_eq!(at, noisy_location(&lines, 8));
        assert_eq!((dump_id, seq), (0x42, 7));
        if expect_crc_error {
            assert!(matches!(error, ChunkError::CrcMismatch { .. }), "{error:?}");
        } else {
            assert_eq!(error, ChunkError::InvalidSymbol { offset: 10, byte });
        }
    }
}

#[test]
fn garbled_structure_is_attributed_to_its_chunk() {
    let data = random_bytes(1000, 13);
    let mut lines = frame_lines(0x42, &data, 48);
    // Damage the chunk CRC field of chunk 3: the line no longer parses.
    let line = &mut lines[1 + 3];
    let n = line.len();
    line[n - 3] = b'Z';
    // And drop a comma in chunk 4's line.
    let line = &mut lines[1 + 4];
    let comma = line.iter().rposition(|&b| b == b',').unwrap();
    line[comma] = b'.';
    let report = extract(&with_noise(&lines));
    let dump = &report.dumps[0];
    assert_eq!(dump.corrupt, vec![3, 4]);
    assert_eq!(dump.missing, Vec::<u64>::new());
    assert_eq!(
        report.issues,
        vec![
            ExtractError::Malformed {
                at: noisy_location(&lines, 4),
                error: LineError::BadField(uart::Field::ChunkCrc),
            },
            ExtractError::Malformed {
                at: noisy_location(&lines, 5),
                error: LineError::FieldCount {
                    kind: uart::LineKind::Data,
                    found: 4
                },
            },
        ]
    );
}

#[test]
fn garbled_sequence_number_is_caught_by_the_crc() {
    let data = random_bytes(1000, 14);
    let mut lines = frame_lines(0x42, &data, 48);
    // "@TM:D,00000042,7," -> "@TM:D,00000042,8,"
    let line = &mut lines[1 + 7];
    assert_eq!(line[15], b'7');
    line[15] = b'8';
    let report = extract(&with_noise(&lines));
    let dump = &report.dumps[0];
    // Chunk 8 has its own good line, so only chunk 7 is lost, as missing.
    assert_eq!(dump.missing, vec![7]);
    assert_eq!(dump.corrupt, Vec::<u64>::new());
    assert_eq!(dump.valid, vec![0..336, 384..1000]);
    assert_eq!(report.issues.len(), 1);
    assert!(matches!(
        report.issues[0],
        ExtractError::CorruptChunk {
            seq: 8,
            error: ChunkError::CrcMismatch { .. },
            ..
        }
    ));
}

#[test]
fn two_dumps_in_one_log() {
    let a = random_bytes(3000, 21);
    let b = random_bytes(777, 22);
    let la = frame_lines(0, &a, 0);
    let lb = frame_lines(1, &b, 33);

    // One after the other.
    let mut lines = la.clone();
    lines.extend(lb.iter().cloned());
    let report = extract(&with_noise(&lines));
    assert_eq!(report.issues, vec![]);
    assert_eq!(report.dumps.len(), 2);
    assert_complete(&report.dumps[0], 0, &a, 0);
    assert_complete(&report.dumps[1], 1, &b, 33);

    // Interleaved line by line (two CPUs dumping at once).
    let mut lines = Vec::new();
    for i in 0..la.len().max(lb.len()) {
        lines.extend(la.get(i).cloned());
        lines.extend(lb.get(i).cloned());
    }
    let report = extract(&with_noise(&lines));
    assert_eq!(report.issues, vec![]);
    assert_eq!(report.dumps.len(), 2);
    assert_complete(&report.dumps[0], 0, &a, 0);
    assert_complete(&report.dumps[1], 1, &b, 33);
}

#[test]
fn same_id_twice_gives_two_dumps() {
    let a = random_bytes(500, 31);
    let b = random_bytes(600, 32);
    let mut lines = frame_lines(9, &a, 0);
    let first_len = lines.len();
    lines.extend(frame_lines(9, &b, 0));
    // The first dump's end line is lost: the second begin still separates them.
    lines.remove(first_len - 1);
    let report = extract(&with_noise(&lines));
    assert_eq!(report.issues, vec![]);
    assert_eq!(report.dumps.len(), 2);
    assert_eq!(report.dumps[0].end, None);
    assert_eq!(report.dumps[0].data, a);
    assert!(report.dumps[0].is_complete());
    assert_complete(&report.dumps[1], 9, &b, 0);
}

fn begin_line(begin: Begin) -> Vec<u8> {
    let mut out = [0u8; MAX_LINE_LEN];
    let n = begin.encode(&mut out);
    out[..n].to_vec()
}

#[test]
fn hostile_begin_line_is_refused_without_allocating() {
    let legit = random_bytes(2000, 41);
    let mut lines = vec![begin_line(Begin {
        dump_id: 0x666,
        total_len: 1 << 40,
        chunk_len: 48,
        payload_crc: 0,
    })];
    lines.extend(frame_lines(1, &legit, 0));
    lines.push(begin_line(Begin {
        dump_id: 0x667,
        total_len: u64::MAX,
        chunk_len: 1,
        payload_crc: 0,
    }));
    let log = with_noise(&lines);
    let report = extract(&log);
    assert_eq!(report.dumps.len(), 3);
    let budget = (log.len() + DEFAULT_BUDGET_SLACK) as u64;
    let cost = 2000 + 42 * BUDGET_PER_CHUNK;
    let hostile = &report.dumps[0];
    let expected = ExtractError::TooLarge {
        at: noisy_location(&lines, 0),
        dump_id: 0x666,
        declared_len: 1 << 40,
        budget_left: budget - cost,
    };
    assert_eq!(hostile.error, Some(expected.clone()));
    assert_eq!(hostile.declared_len, 1 << 40);
    assert_eq!(hostile.data, Vec::<u8>::new());
    assert_eq!(hostile.valid, vec![]);
    assert!(!hostile.is_complete());
    assert_complete(&report.dumps[1], 1, &legit, 0);
    assert_eq!(
        report.dumps[2].error,
        Some(ExtractError::TooLarge {
            at: noisy_location(&lines, lines.len() - 1),
            dump_id: 0x667,
            declared_len: u64::MAX,
            budget_left: budget - cost,
        })
    );
    assert_eq!(report.issues.len(), 2);
    assert_eq!(report.issues[0], expected);
}

#[test]
fn many_plausible_hostile_begins_stay_within_the_budget() {
    let legit = random_bytes(4096, 42);
    let mut lines = Vec::new();
    for id in 0..2000 {
        lines.push(begin_line(Begin {
            dump_id: 0x1000 + id,
            total_len: 60_000,
            chunk_len: 96,
            payload_crc: 0,
        }));
    }
    lines.extend(frame_lines(1, &legit, 0));
    let log: Vec<u8> = lines.concat();
    let limits = ExtractLimits::for_log(log.len());
    let report = extract(&log);
    assert_eq!(report.dumps.len(), 2001);
    let allocated: usize = report.dumps.iter().map(|d| d.data.len()).sum();
    assert!(allocated <= limits.max_total_bytes, "{allocated}");
    // The dump with real data was served first.
    assert_complete(&report.dumps[2000], 1, &legit, 0);
    let refused = report.dumps.iter().filter(|d| d.error.is_some()).count();
    assert!(refused > 1900, "{refused}");
}

#[test]
fn marker_after_garbage_on_the_same_line() {
    let data = random_bytes(300, 51);
    let lines = frame_lines(5, &data, 0);
    let mut log = Vec::new();
    for line in &lines {
        log.extend_from_slice(b"[  3.1] usb 1-1: new device fou");
        log.extend_from_slice(line);
    }
    let report = extract(&log);
    assert_eq!(report.issues, vec![]);
    assert_complete(&report.dumps[0], 5, &data, 0);
    assert_eq!(
        report.dumps[0].begin,
        Some(Location {
            line: 1,
            offset: 31
        })
    );
}

#[test]
fn line_cut_short_by_another_framing_line() {
    let data = random_bytes(300, 52);
    let mut lines = frame_lines(5, &data, 0);
    // Chunk 2's line loses its end (and line break); chunk 3's follows.
    let cut = lines[1 + 2].len() / 2;
    lines[1 + 2].truncate(cut);
    // Chunk 4's line loses only its line break.
    lines[1 + 4].pop();
    let mut log = Vec::new();
    for line in &lines {
        log.extend_from_slice(line);
    }
    let report = extract(&log);
    let dump = &report.dumps[0];
    assert_eq!(dump.corrupt, vec![2]);
    assert_eq!(dump.missing, Vec::<u64>::new());
    assert_eq!(
        report.issues,
        vec![ExtractError::Interrupted {
            at: Location {
                line: 4,
                offset: lines[0].len() + lines[1].len() + lines[2].len()
            }
        }]
    );
    assert_eq!(dump.valid, vec![0..96, 144..300]);
}

#[test]
fn repeated_line_is_a_harmless_duplicate() {
    let data = random_bytes(500, 61);
    let mut lines = frame_lines(2, &data, 0);
    let again = lines[3].clone();
    lines.insert(6, again);
    let report = extract(&with_noise(&lines));
    assert_eq!(report.issues, vec![]);
    let dump = &report.dumps[0];
    assert_eq!(dump.duplicates, 1);
    assert!(dump.is_complete());
    assert_eq!(dump.data, data);
}

#[test]
fn conflicting_copy_is_not_trusted() {
    let data = random_bytes(500, 62);
    let mut lines = frame_lines(2, &data, 0);
    let mut out = [0u8; MAX_LINE_LEN];
    let n = encode_data_line(2, 4, &[0xaa; 48], &mut out).unwrap();
    lines.insert(8, out[..n].to_vec());
    let report = extract(&with_noise(&lines));
    let dump = &report.dumps[0];
    assert_eq!(dump.conflicting, vec![4]);
    assert_eq!(dump.valid, vec![0..192, 240..500]);
    assert_eq!(dump.data[192..240], [0; 48]);
    assert_eq!(
        report.issues,
        vec![ExtractError::ConflictingChunk {
            at: noisy_location(&lines, 8),
            dump_id: 2,
            seq: 4
        }]
    );
}

#[test]
fn valid_line_with_wrong_length_or_seq() {
    let data = random_bytes(100, 63);
    let mut lines = frame_lines(2, &data, 0); // chunks 0..=2 (48, 48, 4)
    let mut out = [0u8; MAX_LINE_LEN];
    let n = encode_data_line(2, 5, &[1; 4], &mut out).unwrap();
    lines.insert(4, out[..n].to_vec());
    let n = encode_data_line(2, 2, &[1; 5], &mut out).unwrap();
    lines[3] = out[..n].to_vec();
    let report = extract(&with_noise(&lines));
    let dump = &report.dumps[0];
    assert_eq!(dump.corrupt, vec![2]);
    assert_eq!(dump.valid, vec![0..96]);
    assert_eq!(
        report.issues,
        vec![
            ExtractError::CorruptChunk {
                at: noisy_location(&lines, 3),
                dump_id: 2,
                seq: 2,
                error: ChunkError::LengthMismatch {
                    expected: 4,
                    found: 5
                },
            },
            ExtractError::SeqOutOfRange {
                at: noisy_location(&lines, 4),
                dump_id: 2,
                seq: 5,
                chunk_count: 3
            },
        ]
    );
}

#[test]
fn missing_begin_or_end_line() {
    let data = random_bytes(1000, 71);
    let mut lines = frame_lines(4, &data, 0);
    lines.remove(0);
    let report = extract(&with_noise(&lines));
    assert_eq!(report.issues, vec![]);
    assert_eq!(report.dumps[0].begin, None);
    assert_complete(&report.dumps[0], 4, &data, 0);

    let mut lines = frame_lines(4, &data, 0);
    lines.pop();
    let report = extract(&with_noise(&lines));
    assert_eq!(report.issues, vec![]);
    assert_eq!(report.dumps[0].end, None);
    assert_complete(&report.dumps[0], 4, &data, 0);

    // Neither: the data lines cannot be placed.
    let mut lines = frame_lines(4, &data, 0);
    lines.pop();
    lines.remove(0);
    let report = extract(&with_noise(&lines));
    assert_eq!(report.dumps, vec![]);
    assert_eq!(
        report.issues,
        vec![ExtractError::NoHeader {
            at: noisy_location(&lines, 0),
            dump_id: 4,
            lines: 21
        }]
    );
}

#[test]
fn end_line_disagreeing_with_begin_line() {
    let data = random_bytes(200, 72);
    let mut lines = frame_lines(4, &data, 0);
    let other = frame_lines(4, &data[..100], 0);
    let last = lines.len() - 1;
    lines[last] = other[other.len() - 1].clone();
    let report = extract(&with_noise(&lines));
    assert_eq!(
        report.issues,
        vec![ExtractError::GeometryMismatch {
            at: noisy_location(&lines, last),
            begin: noisy_location(&lines, 0),
            dump_id: 4
        }]
    );
    assert_complete(&report.dumps[0], 4, &data, 0);
}

#[test]
fn memory_changed_during_dump() {
    let mut pass = 0u8;
    let mut log = Vec::new();
    uart::write_framed_with(
        8,
        100,
        0,
        |offset, buf: &mut [u8]| {
            if offset == 0 {
                pass += 1;
            }
            buf.fill(pass);
        },
        &mut |line: &[u8]| {
            log.extend_from_slice(line);
            Ok::<(), ()>(())
        },
    )
    .unwrap();
    let report = extract(&log);
    let dump = &report.dumps[0];
    assert!(dump.payload_changed);
    assert!(dump.payload_crc_ok);
    assert_eq!(dump.data, vec![2; 100]);
}

#[test]
fn issues_are_capped() {
    let log = b"@TM:\n".repeat(20);
    let limits = ExtractLimits {
        max_issues: 5,
        ..ExtractLimits::for_log(log.len())
    };
    let report = extract_with(&log, &limits);
    assert_eq!(report.issues.len(), 5);
    assert_eq!(report.issues_dropped, 15);
    assert_eq!(report.framing_lines, 20);
    assert_eq!(
        report.issues[4],
        ExtractError::Malformed {
            at: Location {
                line: 5,
                offset: 20
            },
            error: LineError::UnknownKind
        }
    );
    assert_eq!(
        report.issues[4].to_string(),
        "line 5 (byte 20): malformed framing line: unknown line kind after the marker"
    );
}

#[test]
fn empty_and_unrelated_logs() {
    assert_eq!(extract(b""), ExtractReport::default());
    let report = extract(b"hello\nworld\r\n\r\n");
    assert_eq!(report, ExtractReport::default());
    assert!(report.is_clean());
}

/// A framed log (two dumps) to mutate.
fn sample_log() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let a = random_bytes(700, 81);
    let b = random_bytes(300, 82);
    let mut lines = frame_lines(1, &a, 40);
    lines.extend(frame_lines(2, &b, 0));
    (with_noise(&lines), a, b)
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Duplicate(usize, usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), 0..200usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 0..20)
        )
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 0..300usize, any::<usize>())
            .prop_map(|(i, n, j)| Mutation::Duplicate(i, n, j)),
    ]
}

fn apply(log: &mut Vec<u8>, m: &Mutation) {
    if log.is_empty() {
        return;
    }
    match m {
        Mutation::Flip(i, b) => {
            let i = i % log.len();
            log[i] = *b;
        }
        Mutation::Delete(i, n) => {
            let i = i % log.len();
            let end = (i + n).min(log.len());
            log.drain(i..end);
        }
        Mutation::Insert(i, v) => {
            let i = i % (log.len() + 1);
            log.splice(i..i, v.iter().copied());
        }
        Mutation::Duplicate(i, n, j) => {
            let i = i % log.len();
            let end = (i + n).min(log.len());
            let piece = log[i..end].to_vec();
            let j = j % (log.len() + 1);
            log.splice(j..j, piece);
        }
    }
}

proptest! {
    #[test]
    fn extract_never_panics_on_arbitrary_bytes(
        log in proptest::collection::vec(any::<u8>(), 0..2000)
    ) {
        let report = extract(&log);
        prop_assert!(report.dumps.iter().all(|d| d.data.len() as u64 <= d.declared_len));
    }

    #[test]
    fn extract_never_panics_on_marker_soup(
        pieces in proptest::collection::vec(
            prop_oneof![
                Just(&b"@TM:"[..]), Just(&b"B,1,"[..]), Just(&b"D,"[..]), Just(&b"E,1,"[..]),
                Just(&b"00000001,"[..]), Just(&b"0,"[..]), Just(&b"48,"[..]),
                Just(&b"AAAA,"[..]), Just(&b"\n"[..]), Just(&b"\r"[..]), Just(&b"99999999999,"[..]),
            ],
            0..200,
        )
    ) {
        let log: Vec<u8> = pieces.concat();
        let _ = extract(&log);
    }

    #[test]
    fn damaged_logs_never_yield_wrong_valid_bytes(
        mutations in proptest::collection::vec(mutation(), 0..8)
    ) {
        let (mut log, a, b) = sample_log();
        for m in &mutations {
            apply(&mut log, m);
        }
        let limits = ExtractLimits::for_log(log.len());
        let report = extract(&log);
        let allocated: usize = report.dumps.iter().map(|d| d.data.len()).sum();
        prop_assert!(allocated <= limits.max_total_bytes);
        for dump in &report.dumps {
            let original = match dump.dump_id {
                1 => &a,
                2 => &b,
                other => panic!("dump id {other} appeared"),
            };
            if dump.error.is_some() {
                continue;
            }
            prop_assert_eq!(dump.declared_len, original.len() as u64);
            prop_assert_eq!(dump.data.len(), original.len());
            for range in &dump.valid {
                prop_assert_eq!(&dump.data[range.clone()], &original[range.clone()]);
            }
            let valid: usize = dump.valid.iter().map(|r| r.len()).sum();
            let bad = dump.missing.len() + dump.corrupt.len() + dump.conflicting.len();
            prop_assert_eq!(bad == 0, valid == original.len());
            if dump.payload_crc_ok {
                prop_assert!(&dump.data == original);
            }
        }
    }
}
