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
//! - [`symbols`]: function names, files and lines from ELF files (`--elf`);
//! - [`syscalls`]: the ARM EABI Linux syscall table (rings imported from QEMU logs);
//! - [`time`]: clock ticks to nanoseconds.
//!
//! Decoding goes only through [`tracemark_format`]; this crate adds discovery, numbering,
//! ordering and presentation.

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
pub mod symbols;
pub mod syscalls;
pub mod threads;
pub mod time;
