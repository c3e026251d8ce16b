//! The recording API of one CPU: kernel entry and exit with measured durations,
//! interrupts, function entry and exit, user events, image records.

use tracemark_format::record::{self, ExitDuration, Fields, Kind, MAX_USER_PAYLOAD};
use tracemark_format::ring::{offsets, BLOCK_HEADER_LEN, BLOCK_MAGIC, ENTRY_STACK_DEPTH};
use tracemark_format::varint;
use tracemark_format::{Event, KernelEntry};

use crate::clock::Clock;
use crate::ring::held::{is_held, DROPPED_ENTRY};
use crate::ring::{Config, InitError, Outcome, Ring, Small, Wrote};
use crate::sync::{compiler_fence, Ordering};

mod owned;
pub use owned::Owned;

/// What filling in a deferred kernel entry's information did
/// ([`Tracer::fill_entry_info`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryInfo {
    /// The entry now carries the word.
    Filled,
    /// The entry was lost: dropped (drop mode, no room) or overwritten since (more than a
    /// ring's worth of records inside one kernel entry); the ring's lost counts include
    /// it. (Or, in overwrite mode, its bytes no longer hold the placeholder.)
    Lost,
    /// No deferred entry was pending: none was recorded, its information was already
    /// filled in, or a nested context's deferred entry replaced it and was filled in
    /// (one deferred entry per ring is pending at a time).
    NotPending,
}

/// Records events into one CPU's ring, timestamped by `C`.
///
/// Every method takes `&self` and may be called from nested contexts on the ring's CPU
/// (thread, interrupt, nested interrupt): nested writers never corrupt or block each
/// other. Only one CPU may write a ring; other cores may read it ([`Ring::snapshot`](crate::Ring::snapshot)).
pub struct Tracer<'a, C: Clock> {
    ring: Ring<'a>,
    clock: C,
}

impl<'a, C: Clock> Tracer<'a, C> {
    /// Initialises and claims a ring in `memory` (8-byte aligned, at least two blocks
    /// plus the 192-byte header), timestamped by `clock`.
    #[cfg(not(loom))]
    pub fn new(memory: &'a mut [u8], config: &Config, clock: C) -> Result<Self, InitError> {
        Ok(Tracer {
            ring: Ring::new(memory, config)?,
            clock,
        })
    }

    /// Like [`Tracer::new`], after handing the ring an earlier session left in `memory`
    /// (kept across a reset) to `previous`; see [`Ring::recover`].
    #[cfg(not(loom))]
    pub fn recover(
        memory: &'a mut [u8],
        config: &Config,
        clock: C,
        previous: impl FnOnce(&[u8]) -> bool,
    ) -> Result<Self, InitError> {
        Ok(Tracer {
            ring: Ring::recover(memory, config, previous)?,
            clock,
        })
    }

    /// A tracer over model-checked memory (loom tests).
    #[cfg(loom)]
    pub fn new_model(len: usize, config: &Config, clock: C) -> Result<Self, InitError> {
        Ok(Tracer {
            ring: Ring::new_model(len, config)?,
            clock,
        })
    }

    /// The ring.
    pub fn ring(&self) -> &Ring<'a> {
        &self.ring
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Records `event` now.
    #[inline(always)]
    pub fn record(&self, event: Event) -> Outcome {
        let fields = event.fields();
        self.ring
            .write_small(self.now_fn(), |_| Small::of(&fields), || fields)
            .0
    }

