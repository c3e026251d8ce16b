//! `tracemark export` on ring images written by the real encoder: a dump with time
//! steps of 2^32 ticks and more (CTF extended event headers, compact headers whose
//! 32-bit time wraps), images, user events, and a full drop-mode ring.
//!
//! A second dump has format-2 records: thread switches (`SWITCH`, as the seL4 kernel
//! writes them: inside a kernel entry, to the TCB that runs next) and a clock that
//! steps back (`CLOCKBACK`, written by the encoder when its clock reads less).
//!
//! With `TRACEMARK_EXPORT_FIXTURES=DIR`, the dumps are also written to `DIR/gaps.bin`
//! and `DIR/threads.bin` for `scripts/test-export.sh`, which checks every format's
//! export of them with independent readers (the Perfetto schema, babeltrace2, DuckDB).

use std::cell::Cell;

use assert_cmd::Command;
use tracemark::{Config, KernelEntry, Mode, Tracer};
use tracemark_format::EntryPath;
use tracemark_tests::{cpu_ring, TestClock, TestTracer};
use zerocopy::IntoBytes;

/// A ring of `blocks` blocks of 512 bytes of CPU `cpu` written by the real encoder,
/// its clock at 1000 ticks of 1 ns when `f` starts.
fn ring(
    cpu: u32,
    mode: Mode,
    blocks: usize,
    f: impl FnOnce(&TestTracer<'_, '_>, &TestClock),
) -> Vec<u8> {
    cpu_ring(cpu, mode, 512, blocks, f)
}

fn gaps_dump() -> Vec<u8> {
    let mut d = ring(0, Mode::Drop, 64, |t, c| {
        t.image(0x8000_0000, 0x4_0000, 0xfeed_beef);
        for i in 0..400u64 {
            // Every 50 rounds a step of 2^32 ticks or more; every 50 rounds + 25 a step
            // just below it (the 32-bit time wraps).
            let step = match i % 50 {
                0 if i > 0 => (1 << 32) + i,
                25 => (1 << 32) - 3,
                _ => 100 + i % 7,
            };
            c.set(c.get() + step);
            t.kernel_entry(KernelEntry::syscall(
                1 + (i % 3) as u8,
                4,
                i % 2 == 0,
                i as u32,
            ));
            c.set(c.get() + 50);
            t.interrupt(30 + (i % 4) as u32);
            t.kernel_exit();
            t.function_entry(0x8000_0100 + i % 3);
            c.set(c.get() + 9);
            t.function_exit(0x8000_0100 + i % 3);
            if i % 20 == 0 {
                t.user(9, &i.to_le_bytes());
            }
        }
    });
    // A ring that fills up: records dropped.
    d.extend(ring(1, Mode::Drop, 4, |t, c| {
        for i in 0..2000u64 {
            c.set(c.get() + 77);
            t.function_entry(i % 11);
            t.function_exit(i % 11);
        }
    }));
    d
}

/// Two CPUs switching among five threads (seL4-like TCB addresses) inside syscalls
/// and interrupts, with function calls between, and the clock stepping back now and
/// then.
fn threads_dump() -> Vec<u8> {
    let mut d = Vec::new();
    for cpu in 0..2u32 {
        d.extend(ring(cpu, Mode::Drop, 256, |t, c| {
            for i in 0..1500u64 {
                c.set(c.get() + 200 + (i * 37) % 101);
                if i % 3 == 0 {
                    t.kernel_entry(KernelEntry::other(
                        EntryPath::Interrupt,
                        cpu as u8,
                        40 + (i % 2) as u32,
                    ));
                } else {
                    t.kernel_entry(KernelEntry::syscall(1 + (i % 2) as u8, 4, false, i as u32));
                }
                c.set(c.get() + 30);
                if i % 2 == 0 {
                    let tcb = 0xffff_ff80_0010_0000 + ((i / 2 + u64::from(cpu)) % 5) * 0x400;
                    t.thread_switch(tcb);
                }
                c.set(c.get() + 20);
                t.kernel_exit();
                t.function_entry(0x40_1000 + i % 4);
                c.set(c.get() + 15);
                t.function_exit(0x40_1000 + i % 4);
                if i % 97 == 50 {
                    // The clock steps back (a timer reprogrammed, say).
                    c.set(c.get() - 400 - i);
                }
            }
        }));
    }
    d
}

