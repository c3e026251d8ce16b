//! Access to the ring memory through atomics.
//!
//! The ring lives in memory the caller provides. Each location is always accessed with
//! one width: the ring header and the block headers as 32-bit words ([`Mem::word`]), the
//! record area of each block as bytes ([`Mem::store_bytes`], [`Mem::load_byte`]). Going
//! through atomics means a reader on another core may copy the ring while the writer runs
//! without a data race; relaxed atomic stores compile to plain stores.

use crate::sync::{AtomicU32, AtomicU8, Ordering};

/// Borrowed ring memory, `len` bytes at `base`, 8-byte aligned.
#[cfg(not(loom))]
pub(crate) struct Mem<'a> {
    // INVARIANTS: `base` is 8-byte aligned and valid for reads and writes of `len` bytes
    // for 'a; for 'a the memory is accessed only through this `Mem` (we hold the `&'a mut`
    // it came from), and only with atomic operations.
    base: core::ptr::NonNull<u8>,
    len: usize,
    _borrow: core::marker::PhantomData<&'a [AtomicU8]>,
}

// SAFETY: all access to the memory goes through atomic types, which are `Sync`; `Mem`
// is a shared view of `[AtomicU8]`/`[AtomicU32]` memory, like `&'a [AtomicU8]`.
#[cfg(not(loom))]
unsafe impl Sync for Mem<'_> {}
// SAFETY: as for `Sync`: the memory is atomics only, and `&[AtomicU8]` is `Send`.
#[cfg(not(loom))]
unsafe impl Send for Mem<'_> {}

#[cfg(not(loom))]
impl<'a> Mem<'a> {
    /// Takes `bytes` for 'a; `None` unless it is 8-byte aligned.
    pub(crate) fn new(bytes: &'a mut [u8]) -> Option<Self> {
        if bytes.as_ptr() as usize % 8 != 0 {
            return None;
        }
        let len = bytes.len();
        Some(Mem {
            base: core::ptr::NonNull::from(bytes).cast(),
            len,
            _borrow: core::marker::PhantomData,
        })
    }

    /// The 32-bit word at byte offset `off` (a multiple of 4, inside the memory).
    #[inline(always)]
    pub(crate) fn word(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off % 4 == 0 && off + 4 <= self.len);
        // SAFETY: callers pass offsets derived from the checked geometry, so `off + 4 <=
        // len` and `off % 4 == 0`; with `base` 8-byte aligned the pointer is in bounds and
        // aligned for `AtomicU32`, which has the size and alignment of `u32`. The memory
        // lives for 'a and is only accessed atomically (struct invariant).
        unsafe { &*self.base.as_ptr().add(off).cast::<AtomicU32>() }
    }

    /// The 64-bit word at byte offset `off` (a multiple of 8). Only `last_ts` is accessed
    /// this way, and only by the writer; it is never accessed as 32-bit words.
    #[cfg(all(target_has_atomic = "64", not(test)))]
    #[inline(always)]
    fn word64(&self, off: usize) -> &core::sync::atomic::AtomicU64 {
        debug_assert!(off % 8 == 0 && off + 8 <= self.len);
        // SAFETY: `off` is LAST_TS (104), a multiple of 8 inside the header, and `base` is
        // 8-byte aligned, so the pointer is in bounds and aligned for `AtomicU64` (size and
        // alignment of `u64` on targets with 64-bit atomics); the memory lives for 'a and
        // is only accessed atomically, and these 8 bytes always with this width, except
        // by `read_at`'s 32-bit loads on other cores, which see either value of each half.
        unsafe {
            &*self
                .base
                .as_ptr()
                .add(off)
                .cast::<core::sync::atomic::AtomicU64>()
        }
    }

    #[inline(always)]
    fn byte(&self, off: usize) -> &AtomicU8 {
        debug_assert!(off < self.len);
        // SAFETY: `off < len` (callers stay inside a block, whose bounds the geometry
        // checked against `len`); `AtomicU8` has the size and alignment of `u8`; the memory
        // lives for 'a and is only accessed atomically (struct invariant).
        unsafe { &*self.base.as_ptr().add(off).cast::<AtomicU8>() }
    }

    /// The memory's address, for debuggers.
    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.base.as_ptr()
    }

    /// A copy of this view for one write, so the compiler keeps the base address in a
    /// register: through `&self` it must reload it after every atomic store, which
    /// might (as far as it knows) have changed the `Ring` it lives in.
    #[inline(always)]
    pub(crate) fn local(&self) -> Mem<'a> {
        Mem {
            base: self.base,
            len: self.len,
            _borrow: core::marker::PhantomData,
        }
    }
}

