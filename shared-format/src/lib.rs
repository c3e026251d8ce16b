//! The tracemark wire format, defined once for the target encoder and the host decoder.
//!
//! - [`ring`]: the ring memory (header, blocks, positions) and [`ring::RingView`] to read it;
//! - [`record`]: the records inside a block, their encoding and [`record::BlockRecords`];
//! - [`sel4`]: the packed seL4 kernel-entry word and the seL4 names;
//! - [`numbering`]: the record-numbering rule every reader uses;
//! - [`varint`]: the LEB128 integers records are made of;
//! - [`scan`]: a fast pass over records for summaries, without building events;
//! - [`uart`]: framing of a dump over a text console;
//! - [`freertos`]: the USER event ids of the FreeRTOS integration.
//!
//! `FORMAT.md` at the repository root describes all of it byte by byte.
#![cfg_attr(not(test), no_std)]

mod crc32;
pub mod freertos;
pub mod live;
pub mod numbering;
pub mod record;
pub mod ring;
pub mod scan;
pub mod sel4;
pub mod uart;
pub mod varint;

pub use record::{Event, ExitDuration, Kind, Record, UserPayload};
pub use ring::{Geometry, Mode, RingHeader, RingView};
pub use sel4::{EntryFieldError, EntryPath, KernelEntry, Sel4EntryNumbering, SyscallAbi};
