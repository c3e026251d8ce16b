//! seL4 kernel-entry fields, packed as seL4's `kernel_entry_t` packs them.
//!
//! The 32-bit word starts with a 3-bit [`EntryPath`]; a syscall entry then carries the
//! syscall number, cap type, fastpath flag and invocation label
//! ([`SyscallEntryWord`]), any other entry a core number and a 26-bit word such as the
//! IRQ number or fault type ([`OtherEntryWord`]).
//!
//! seL4 has renumbered its enums between releases and configurations (MCS renumbers the
//! syscalls; upstream `entry_type_t` has no `Unknown` path). The numbering written on the
//! wire is the one defined here, fixed by format version 1; the numbering of syscall
//! numbers is named by the ring header's [`SyscallAbi`] so that the host names them right.

use bitfield_struct::bitfield;

/// Why the kernel was entered: bits 0..3 of the entry word. Values are fixed by format version 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum EntryPath {
    /// Unknown reason.
    Unknown = 0,
    /// Hardware interrupt.
    Interrupt = 1,
    /// A syscall number the kernel does not know.
    UnknownSyscall = 2,
    /// A user-level fault (undefined instruction, alignment, ...).
    UserLevelFault = 3,
    /// A debug fault (breakpoint, watchpoint, single step).
    DebugFault = 4,
    /// A virtual-memory fault.
    VmFault = 5,
    /// A syscall.
    Syscall = 6,
    /// A virtual-CPU fault (ARM hypervisor) or VM exit (x86 VT-x).
    VcpuFault = 7,
}

impl EntryPath {
    /// All paths, in wire order.
    pub const ALL: [EntryPath; 8] = [
        EntryPath::Unknown,
        EntryPath::Interrupt,
        EntryPath::UnknownSyscall,
        EntryPath::UserLevelFault,
        EntryPath::DebugFault,
        EntryPath::VmFault,
        EntryPath::Syscall,
        EntryPath::VcpuFault,
    ];

    /// The path with wire value `bits & 7`.
    #[inline]
    pub const fn from_bits(bits: u8) -> Self {
        Self::ALL[(bits & 7) as usize]
    }

    /// The wire value.
    #[inline]
    pub const fn into_bits(self) -> u8 {
        self as u8
    }

    /// Maps the `entry_type_t` of seL4 releases before `Entry_Unknown` was added
    /// (Entry_Interrupt = 0 ... Entry_Syscall = 5,
    /// Entry_UnimplementedDevice = 6, Entry_VCPUFault/Entry_VMExit = 7) to the wire path.
    pub const fn from_upstream_sel4(entry_type: u32) -> Self {
        match entry_type {
            0 => EntryPath::Interrupt,
            1 => EntryPath::UnknownSyscall,
            2 => EntryPath::UserLevelFault,
            3 => EntryPath::DebugFault,
            4 => EntryPath::VmFault,
            5 => EntryPath::Syscall,
            7 => EntryPath::VcpuFault,
            _ => EntryPath::Unknown,
        }
    }

    /// Maps `entry_type_t` of seL4 releases that start it with `Entry_Unknown = 0` (seL4
    /// 16.0.0-dev, commit 1326364b, the kernel `examples/sel4` builds): there the values
    /// are the wire values (`Entry_VCPUFault` on ARM and `Entry_VMExit` on x86 are 7).
    /// `shared-format/tests/sel4_abi.rs` checks this against the kernel's header.
    pub const fn from_sel4_entry_type(entry_type: u32) -> Self {
        if entry_type < 8 {
            EntryPath::from_bits(entry_type as u8)
        } else {
            EntryPath::Unknown
        }
    }

    /// The name used in decoded output.
    pub const fn name(self) -> &'static str {
        match self {
            EntryPath::Unknown => "Unknown",
            EntryPath::Interrupt => "Interrupt",
            EntryPath::UnknownSyscall => "UnknownSyscall",
            EntryPath::UserLevelFault => "UserLevelFault",
            EntryPath::DebugFault => "DebugFault",
            EntryPath::VmFault => "VMFault",
            EntryPath::Syscall => "Syscall",
            EntryPath::VcpuFault => "VCPUFault",
        }
    }
}

/// Layout of a syscall entry word (path = [`EntryPath::Syscall`]).
#[bitfield(u32)]
#[derive(PartialEq, Eq, Hash)]
pub struct SyscallEntryWord {
    /// Bits 0..3: the entry path (always [`EntryPath::Syscall`] here).
    #[bits(3)]
    pub path: u8,
    /// Bits 3..7: the syscall number as seL4 stores it (`-syscall`, 1..=15).
    #[bits(4)]
    pub syscall: u8,
    /// Bits 7..12: the cap type (`cap_tag_t`) of the invoked capability.
    #[bits(5)]
    pub cap_type: u8,
    /// Bit 12: entered through the fastpath.
    pub fastpath: bool,
    /// Bits 13..32: the invocation label.
    #[bits(19)]
    pub label: u32,
}