    /// The clock as the ring's writers take it: one closure type per clock `C`, so every
    /// recording call shares one copy of the call into the general path.
    #[inline(always)]
    fn now_fn(&self) -> impl Fn() -> u64 + Copy + '_ {
        move || self.clock.now()
    }

    /// Records a kernel entry and remembers its time for [`Tracer::kernel_exit`].
    ///
    /// Entries nest (an interrupt taken inside the kernel); up to
    /// [`ENTRY_STACK_DEPTH`] open entries keep their times. Deeper ones are still
    /// recorded, and their exits say `NestingOverflow` instead of a duration.
    #[inline(always)]
    pub fn kernel_entry(&self, entry: KernelEntry) -> Outcome {
        // SAFETY: not masked.
        unsafe { self.kernel_entry_in::<false>(entry) }
    }

    /// The one write of every recording call, nesting-safe or (`M`) single-context.
    ///
    /// # Safety
    ///
    /// With `M`, the contract of [`Tracer::masked`] holds for this call.
    #[inline(always)]
    unsafe fn write<'d, 'f, const M: bool>(
        &self,
        fast: impl Fn(u64) -> Option<Small<'d>>,
        fields: impl FnOnce() -> Fields<'f>,
    ) -> Wrote {
        // SAFETY: the caller's contract.
        unsafe { self.write_at::<M>(self.now_fn(), fast, fields) }
    }

    /// [`Tracer::write`] at the times `now` gives instead of the clock's.
    ///
    /// # Safety
    ///
    /// As [`Tracer::write`].
    #[inline(always)]
    unsafe fn write_at<'d, 'f, const M: bool>(
        &self,
        now: impl Fn() -> u64 + Copy,
        fast: impl Fn(u64) -> Option<Small<'d>>,
        fields: impl FnOnce() -> Fields<'f>,
    ) -> Wrote {
        if M {
            // SAFETY: the caller's contract (`M` is only set through `Masked`).
            unsafe { self.ring.write_small_masked(now, fast, fields) }
        } else {
            self.ring.write_small(now, fast, fields)
        }
    }

    /// # Safety
    ///
    /// As [`Tracer::write`].
    #[inline(always)]
    unsafe fn kernel_entry_in<const M: bool>(&self, entry: KernelEntry) -> Outcome {
        // SAFETY: the caller's contract.
        let (outcome, ts, _) = unsafe { self.write_entry::<M>(self.now_fn(), entry) };
        self.push_entry(ts);
        outcome
    }

    /// Writes the KENTRY record of `entry` at the time `now` gives (the clock, or the
    /// time a held entry was taken at); pushes nothing.
    ///
    /// # Safety
    ///
    /// As [`Tracer::write`].
    #[inline(always)]
    unsafe fn write_entry<const M: bool>(
        &self,
        now: impl Fn() -> u64 + Copy,
        entry: KernelEntry,
    ) -> Wrote {
        // SAFETY: the caller's contract.
        unsafe {
            self.write_at::<M>(
                now,
                |_| Some(Small::varint(Kind::KernelEntry, entry.0)),
                move || Fields::varint(Kind::KernelEntry, u64::from(entry.0)),
            )
        }
    }

    /// Records a kernel exit carrying `exit - entry` in clock ticks, measured here from
    /// the matching [`Tracer::kernel_entry`].
    #[inline(always)]
    pub fn kernel_exit(&self) -> Outcome {
        // SAFETY: not masked.
        unsafe { self.kernel_exit_in::<false>(self.now_fn()) }
    }

    /// Writes the KEXIT at the time `now` gives (the clock, or a reading the caller took).
    ///
    /// # Safety
    ///
    /// As [`Tracer::write`].
    #[inline(always)]
    unsafe fn kernel_exit_in<const M: bool>(&self, now: impl Fn() -> u64 + Copy) -> Outcome {
        let entry = self.pop_entry();
        let duration = move |ts: u64| match entry {
            Some(Some(start)) => ExitDuration::Ticks(ts.saturating_sub(start)),
            Some(None) => ExitDuration::NestingOverflow,
            None => ExitDuration::NoEntry,
        };
        // SAFETY: the caller's contract.
        unsafe {
            self.write_at::<M>(
                now,
                |ts| {
                    let wire = duration(ts).to_wire();
                    u32::try_from(wire)
                        .ok()
                        .map(|head| Small::varint(Kind::KernelExit, head))
                },
                // The general path measures the duration to the time it writes at
                // (`Fields::elapsed`: the payload is `ticks + 2`).
                // It captures `entry` only (not `duration` too, which would pass it
                // twice), and builds the record with one constructor: from `u64::MAX`
                // `Fields::elapsed` measures nothing.
                move || {
                    let (value, since) = match entry {
                        Some(Some(start)) => (ExitDuration::Ticks(0).to_wire(), start),
                        Some(None) => (ExitDuration::NestingOverflow.to_wire(), u64::MAX),
                        None => (ExitDuration::NoEntry.to_wire(), u64::MAX),
                    };
                    Fields::elapsed(Kind::KernelExit, value, since)
                },
            )
        }
        .0
    }

    /// Records a kernel entry whose information (path, syscall, cap type, ...) is not
    /// known yet, at the true entry time; [`Tracer::kernel_entry_info`] fills it in later.
    ///
    /// The record is a normal KENTRY holding the placeholder [`KernelEntry::PENDING`]
    /// (5 bytes), so records written in between (function entries, an interrupt) stay
    /// after it in time order. Its position is kept in the ring header (`pending_pos`);
    /// one deferred entry per CPU is pending at a time (a later one replaces it). Meant
    /// for kernels like seL4 that fill their entry information after the entry hook.
    #[inline(always)]
    pub fn kernel_entry_deferred(&self) -> Outcome {
        // SAFETY: not masked.
        unsafe { self.kernel_entry_deferred_in::<false>() }
    }

    /// # Safety
    ///
    /// As [`Tracer::write`].
    #[inline(always)]
    unsafe fn kernel_entry_deferred_in<const M: bool>(&self) -> Outcome {
        if M {
            let mem = self.ring.mem();
            // One deferred entry at a time: an earlier one still held is written now.
            if is_held(mem.hdr(offsets::PENDING_POS).load(Ordering::Relaxed)) {
                self.ring.write_held_entry();
            }
            let slot = mem.hdr(offsets::ENTRY_DEPTH).load(Ordering::Relaxed);
            if (slot as usize) < ENTRY_STACK_DEPTH {
                // Single-context: hold the entry back (FORMAT.md 9.5). Its information
                // usually comes with nothing recorded in between, and it is then written
                // once, with its word's minimal varint.
                let ts = self.clock.now();
                self.push_entry(ts);
                // SAFETY: the caller's contract (`M`).
                unsafe { self.ring.hold_entry(slot) };
                return Outcome::Written;
            }
        }
        // SAFETY: the caller's contract.
        let (outcome, ts, end) =
            unsafe { self.write_entry::<M>(self.now_fn(), KernelEntry::PENDING) };
        // The position is the record's own end as its write reserved it, not
        // `write_pos` read now: an interrupt or signal that records its own entry and
        // exit right after the write (before this store) does not move it (issue 20,
        // point 18), and neither does the LOST record that reports earlier drops.
        let pending = match outcome {
            Outcome::Written => end,
            Outcome::Dropped => DROPPED_ENTRY,
        };
        self.ring
            .mem()
            .hdr(offsets::PENDING_POS)
            .store(pending, Ordering::Relaxed);
        self.push_entry(ts);
        outcome
    }

    /// Fills in the information of the pending deferred kernel entry
    /// ([`Tracer::kernel_entry_deferred`]): overwrites its placeholder word in place with
    /// `entry`, written as a 5-byte varint. Returns whether it did: `false` if no entry is
    /// pending, the entry was dropped, or its block has since been reclaimed (overwrite
    /// mode, more than a ring's worth of records inside one kernel entry).
    ///
    /// The KEXIT that follows is named after `entry` by decoders, like any exit.
    #[inline(always)]
    pub fn kernel_entry_info(&self, entry: KernelEntry) -> bool {
        self.fill_entry_info(entry) == EntryInfo::Filled
    }

    /// [`Tracer::kernel_entry_info`], saying why nothing was filled in: the entry was
    /// lost (dropped, or its block reclaimed: the ring counted it) or no deferred entry
    /// was pending (none was recorded, its information was already filled in, or a
    /// deferred entry of a nested context replaced it: one is pending at a time).
    #[inline(always)]
    pub fn fill_entry_info(&self, entry: KernelEntry) -> EntryInfo {
        self.kernel_entry_info_in::<false>(entry)
    }

    /// [`Tracer::kernel_entry_info`]; with `M` (single-context, [`Tracer::masked`]), an
    /// entry that is still the last record of the ring is rewritten with its minimal
    /// varint and the positions move back over the bytes saved (FORMAT.md 9.5).
    #[inline(always)]
    fn kernel_entry_info_in<const M: bool>(&self, entry: KernelEntry) -> EntryInfo {
        let mem = self.ring.mem();
        let pending = mem.hdr(offsets::PENDING_POS);
        let pos = pending.load(Ordering::Relaxed);
        if pos == 0 {
            return EntryInfo::NotPending;
        }
        if is_held(pos) {
            // Not written yet: write it now, with its word, at its time.
            let Some(ts) = self.ring.take_held_entry() else {
                return EntryInfo::NotPending;
            };
            // SAFETY: `M` only through `Masked`, whose contract the caller keeps.
            let (outcome, _, _) = unsafe { self.write_entry::<M>(|| ts, entry) };
            return match outcome {
                Outcome::Written => EntryInfo::Filled,
                Outcome::Dropped => EntryInfo::Lost,
            };
        }
        pending.store(0, Ordering::Relaxed);
        if pos == DROPPED_ENTRY {
            return EntryInfo::Lost;
        }
        let p = self.ring.geometry().split(pos);
        // No division: the ring's reciprocal (`crate::pos`).
        let block = self.ring.block_at(p.seq);
        let offset = p.offset as usize;
        // SAFETY: (every access to `block` below) `block_at` gives the offset of a slot
        // below `block_count`, inside the ring; `offset` is below `block_size` (a
        // position's offset) and at least `BLOCK_HEADER_LEN + 5` where bytes are read or
        // written, so `at..at + 5` lies in the block's record area.
        let [magic, seq] = [offsets::BLOCK_MAGIC, offsets::BLOCK_SEQ].map(|field| {
            // SAFETY: as said above.
            unsafe { mem.word(block + field) }
        });
        let holds = magic.load(Ordering::Relaxed) == BLOCK_MAGIC
            && seq.load(Ordering::Relaxed) == p.seq
            && offset >= BLOCK_HEADER_LEN + 5;
        let placeholder = KernelEntry::PENDING.padded_varint();
        let at = block + offset.wrapping_sub(5);
        // SAFETY: as above (`holds` is checked first).
        if !holds || (0..5).any(|i| unsafe { mem.load_byte(at + i) } != placeholder[i]) {
            return EntryInfo::Lost;
        }
        let len = varint::encoded_len_u32(entry.0);
        if M && len < 5 {
            let write = mem.hdr(offsets::WRITE_POS);
            let last = mem.hdr(offsets::LAST_POS);
            // Nothing was reserved or written after the entry (no other writer runs:
            // the masked contract), so its bytes are the ring's last: write the word
            // minimal and give the rest back. Readers never read past `commit_pos`
            // (FORMAT.md 7.2), which moves back with the others.
            if write.load(Ordering::Relaxed) == pos && last.load(Ordering::Relaxed) == pos {
                // SAFETY: `len < 5` bytes at `at`, as above.
                varint::write_u32_at(at, entry.0, |at, b| unsafe { mem.store_byte(at, b) });
                let end = pos - (5 - len);
                write.store(end, Ordering::Relaxed);
                last.store(end, Ordering::Relaxed);
                mem.hdr(offsets::COMMIT_POS).store(end, Ordering::Release);
                return EntryInfo::Filled;
            }
        }
        for (i, b) in entry.padded_varint().into_iter().enumerate() {
            // SAFETY: `at + i < at + 5`, as above.
            unsafe { mem.store_byte(at + i, b) };
        }
        EntryInfo::Filled
    }

    /// Records a thread switch: `thread` (an id, seL4: the TCB address) runs next.
    #[inline(always)]
    pub fn thread_switch(&self, thread: u64) -> Outcome {
        // SAFETY: not masked.
        unsafe { self.thread_switch_in::<false>(thread) }
    }

    /// # Safety
    ///
    /// As [`Tracer::write`].
    #[inline(always)]
    unsafe fn thread_switch_in<const M: bool>(&self, thread: u64) -> Outcome {
        // SAFETY: the caller's contract.
        unsafe {
            self.write::<M>(
                |_| {
                    u32::try_from(thread)
                        .ok()
                        .map(|t| Small::varint(Kind::ThreadSwitch, t))
                },
                move || Fields::varint(Kind::ThreadSwitch, thread),
            )
        }
        .0
    }

    /// Records an interrupt.
    #[inline(always)]
    pub fn interrupt(&self, irq: u32) -> Outcome {
        // SAFETY: not masked.
        unsafe { self.interrupt_in::<false>(irq) }
    }

    /// # Safety
    ///
    /// As [`Tracer::write`].
    #[inline(always)]
    unsafe fn interrupt_in<const M: bool>(&self, irq: u32) -> Outcome {
        // SAFETY: the caller's contract.
        unsafe {
            self.write::<M>(
                |_| Some(Small::varint(Kind::Interrupt, irq)),
                move || Fields::varint(Kind::Interrupt, u64::from(irq)),
            )
        }
        .0
    }

    /// The recording calls of a kernel that records with interrupts masked (seL4's
    /// kernel runs with them off): the same records, bytes and guarantees for readers,
    /// without what nesting safety costs on the common path (the `nest` counter, the
    /// reservation's compare-and-swap, the read-modify-write of the block's record
    /// count, the commit's re-check). Everything else (opening blocks, timestamp
    /// markers, lost counts) runs the nesting-safe general path unchanged.
    ///
    /// # Safety
    ///
    /// Every call made through the returned value must run with no other write to this
    /// ring running or able to start until it returns: no interrupt or exception on the
    /// ring's CPU that records (they are masked, as in seL4's kernel), no other CPU
    /// writing this ring, and not from inside another write to this ring (a
    /// `-finstrument-functions` hook of the tracer itself, for example). The general API
    /// of this tracer may still be used outside those calls. Breaking the contract can
    /// lose or garble records, not memory: every access stays an atomic inside the ring.
    #[inline(always)]
    pub unsafe fn masked(&self) -> Masked<'_, 'a, C> {
        Masked { tracer: self }
    }

    /// Records a function entry (a compact id or a code address).
    #[inline(always)]
    pub fn function_entry(&self, func: u64) -> Outcome {
        self.function(Kind::FunctionEntry, func)
    }

    /// Records a function exit.
    #[inline(always)]
    pub fn function_exit(&self, func: u64) -> Outcome {
        self.function(Kind::FunctionExit, func)
    }

    #[inline(always)]
    fn function(&self, kind: Kind, func: u64) -> Outcome {
        self.ring
            .write_small(
                self.now_fn(),
                |_| u32::try_from(func).ok().map(|f| Small::varint(kind, f)),
                move || Fields::varint(kind, func),
            )
            .0
    }

    /// Records a user event; `data` longer than 32 bytes is cut to 32.
    #[inline(always)]
    pub fn user(&self, id: u32, data: &[u8]) -> Outcome {
        let data = data.get(..MAX_USER_PAYLOAD).unwrap_or(data);
        // The fast path writes straight from `data`; only the general path builds the
        // `Event` (copying the bytes into a `UserPayload`).
        let head = record::user_head(id, data.len());
        let fast = |_| {
            u32::try_from(head).ok().map(|head| Small {
                kind: Kind::User as u32,
                head,
                data,
            })
        };
        self.ring
            .write_small(self.now_fn(), fast, || Fields::user(id, data))
            .0
    }

    /// Records that an image (binary, module, mapping) was loaded at `base`.
    #[inline(always)]
    pub fn image(&self, base: u64, size: u64, id: u64) -> Outcome {
        self.record(Event::Image { base, size, id })
    }

    /// Names thread `thread` (the id [`Tracer::thread_switch`] records for it): a
    /// THREAD record (format version 3) with its priority `prio` and the first 32 bytes
    /// of `name`. Call it when the thread is created (or when tracing starts, for
    /// threads that exist); [`Tracer::thread_switch_named`] re-emits it so that an
    /// overwrite-mode ring that lost the creation still names the thread.
    #[inline]
    pub fn thread_name(&self, thread: u64, prio: u32, name: &[u8]) -> Outcome {
        // The general path only: a thread is named at creation and at most once per
        // block, never on a hot path worth the inlined fast path's code.
        self.ring
            .write_small(
                self.now_fn(),
                |_| None,
                move || Fields::thread_name(thread, prio, name),
            )
            .0
    }

    /// The sequence number of the block the next record goes to, plus one (so never 0):
    /// a stamp for [`Tracer::thread_switch_named`], which compares it with the one it
    /// last named a thread in. 0 is never returned, so a stamp initialised to 0 means
    /// "never named".
    #[inline]
    pub fn block_stamp(&self) -> u32 {
        let pos = self
            .ring
            .mem()
            .hdr(offsets::WRITE_POS)
            .load(Ordering::Relaxed);
        // Sequence numbers have at most 24 bits: the `+ 1` cannot wrap.
        self.ring.geometry().split(pos).seq + 1
    }

    /// Records a switch to `thread`, then a THREAD record naming it (priority `prio`,
    /// `name`) if it is not named in the block the switch landed in yet: `named_in` is
    /// the thread's own stamp ([`Tracer::block_stamp`] of the block it was last named
    /// in), kept by the caller per thread (0 before the first call; the FreeRTOS
    /// integration keeps it in the TCB's `uxTaskNumber`) and updated here. See FORMAT.md
    /// section 8.4.1.
    ///
    /// The SWITCH goes first so that its time is the switch's, not delayed by the THREAD
    /// record (an RTOS's own run-time statistics read their counter before the switch
    /// hook, and a task's slice can be a few microseconds). So every block holding a
    /// SWITCH to the thread names it, and a thread is named at most once per block
    /// (more only if an interrupt opens a block between the SWITCH and the check: the
    /// check sees the block the next record goes to, which a nested writer can only
    /// move forward).
    #[inline]
    pub fn thread_switch_named(
        &self,
        thread: u64,
        prio: u32,
        name: &[u8],
        named_in: &mut u32,
    ) -> Outcome {
        let out = self.thread_switch(thread);
        if *named_in != self.block_stamp() {
            self.thread_name(thread, prio, name);
            // The block the name landed in (a record never ends at a block's last byte,
            // so `write_pos` is still in it, unless a nested writer opened another).
            *named_in = self.block_stamp();
        }
        out
    }

    /// Open kernel entries on this CPU (including overflowed ones).
    pub fn entry_depth(&self) -> u32 {
        self.ring
            .mem()
            .hdr(offsets::ENTRY_DEPTH)
            .load(Ordering::Relaxed)
    }

    // The stack lives in the ring header. NOTE: push bumps the depth *before* writing the
    // slot and pop reads the slot *before* dropping the depth, so an interrupt that
    // nests anywhere in between uses the slot above ours and restores the depth.
    #[inline(always)]
    fn push_entry(&self, ts: u64) {
        let depth = self.ring.mem().hdr(offsets::ENTRY_DEPTH);
        let d = depth.load(Ordering::Relaxed);
        depth.store(d + 1, Ordering::Relaxed);
        compiler_fence();
        if (d as usize) < ENTRY_STACK_DEPTH {
            // SAFETY: `d < ENTRY_STACK_DEPTH`.
            unsafe { self.ring.mem().set_entry_slot(d as usize, ts) };
        }
    }

    /// `None`: no open entry; `Some(None)`: it overflowed the stack.
    #[inline(always)]
    fn pop_entry(&self) -> Option<Option<u64>> {
        let depth = self.ring.mem().hdr(offsets::ENTRY_DEPTH);
        let d = depth.load(Ordering::Relaxed);
        if d == 0 {
            return None;
        }
        let top = d as usize - 1;
        let ts = (top < ENTRY_STACK_DEPTH)
            // SAFETY: `top < ENTRY_STACK_DEPTH`.
            .then(|| unsafe { self.ring.mem().entry_slot(top) });
        compiler_fence();
        depth.store(d - 1, Ordering::Relaxed);
        Some(ts)
    }
}

