//! Dumps made from traces other tools record: one module per source.
//!
//! - [`qemu`]: QEMU `-d exec,cpu,in_asm` execution logs of 32-bit ARM code.

pub mod qemu;
