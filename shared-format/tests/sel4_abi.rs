//! Checks the format crate's seL4 tables (syscall numbering, entry paths, cap types)
//! against what a real seL4 build generates, so that a renumbering in a future seL4 is
//! caught.
//!
//! Needs a configured seL4 kernel build: `scripts/test-sel4.sh` (through
//! `examples/sel4/check.sh`) runs it with
//! `TRACEMARK_SEL4_BUILD=<kernel build folder>` and `TRACEMARK_SEL4_SRC=<seL4 sources>`.
//! Without them the tests are ignored (`cargo test` skips them; `--include-ignored`
//! without the variables fails).

use std::collections::BTreeMap;
use std::path::PathBuf;

use tracemark_format::{EntryPath, SyscallAbi};

fn dir(var: &str) -> PathBuf {
    PathBuf::from(std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run examples/sel4/check.sh or scripts/test-sel4.sh")
    }))
}

/// The libsel4 build folder: `TRACEMARK_SEL4_LIBSEL4` if set (a project build puts it
/// next to the kernel's), else `libsel4/` in the kernel build.
fn libsel4_dir() -> PathBuf {
    std::env::var("TRACEMARK_SEL4_LIBSEL4")
        .map(PathBuf::from)
        .unwrap_or_else(|_| dir("TRACEMARK_SEL4_BUILD").join("libsel4"))
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `name = -N` (or `= N`) enumerators of a C header whose names start with `prefix`.
fn enumerators(text: &str, prefix: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim().trim_end_matches(',');
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let name = name.trim();
        if let (Some(rest), Ok(v)) = (name.strip_prefix(prefix), value.trim().parse::<i64>()) {
            out.insert(rest.to_string(), v);
        }
    }
    out
}

#[test]
#[ignore = "needs a seL4 build: examples/sel4/check.sh runs it"]
fn syscall_numbering_matches_the_generated_headers() {
    let build = dir("TRACEMARK_SEL4_BUILD");
    let lib = enumerators(
        &read(libsel4_dir().join("include/sel4/syscall.h")),
        "seL4_Sys",
    );
    let kernel = enumerators(&read(build.join("gen_headers/arch/api/syscall.h")), "Sys");
    assert!(lib.len() >= 14, "too few syscalls parsed: {lib:?}");
    assert_eq!(lib, kernel, "libsel4 and the kernel disagree");
    let mut checked = 0;
    for (name, &v) in &lib {
        // seL4 stores `-syscall` in 4 bits; larger numbers cannot be recorded.
        if (1..=15).contains(&-v) {
            assert_eq!(
                SyscallAbi::Sel4.syscall_name((-v) as u8),
                Some(name.as_str()),
                "syscall -{} is seL4_Sys{name} in this seL4",
                -v
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 15);
}

/// The numbering seL4's generator gives: the API syscalls of the configuration, then the
/// debug ones, from -1 down.
fn xml_numbering(xml: &str, api: &str) -> Vec<String> {
    let section = |tag: &str| -> &str {
        let start = xml
            .find(&format!("<{tag}>"))
            .unwrap_or_else(|| panic!("<{tag}>"));
        let end = xml[start..]
            .find(&format!("</{tag}>"))
            .unwrap_or_else(|| panic!("</{tag}>"));
        &xml[start..start + end]
    };
    let names = |text: &str| -> Vec<String> {
        text.split("<syscall name=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap_or_default().to_string())
            .collect()
    };
    let mut all = names(section(api));
    all.extend(names(section("debug")));
    all
}

#[test]
#[ignore = "needs a seL4 build: examples/sel4/check.sh runs it"]
fn mcs_numbering_matches_the_syscall_definitions() {
    let src = dir("TRACEMARK_SEL4_SRC");
    let xml = read(src.join("libsel4/include/api/syscall.xml"));
    // The same rule reproduces the generated (non-MCS) header of the build.
    let generated = enumerators(
        &read(libsel4_dir().join("include/sel4/syscall.h")),
        "seL4_Sys",
    );
    for (i, name) in xml_numbering(&xml, "api-master").iter().enumerate() {
        assert_eq!(generated.get(name), Some(&-(i as i64 + 1)), "{name}");
    }
    let mcs = xml_numbering(&xml, "api-mcs");
    for (i, name) in mcs.iter().enumerate().take(15) {
        assert_eq!(
            SyscallAbi::Sel4Mcs.syscall_name(i as u8 + 1),
            Some(name.as_str()),
            "MCS syscall -{}",
            i + 1
        );
    }
}

#[test]
#[ignore = "needs a seL4 build: examples/sel4/check.sh runs it"]
fn entry_paths_match_entry_type_t() {
    let src = dir("TRACEMARK_SEL4_SRC");
    let text = read(src.join("libsel4/include/sel4/benchmark_track_types.h"));
    let start = text.find("typedef enum {").expect("entry_type_t");
    let end = text[start..]
        .find("} entry_type_t;")
        .expect("entry_type_t end");
    // Sequential enumerators; the architecture-specific last one (VCPUFault on ARM,
    // VMExit on x86) is 7 on either.
    let mut value = 0u32;
    let mut seen = 0;
    for line in text[start..start + end].lines() {
        let line = line.trim().trim_end_matches(',');
        let Some(name) = line.strip_prefix("Entry_") else {
            continue;
        };
        let v = if name == "VMExit" { 7 } else { value };
        let want = match name {
            "VMExit" => "VCPUFault",
            other => other,
        };
        assert_eq!(
            EntryPath::from_sel4_entry_type(v).name(),
            want,
            "Entry_{name} = {v}"
        );
        if name != "VMExit" {
            value += 1;
        }
        seen += 1;
    }
    assert_eq!(seen, 9);
}

#[test]
#[ignore = "needs a seL4 build: examples/sel4/check.sh runs it"]
fn cap_types_match_cap_tag_t() {
    let build = dir("TRACEMARK_SEL4_BUILD");
    let caps = enumerators(
        &read(build.join("generated/arch/object/structures_gen.h")),
        "cap_",
    );
    let names: BTreeMap<&str, &str> = [
        ("null_cap", "Null"),
        ("untyped_cap", "Untyped"),
        ("endpoint_cap", "Endpoint"),
        ("notification_cap", "Notification"),
        ("reply_cap", "Reply"),
        ("cnode_cap", "CNode"),
        ("thread_cap", "Thread"),
        ("irq_control_cap", "IrqControl"),
        ("irq_handler_cap", "IrqHandler"),
        ("zombie_cap", "Zombie"),
        ("domain_cap", "Domain"),
    ]
    .into_iter()
    .collect();
    let mut checked = 0;
    for (name, &tag) in &caps {
        let tag = u8::try_from(tag).expect("cap tag fits 5 bits");
        match names.get(name.as_str()) {
            Some(&want) => {
                assert_eq!(SyscallAbi::Sel4.cap_name(tag), Some(want), "cap_{name}");
                checked += 1;
            }
            // Architecture caps: odd tags, not named by the format crate.
            None => assert!(
                tag % 2 == 1 && SyscallAbi::Sel4.cap_name(tag).is_none(),
                "cap_{name} = {tag} is not in the format crate's table"
            ),
        }
    }
    assert_eq!(checked, names.len(), "{caps:?}");
}