/// The single-context recording calls of a [`Tracer`] (see [`Tracer::masked`], whose
/// contract every call through this value relies on).
pub struct Masked<'t, 'a, C: Clock> {
    tracer: &'t Tracer<'a, C>,
}

impl<C: Clock> Masked<'_, '_, C> {
    /// [`Tracer::kernel_entry`], single-context.
    #[inline(always)]
    pub fn kernel_entry(&self, entry: KernelEntry) -> Outcome {
        // SAFETY: the contract of `Tracer::masked`, which made `self`.
        unsafe { self.tracer.kernel_entry_in::<true>(entry) }
    }

    /// [`Tracer::kernel_entry_deferred`], single-context, and *held* (FORMAT.md 9.5): the
    /// entry's time is taken and pushed now, but nothing is written until
    /// [`Masked::kernel_entry_info`] writes the entry once, with its word's minimal varint
    /// (seL4's common case: nothing recorded inside the entry). Any other write to the
    /// ring made meanwhile, through any API, first writes the entry with the placeholder
    /// word, which the information then patches in place, so records stay in time order.
    ///
    /// Returns [`Outcome::Written`] for a held entry (a drop, in drop mode with the ring
    /// full, is counted when the entry is written). A dump or snapshot taken while an
    /// entry is held does not contain it. With [`ENTRY_STACK_DEPTH`] entries open, the
    /// entry is written at once with the placeholder, as the nesting-safe call does.
    #[inline(always)]
    pub fn kernel_entry_deferred(&self) -> Outcome {
        // SAFETY: the contract of `Tracer::masked`, which made `self`.
        unsafe { self.tracer.kernel_entry_deferred_in::<true>() }
    }

