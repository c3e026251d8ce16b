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

/// A kernel-entry field that does not fit its bits (or a path that needs the other
/// constructor): the checked constructors refuse it instead of truncating it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryFieldError {
    /// The syscall number is above [`KernelEntry::MAX_SYSCALL`] (a negative seL4
    /// `syscall_t` passed as is is one of these).
    Syscall,
    /// The cap type is above [`KernelEntry::MAX_CAP_TYPE`].
    CapType,
    /// The invocation label is above [`KernelEntry::MAX_LABEL`].
    Label,
    /// The path is above 7, or is [`EntryPath::Syscall`] where the core/word layout is
    /// asked for.
    Path,
    /// The core is above [`KernelEntry::MAX_CORE`].
    Core,
    /// The word is above [`KernelEntry::MAX_WORD`].
    Word,
}

/// Which numbering of seL4's `entry_type_t` a packed `kernel_entry_t` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sel4EntryNumbering {
    /// seL4 as pinned by this project (1326364b, 16.0.0-dev): `Entry_Unknown` = 0,
    /// `Entry_Interrupt` = 1, ..., `Entry_Syscall` = 6, `Entry_VCPUFault`/`Entry_VMExit`
    /// = 7. This is the wire numbering ([`EntryPath`]).
    Current,
    /// Earlier releases, whose `entry_type_t` starts at `Entry_Interrupt` = 0 and has
    /// `Entry_UnimplementedDevice` = 6 (see [`EntryPath::from_upstream_sel4`]).
    Legacy,
}

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

    /// The largest syscall number (4 bits).
    pub const MAX_SYSCALL: u32 = 0xf;
    /// The largest cap type (5 bits).
    pub const MAX_CAP_TYPE: u32 = 0x1f;
    /// The largest invocation label (19 bits).
    pub const MAX_LABEL: u32 = 0x7_ffff;
    /// The largest core number (3 bits).
    pub const MAX_CORE: u32 = 7;
    /// The largest path-specific word (26 bits).
    pub const MAX_WORD: u32 = 0x3ff_ffff;

    /// A syscall entry, or the first field that does not fit its bits.
    #[inline]
    pub const fn try_syscall(
        syscall: u32,
        cap_type: u32,
        fastpath: bool,
        label: u32,
    ) -> Result<Self, EntryFieldError> {
        if syscall > Self::MAX_SYSCALL {
            return Err(EntryFieldError::Syscall);
        }
        if cap_type > Self::MAX_CAP_TYPE {
            return Err(EntryFieldError::CapType);
        }
        if label > Self::MAX_LABEL {
            return Err(EntryFieldError::Label);
        }
        Ok(Self::syscall(
            syscall as u8,
            cap_type as u8,
            fastpath,
            label,
        ))
    }

    /// A non-syscall entry, or the first field that does not fit its bits. `path` is an
    /// [`EntryPath`] wire value; [`EntryPath::Syscall`] is refused (use
    /// [`KernelEntry::try_syscall`]).
    #[inline]
    pub const fn try_other(path: u32, core: u32, word: u32) -> Result<Self, EntryFieldError> {
        if path > 7 || path == EntryPath::Syscall as u32 {
            return Err(EntryFieldError::Path);
        }
        if core > Self::MAX_CORE {
            return Err(EntryFieldError::Core);
        }
        if word > Self::MAX_WORD {
            return Err(EntryFieldError::Word);
        }
        Ok(Self::other(
            EntryPath::from_bits(path as u8),
            core as u8,
            word,
        ))
    }

    /// Bit of seL4's packed `kernel_entry_t` where its union (`core`/`word`, or the
    /// syscall fields) starts: `path:3` fills the first byte's storage unit and the
    /// union, not a bit-field, starts at the next byte (GCC and Clang, every ABI seL4
    /// supports; `SEL4_PACKED` makes the struct 5 bytes on 32-bit and 9 on 64-bit).
    pub const SEL4_UNION_BIT: u32 = 8;
    /// Bits of seL4's union: 3 + 26, or 4 + 5 + 1 + 19.
    pub const SEL4_UNION_BITS: u32 = 29;

    /// Converts seL4's own `kernel_entry_t`, its first bytes read as a little-endian
    /// integer (`memcpy` of `min(8, sizeof)` bytes), numbered as `numbering` says, into
    /// the wire word. Bits 3..8 and 37..64 are the struct's padding and are ignored.
    #[inline]
    pub const fn from_sel4_packed(packed: u64, numbering: Sel4EntryNumbering) -> Self {
        let path = (packed & 7) as u32;
        let union = ((packed >> Self::SEL4_UNION_BIT) & ((1 << Self::SEL4_UNION_BITS) - 1)) as u32;
        let path = match numbering {
            Sel4EntryNumbering::Current => EntryPath::from_bits(path as u8),
            Sel4EntryNumbering::Legacy => EntryPath::from_upstream_sel4(path),
        };
        // The wire word is seL4's layout without the padding: path, then the union.
        KernelEntry(path as u32 | union << 3)
    }

    /// The inverse of [`KernelEntry::from_sel4_packed`] for the current numbering:
    /// the little-endian integer of seL4's packed `kernel_entry_t` with these fields.
    #[inline]
    pub const fn to_sel4_packed(self) -> u64 {
        (self.0 as u64 & 7) | ((self.0 as u64 >> 3) << Self::SEL4_UNION_BIT)
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

    #[test]
    fn checked_constructors_refuse_what_does_not_fit() {
        assert_eq!(
            KernelEntry::try_syscall(15, 31, true, 0x7_ffff),
            Ok(KernelEntry::syscall(15, 31, true, 0x7_ffff))
        );
        assert_eq!(
            KernelEntry::try_syscall(16, 0, false, 0),
            Err(EntryFieldError::Syscall)
        );
        assert_eq!(
            KernelEntry::try_syscall(u32::MAX, 0, false, 0),
            Err(EntryFieldError::Syscall)
        );
        assert_eq!(
            KernelEntry::try_syscall(1, 32, false, 0),
            Err(EntryFieldError::CapType)
        );
        assert_eq!(
            KernelEntry::try_syscall(1, 0, false, 1 << 19),
            Err(EntryFieldError::Label)
        );
        assert_eq!(KernelEntry::try_other(6, 0, 0), Err(EntryFieldError::Path));
        assert_eq!(KernelEntry::try_other(8, 0, 0), Err(EntryFieldError::Path));
        assert_eq!(KernelEntry::try_other(1, 8, 0), Err(EntryFieldError::Core));
        assert_eq!(
            KernelEntry::try_other(1, 0, 1 << 26),
            Err(EntryFieldError::Word)
        );
        assert_eq!(
            KernelEntry::try_other(1, 7, (1 << 26) - 1),
            Ok(KernelEntry::other(EntryPath::Interrupt, 7, (1 << 26) - 1))
        );
    }

    /// Bytes of seL4's `kernel_entry_t` as GCC lays them out (the struct of
    /// `libsel4/include/sel4/benchmark_track_types.h` at 1326364b, compiled with
    /// `gcc` for x86_64 and `arm-linux-gnueabihf-gcc` for 32-bit ARM, fields set and the
    /// bytes printed): path = 6, syscall_no = 1, cap_type = 10, is_fastpath = 1,
    /// invocation_tag = 42 is `06 a1 aa 00 00` (then four zero bytes on 64-bit).
    #[test]
    fn sel4_packed_bytes_convert() {
        let packed = u64::from_le_bytes([0x06, 0xa1, 0xaa, 0, 0, 0, 0, 0]);
        let e = KernelEntry::from_sel4_packed(packed, Sel4EntryNumbering::Current);
        assert_eq!(e, KernelEntry::syscall(1, 10, true, 42));
        assert_eq!(e.to_sel4_packed(), packed);
        // The same word from a release with the legacy numbering: Entry_Syscall = 5.
        let legacy = u64::from_le_bytes([0x05, 0xa1, 0xaa, 0, 0, 0, 0, 0]);
        assert_eq!(
            KernelEntry::from_sel4_packed(legacy, Sel4EntryNumbering::Legacy),
            e
        );
        // Padding bits (3..8 and above 37) are ignored.
        assert_eq!(
            KernelEntry::from_sel4_packed(packed | 0xf8 | 0xff << 40, Sel4EntryNumbering::Current),
            e
        );
    }

    proptest! {
        #[test]
        fn sel4_packed_round_trips(word: u32) {
            let e = KernelEntry(word);
            prop_assert_eq!(KernelEntry::from_sel4_packed(e.to_sel4_packed(), Sel4EntryNumbering::Current), e);
        }

        #[test]
        fn syscall_fields_round_trip(sys in 0u8..16, cap in 0u8..32, fp: bool, label in 0u32..(1 << 19)) {
            let s = KernelEntry::syscall(sys, cap, fp, label).as_syscall().unwrap();
            prop_assert_eq!((s.syscall(), s.cap_type(), s.fastpath(), s.label()), (sys, cap, fp, label));
        }
    }
}