fn tm() -> Command {
    Command::cargo_bin("tracemark").unwrap()
}

/// Writes `bytes` as `dir/name`, and as `$TRACEMARK_EXPORT_FIXTURES/name` when that is
/// set (the fixtures `scripts/test-export.sh` reads); returns the path in `dir`.
fn write_dump(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dump = dir.join(name);
    std::fs::write(&dump, bytes).unwrap();
    if let Some(fixtures) = std::env::var_os("TRACEMARK_EXPORT_FIXTURES") {
        std::fs::write(std::path::Path::new(&fixtures).join(name), bytes).unwrap();
    }
    dump
}

#[test]
fn ctf_and_parquet_of_a_dump_with_long_gaps_and_drops() {
    let dir = tempfile::tempdir().unwrap();
    let dump = write_dump(dir.path(), "gaps.bin", &gaps_dump());
    let stats = tm().args(["stats", "--json"]).arg(&dump).output().unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert!(stats["cpus"][1]["dropped"].as_u64().unwrap() > 0);

    let ctf = dir.path().join("ctf");
    let out = tm()
        .args(["export", "--format", "ctf", "-o"])
        .arg(&ctf)
        .arg(&dump)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        line.contains(&format!("{} events", stats["total_records"])),
        "{line}"
    );
    assert!(
        line.contains(&format!("{} records reported discarded", stats["lost"])),
        "{line}"
    );
    assert!(ctf.join("stream_cpu0").is_file() && ctf.join("stream_cpu1").is_file());

    let pq = dir.path().join("pq");
    let out = tm()
        .args(["export", "--format", "parquet", "-o"])
        .arg(&pq)
        .arg(&dump)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    let id = line
        .split("dump=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let part = pq
        .join("records")
        .join(format!("dump={id}"))
        .join("cpu=0")
        .join("part-0.parquet");
    assert!(part.is_file(), "{line}");
    assert!(std::fs::read(&part).unwrap().starts_with(b"PAR1"));
    assert!(pq
        .join("images")
        .join(format!("dump={id}"))
        .join("cpu=0")
        .join("part-0.parquet")
        .is_file());
    // The id is stable: a second export writes the same partition.
    let again = tm()
        .args(["export", "--format", "parquet", "-o"])
        .arg(&pq)
        .arg(&dump)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&again.stdout), line);
}

