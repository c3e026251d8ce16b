//! Reading target memory: the one trait every live back end implements (a GDB remote
//! stub, a probe, a test's byte buffer), so the live-ring reader is tested without
//! hardware.

use std::io;

/// Target memory that can be read, perhaps while the target runs.
pub trait TargetMemory {
    /// Fills `buf` with the target's bytes at `addr`.
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Stops the target before a poll if reads need it stopped (an all-stop GDB stub);
    /// does nothing for back ends that read a running target.
    fn halt(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Lets the target run again after [`halt`](Self::halt).
    fn resume(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// True if [`halt`](Self::halt) stops the target (reads cannot race the writer).
    fn halts(&self) -> bool {
        false
    }
}

/// A buffer standing for target memory at `base` (tests, and replaying a file).
#[derive(Debug, Clone)]
pub struct Buffer {
    /// The target address of `bytes[0]`.
    pub base: u64,
    /// The memory.
    pub bytes: Vec<u8>,
}

impl TargetMemory for Buffer {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = addr
            .checked_sub(self.base)
            .and_then(|o| usize::try_from(o).ok())
            .filter(|&o| {
                o.checked_add(buf.len())
                    .is_some_and(|e| e <= self.bytes.len())
            })
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{addr:#x}+{}: outside the memory", buf.len()),
                )
            })?;
        buf.copy_from_slice(&self.bytes[start..start + buf.len()]);
        Ok(())
    }
}
