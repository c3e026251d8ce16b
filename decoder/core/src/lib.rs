//! The decoding library of tracemark: read dumps and raw memory images, decode their
//! rings in time order, summarise them, and build and query an index.
//!
//! The `tracemark` command-line tool (crate `tracemark-cli`) is built on it, and so are
//! `tracemark-export` (Perfetto, Chrome JSON, CTF, Parquet), `tracemark-capture` (live
//! capture) and `tracemark-import` (QEMU logs); none of their dependencies are needed
//! here.
//!
//! - [`input`]: open a file (memory-mapped) and tell what kind of input it is;
//! - [`dump`]: find the rings in the bytes, list their blocks, number their records;
//! - [`merge`]: records of all CPUs in time order, with kernel exits matched to entries;
//! - [`par`]: runs of blocks processed in parallel, with kernel exits matched across them;
//! - [`pipeline`]: the decode command: parallel formatting, merged by time;
//! - [`filter`]: which records a command wants;
//! - [`render`]: text, JSON Lines and CSV output;
//! - [`stats`]: the summary of `tracemark stats`;
//! - [`hot`]: the hottest functions (calls, inclusive time) for `tracemark stats`;
//! - [`index`]: the sparse block index of `tracemark index` and its queries.
//! - [`extract`]: dumps recovered from the `@TM:` lines of a UART log.
//! - `symbols` (feature `symbols`, on by default): function names, files and lines from
//!   ELF files (`--elf`);
//! - [`syscalls`]: the ARM EABI Linux syscall table (rings imported from QEMU logs);
//! - [`time`]: clock ticks to nanoseconds.
//!
//! Decoding goes only through [`tracemark_format`]; this crate adds discovery, numbering,
//! ordering and presentation.
//!
//! # Example
//!
//! Open a dump, iterate its records in time order across CPUs, and add up the kernel-exit
//! durations of each syscall (measured on the target, in clock ticks):
//!
//! ```
//! # use tracemark::{Config, KernelEntry, Mode};
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("dump.bin");
//! # let config = Config { mode: Mode::Drop, block_size: 256, clock_hz: 1_000_000, ..Config::new() };
//! # std::fs::write(&path, tracemark_tests::ring_image(&config, 8, 1000, |t, clock| {
//! #     for (syscall, ticks) in [(1, 30), (2, 50), (1, 70)] {
//! #         t.kernel_entry(KernelEntry::syscall(syscall, 4, false, 0));
//! #         clock.advance(ticks);
//! #         t.kernel_exit();
//! #         clock.advance(10);
//! #     }
//! # }))?;
//! use std::collections::BTreeMap;
//!
//! use tracemark_decoder::input::{DumpBytes, Input};
//! use tracemark_decoder::merge::{Merged, RingCursor};
//! use tracemark_format::record::ExitDuration;
//! use tracemark_format::Event;
//!
//! // A dump file, a raw memory image or a UART log with `@TM:` lines.
//! let bytes = DumpBytes::new(Input::open(&path)?)?;
//! let dump = bytes.dump()?;
//! let rings = (0..dump.rings.len() as u32).map(|r| RingCursor::new(&dump, r, 0));
//! // Syscall number -> (exits, total ticks).
//! let mut per_syscall: BTreeMap<u8, (u64, u64)> = BTreeMap::new();
//! for item in Merged::new(rings.collect()) {
//!     let Event::KernelExit(ExitDuration::Ticks(ticks)) = item.event else { continue };
//!     // Each exit comes with the entry it closes.
//!     if let Some(syscall) = item.entry.and_then(|e| e.as_syscall()) {
//!         let s = per_syscall.entry(syscall.syscall()).or_default();
//!         s.0 += 1;
//!         s.1 += ticks;
//!     }
//! }
//! assert_eq!(per_syscall[&1], (2, 100));
//! assert_eq!(per_syscall[&2], (1, 50));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`stats::compute`] does the same and more (histograms, interrupts, losses) in
//! parallel; [`pipeline::write()`] prints records as text, JSON Lines or CSV.
//!
//! # Features
//!
//! - `symbols` (default): the `symbols` module, function names, files and lines from
//!   ELF files (`addr2line`'s loader and `object`). Without it the dependencies are only
//!   what decoding needs: `default-features = false`.

pub mod dump;
pub mod extract;
pub mod filter;
pub mod hot;
pub mod index;
pub mod input;
pub mod merge;
pub mod par;
pub mod pipeline;
pub mod render;
pub mod stats;
#[cfg(feature = "symbols")]
pub mod symbols;
pub mod syscalls;
pub mod threads;
pub mod time;