#[test]
fn every_format_exports_thread_switches_and_clock_steps() {
    let dir = tempfile::tempdir().unwrap();
    let dump = write_dump(dir.path(), "threads.bin", &threads_dump());
    let stats = tm().args(["stats", "--json"]).arg(&dump).output().unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    let kinds = &stats["records_per_kind"];
    let switches = kinds["SWITCH"].as_u64().unwrap();
    let backs = kinds["CLOCKBACK"].as_u64().unwrap();
    assert_eq!(switches, 1500, "{stats}");
    assert!(backs >= 2 * 15, "{stats}");

    // Chrome JSON: one running slice per switch on a thread of its own per (CPU,
    // thread), balanced; one clock instant per CLOCKBACK.
    let json = dir.path().join("t.json");
    let out = tm()
        .args(["export", "--format", "chrome-json", "-o"])
        .arg(&json)
        .arg(&dump)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let events = doc["traceEvents"].as_array().unwrap();
    let count = |ph: &str, cat: &str| {
        events
            .iter()
            .filter(|e| e["ph"] == ph && (cat.is_empty() || e["cat"] == cat))
            .count() as u64
    };
    assert_eq!(count("B", "thread"), switches);
    assert_eq!(count("i", "thread"), switches);
    assert_eq!(count("i", "clock"), backs);
    let thread_names = events
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .filter(|e| e["args"]["name"].as_str().unwrap().starts_with("Thread 0x"))
        .count();
    // Five TCBs, each seen on both CPUs.
    assert_eq!(thread_names, 10);

    // Parquet: the thread and back columns, one row per record.
    let pq = dir.path().join("pq");
    let out = tm()
        .args(["export", "--format", "parquet", "-o"])
        .arg(&pq)
        .arg(&dump)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        line.contains(&format!("{} rows", stats["total_records"])),
        "{line}"
    );

    // CTF: one SWITCH event per switch, with its thread, and one CLOCKBACK event per
    // step, in the stream files (read back with the packet layout of `ctf.rs`).
    let ctf = dir.path().join("ctf");
    let out = tm()
        .args(["export", "--format", "ctf", "-o"])
        .arg(&ctf)
        .arg(&dump)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut per_kind = std::collections::BTreeMap::<u8, u64>::new();
    let mut threads = std::collections::BTreeSet::new();
    for stream in ["stream_cpu0", "stream_cpu1"] {
        for (kind, payload) in ctf_events(&std::fs::read(ctf.join(stream)).unwrap()) {
            *per_kind.entry(kind).or_default() += 1;
            if kind == tracemark_format::Kind::ThreadSwitch as u8 {
                threads.insert(u64::from_le_bytes(payload.try_into().unwrap()));
            }
        }
    }
    let total: u64 = per_kind.values().sum();
    assert_eq!(total, stats["total_records"].as_u64().unwrap());
    assert_eq!(
        per_kind[&(tracemark_format::Kind::ThreadSwitch as u8)],
        switches
    );
    assert_eq!(per_kind[&(tracemark_format::Kind::ClockBack as u8)], backs);
    assert_eq!(threads.len(), 5, "{threads:?}");

    // Perfetto: a track per (CPU, thread), one running slice per switch on them,
    // balanced, and one "Clock stepped back" instant per step.
    let trace = dir.path().join("t.perfetto-trace");
    let out = tm()
        .args(["export", "--format", "perfetto", "-o"])
        .arg(&trace)
        .arg(&dump)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let packets = perfetto_packets(&std::fs::read(&trace).unwrap());
    let thread_tracks: std::collections::BTreeSet<u64> = packets
        .iter()
        .filter_map(|p| p.track_descriptor.as_ref())
        .filter(|t| {
            t.name
                .as_deref()
                .is_some_and(|n| n.starts_with("Thread 0x"))
        })
        .filter_map(|t| t.uuid)
        .collect();
    assert_eq!(thread_tracks.len(), 10);
    let on_threads = |ty: i32| {
        packets
            .iter()
            .filter_map(|p| p.track_event.as_ref())
            .filter(|e| e.r#type == Some(ty))
            .filter(|e| e.track_uuid.is_some_and(|u| thread_tracks.contains(&u)))
            .count() as u64
    };
    assert_eq!(on_threads(proto::TYPE_SLICE_BEGIN), switches);
    assert_eq!(on_threads(proto::TYPE_SLICE_END), switches);
    // Names are interned per sequence, redefined when the state is cleared.
    let mut names = std::collections::HashMap::<(u32, u64), String>::new();
    let mut clock_steps = 0;
    for p in &packets {
        let seq = p.trusted_packet_sequence_id.unwrap_or(0);
        if p.sequence_flags.unwrap_or(0) & proto::SEQ_INCREMENTAL_STATE_CLEARED != 0 {
            names.retain(|(s, _), _| *s != seq);
        }
        for n in p.interned_data.iter().flat_map(|i| &i.event_names) {
            names.insert((seq, n.iid.unwrap()), n.name.clone().unwrap());
        }
        let Some(e) = &p.track_event else { continue };
        let name = e.name_iid.and_then(|i| names.get(&(seq, i)));
        if e.r#type == Some(proto::TYPE_INSTANT) && name.is_some_and(|n| n == "Clock stepped back")
        {
            clock_steps += 1;
        }
    }
    assert_eq!(clock_steps, backs);
}

use tracemark_export::perfetto::proto;

/// The packets of a Perfetto trace file.
fn perfetto_packets(mut bytes: &[u8]) -> Vec<proto::TracePacket> {
    use prost::Message;
    let mut v = Vec::new();
    while !bytes.is_empty() {
        assert_eq!(bytes[0], proto::TRACE_PACKET_TAG);
        bytes = &bytes[1..];
        v.push(proto::TracePacket::decode_length_delimited(&mut bytes).unwrap());
    }
    v
}

