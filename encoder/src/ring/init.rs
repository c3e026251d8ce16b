//! Initialisation and ownership: claiming ring memory, writing a fresh header and empty
//! blocks, and releasing the claim.

use tracemark_format::ring::{self, offsets, Geometry, BLOCK_HEADER_LEN, RING_HEADER_LEN};

use crate::mem::Mem;
use crate::pos::SlotDivisor;
use crate::sync::{fence, local_cas, AtomicU32, Ordering};

use super::fast::SMALL_VARINTS_MAX;
use super::{header_prefix, Config, InitError, Ring, OWNED};

impl<'a> Ring<'a> {
    /// Initialises a ring in `memory` and claims it.
    ///
    /// Uses as many whole blocks as fit after the header. Fails if the memory already
    /// holds a ring that is claimed (a second session on the same memory).
    #[cfg(not(loom))]
    pub fn new(memory: &'a mut [u8], config: &Config) -> Result<Self, InitError> {
        let len = memory.len();
        if memory.as_ptr() as usize % 8 != 0 {
            return Err(InitError::Misaligned);
        }
        match Mem::new(memory) {
            Some(mem) => Self::setup(mem, len, config),
            // Shorter than any ring: `check_size` says why.
            None => Err(Self::check_size(len, config)
                .err()
                .unwrap_or(InitError::TooSmall {
                    needed: crate::mem::MIN_LEN,
                })),
        }
    }

    /// Like [`Ring::new`], for memory that may hold the ring of an earlier session kept
    /// across a reset (a `.noinit` section, as Linux's persistent ftrace buffer): if the
    /// memory holds a valid ring (any version this crate reads, header CRC correct) that
    /// no ring of this program uses, `previous` gets its bytes (header and blocks, as a
    /// dump has them: the host decodes them as any ring; cut to `memory` if the earlier
    /// ring was longer) before a new session starts in the same memory. `previous` returns `false` to keep the old ring untouched; then
    /// this returns [`InitError::PreviousSession`]. Memory of a ring in use gives
    /// [`InitError::InUse`] without being read.
    #[cfg(not(loom))]
    pub fn recover(
        memory: &'a mut [u8],
        config: &Config,
        previous: impl FnOnce(&[u8]) -> bool,
    ) -> Result<Self, InitError> {
        if memory.as_ptr() as usize % 8 != 0 {
            return Err(InitError::Misaligned);
        }
        let start = memory.as_ptr() as usize;
        if crate::live::overlaps(start, start + memory.len()) {
            return Err(InitError::InUse);
        }
        if let Ok(view) = ring::RingView::parse(memory) {
            // An earlier ring longer than the memory given now (a warm reset into a
            // smaller ring at the same address) goes to `previous` cut to the memory:
            // only that may be read. The host decodes the blocks it holds and reports
            // the others missing. (Before, it was neither read nor released, and every
            // later init said `PreviousSession`: issue 20, point 20.)
            let len = view.ring_len().min(memory.len());
            if !previous(memory.get(..len).unwrap_or_default()) {
                return Err(InitError::PreviousSession);
            }
            // Read: the new session may claim the memory.
            if let Some(owner) = memory.get_mut(offsets::OWNER..offsets::OWNER + 4) {
                owner.fill(0);
            }
        }
        Ring::new(memory, config)
    }

    /// A ring in model-checked memory of `len` bytes (loom tests).
    #[cfg(loom)]
    pub fn new_model(len: usize, config: &Config) -> Result<Self, InitError> {
        Self::setup(Mem::new_model(len), len, config)
    }

    /// Whether `len` bytes can hold a ring of `config`'s block size.
    fn check_size(len: usize, config: &Config) -> Result<(), InitError> {
        let block_size = config.block_size;
        if !block_size.is_power_of_two()
            || !(ring::MIN_BLOCK_SIZE..=ring::MAX_BLOCK_SIZE).contains(&block_size)
        {
            return Err(InitError::BadBlockSize);
        }
        let needed = RING_HEADER_LEN + ring::MIN_BLOCK_COUNT as usize * block_size as usize;
        if len < needed {
            return Err(InitError::TooSmall { needed });
        }
        Ok(())
    }