/// Layout of any other entry word: a core number and a 26-bit word.
#[bitfield(u32)]
#[derive(PartialEq, Eq, Hash)]
pub struct OtherEntryWord {
    /// Bits 0..3: the entry path.
    #[bits(3)]
    pub path: u8,
    /// Bits 3..6: the core that took the entry.
    #[bits(3)]
    pub core: u8,
    /// Bits 6..32: IRQ number, fault type or other path-specific word.
    #[bits(26)]
    pub word: u32,
}

/// A kernel entry as seL4's `kernel_entry_t` describes it: one packed 32-bit word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KernelEntry(pub u32);

impl KernelEntry {
    /// The placeholder word of a kernel entry whose information is not known yet
    /// (format version 2, section 9.5 of FORMAT.md): path Unknown, core 7, word
    /// `0x3ffffff`. Its varint takes 5 bytes, the most any 32-bit word takes, so the writer
    /// can later overwrite it in place with the real word, written as a 5-byte varint.
    pub const PENDING: KernelEntry = KernelEntry(0xffff_fff8);

    /// The 5-byte varint of `self.0` (padded: readers accept non-minimal varints), as
    /// written over the [`KernelEntry::PENDING`] placeholder.
    pub const fn padded_varint(self) -> [u8; 5] {
        let w = self.0;
        [
            (w & 0x7f) as u8 | 0x80,
            ((w >> 7) & 0x7f) as u8 | 0x80,
            ((w >> 14) & 0x7f) as u8 | 0x80,
            ((w >> 21) & 0x7f) as u8 | 0x80,
            (w >> 28) as u8,
        ]
    }

    /// A syscall entry. Fields wider than their bit widths are truncated to them.
    #[inline]
    pub const fn syscall(syscall: u8, cap_type: u8, fastpath: bool, label: u32) -> Self {
        KernelEntry(
            SyscallEntryWord::new()
                .with_path(EntryPath::Syscall as u8)
                .with_syscall(syscall & 0xf)
                .with_cap_type(cap_type & 0x1f)
                .with_fastpath(fastpath)
                .with_label(label & 0x7_ffff)
                .into_bits(),
        )
    }

    /// A non-syscall entry (interrupt, fault, ...) with core and word. A `path` of
    /// [`EntryPath::Syscall`] is stored as given, and then reads back as a syscall entry.
    #[inline]
    pub const fn other(path: EntryPath, core: u8, word: u32) -> Self {
        KernelEntry(
            OtherEntryWord::new()
                .with_path(path as u8)
                .with_core(core & 7)
                .with_word(word & 0x3ff_ffff)
                .into_bits(),
        )
    }

    /// The entry path.
    #[inline]
    pub const fn path(self) -> EntryPath {
        EntryPath::from_bits(self.0 as u8)
    }

    /// The syscall fields, if this is a syscall entry.
    #[inline]
    pub const fn as_syscall(self) -> Option<SyscallEntryWord> {
        match self.path() {
            EntryPath::Syscall => Some(SyscallEntryWord::from_bits(self.0)),
            _ => None,
        }
    }

    /// The core and word fields, if this is not a syscall entry.
    #[inline]
    pub const fn as_other(self) -> Option<OtherEntryWord> {
        match self.path() {
            EntryPath::Syscall => None,
            _ => Some(OtherEntryWord::from_bits(self.0)),
        }
    }
}

/// Which numbering the 4-bit syscall field uses; stored in the ring header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SyscallAbi {
    /// Numbers only, no names.
    Raw = 0,
    /// seL4 without MCS (releases 10 to 16.0.0-dev): Call = 1, ReplyRecv = 2, Send = 3,
    /// NBSend = 4, Recv = 5, Reply = 6, Yield = 7, NBRecv = 8, then the debug syscalls
    /// (DebugSendIPI = 15 only in SMP debug builds). Checked against the numbering a
    /// seL4 build generates by `shared-format/tests/sel4_abi.rs`.
    Sel4 = 1,
    /// seL4 with MCS: Call = 1, ReplyRecv = 2, NBSendRecv = 3, NBSendWait = 4, Send = 5,
    /// NBSend = 6, Recv = 7, NBRecv = 8, Wait = 9, NBWait = 10, Yield = 11.
    Sel4Mcs = 2,
    /// Linux on 32-bit ARM (EABI), as `tracemark import qemu` writes it. Linux numbers
    /// (up to 0xf0006 for the private ARM syscalls) do not fit the 4-bit `syscall`
    /// field, so a Linux syscall is an entry with path [`EntryPath::UnknownSyscall`]
    /// whose 26-bit `word` is the number from R7, as seL4 records a syscall outside its
    /// own ABI. Values 3 to 15 are left for seL4 numberings.
    LinuxArm = 16,
}