/// The events of a CTF stream file written by `tracemark export --format ctf`: (event
/// id, payload), read with the packet and event layout that `ctf.rs` documents (84
/// bytes of packet header and context, `content_size` in bits at 48; compact event
/// headers of id and 32-bit time, or 255, id and 64-bit time).
fn ctf_events(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    use tracemark_format::Kind;
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let mut events = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let packet = &bytes[at..];
        assert_eq!(&packet[..4], &0xC1FC_1FC1u32.to_le_bytes());
        let size = (u64_at(packet, 48) / 8) as usize;
        let mut e = 84;
        while e < size {
            let (id, fields) = match packet[e] {
                255 => (packet[e + 1], e + 10),
                id => (id, e + 5),
            };
            let len = match id {
                k if k == Kind::KernelEntry as u8 => 13,
                k if k == Kind::KernelExit as u8 => 11,
                k if k == Kind::Interrupt as u8 => 4,
                k if k == Kind::User as u8 => 5 + usize::from(packet[fields + 4]),
                k if k == Kind::Image as u8 => 24,
                k if k == Kind::Lost as u8 => 16,
                k if k == Kind::ThreadName as u8 => {
                    13 + packet[fields + 12..].iter().position(|&c| c == 0).unwrap()
                }
                _ => 8,
            };
            events.push((id, packet[fields..fields + len].to_vec()));
            e = fields + len;
        }
        assert_eq!(e, size);
        at += size;
    }
    events
}

#[test]
fn export_errors_are_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.bin");
    std::fs::write(&bad, b"this is not a dump at all").unwrap();
    let out = tm()
        .args(["export", "--format", "parquet", "-o"])
        .arg(dir.path().join("o"))
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad.bin"), "{err}");
}

/// An export whose output fails exits non-zero, even when the failure is a broken pipe
/// (an `-o` FIFO whose reader left): only standard output's broken pipe (`| head`) is a
/// quiet success. Before, the write error of the Perfetto writer (EPIPE) was taken for
/// that and the export exited 0 with a truncated trace.
#[test]
fn an_export_whose_output_breaks_exits_non_zero() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    // Eight copies of the dump: more output than a pipe holds, so that the export
    // cannot finish before the reader leaves.
    let dump = dir.path().join("gaps8.bin");
    std::fs::write(&dump, gaps_dump().repeat(8)).unwrap();
    let file = dir.path().join("t.perfetto-trace");
    tm().arg("export")
        .arg(&dump)
        .args(["--format", "perfetto", "-o"])
        .arg(&file)
        .assert()
        .success();
    let size = std::fs::metadata(&file).unwrap().len();
    assert!(
        size > 256 << 10,
        "the trace is {size} bytes, less than a pipe holds"
    );

    let fifo = dir.path().join("out.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::File::open(&fifo).unwrap();
            let mut first = [0u8; 1];
            f.read_exact(&mut first).unwrap();
            // Dropped: the reader leaves after one byte.
        })
    };
    let out = tm()
        .arg("export")
        .arg(&dump)
        .args(["--format", "perfetto", "-o"])
        .arg(&fifo)
        .output()
        .unwrap();
    reader.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit 0 with a broken output: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("out.fifo") && err.contains("Broken pipe"),
        "{err}"
    );

    // Standard output's reader leaving (`| head`) is still a quiet success.
    let tm = assert_cmd::cargo::cargo_bin("tracemark");
    let piped = std::process::Command::new("bash")
        .arg("-c")
        .arg("set -o pipefail; \"$0\" decode \"$1\" | head -c 100 >/dev/null")
        .arg(&tm)
        .arg(&dump)
        .output()
        .unwrap();
    assert!(
        piped.status.success() && piped.stderr.is_empty(),
        "decode | head: {}",
        String::from_utf8_lossy(&piped.stderr)
    );
}

