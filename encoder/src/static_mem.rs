//! Static ring memory that can be handed out once.

use core::cell::UnsafeCell;

use crate::sync::{AtomicBool, Ordering};

/// `N` bytes of 8-byte aligned memory for a ring, meant for a `static`:
///
/// ```
/// static RING0: tracemark::RingMemory<{ 64 * 1024 }> = tracemark::RingMemory::new();
/// let memory: &'static mut [u8] = RING0.take().unwrap();
/// assert!(RING0.take().is_none()); // a second owner is refused
/// # let _ = memory;
/// ```
#[repr(C, align(8))]
pub struct RingMemory<const N: usize> {
    bytes: UnsafeCell<[u8; N]>,
    taken: AtomicBool,
}

// SAFETY: the bytes are reachable only through `take`, which hands out the one `&mut`
// at most once (guarded by the atomic swap of `taken`), or through `get_mut`, which needs
// `&mut self`; so no two threads ever reach the bytes through a shared `RingMemory`.
unsafe impl<const N: usize> Sync for RingMemory<N> {}

impl<const N: usize> RingMemory<N> {
    /// Zeroed memory, not yet taken.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        RingMemory {
            bytes: UnsafeCell::new([0; N]),
            taken: AtomicBool::new(false),
        }
    }

    /// The memory, the first time only.
    // The `&mut` from `&self` is sound: the atomic `taken` flag hands it out once.
    #[allow(clippy::mut_from_ref)]
    pub fn take(&'static self) -> Option<&'static mut [u8]> {
        if self.taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: `taken` was false and is now true, and the swap is atomic, so this is
        // the only `&mut` to the bytes ever created through `&self`; the static lives
        // forever.
        Some(unsafe { &mut *self.bytes.get() })
    }

    /// The memory, through exclusive access (no static needed).
    pub fn get_mut(&mut self) -> &mut [u8] {
        self.bytes.get_mut()
    }
}

#[cfg(not(loom))]
impl<const N: usize> Default for RingMemory<N> {
    fn default() -> Self {
        Self::new()
    }
}