impl SyscallAbi {
    /// The ABI with wire value `v`, or `None` if unknown.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(SyscallAbi::Raw),
            1 => Some(SyscallAbi::Sel4),
            2 => Some(SyscallAbi::Sel4Mcs),
            16 => Some(SyscallAbi::LinuxArm),
            _ => None,
        }
    }

    /// The seL4 name of syscall number `n` (stored as `-syscall`), if known.
    pub const fn syscall_name(self, n: u8) -> Option<&'static str> {
        match self {
            SyscallAbi::Raw | SyscallAbi::LinuxArm => None,
            SyscallAbi::Sel4 => match n {
                1 => Some("Call"),
                2 => Some("ReplyRecv"),
                3 => Some("Send"),
                4 => Some("NBSend"),
                5 => Some("Recv"),
                6 => Some("Reply"),
                7 => Some("Yield"),
                8 => Some("NBRecv"),
                9 => Some("DebugPutChar"),
                10 => Some("DebugDumpScheduler"),
                11 => Some("DebugHalt"),
                12 => Some("DebugCapIdentify"),
                13 => Some("DebugSnapshot"),
                14 => Some("DebugNameThread"),
                15 => Some("DebugSendIPI"),
                _ => None,
            },
            SyscallAbi::Sel4Mcs => match n {
                1 => Some("Call"),
                2 => Some("ReplyRecv"),
                3 => Some("NBSendRecv"),
                4 => Some("NBSendWait"),
                5 => Some("Send"),
                6 => Some("NBSend"),
                7 => Some("Recv"),
                8 => Some("NBRecv"),
                9 => Some("Wait"),
                10 => Some("NBWait"),
                11 => Some("Yield"),
                12 => Some("DebugPutChar"),
                13 => Some("DebugDumpScheduler"),
                14 => Some("DebugHalt"),
                15 => Some("DebugCapIdentify"),
                _ => None,
            },
        }
    }

    /// The seL4 name of cap type `tag` (`cap_tag_t`). Architecture-independent caps have
    /// even tags and are named; odd tags are architecture caps and return `None`.
    pub const fn cap_name(self, tag: u8) -> Option<&'static str> {
        if matches!(self, SyscallAbi::Raw | SyscallAbi::LinuxArm) {
            return None;
        }
        match tag {
            0 => Some("Null"),
            2 => Some("Untyped"),
            4 => Some("Endpoint"),
            6 => Some("Notification"),
            8 => Some("Reply"),
            10 => Some("CNode"),
            12 => Some("Thread"),
            14 => Some("IrqControl"),
            16 => Some("IrqHandler"),
            18 => Some("Zombie"),
            20 => Some("Domain"),
            22 if matches!(self, SyscallAbi::Sel4Mcs) => Some("SchedContext"),
            24 if matches!(self, SyscallAbi::Sel4Mcs) => Some("SchedControl"),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn syscall_word_matches_the_seed_packing() {
        // The seed's packing: path | syscall << 3 | cap << 7 | fastpath << 12 | label << 13.
        let e = KernelEntry::syscall(1, 10, true, 42);
        assert_eq!(e.0, 6 | (1 << 3) | (10 << 7) | (1 << 12) | (42 << 13));
        let s = e.as_syscall().unwrap();
        assert_eq!(
            (s.syscall(), s.cap_type(), s.fastpath(), s.label()),
            (1, 10, true, 42)
        );
        assert!(e.as_other().is_none());
    }

    #[test]
    fn other_word_carries_core_and_26_bits() {
        let e = KernelEntry::other(EntryPath::Interrupt, 5, 0x3ff_ffff);
        let o = e.as_other().unwrap();
        assert_eq!((o.path(), o.core(), o.word()), (1, 5, 0x3ff_ffff));
        assert_eq!(e.path(), EntryPath::Interrupt);
    }

    #[test]
    fn upstream_numbering_is_mapped() {
        assert_eq!(EntryPath::from_upstream_sel4(5), EntryPath::Syscall);
        assert_eq!(EntryPath::from_upstream_sel4(0), EntryPath::Interrupt);
        assert_eq!(EntryPath::from_upstream_sel4(6), EntryPath::Unknown);
    }

    #[test]
    fn names_follow_the_abi() {
        assert_eq!(SyscallAbi::Sel4.syscall_name(5), Some("Recv"));
        assert_eq!(SyscallAbi::Sel4Mcs.syscall_name(5), Some("Send"));
        assert_eq!(SyscallAbi::Raw.syscall_name(1), None);
        assert_eq!(SyscallAbi::Sel4.cap_name(10), Some("CNode"));
        assert_eq!(SyscallAbi::Sel4.cap_name(22), None);
        assert_eq!(SyscallAbi::Sel4Mcs.cap_name(22), Some("SchedContext"));
    }

    proptest! {
        #[test]
        fn syscall_fields_round_trip(sys in 0u8..16, cap in 0u8..32, fp: bool, label in 0u32..(1 << 19)) {
            let s = KernelEntry::syscall(sys, cap, fp, label).as_syscall().unwrap();
            prop_assert_eq!((s.syscall(), s.cap_type(), s.fastpath(), s.label()), (sys, cap, fp, label));
        }
    }
}