/// A ring as `tracemark import qemu` writes it: Linux syscalls (ABI `LinuxArm`: path
/// UnknownSyscall, the number in the word) and function calls without returns.
fn linux_dump() -> Vec<u8> {
    let block_size = 512u32;
    let len = tracemark_format::ring::RING_HEADER_LEN + 32 * block_size as usize;
    let mut words = vec![0u64; len.div_ceil(8)];
    let bytes = words.as_mut_bytes();
    let clock = Cell::new(1000);
    let config = Config {
        mode: Mode::Drop,
        block_size,
        clock_hz: 1_000_000_000,
        syscall_abi: tracemark_format::SyscallAbi::LinuxArm,
        ..Config::new()
    };
    {
        let t = Tracer::new(&mut bytes[..len], &config, || clock.get()).unwrap();
        for i in 0..170u64 {
            clock.set(clock.get() + 10);
            t.function_entry(0x1_0000 + 4 * i);
            if i % 10 == 0 {
                // brk (45), then an unnamed number.
                t.kernel_entry(KernelEntry::other(EntryPath::UnknownSyscall, 0, 45));
                clock.set(clock.get() + 5);
                t.kernel_exit();
                t.kernel_entry(KernelEntry::other(EntryPath::UnknownSyscall, 0, 100_000));
                t.kernel_exit();
            }
        }
    }
    bytes[..len].to_vec()
}