    /// [`Tracer::kernel_entry_info`], single-context: a held entry (nothing was written
    /// since it, see [`Masked::kernel_entry_deferred`]) is written now, at its time, with
    /// the word's minimal varint (1 to 5 bytes instead of the placeholder's 5); returns
    /// whether it was written. An entry written at once (entry stack full) that is still
    /// the ring's last record is rewritten minimal and the positions move back over the
    /// bytes saved; otherwise the word is patched in place.
    #[inline(always)]
    pub fn kernel_entry_info(&self, entry: KernelEntry) -> bool {
        self.tracer.kernel_entry_info_in::<true>(entry) == EntryInfo::Filled
    }

    /// The end of a deferred kernel entry in one call (seL4's exit hook): fills in the
    /// entry's information with `entry` ([`Masked::kernel_entry_info`]), records a switch
    /// to `next_thread` unless it is 0 ([`Masked::thread_switch`]), then the exit
    /// ([`Masked::kernel_exit`]); returns the exit's outcome. When the entry is still
    /// held and there is no switch (a syscall with nothing recorded inside it), the entry
    /// and the exit are written as one reservation: the same bytes, about half the work.
    #[inline(always)]
    pub fn kernel_exit_deferred(&self, entry: KernelEntry, next_thread: u64) -> Outcome {
        let t = self.tracer;
        if next_thread == 0 {
            if let Some(start) = t.ring.take_held_entry() {
                let now = t.clock.now();
                let exit = ExitDuration::Ticks(now.saturating_sub(start)).to_wire();
                if let Ok(exit) = u32::try_from(exit) {
                    // SAFETY: the contract of `Tracer::masked`, which made `self`.
                    let fused = unsafe {
                        t.ring.try_fast_pair_masked(
                            Small::varint(Kind::KernelEntry, entry.0),
                            start,
                            Small::varint(Kind::KernelExit, exit),
                            now,
                        )
                    };
                    if fused {
                        // The held entry's time, pushed when it was held.
                        t.pop_entry();
                        return Outcome::Written;
                    }
                }
                // One at a time: the entry at its time, then the exit at the reading
                // already taken (one clock read per record).
                // SAFETY: as above.
                unsafe { t.write_entry::<true>(|| start, entry) };
                // SAFETY: as above.
                return unsafe { t.kernel_exit_in::<true>(|| now) };
            }
        }
        self.kernel_entry_info(entry);
        if next_thread != 0 {
            self.thread_switch(next_thread);
        }
        self.kernel_exit()
    }

