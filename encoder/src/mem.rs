//! Access to the ring memory through atomics.
//!
//! The ring lives in memory the caller provides. Each location is always accessed with
//! one width: the ring header and the block headers as 32-bit words, the record area of
//! each block as bytes. Going through atomics means a reader on another core may copy the
//! ring while the writer runs without a data race; relaxed atomic stores compile to plain
//! stores.
//!
//! Ring-header fields are reached with [`Mem::hdr`] and friends, which are safe: a `Mem`
//! is never shorter than [`MIN_LEN`], and they keep the offset below it. Everything past
//! the header (block headers, records) is reached with `unsafe` functions whose offsets
//! the caller derives from the ring's geometry: the recording path cannot afford a bounds
//! check, nor the panic path one would bring.

use tracemark_format::ring::{MIN_BLOCK_COUNT, MIN_BLOCK_SIZE, RING_HEADER_LEN};

use crate::sync::{AtomicU32, AtomicU8, Ordering};

/// The shortest memory a [`Mem`] takes: a ring header and the smallest blocks.
pub(crate) const MIN_LEN: usize =
    RING_HEADER_LEN + MIN_BLOCK_COUNT as usize * MIN_BLOCK_SIZE as usize;

/// Header offsets are masked with this: below 256, a multiple of 4.
const HEADER_MASK: usize = 0xfc;
const _: () = assert!(RING_HEADER_LEN <= HEADER_MASK + 4 && HEADER_MASK + 4 <= MIN_LEN);

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
    /// Takes `bytes` for 'a; `None` unless it is 8-byte aligned and at least
    /// [`MIN_LEN`] long.
    pub(crate) fn new(bytes: &'a mut [u8]) -> Option<Self> {
        if bytes.as_ptr() as usize % 8 != 0 || bytes.len() < MIN_LEN {
            return None;
        }
        let len = bytes.len();
        Some(Mem {
            base: core::ptr::NonNull::from(bytes).cast(),
            len,
            _borrow: core::marker::PhantomData,
        })
    }

    /// The 32-bit word at byte offset `off`.
    ///
    /// # Safety
    ///
    /// `off` is a multiple of 4 and `off + 4 <= len` (the ring's geometry, checked against
    /// the memory at initialisation, gives every block offset the callers use).
    #[inline(always)]
    pub(crate) unsafe fn word(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off % 4 == 0 && off + 4 <= self.len);
        // SAFETY: `off % 4 == 0` and `off + 4 <= len` (the caller's contract); with `base`
        // 8-byte aligned the pointer is in bounds and aligned for `AtomicU32`, which has
        // the size and alignment of `u32`. The memory lives for 'a and is only accessed
        // atomically (struct invariant).
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

    /// # Safety
    ///
    /// `off < len`.
    #[inline(always)]
    unsafe fn byte(&self, off: usize) -> &AtomicU8 {
        debug_assert!(off < self.len);
        // SAFETY: `off < len` (the caller's contract); `AtomicU8` has the size and
        // alignment of `u8`; the memory lives for 'a and is only accessed atomically
        // (struct invariant).
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

    /// # Safety
    ///
    /// As the real memory's (here an index out of range panics).
    #[inline(always)]
    pub(crate) unsafe fn word(&self, off: usize) -> &AtomicU32 {
        &self.words[off / 4]
    }

    /// # Safety
    ///
    /// As the real memory's.
    #[inline(always)]
    unsafe fn byte(&self, off: usize) -> &AtomicU8 {
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
    /// The ring-header word at `off` (a field offset from `tracemark_format::ring::offsets`).
    /// Safe: the offset is kept below 256 and 4-aligned (a no-op for the constant field
    /// offsets), inside every `Mem` ([`MIN_LEN`]).
    #[inline(always)]
    pub(crate) fn hdr(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off % 4 == 0 && off < RING_HEADER_LEN);
        // SAFETY: `off & HEADER_MASK` is a multiple of 4 below 256, and every `Mem` is at
        // least `MIN_LEN >= 256` bytes long.
        unsafe { self.word(off & HEADER_MASK) }
    }

    /// Loads a 64-bit ring-header field kept as two little-endian words at `off` (low
    /// word first). Only the writing CPU calls this on live fields, so the halves are
    /// consistent.
    #[inline(always)]
    pub(crate) fn hdr_u64(&self, off: usize) -> u64 {
        let lo = self.hdr(off).load(Ordering::Relaxed);
        let hi = self.hdr(off + 4).load(Ordering::Relaxed);
        u64::from(lo) | (u64::from(hi) << 32)
    }

    /// Stores a 64-bit ring-header field as two words at `off`.
    #[inline(always)]
    pub(crate) fn set_hdr_u64(&self, off: usize, v: u64) {
        self.hdr(off).store(v as u32, Ordering::Relaxed);
        self.hdr(off + 4).store((v >> 32) as u32, Ordering::Relaxed);
    }

    /// Loads entry-stack slot `slot` of the ring header.
    ///
    /// # Safety
    ///
    /// `slot < ENTRY_STACK_DEPTH`.
    #[inline(always)]
    pub(crate) unsafe fn entry_slot(&self, slot: usize) -> u64 {
        let off = tracemark_format::ring::offsets::ENTRY_STACK + 8 * slot;
        // SAFETY: with `slot < ENTRY_STACK_DEPTH` the slot's two words lie inside the
        // ring header, inside every `Mem`.
        unsafe { self.load_u64(off) }
    }

    /// Stores `ts` into entry-stack slot `slot` of the ring header.
    ///
    /// # Safety
    ///
    /// `slot < ENTRY_STACK_DEPTH`.
    #[inline(always)]
    pub(crate) unsafe fn set_entry_slot(&self, slot: usize, ts: u64) {
        let off = tracemark_format::ring::offsets::ENTRY_STACK + 8 * slot;
        // SAFETY: as in `entry_slot`.
        unsafe { self.store_u64(off, ts) };
    }

    /// Stores byte `b` at offset `off` (inside one block's record area).
    ///
    /// # Safety
    ///
    /// `off < len`.
    #[inline(always)]
    pub(crate) unsafe fn store_byte(&self, off: usize, b: u8) {
        // SAFETY: the caller's contract.
        unsafe { self.byte(off) }.store(b, Ordering::Relaxed);
    }

    /// Loads the byte at offset `off`.
    ///
    /// # Safety
    ///
    /// `off < len`.
    #[inline(always)]
    pub(crate) unsafe fn load_byte(&self, off: usize) -> u8 {
        // SAFETY: the caller's contract.
        unsafe { self.byte(off) }.load(Ordering::Relaxed)
    }

    /// Loads a 64-bit value kept as two little-endian words at `off` (low word first).
    ///
    /// # Safety
    ///
    /// As [`Mem::word`] for `off` and `off + 4`.
    #[inline(always)]
    unsafe fn load_u64(&self, off: usize) -> u64 {
        // SAFETY: the caller's contract.
        let (lo, hi) = unsafe { (self.word(off), self.word(off + 4)) };
        u64::from(lo.load(Ordering::Relaxed)) | (u64::from(hi.load(Ordering::Relaxed)) << 32)
    }

    /// Stores a 64-bit value (a block-header or entry-stack field) as two words at `off`.
    ///
    /// # Safety
    ///
    /// As [`Mem::word`] for `off` and `off + 4`.
    #[inline(always)]
    pub(crate) unsafe fn store_u64(&self, off: usize, v: u64) {
        // SAFETY: the caller's contract.
        unsafe {
            self.word(off).store(v as u32, Ordering::Relaxed);
            self.word(off + 4)
                .store((v >> 32) as u32, Ordering::Relaxed);
        }
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
            self.hdr_u64(tracemark_format::ring::offsets::LAST_TS)
        }
    }

    /// Loads the word at `off` of the ring header or a block header for a reader: like
    /// `word(off).load(Acquire)`, except that the two words of `last_ts` are read with the
    /// width the writer uses for them.
    ///
    /// # Safety
    ///
    /// As [`Mem::word`].
    pub(crate) unsafe fn load_word_for_reader(&self, off: usize) -> u32 {
        let last_ts = tracemark_format::ring::offsets::LAST_TS;
        if off & !7 == last_ts {
            let ts = self.load_last_ts();
            return if off == last_ts {
                ts as u32
            } else {
                (ts >> 32) as u32
            };
        }
        // SAFETY: the caller's contract.
        unsafe { self.word(off) }.load(Ordering::Acquire)
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
            self.set_hdr_u64(tracemark_format::ring::offsets::LAST_TS, ts)
        }
    }

    /// Reads a 64-bit ring-header counter of the writer from another core: retries until
    /// the high word is stable around the low word (counters only grow).
    pub(crate) fn load_u64_remote(&self, off: usize) -> u64 {
        loop {
            let hi = self.hdr(off + 4).load(Ordering::Acquire);
            let lo = self.hdr(off).load(Ordering::Acquire);
            if self.hdr(off + 4).load(Ordering::Acquire) == hi {
                return u64::from(lo) | (u64::from(hi) << 32);
            }
        }
    }
}