/// Model-checked ring memory for loom: words and bytes as separate loom atomics. Each
/// offset is only ever used with one width, so this models the real memory exactly.
#[cfg(loom)]
pub(crate) struct Mem<'a> {
    words: std::vec::Vec<AtomicU32>,
    bytes: std::vec::Vec<AtomicU8>,
    _borrow: core::marker::PhantomData<&'a ()>,
}

#[cfg(loom)]
impl Mem<'_> {
    pub(crate) fn new_model(len: usize) -> Self {
        Mem {
            words: (0..len / 4).map(|_| AtomicU32::new(0)).collect(),
            bytes: (0..len).map(|_| AtomicU8::new(0)).collect(),
            _borrow: core::marker::PhantomData,
        }
    }

    #[inline(always)]
    pub(crate) fn word(&self, off: usize) -> &AtomicU32 {
        &self.words[off / 4]
    }

    #[inline(always)]
    fn byte(&self, off: usize) -> &AtomicU8 {
        &self.bytes[off]
    }

    pub(crate) fn as_ptr(&self) -> *const u8 {
        core::ptr::null()
    }

    #[inline(always)]
    pub(crate) fn local(&self) -> &Self {
        self
    }
}

impl Mem<'_> {
    /// Stores byte `b` at offset `off` (inside one block's record area).
    #[inline(always)]
    pub(crate) fn store_byte(&self, off: usize, b: u8) {
        self.byte(off).store(b, Ordering::Relaxed);
    }

    /// Loads the byte at offset `off`.
    #[inline(always)]
    pub(crate) fn load_byte(&self, off: usize) -> u8 {
        self.byte(off).load(Ordering::Relaxed)
    }

    /// Loads a 64-bit value kept as two little-endian words at `off` (low word first).
    /// Only the writing CPU calls this on live fields, so the halves are consistent.
    #[inline(always)]
    pub(crate) fn load_u64(&self, off: usize) -> u64 {
        let lo = self.word(off).load(Ordering::Relaxed);
        let hi = self.word(off + 4).load(Ordering::Relaxed);
        u64::from(lo) | (u64::from(hi) << 32)
    }

    /// Stores a 64-bit value as two words at `off`.
    #[inline(always)]
    pub(crate) fn store_u64(&self, off: usize, v: u64) {
        self.word(off).store(v as u32, Ordering::Relaxed);
        self.word(off + 4)
            .store((v >> 32) as u32, Ordering::Relaxed);
    }

    /// Loads the writer's `last_ts`: one 64-bit atomic where the target has them.
    #[inline(always)]
    pub(crate) fn load_last_ts(&self) -> u64 {
        #[cfg(all(target_has_atomic = "64", not(loom), not(test)))]
        {
            self.word64(tracemark_format::ring::offsets::LAST_TS)
                .load(Ordering::Relaxed)
        }
        #[cfg(not(all(target_has_atomic = "64", not(loom), not(test))))]
        {
            self.load_u64(tracemark_format::ring::offsets::LAST_TS)
        }
    }

    /// Loads the header word at `off` for a reader: like `word(off).load(Acquire)`, except
    /// that the two words of `last_ts` are read with the width the writer uses for them.
    pub(crate) fn load_header_word(&self, off: usize) -> u32 {
        let last_ts = tracemark_format::ring::offsets::LAST_TS;
        if off & !7 == last_ts {
            let ts = self.load_last_ts();
            return if off == last_ts {
                ts as u32
            } else {
                (ts >> 32) as u32
            };
        }
        self.word(off).load(Ordering::Acquire)
    }

    /// Stores the writer's `last_ts`.
    #[inline(always)]
    pub(crate) fn store_last_ts(&self, ts: u64) {
        #[cfg(all(target_has_atomic = "64", not(loom), not(test)))]
        {
            self.word64(tracemark_format::ring::offsets::LAST_TS)
                .store(ts, Ordering::Relaxed)
        }
        #[cfg(not(all(target_has_atomic = "64", not(loom), not(test))))]
        {
            self.store_u64(tracemark_format::ring::offsets::LAST_TS, ts)
        }
    }

    /// Reads a 64-bit counter of the writer from another core: retries until the high
    /// word is stable around the low word (counters only grow).
    pub(crate) fn load_u64_remote(&self, off: usize) -> u64 {
        loop {
            let hi = self.word(off + 4).load(Ordering::Acquire);
            let lo = self.word(off).load(Ordering::Acquire);
            if self.word(off + 4).load(Ordering::Acquire) == hi {
                return u64::from(lo) | (u64::from(hi) << 32);
            }
        }
    }
}