    /// [`Tracer::kernel_exit`], single-context.
    #[inline(always)]
    pub fn kernel_exit(&self) -> Outcome {
        // SAFETY: the contract of `Tracer::masked`, which made `self`.
        unsafe { self.tracer.kernel_exit_in::<true>(self.tracer.now_fn()) }
    }

    /// [`Tracer::thread_switch`], single-context.
    #[inline(always)]
    pub fn thread_switch(&self, thread: u64) -> Outcome {
        // SAFETY: the contract of `Tracer::masked`, which made `self`.
        unsafe { self.tracer.thread_switch_in::<true>(thread) }
    }

    /// [`Tracer::interrupt`], single-context.
    #[inline(always)]
    pub fn interrupt(&self, irq: u32) -> Outcome {
        // SAFETY: the contract of `Tracer::masked`, which made `self`.
        unsafe { self.tracer.interrupt_in::<true>(irq) }
    }
}

/// The single-context calls record exactly what the nesting-safe ones record.
#[cfg(all(test, not(loom)))]
pub(crate) mod masked_tests {
    use std::cell::Cell;
    use std::vec::Vec;

    use tracemark_format::record::Record;
    use tracemark_format::ring::{offsets, BlockState, Mode, RingView, RING_HEADER_LEN};
    use tracemark_format::{Event, KernelEntry};

    use crate::clock::Clock;
    use crate::sync::Ordering;
    use crate::{Config, Outcome, Tracer};

