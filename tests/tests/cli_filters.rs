//! Property: `decode` with any combination of `--cpu`, `--kind`, `--from` and `--to`, with
//! one worker thread or two, in any output format, prints exactly the lines of the full
//! linear decode that the same filter selects, in the same order (issue 7, point 1:
//! `--to` used to print stale, duplicated lines from reused buffers).

use std::sync::OnceLock;

use crate::common::{json_lines, kernel_sim, tracemark, tracemark_ok, u, Sim};
use proptest::prelude::*;

/// A dump and its full decode: per record (cpu, ts, kind) and its line in each format.
struct Reference {
    sim: Sim,
    records: Vec<(u64, u64, String)>,
    /// Lines of the full decode per format (`json`, `csv` without its header, `text`).
    lines: [Vec<String>; 3],
    max_ts: u64,
    cpus: u64,
}

const FORMATS: [&str; 3] = ["json", "csv", "text"];
const KINDS: [&str; 8] = [
    "KENTRY", "KEXIT", "IRQ", "FENTRY", "FEXIT", "USER", "IMAGE", "LOST",
];

fn reference(sim: Sim, cpus: u64) -> Reference {
    let full = |format: &str| -> Vec<String> {
        let out = tracemark_ok(&["decode", sim.dump_str(), "--format", format]);
        let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
        if format == "csv" {
            lines.remove(0);
        }
        lines
    };
    let json = full("json");
    let records: Vec<(u64, u64, String)> = json_lines(&json.join("\n"))
        .iter()
        .map(|v| {
            (
                u(v, "cpu"),
                u(v, "ts"),
                v["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let lines = [json, full("csv"), full("text")];
    for l in &lines {
        assert_eq!(l.len(), records.len(), "every format prints every record");
    }
    let max_ts = records.iter().map(|r| r.1).max().unwrap_or(0);
    Reference {
        sim,
        records,
        lines,
        max_ts,
        cpus,
    }
}

/// The reproduction (one CPU, drop mode, 255 blocks: buffers are reused many
/// times) and a wrapped three-CPU overwrite ring (torn block, three streams merged).
fn dumps() -> &'static [Reference; 2] {
    static D: OnceLock<[Reference; 2]> = OnceLock::new();
    D.get_or_init(|| {
        [
            reference(kernel_sim(100_000, 1, 256 << 10, "drop", 1024, 1), 1),
            reference(kernel_sim(60_000, 3, 64 << 10, "overwrite", 512, 7), 3),
        ]
    })
}

#[derive(Debug, Clone)]
struct Case {
    dump: usize,
    cpus: Vec<u64>,
    kinds: Vec<usize>,
    /// Fractions of the dump's time span, in thousandths.
    from: Option<u64>,
    to: Option<u64>,
    /// Times given in seconds rather than ticks.
    seconds: bool,
    format: usize,
}

fn case() -> impl Strategy<Value = Case> {
    (
        0usize..2,
        proptest::collection::vec(0u64..4, 0..3),
        proptest::collection::vec(0usize..8, 0..3),
        proptest::option::of(0u64..1100),
        proptest::option::of(0u64..1100),
        any::<bool>(),
        0usize..3,
    )
        .prop_map(|(dump, cpus, kinds, from, to, seconds, format)| Case {
            dump,
            cpus,
            kinds,
            from,
            to,
            seconds,
            format,
        })
}

/// The command-line time for `ticks` (kernel-sim's clock runs at 1 GHz).
fn time_arg(ticks: u64, seconds: bool) -> String {
    if seconds {
        format!("{}.{:09}", ticks / 1_000_000_000, ticks % 1_000_000_000)
    } else {
        format!("{ticks}t")
    }
}

fn check(c: &Case) -> Result<(), TestCaseError> {
    let r = &dumps()[c.dump];
    let from = c.from.map(|f| r.max_ts / 1000 * f);
    let to = c.to.map(|t| r.max_ts / 1000 * t);
    let mut args: Vec<String> = vec![
        "decode".into(),
        r.sim.dump_str().into(),
        "--format".into(),
        FORMATS[c.format].into(),
    ];
    for cpu in &c.cpus {
        args.extend(["--cpu".into(), cpu.to_string()]);
    }
    if !c.kinds.is_empty() {
        let names: Vec<&str> = c.kinds.iter().map(|&k| KINDS[k]).collect();
        args.extend(["--kind".into(), names.join(",")]);
    }
    if let Some(f) = from {
        args.extend(["--from".into(), time_arg(f, c.seconds)]);
    }
    if let Some(t) = to {
        args.extend(["--to".into(), time_arg(t, c.seconds)]);
    }
    let expected: Vec<&str> = r
        .records
        .iter()
        .zip(&r.lines[c.format])
        .filter(|((cpu, ts, kind), _)| {
            (c.cpus.is_empty() || c.cpus.contains(cpu))
                && (c.kinds.is_empty() || c.kinds.iter().any(|&k| KINDS[k] == kind))
                && from.is_none_or(|f| *ts >= f)
                && to.is_none_or(|t| *ts <= t)
        })
        .map(|(_, line)| line.as_str())
        .collect();
    prop_assert!(r.cpus >= 1);
    // A selection that cannot select anything is refused, not answered with nothing
    // (issue 20, point 16): a CPU the dump does not have, or --from after --to.
    let absent_cpu = c.cpus.iter().any(|&cpu| cpu >= r.cpus);
    let empty_window = matches!((from, to), (Some(f), Some(t)) if f > t);
    for threads in ["1", "2"] {
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        a.extend(["--threads", threads]);
        let out = tracemark(&a);
        if absent_cpu || empty_window {
            let err = String::from_utf8_lossy(&out.stderr);
            prop_assert_eq!(out.status.code(), Some(1), "{:?}: {}", a, err);
            prop_assert!(out.stdout.is_empty(), "{:?}: no records", a);
            prop_assert_eq!(err.lines().count(), 1, "{:?}: {}", a, err);
            let why = if absent_cpu {
                "--cpu"
            } else {
                "--from is after --to"
            };
            prop_assert!(err.contains(why), "{:?}: {}", a, err);
            continue;
        }
        prop_assert!(
            out.status.success(),
            "{a:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let mut got: Vec<&str> = stdout.lines().collect();
        if c.format == 1 {
            prop_assert_eq!(got.first().copied(), Some("cpu,n,ts,time,kind,detail"));
            got.remove(0);
        }
        prop_assert_eq!(got.len(), expected.len(), "{:?}: line count", a);
        prop_assert_eq!(&got, &expected, "{:?}", a);
    }
    Ok(())
}

#[test]
fn to_alone_matches_the_linear_decode() {
    // The exact case: 76 records up to tick 21000, every time.
    for _ in 0..3 {
        check(&Case {
            dump: 0,
            cpus: vec![],
            kinds: vec![],
            from: None,
            to: Some(0),
            seconds: false,
            format: 2,
        })
        .unwrap();
        let r = &dumps()[0];
        let out = tracemark_ok(&["decode", r.sim.dump_str(), "--to", "21000t"]);
        let expected = r.records.iter().filter(|x| x.1 <= 21000).count();
        assert!(expected > 0);
        assert_eq!(out.lines().count(), expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn every_filter_combination_matches_the_linear_decode(c in case()) {
        check(&c)?;
    }
}