/// Issue 20.13: every export names a Linux ring's syscalls as `decode` does (`brk`, not
/// `UnknownSyscall`), and 170 function entries without exits do not open 170 nested
/// slices.
#[test]
fn every_format_names_linux_syscalls_and_bounds_unclosed_functions() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("linux.bin");
    std::fs::write(&dump, linux_dump()).unwrap();
    let decoded = tm().arg("decode").arg(&dump).output().unwrap();
    assert!(String::from_utf8_lossy(&decoded.stdout).contains("linux=brk"));
    let export = |format: &str, out: &str| {
        tm().arg("export")
            .arg(&dump)
            .args(["--format", format, "-o"])
            .arg(dir.path().join(out))
            .assert()
            .success();
        dir.path().join(out)
    };

    let json = export("chrome-json", "t.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    let events = json["traceEvents"].as_array().unwrap();
    let begins = |name: &str| {
        events
            .iter()
            .filter(|e| e["ph"] == "B" && e["name"] == name)
            .count()
    };
    assert_eq!(begins("brk"), 17);
    assert_eq!(
        begins("UnknownSyscall"),
        17,
        "an unnamed number keeps the path"
    );
    let function_slices = events
        .iter()
        .filter(|e| e["ph"] == "B" && e["cat"] == "function")
        .count();
    assert_eq!(
        function_slices,
        tracemark_export::nesting::MAX_FUNCTION_DEPTH
    );

    let perfetto = std::fs::read(export("perfetto", "t.perfetto-trace")).unwrap();
    let has = |needle: &[u8]| perfetto.windows(needle.len()).any(|w| w == needle);
    // The interned event name, length-prefixed in its EventName.
    assert!(has(b"\x03brk"), "no event named brk in the Perfetto trace");

    let ctf = export("ctf", "ctf");
    let metadata = std::fs::read_to_string(ctf.join("metadata")).unwrap();
    assert!(metadata.contains("\"brk\" = 45"), "{metadata}");

    let pq = export("parquet", "pq");
    let part = std::fs::read_dir(pq.join("records"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("cpu=0/part-0.parquet");
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let r = SerializedFileReader::new(std::fs::File::open(part).unwrap()).unwrap();
    let names: Vec<String> = r
        .get_row_iter(None)
        .unwrap()
        .filter_map(|row| {
            let row = row.unwrap();
            row.get_column_iter()
                .find(|(n, _)| n.as_str() == "syscall_name")
                .map(|(_, f)| f.to_string())
                .filter(|v| v != "null")
        })
        .collect();
    // 17 entries and their 17 exits.
    assert_eq!(names.len(), 34, "{names:?}");
    assert!(names.iter().all(|n| n == "\"brk\""), "{names:?}");
}

/// Issue 20.11: a 1 Hz clock past 2^64 / 10^9 ticks overflows nanoseconds; the exports
/// in nanoseconds say so (one warning naming the file and the CPU) rather than clamping
/// silently; CTF (in ticks) and Parquet (`time_ns` null, `ts` exact) lose nothing.
#[test]
fn times_that_overflow_nanoseconds_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let block_size = 512u32;
    let len = tracemark_format::ring::RING_HEADER_LEN + 8 * block_size as usize;
    let mut words = vec![0u64; len.div_ceil(8)];
    let bytes = words.as_mut_bytes();
    let clock = Cell::new(tracemark_export::max_exact_ticks(1) - 100);
    let config = Config {
        mode: Mode::Drop,
        block_size,
        clock_hz: 1,
        cpu_id: 3,
        ..Config::new()
    };
    {
        let t = Tracer::new(&mut bytes[..len], &config, || clock.get()).unwrap();
        for i in 0..400 {
            clock.set(clock.get() + 1);
            t.interrupt(i);
        }
    }
    let dump = dir.path().join("onehz.bin");
    std::fs::write(&dump, &bytes[..len]).unwrap();
    for format in ["perfetto", "chrome-json", "ctf", "parquet"] {
        let out = tm()
            .arg("export")
            .arg(&dump)
            .args(["--format", format, "-o"])
            .arg(dir.path().join(format))
            .output()
            .unwrap();
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
        if format == "perfetto" || format == "chrome-json" {
            assert_eq!(warnings.len(), 1, "{format}: {err}");
            assert!(
                warnings[0].contains("onehz.bin") && warnings[0].contains("cpu3"),
                "{err}"
            );
        } else {
            assert!(warnings.is_empty(), "{format}: {err}");
        }
    }
}

/// An RTOS on two CPUs: three named tasks (one renamed midway) and one never named,
/// switching; a FreeRTOS queue sent to and received from.
fn named_threads_dump() -> Vec<u8> {
    use tracemark_format::freertos;
    let mut d = Vec::new();
    for cpu in 0..2u32 {
        d.extend(ring(cpu, Mode::Drop, 64, |t, c| {
            t.thread_name(0x2000_0100, 3, b"producer");
            t.thread_name(0x2000_0200, 2, b"consumer");
            t.thread_name(0x2000_0300, 0, b"IDLE");
            for i in 0..200u64 {
                c.set(c.get() + 100 + i % 13);
                if i == 100 {
                    // Renamed: the latest name names the track.
                    t.thread_name(0x2000_0200, 2, b"sink");
                }
                t.thread_switch(0x2000_0100 + (i % 4) * 0x100);
                c.set(c.get() + 10);
                let queue = 0x2000_1000u32.to_le_bytes();
                match i % 4 {
                    0 => t.user(freertos::QUEUE_SEND, &queue),
                    1 => t.user(freertos::QUEUE_RECEIVE, &queue),
                    _ => tracemark::Outcome::Written,
                };
            }
        }));
    }
    d
}

#[test]
fn timeline_exports_name_threads_and_freertos_events() {
    let dir = tempfile::tempdir().unwrap();
    let dump = write_dump(dir.path(), "named.bin", &named_threads_dump());
    // Per CPU: 50 switches to each of the four threads, 50 sends, 50 receives.
    let export = |format: &str, out: &std::path::Path| {
        let o = tm()
            .args(["export", "--format", format, "-o"])
            .arg(out)
            .arg(&dump)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };

    // Perfetto: the thread tracks and running slices named by the THREAD records.
    let trace = dir.path().join("t.perfetto-trace");
    export("perfetto", &trace);
    let packets = perfetto_packets(&std::fs::read(&trace).unwrap());
    let mut tracks: Vec<String> = packets
        .iter()
        .filter_map(|p| p.track_descriptor.as_ref())
        .filter(|t| t.parent_uuid.is_some_and(|p| p != 1))
        .filter_map(|t| t.name.clone())
        .collect();
    tracks.sort();
    let expect = [
        "IDLE (0x20000300)",
        "Thread 0x20000400",
        "producer (0x20000100)",
        "sink (0x20000200)",
    ];
    let mut both: Vec<String> = expect
        .iter()
        .flat_map(|n| [n.to_string(), n.to_string()])
        .collect();
    both.sort();
    assert_eq!(tracks, both);
    let mut names = std::collections::HashMap::<(u32, u64), String>::new();
    let mut per_name = std::collections::BTreeMap::<(i32, String), u64>::new();
    for p in &packets {
        let seq = p.trusted_packet_sequence_id.unwrap_or(0);
        if p.sequence_flags.unwrap_or(0) & proto::SEQ_INCREMENTAL_STATE_CLEARED != 0 {
            names.retain(|(s, _), _| *s != seq);
        }
        for n in p.interned_data.iter().flat_map(|i| &i.event_names) {
            names.insert((seq, n.iid.unwrap()), n.name.clone().unwrap());
        }
        let Some(e) = &p.track_event else { continue };
        if let Some(n) = e.name_iid.and_then(|i| names.get(&(seq, i))) {
            *per_name
                .entry((e.r#type.unwrap_or(0), n.clone()))
                .or_default() += 1;
        }
    }
    let got = |ty: i32, n: &str| per_name.get(&(ty, n.to_string())).copied().unwrap_or(0);
    for n in ["producer", "sink", "IDLE", "Thread 0x20000400"] {
        assert_eq!(got(proto::TYPE_SLICE_BEGIN, n), 100, "{n}: {per_name:?}");
    }
    assert_eq!(got(proto::TYPE_INSTANT, "freertos:QUEUE_SEND"), 100);
    assert_eq!(got(proto::TYPE_INSTANT, "freertos:QUEUE_RECEIVE"), 100);
    // Each THREAD record an instant (three at start and one renaming, per CPU; the
    // writer re-emits none: every block's threads were named in it or none switched).
    assert!(
        got(proto::TYPE_INSTANT, "Thread named") >= 8,
        "{per_name:?}"
    );

    // Chrome JSON: thread_name metadata and running slices named likewise.
    let json = dir.path().join("t.json");
    export("chrome-json", &json);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let events = doc["traceEvents"].as_array().unwrap();
    let mut meta: Vec<&str> = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .map(|e| e["args"]["name"].as_str().unwrap())
        .filter(|n| !n.starts_with("CPU "))
        .collect();
    meta.sort();
    let mut want: Vec<String> = expect
        .iter()
        .flat_map(|n| [format!("{n} (CPU 0)"), format!("{n} (CPU 1)")])
        .collect();
    want.sort();
    assert_eq!(meta, want);
    let count = |ph: &str, name: &str| {
        events
            .iter()
            .filter(|e| e["ph"] == ph && e["name"] == name)
            .count()
    };
    for n in ["producer", "sink", "IDLE", "Thread 0x20000400"] {
        assert_eq!(count("B", n), 100, "{n}");
    }
    assert_eq!(count("i", "freertos:QUEUE_SEND"), 100);
    assert_eq!(count("i", "freertos:QUEUE_RECEIVE"), 100);

    // CTF: one THREAD event per THREAD record, with id, priority and name.
    let ctf = dir.path().join("ctf");
    export("ctf", &ctf);
    let mut named = std::collections::BTreeSet::new();
    for stream in ["stream_cpu0", "stream_cpu1"] {
        for (kind, p) in ctf_events(&std::fs::read(ctf.join(stream)).unwrap()) {
            if kind == tracemark_format::Kind::ThreadName as u8 {
                let id = u64::from_le_bytes(p[..8].try_into().unwrap());
                let prio = u32::from_le_bytes(p[8..12].try_into().unwrap());
                let name = String::from_utf8(p[12..p.len() - 1].to_vec()).unwrap();
                named.insert((id, prio, name));
            }
        }
    }
    let want: std::collections::BTreeSet<(u64, u32, String)> = [
        (0x2000_0100, 3, "producer"),
        (0x2000_0200, 2, "consumer"),
        (0x2000_0200, 2, "sink"),
        (0x2000_0300, 0, "IDLE"),
    ]
    .into_iter()
    .map(|(i, p, n)| (i, p, n.to_string()))
    .collect();
    assert_eq!(named, want);
}