    /// `words` as bytes (8-aligned ring memory).
    pub(crate) fn bytes(words: &mut [u64]) -> &mut [u8] {
        // SAFETY: the initialised bytes of `words`, 8-aligned; the unique borrow of
        // `words` covers the returned slice, its only view.
        unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 8) }
    }

    /// The ring's bytes (read through its atomics) and its records, oldest first, LOST
    /// records left out (how many records were overwritten depends on the bytes).
    pub(crate) fn records<C: Clock>(t: &Tracer<'_, C>) -> (Vec<u8>, Vec<Record>) {
        let mut bytes = Vec::new();
        t.ring()
            .dump(|c| {
                bytes.extend_from_slice(c);
                Ok::<(), ()>(())
            })
            .unwrap();
        let view = RingView::parse(&bytes).unwrap();
        let mut out = Vec::new();
        for block in view.blocks() {
            match block.state {
                BlockState::Valid => {
                    let mut n = 0;
                    for r in block.decode() {
                        let r = r.unwrap();
                        n += 1;
                        if !matches!(r.event, Event::Lost { .. }) {
                            out.push(r);
                        }
                    }
                    // The block's record count (what overwrite and drop accounting
                    // add up) is the number of records it holds.
                    assert_eq!(block.header.records.get(), n, "block {} count", block.seq);
                }
                BlockState::Empty => {}
                s => panic!("block {} is {s:?}", block.seq),
            }
        }
        (bytes, out)
    }

    /// Calls per run, and how often the two rings are compared. Under miri (slow: 1,500
    /// calls took most of CI's 15-minute miri step) 150 calls compared at call 75 and
    /// 150, points where neither ring holds an entry the other has written (as every
    /// 1,000th call of the native run); the native run checks the full sequences.
    const CALLS: u32 = if cfg!(miri) { 150 } else { 20_000 };
    const COMPARE_EVERY: u32 = if cfg!(miri) { 75 } else { CALLS / 20 };

    /// Runs the same calls on two rings, one through the general API and one through
    /// `masked()`, and compares what they recorded. The masked ring's deferred entries
    /// may be shorter (its `kernel_entry_info` shrinks an entry that is still the last
    /// record), so it holds the same records in fewer bytes: the nesting-safe ring's
    /// records are the last ones of the masked ring's (overwrite mode) or its first ones
    /// (drop mode).
    fn same_records(mode: Mode, block_size: u32, blocks: usize, seed: u64) {
        let len = RING_HEADER_LEN + blocks * block_size as usize;
        let now = Cell::new(5u64);
        let config = Config {
            block_size,
            mode,
            ..Config::new()
        };
        let (mut wa, mut wb) = (std::vec![0u64; len / 8], std::vec![0u64; len / 8]);
        let safe = Tracer::new(bytes(&mut wa), &config, || now.get()).unwrap();
        let fast = Tracer::new(bytes(&mut wb), &config, || now.get()).unwrap();
        // SAFETY: one thread, no interrupts: no write ever nests.
        let masked = unsafe { fast.masked() };
        let mut rng = seed;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut shrunk = 0;
        // Drop mode: the rings are compared while the nesting-safe one has dropped
        // nothing (near full, the two drop different records).
        let mut safe_dropped = false;
        for i in 0..CALLS {
            let r = next();
            // Small deltas mostly (the fast path), sometimes large ones, sometimes the
            // clock steps back (timestamp markers, CLOCKBACK: the general path).
            let t = match r % 64 {
                0 => now.get() + (r >> 20),
                1 => now.get().saturating_sub(r >> 58),
                _ => now.get() + (r >> 59),
            };
            now.set(t);
            let v = (next() >> (r % 40)) as u32;
            match (r >> 8) % 9 {
                0 | 6 => {
                    safe_dropped |= safe.kernel_entry_deferred() == Outcome::Dropped;
                    masked.kernel_entry_deferred();
                }
                1 | 7 => {
                    let before = fast
                        .ring()
                        .mem()
                        .hdr(offsets::WRITE_POS)
                        .load(Ordering::Relaxed);
                    // Small words often (1 or 2 bytes: shrunk), any word otherwise.
                    let w = KernelEntry(if r & 1 == 0 { v & 0x3fff } else { v });
                    let (p, q) = (safe.kernel_entry_info(w), masked.kernel_entry_info(w));
                    if mode == Mode::Drop && p {
                        assert!(q, "call {i}");
                    }
                    let after = fast
                        .ring()
                        .mem()
                        .hdr(offsets::WRITE_POS)
                        .load(Ordering::Relaxed);
                    shrunk += u32::from(after != before);
                }
                2 => {
                    safe_dropped |= safe.kernel_exit() == Outcome::Dropped;
                    masked.kernel_exit();
                }
                3 => {
                    safe_dropped |= safe.thread_switch(u64::from(v)) == Outcome::Dropped;
                    masked.thread_switch(u64::from(v));
                }
                4 => {
                    safe_dropped |= safe.kernel_entry(KernelEntry(v)) == Outcome::Dropped;
                    masked.kernel_entry(KernelEntry(v));
                }
                8 => {
                    // The combined exit (fused with a held entry when it can be).
                    let w = KernelEntry(if r & 1 == 0 { v & 0x3fff } else { v });
                    let next = if r & 2 == 0 { 0 } else { u64::from(v | 1) };
                    safe.kernel_entry_info(w);
                    if next != 0 {
                        safe_dropped |= safe.thread_switch(next) == Outcome::Dropped;
                    }
                    safe_dropped |= safe.kernel_exit() == Outcome::Dropped;
                    masked.kernel_exit_deferred(w, next);
                }
                _ => {
                    safe_dropped |= safe.interrupt(v) == Outcome::Dropped;
                    masked.interrupt(v);
                }
            }
            if i % COMPARE_EVERY == COMPARE_EVERY - 1 && !(mode == Mode::Drop && safe_dropped) {
                let (a, ra) = records(&safe);
                let (b, rb) = records(&fast);
                // Dumps send the used part (FORMAT.md 7.3): the masked ring's is smaller.
                assert_eq!(safe.ring().len(), fast.ring().len());
                assert!(a.len() <= safe.ring().len() && b.len() <= fast.ring().len());
                let n = ra.len().min(rb.len());
                let (x, y) = match mode {
                    Mode::Overwrite => (&ra[ra.len() - n..], &rb[rb.len() - n..]),
                    Mode::Drop => (&ra[..n], &rb[..n]),
                };
                if let Some(k) = (0..n).find(|&k| x[k] != y[k]) {
                    panic!(
                        "call {i}: record {k} of {n} differs: {:?} / {:?}",
                        &x[k.saturating_sub(2)..(k + 2).min(n)],
                        &y[k.saturating_sub(2)..(k + 2).min(n)]
                    );
                }
                assert!(n > 40, "call {i}: {n} records");
            }
        }
        // Entries written or shrunk by `kernel_entry_info` (one call in 9 is one; most find
        // no pending entry).
        assert!(shrunk > CALLS / 400, "{shrunk} entries written or shrunk");
        if mode == Mode::Drop {
            // Both full: the masked ring holds more records in the same bytes.
            assert!(safe_dropped);
            assert!(records(&fast).1.len() > records(&safe).1.len());
        }
    }

    #[test]
    fn masked_records_the_same_events_overwrite() {
        same_records(Mode::Overwrite, 256, 4, 0x2545_f491_4f6c_dd1d);
        if !cfg!(miri) {
            same_records(Mode::Overwrite, 4096, 3, 0x9e37_79b9_7f4a_7c15);
        }
    }

    #[test]
    fn masked_records_the_same_events_drop() {
        let blocks = if cfg!(miri) { 2 } else { 256 };
        same_records(Mode::Drop, 256, blocks, 0x2545_f491_4f6c_dd1d);
    }

    /// seL4's common case: nothing is recorded inside the entry, so the deferred entry
    /// is held until its word comes and written once, with a 1-byte word, at its time;
    /// the exit still has a delta header.
    #[test]
    fn a_deferred_entry_alone_is_written_once_minimal() {
        let now = Cell::new(1000u64);
        let mut words = std::vec![0u64; (RING_HEADER_LEN + 2 * 4096) / 8];
        let t = Tracer::new(bytes(&mut words), &Config::new(), || now.get()).unwrap();
        // SAFETY: one thread, no interrupts: no write ever nests.
        let m = unsafe { t.masked() };
        let pos = |w| t.ring().mem().hdr(w).load(Ordering::Relaxed);
        now.set(1003);
        let before = pos(offsets::WRITE_POS);
        m.kernel_entry_deferred();
        // Held: nothing written yet.
        assert_eq!(pos(offsets::WRITE_POS), before);
        assert_eq!(pos(offsets::PENDING_POS), 1);
        now.set(1010);
        assert!(m.kernel_entry_info(KernelEntry(62)));
        // Written once, opening the first block: its 32-byte header, then a 1-byte
        // record header and the 1-byte word, at the entry's time.
        for w in [offsets::WRITE_POS, offsets::LAST_POS, offsets::COMMIT_POS] {
            assert_eq!(pos(w), before + 32 + 2);
        }
        assert_eq!(pos(offsets::PENDING_POS), 0);
        now.set(1040);
        m.kernel_exit();
        // With an interrupt inside the entry, the interrupt writes the held entry (with
        // the placeholder) first, and the word is patched into its 5 bytes.
        now.set(1050);
        m.kernel_entry_deferred();
        now.set(1052);
        m.interrupt(3);
        let before_info = pos(offsets::WRITE_POS);
        assert!(m.kernel_entry_info(KernelEntry(62)));
        assert_eq!(pos(offsets::WRITE_POS), before_info);
        now.set(1060);
        m.kernel_exit();
        // An exit with no information: the held entry goes out with the placeholder.
        now.set(1070);
        m.kernel_entry_deferred();
        now.set(1075);
        m.kernel_exit();
        // Two deferred entries in a row: the first is written (placeholder) before the
        // second is held; the second gets its word.
        now.set(1080);
        m.kernel_entry_deferred();
        now.set(1081);
        m.kernel_entry_deferred();
        now.set(1082);
        assert!(m.kernel_entry_info(KernelEntry(9)));
        now.set(1090);
        m.kernel_exit();
        now.set(1091);
        m.kernel_exit();
        // A nesting-safe call while an entry is held (an interrupt handler running
        // between two single-context calls) writes the entry first too.
        now.set(1100);
        m.kernel_entry_deferred();
        now.set(1104);
        t.interrupt(5);
        now.set(1106);
        assert!(m.kernel_entry_info(KernelEntry(7)));
        m.kernel_exit();
        // The combined exit of a held entry: entry and exit in one reservation.
        now.set(1200);
        m.kernel_entry_deferred();
        let before_fused = pos(offsets::WRITE_POS);
        now.set(1212);
        assert_eq!(m.kernel_exit_deferred(KernelEntry(62), 0), Outcome::Written);
        // KENTRY: header (delta 94: 2 bytes) and word (1 byte); KEXIT: header (delta 12:
        // 2 bytes) and duration (12 ticks: 1 byte).
        assert_eq!(pos(offsets::WRITE_POS), before_fused + 6);
        assert_eq!(pos(offsets::COMMIT_POS), before_fused + 6);
        assert_eq!(t.entry_depth(), 0);
        // With a switch, one at a time.
        now.set(1300);
        m.kernel_entry_deferred();
        now.set(1301);
        m.kernel_exit_deferred(KernelEntry(62), 0xabc);
        let (bytes, recs) = records(&t);
        let events: Vec<(u64, Event)> = recs.iter().map(|r| (r.ts, r.event)).collect();
        use tracemark_format::ExitDuration::Ticks;
        assert_eq!(
            events,
            [
                (1003, Event::KernelEntry(KernelEntry(62))),
                (1040, Event::KernelExit(Ticks(37))),
                (1050, Event::KernelEntry(KernelEntry(62))),
                (1052, Event::Interrupt { irq: 3 }),
                (1060, Event::KernelExit(Ticks(10))),
                (1070, Event::KernelEntry(KernelEntry::PENDING)),
                (1075, Event::KernelExit(Ticks(5))),
                (1080, Event::KernelEntry(KernelEntry::PENDING)),
                (1081, Event::KernelEntry(KernelEntry(9))),
                (1090, Event::KernelExit(Ticks(9))),
                (1091, Event::KernelExit(Ticks(11))),
                (1100, Event::KernelEntry(KernelEntry(7))),
                (1104, Event::Interrupt { irq: 5 }),
                (1106, Event::KernelExit(Ticks(6))),
                (1200, Event::KernelEntry(KernelEntry(62))),
                (1212, Event::KernelExit(Ticks(12))),
                (1300, Event::KernelEntry(KernelEntry(62))),
                (1301, Event::ThreadSwitch { thread: 0xabc }),
                (1301, Event::KernelExit(Ticks(1))),
            ]
        );
        // KENTRY `00 3e` (first record of its block, delta 0), KEXIT `d1 04` (delta 37)
        // and duration `27` (39: 37 ticks + 2): a delta header, no timestamp marker.
        let first = RING_HEADER_LEN + 32;
        assert_eq!(bytes[first..first + 5], [0x00, 0x3e, 0xd1, 0x04, 0x27]);
        // Then KENTRY 2 + 5, IRQ 2, KEXIT 3; KENTRY 2 + 5, KEXIT 2; KENTRY 2 + 5, KENTRY
        // 1 + 1, KEXIT 2, KEXIT 2; KENTRY 2 + 5, IRQ 1 + 1, KEXIT 1 + 1; the fused pair 6;
        // KENTRY 2 + 1, SWITCH 1 + 2, KEXIT 1 + 1.
        assert_eq!(
            pos(offsets::COMMIT_POS) & 4095,
            32 + 2 + 3 + 7 + 2 + 3 + 7 + 2 + 7 + 2 + 2 + 2 + 7 + 2 + 2 + 6 + 3 + 3 + 2
        );
    }
}