    pub(super) fn setup(mem: Mem<'a>, len: usize, config: &Config) -> Result<Self, InitError> {
        Self::check_size(len, config)?;
        let block_size = config.block_size;
        // A shift, not a division: `block_size` is a power of two (checked above), and
        // the C library links no panic path (a division by a value the compiler cannot
        // prove non-zero has one).
        let fit = (len - RING_HEADER_LEN) >> block_size.trailing_zeros();
        let max_count = (1u64 << (32 - block_size.trailing_zeros())) / 2;
        let count = (fit as u64).min(max_count) as u32;
        let geometry = Geometry::new(block_size, count).map_err(|_| InitError::BadBlockSize)?;
        let div = SlotDivisor::new(count).ok_or(InitError::BadBlockSize)?;
        // Refuse memory that overlaps a live ring's before touching anything.
        #[cfg(not(loom))]
        let live = {
            let start = mem.as_ptr() as usize;
            crate::live::register(start, start + geometry.ring_len())
                .map_err(|()| InitError::InUse)?
        };
        // Claim before touching anything: a ring already claimed keeps its data.
        let owner = mem.hdr(offsets::OWNER);
        // The checks `RingView::parse` makes, on the header's first words only: no view,
        // no copy of the whole header (issue 15, goal 2: flash).
        let claimed_ring =
            ring::header_is_valid(&header_prefix(&mem)) && owner.load(Ordering::Acquire) == OWNED;
        if claimed_ring || !local_cas(owner, owner.load(Ordering::Relaxed), OWNED) {
            // No live ring of this program overlaps (checked above, when the table had
            // room): the claim is an earlier session's, left across a reset.
            #[cfg(not(loom))]
            if let crate::live::Registered::Entry(i) = live {
                crate::live::unregister(i);
                if claimed_ring {
                    return Err(InitError::PreviousSession);
                }
            }
            return Err(InitError::InUse);
        }
        let ring = Ring {
            mem,
            geometry,
            mode: config.mode,
            mask: block_size - 1,
            // `block_size >= 256`, so no underflow.
            room: block_size - BLOCK_HEADER_LEN as u32 - SMALL_VARINTS_MAX,
            div,
            // At most 2^31: `Geometry::new` keeps `block_count <= 2^(32 - shift) / 2`.
            area: count * block_size,
            // Position 0 (where writing starts) is in lap 0, whose offset is 0.
            lap: AtomicU32::new(0),
            #[cfg(not(loom))]
            live,
        };
        ring.format(config);
        Ok(ring)
    }

    /// Writes a fresh header (owner kept) and empty block headers.
    pub(super) fn format(&self, config: &Config) {
        // The static words only: the live fields start zero (no 192-byte header built
        // and copied, so no `memset`).
        let words = ring::new_static_header(
            &self.geometry,
            config.mode,
            config.clock_hz,
            config.cpu_id,
            config.producer_id,
            config.syscall_abi,
        );
        for off in (0..RING_HEADER_LEN).step_by(4) {
            let w = words.get(off / 4).map_or(0, |w| w.get());
            // NOTE: `last_ts` may be a 64-bit atomic (see `Mem::store_last_ts`); every
            // location is accessed with one width only, so it is set through that.
            if off != offsets::OWNER && off & !7 != offsets::LAST_TS {
                self.mem.hdr(off).store(w, Ordering::Relaxed);
            }
        }
        self.mem.store_last_ts(0);
        for slot in 0..self.geometry.block_count {
            let base = self.geometry.block_offset(slot);
            for off in (0..BLOCK_HEADER_LEN).step_by(4) {
                // SAFETY: `slot < block_count`: the block's header lies inside the ring,
                // whose length `setup` checked against the memory.
                unsafe { self.mem.word(base + off) }.store(0, Ordering::Relaxed);
            }
        }
        fence(Ordering::Release);
    }

    /// Releases ownership: the memory may be initialised again.
    pub(crate) fn release(&self) {
        self.hdr(offsets::OWNER).store(0, Ordering::Release);
    }
}

impl Drop for Ring<'_> {
    fn drop(&mut self) {
        self.release();
        #[cfg(not(loom))]
        if let crate::live::Registered::Entry(i) = self.live {
            crate::live::unregister(i);
        }
    }
}
