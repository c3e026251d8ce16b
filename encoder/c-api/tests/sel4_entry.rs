//! `tm_kernel_entry_raw` takes seL4's own `kernel_entry_t`, packed by the C compiler from
//! seL4's bitfield definition (path in the first byte, the union from the second), in
//! the entry-path numbering of the release the ABI setting names: the pinned seL4
//! (`Entry_Unknown = 0`) or a legacy release (`Entry_Interrupt = 0`). Before, it took
//! tracemark's own wire word, so seL4's Syscall word decoded as a fault.

mod common;

use std::path::Path;
use std::process::Command;

use common::{build_c, build_staticlib, decode, run, REPO};
use tracemark_format::{EntryPath, Event, KernelEntry};

fn expected() -> Vec<Event> {
    [
        KernelEntry::syscall(1, 10, true, 42),
        KernelEntry::syscall(15, 31, false, 0x7ffff),
        KernelEntry::other(EntryPath::Interrupt, 3, 27),
        KernelEntry::other(EntryPath::VmFault, 0, 0x3ff_ffff),
        KernelEntry::other(EntryPath::UnknownSyscall, 1, 456),
        KernelEntry::other(EntryPath::UserLevelFault, 2, 0x1234),
        KernelEntry::other(EntryPath::DebugFault, 4, 5),
        KernelEntry::other(EntryPath::VcpuFault, 7, 6),
    ]
    .into_iter()
    .map(Event::KernelEntry)
    .collect()
}

#[test]
fn sel4_packed_kernel_entries_in_both_numberings() {
    let work = tempfile::tempdir().unwrap();
    let lib = build_staticlib("sel4-entry-target");
    let src = Path::new(REPO).join("encoder/c-api/tests/c/sel4_entry.c");
    for (name, flags) in [("current", &[][..]), ("legacy", &["-DLEGACY"][..])] {
        let exe = build_c(work.path(), name, std::slice::from_ref(&src), flags, &lib);
        let ring = work.path().join(format!("{name}.bin"));
        let out = run(Command::new(&exe).arg(&ring));
        let stdout = String::from_utf8(out.stdout).unwrap();
        // The struct is packed: 5 bytes on 32-bit targets, 9 on 64-bit ones.
        let size = if cfg!(target_pointer_width = "64") {
            9
        } else {
            5
        };
        assert!(
            stdout.contains(&format!("sizeof(kernel_entry_t) {size}")),
            "{stdout}"
        );
        let events: Vec<Event> = decode(&std::fs::read(&ring).unwrap())
            .into_iter()
            .map(|r| r.event)
            .collect();
        assert_eq!(events, expected(), "{name} numbering");
    }
}