/// Every record reads the clock once (issue 15), whichever path writes it: the fast path
/// hands the reading it took to the general path (large values, timestamp markers, block
/// switches), and a held entry is written at its own time. A second read is taken only
/// when the clock steps back (CLOCKBACK) or the write flushes a held entry first: the
/// reading is kept only while nothing was reserved since it was taken.
#[cfg(all(test, not(loom)))]
mod clock_reads {
    use std::cell::Cell;

    use tracemark_format::ring::{Mode, RING_HEADER_LEN};
    use tracemark_format::KernelEntry;

    use crate::{Config, Outcome, Tracer};

    const CALLS: u32 = if cfg!(miri) { 400 } else { 20_000 };

    fn run(masked_calls: bool, seed: u64) {
        let block_size = 512u32;
        let len = RING_HEADER_LEN + 8 * block_size as usize;
        let mut words = std::vec![0u64; len / 8];
        // SAFETY: the initialised bytes of `words`, 8-aligned, used only through this
        // view while `words` lives.
        let mem = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) };
        let now = Cell::new(5u64);
        let reads = Cell::new(0u32);
        let clock = || {
            reads.set(reads.get() + 1);
            now.get()
        };
        let config = Config {
            block_size,
            mode: Mode::Overwrite,
            ..Config::new()
        };
        let t = Tracer::new(mem, &config, clock).unwrap();
        // SAFETY: one thread, no interrupts: no write ever nests.
        let m = unsafe { t.masked() };
        let mut rng = seed;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut general = 0;
        let mut held = false;
        for i in 0..CALLS {
            let r = next();
            let back = r % 97 == 0;
            // Small deltas mostly; large ones (timestamp markers, exits that do not fit
            // the fast path), sometimes a step back (CLOCKBACK).
            let t_new = match r % 16 {
                _ if back => now.get().saturating_sub(1 + (r >> 58)),
                0 => now.get() + (r >> 22),
                1 => now.get() + (1 << 33),
                _ => now.get() + (r >> 60),
            };
            now.set(t_new);
            // Values past `u32` take the general path.
            let v = if r & 0x300 == 0 {
                next() | 1 << 40
            } else {
                next() >> 40
            };
            let before = reads.get();
            let case = (r >> 12) % 9;
            // A nesting-safe call that writes a held entry first reads the clock again
            // after it (see `Ring::write_general_loop`); a single-context one keeps its
            // reading. `held` says an entry is held before the call.
            let flushes = held && !(masked_calls && matches!(case, 3..=5));
            held = masked_calls && case == 3;
            // How many records this call writes at a fresh time.
            let want = match case {
                0 => u32::from(t.function_entry(v) != Outcome::Dropped),
                1 => {
                    t.user(v as u32, &[7u8; 32][..(r >> 20) as usize % 33]);
                    1
                }
                2 => {
                    t.thread_switch(v);
                    1
                }
                3 if masked_calls => {
                    m.kernel_entry_deferred();
                    1
                }
                3 => {
                    t.kernel_entry_deferred();
                    1
                }
                4 if masked_calls => {
                    let next_thread = if r & 0x400 == 0 { 0 } else { v };
                    m.kernel_exit_deferred(KernelEntry(v as u32 & 0xffff), next_thread);
                    1 + u32::from(next_thread != 0)
                }
                4 => {
                    t.kernel_entry_info(KernelEntry(v as u32 & 0xffff));
                    t.kernel_exit();
                    1
                }
                5 if masked_calls => {
                    m.interrupt(v as u32);
                    1
                }
                5 => {
                    t.interrupt(v as u32);
                    1
                }
                6 => {
                    t.kernel_entry(KernelEntry(v as u32));
                    1
                }
                7 => {
                    t.image(v, v >> 3, 9);
                    1
                }
                _ => {
                    t.function_exit(v);
                    1
                }
            };
            let got = reads.get() - before;
            general += u32::from(v > u64::from(u32::MAX));
            if back || flushes {
                assert!(
                    got <= want + 1,
                    "call {i}: {got} clock reads for {want} records"
                );
            } else {
                assert_eq!(got, want, "call {i}: clock reads for {want} records");
            }
        }
        assert!(general > CALLS / 8, "the general path ran {general} times");
    }

    /// A single-context write while an entry is held writes the entry first, then its
    /// own record at the reading it took: one read (before, the general path read the
    /// clock again after the entry).
    #[test]
    fn a_single_context_write_after_a_held_entry_reads_once() {
        let block_size = 512u32;
        let len = RING_HEADER_LEN + 8 * block_size as usize;
        let mut words = std::vec![0u64; len / 8];
        // SAFETY: the initialised bytes of `words`, 8-aligned, used only through this
        // view while `words` lives.
        let mem = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) };
        let reads = Cell::new(0u64);
        let clock = || {
            reads.set(reads.get() + 1);
            100 + 5 * reads.get()
        };
        let config = Config {
            block_size,
            mode: Mode::Overwrite,
            ..Config::new()
        };
        let t = Tracer::new(mem, &config, clock).unwrap();
        // SAFETY: one thread, no interrupts: no write ever nests.
        let m = unsafe { t.masked() };
        for i in 0..CALLS / 4 {
            let before = reads.get();
            m.kernel_entry_deferred();
            m.interrupt(i % 50);
            m.kernel_exit();
            assert_eq!(reads.get() - before, 3, "call {i}");
        }
    }

    #[test]
    fn one_clock_read_per_record() {
        run(false, 0x9e37_79b9_7f4a_7c15);
    }

    #[test]
    fn one_clock_read_per_record_masked() {
        run(true, 0x2545_f491_4f6c_dd1d);
    }
}
