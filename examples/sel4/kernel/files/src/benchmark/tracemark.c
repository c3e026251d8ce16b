/*
 * Copyright 2026, the tracemark authors
 *
 * SPDX-License-Identifier: GPL-2.0-only
 */

#include <config.h>

#ifdef CONFIG_KERNEL_TRACEMARK

#include <types.h>
#include <assert.h>
#include <util.h>
#include <benchmark/tracemark.h>
#include <benchmark/benchmark_track.h>
#include <model/statedata.h>
#include <machine/io.h>
#include <object/structures.h>
#include <hardware.h>
#ifdef CONFIG_ARCH_X86
#include <arch/model/statedata.h>
#include <arch/machine/timer.h>
#endif

/* The kernel runs with interrupts masked and this ring is CPU 0's only (the hooks
 * record on CPU 0), and the -finstrument-functions hooks below record nothing while
 * another hook of this file runs (tm_busy): no record is ever written while another is
 * being written. The entry, exit and interrupt hooks therefore use tracemark's
 * single-context calls (tm_masked_*), which skip what nesting safety costs.
 *
 * Nothing in this file is instrumented: it is the tracer (the function hooks below would
 * otherwise recurse, and the clock must not record). Only static inline kernel helpers
 * that are not instrumented either are called from the hooks. */
#define TM_NOTRACE __attribute__((no_instrument_function))

/* The ring: a static array in the kernel's BSS. */
static uint8_t tm_ring[CONFIG_KERNEL_TRACEMARK_RING_BYTES] ALIGN(8);

/* 1 while a hook of this file runs: the -finstrument-functions hooks then record nothing
 * (a kernel function the tracer calls, such as memcpy, is not traced). */
static int tm_busy;
/* 1 once tm_init succeeded and until the dump starts. */
static int tm_on;
/* 1 between a recorded entry and its exit: the exit to the first user thread after boot
 * is not the end of a kernel entry. */
static int tm_open;
word_t tracemark_sel4_syscall;
/* The thread that ran when the kernel was last left. */
static tcb_t *tm_last_thread;

#ifdef CONFIG_KERNEL_TRACEMARK_FUNCTIONS
/* Function records outside every kernel entry, counted by where they were made, and
 * stated in the trace at the dump by a USER record (TRACEMARK_SEL4_OUTSIDE_ID) so that a
 * reader can tell them from records lost or misplaced:
 * - boot: the rest of the boot after tracemark_sel4_init (schedule, activateThread, ...),
 *   before the first exit to user level;
 * - after_exit: between a kernel exit record and the next entry record: what the kernel
 *   runs after c_exit_hook's exit record on its way out (arch_c_exit_hook's FS/GS or
 *   thread-id loads, restore_user_context's inlined register accessors: getRegister,
 *   setRegister, config_set) and, on x86, the pending-interrupt service in
 *   restore_user_context before it enters again through c_handle_interrupt. The entry
 *   record is the first thing c_entry_hook does, so nothing of the way in is outside. */
static struct {
    uint64_t boot;
    uint64_t after_exit;
} tm_outside;
/* 1 once the kernel has left for user level for the first time. */
static int tm_booted;
#endif

static inline TM_NOTRACE uint64_t tm_now(void)
{
#if defined(CONFIG_ARCH_X86)
    uint32_t lo, hi;
    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
#elif defined(CONFIG_ARCH_AARCH64) && defined(CONFIG_KERNEL_TRACEMARK_CLOCK_CYCLES)
    uint64_t v;
    asm volatile("mrs %0, pmccntr_el0" : "=r"(v));
    return v;
#elif defined(CONFIG_ARCH_AARCH64)
    /* No isb before the read: a timestamp may be taken a few instructions early,
     * which is fine for tracing, and an isb costs more than the whole record. */
    uint64_t v;
    asm volatile("mrs %0, cntvct_el0" : "=r"(v));
    return v;
#else
#error "KernelTracemark supports x86_64 and aarch64"
#endif
}

static TM_NOTRACE uint64_t tm_clock(void)
{
    return tm_now();
}

#ifdef CONFIG_ARCH_X86
uint32_t tracemark_sel4_tsc_mhz;
#endif

static BOOT_CODE TM_NOTRACE uint64_t tm_clock_hz(void)
{
#if defined(CONFIG_ARCH_X86)
    /* As the boot measured it for the boot info (TRACEMARK_TSC_MHZ in init_sys_state),
     * MCS and non-MCS kernels alike. */
    return (uint64_t)tracemark_sel4_tsc_mhz * 1000000ull;
#elif defined(CONFIG_KERNEL_TRACEMARK_CLOCK_CYCLES)
    /* Enable the cycle counter (PMCR_EL0.E, PMCNTENSET_EL0.C), as arm_init_ccnt does
     * for seL4's benchmarks, without resetting it if they already did. */
    uint64_t pmcr;
    asm volatile("mrs %0, pmcr_el0" : "=r"(pmcr));
    asm volatile("msr pmcr_el0, %0" :: "r"(pmcr | 1));
    asm volatile("msr pmcntenset_el0, %0" :: "r"((uint64_t)1 << 31));
    asm volatile("isb");
    return (uint64_t)CONFIG_KERNEL_TRACEMARK_CYCLE_HZ;
#else
    uint64_t f;
    asm volatile("mrs %0, cntfrq_el0" : "=r"(f));
    return f;
#endif
}

/* The configuration of tm_init, kept for the re-initialisation of a reset
 * (tracemark_sel4_snapshot): tm_clock_hz is boot code, gone after the boot. */
static tm_config tm_saved_config;

static TM_NOTRACE void tm_name_threads(void);

BOOT_CODE TM_NOTRACE void tracemark_sel4_init(void)
{
    tm_config config = {
        .block_size = 4096,
        .mode = config_set(CONFIG_KERNEL_TRACEMARK_DROP) ? TM_MODE_DROP : TM_MODE_OVERWRITE,
        .clock = tm_clock,
        .clock_hz = tm_clock_hz(),
        .producer_id = 0x73654c34, /* "seL4" */
        .syscall_abi = config_set(CONFIG_KERNEL_MCS) ? TM_ABI_SEL4_MCS : TM_ABI_SEL4,
    };
    tm_saved_config = config;
    tm_busy = 1;
    int r = tm_init(0, tm_ring, sizeof(tm_ring), &config);
    tm_busy = 0;
    tm_on = (r == TM_OK);
    tm_last_thread = NODE_STATE(ksCurThread);
    /* The threads the boot created and named (the idle thread, the root task). */
    tm_name_threads();
#ifdef CONFIG_KERNEL_TRACEMARK_FUNCTIONS
    /* Function records carry the address minus KERNEL_ELF_BASE (3 bytes instead of 10
     * for a kernel address); the IMAGE record says where the kernel image lies. */
    tm_busy = 1;
    (void)tm_image(0, KERNEL_ELF_BASE, (word_t)ki_end - KERNEL_ELF_BASE, 0x73654c34);
    tm_busy = 0;
#endif
    /* The tracer's own message: not kernel work, not recorded. */
    tm_busy = 1;
    printf("tracemark: %s, ring of %lu bytes at %p, clock %llu Hz\n",
           tm_on ? "recording" : "tm_init failed", (unsigned long)sizeof(tm_ring), tm_ring,
           (unsigned long long)config.clock_hz);
    tm_busy = 0;
}

TM_NOTRACE void tracemark_sel4_entry(void)
{
    if (!tm_on) {
        return;
    }
    tm_busy = 1;
    tracemark_sel4_syscall = 0;
    (void)tm_masked_kernel_entry_deferred(0);
    tm_open = 1;
    tm_busy = 0;
}

/* At this commit seL4's entry_type_t numbers the paths as tracemark's entry word does
 * (FORMAT.md section 9): ksKernelEntry.path is used as a TM_PATH_* value. */
compile_assert(tm_path_unknown, Entry_Unknown == TM_PATH_UNKNOWN)
compile_assert(tm_path_interrupt, Entry_Interrupt == TM_PATH_INTERRUPT)
compile_assert(tm_path_unknown_syscall, Entry_UnknownSyscall == TM_PATH_UNKNOWN_SYSCALL)
compile_assert(tm_path_user_level_fault, Entry_UserLevelFault == TM_PATH_USER_LEVEL_FAULT)
compile_assert(tm_path_debug_fault, Entry_DebugFault == TM_PATH_DEBUG_FAULT)
compile_assert(tm_path_vm_fault, Entry_VMFault == TM_PATH_VM_FAULT)
compile_assert(tm_path_syscall, Entry_Syscall == TM_PATH_SYSCALL)

/* seL4's kernel_entry_t as tracemark's entry word, built by tracemark.h's helpers.
 *
 * seL4 enters its debug syscalls (DebugPutChar, DebugNameThread, DebugHalt, ...) through
 * the unknown-syscall path; they are numbers of seL4's syscall enum, so they are recorded
 * as syscalls (and named). A number outside the enum stays an UnknownSyscall entry with
 * the number (negated, as seL4 stores syscalls) in its word. Every field is within its
 * bits (seL4's own bit-fields, or masked below), so the helpers cannot refuse one; if
 * one did, the entry would say Unknown rather than carry a wrong word. */
static inline TM_NOTRACE uint32_t tm_entry_word(void)
{
    uint32_t word = TM_PATH_UNKNOWN;
    uint32_t path = ksKernelEntry.path;
    uint32_t core = (uint32_t)CURRENT_CPU_INDEX() & TM_ENTRY_MAX_CORE;
    /* seL4 sets is_fastpath before it knows; the unknown-syscall path is never the
     * fastpath. */
    bool_t fastpath = ksKernelEntry.is_fastpath;
    if (path == TM_PATH_UNKNOWN_SYSCALL && tracemark_sel4_syscall != 0) {
        word_t n = -tracemark_sel4_syscall;
        if (n >= 1 && n <= (word_t) - SysDebugNameThread) {
            path = TM_PATH_SYSCALL;
            fastpath = 0;
        } else {
            (void)tm_entry_word_other(path, core, (uint32_t)(n & TM_ENTRY_MAX_WORD), &word);
            return word;
        }
    }
    if (path == TM_PATH_SYSCALL) {
        uint32_t cap_type = ksKernelEntry.cap_type;
        uint32_t label = ksKernelEntry.invocation_tag;
        /* seL4_DebugPutChar passes its character in the cap register: seL4's entry code
         * looked a capability up from it anyway (any cap type, most often Untyped).
         * Record no cap, and the character as the label. The caller is still current:
         * the unknown-syscall path does not reschedule. */
        if (ksKernelEntry.syscall_no == (word_t)(-SysDebugPutChar)) {
            cap_type = 0;
            label = (uint32_t)(getRegister(NODE_STATE(ksCurThread), capRegister) & 0xff);
        }
        /* seL4_Yield takes no cap and no message, but seL4 still copies whatever the
         * caller left in its cptr and message-info registers: record 0 for both (a
         * meaningless label would also cost up to 3 bytes per Yield). */
        if (ksKernelEntry.syscall_no == (word_t)(-SysYield)) {
            cap_type = 0;
            label = 0;
        }
        (void)tm_entry_word_syscall(ksKernelEntry.syscall_no, cap_type, fastpath != 0, label,
                                    &word);
        return word;
    }
    /* The core field is set by seL4 on ARM only; the union leaves stale syscall bits
     * there on x86. */
    (void)tm_entry_word_other(path, core, ksKernelEntry.word, &word);
    return word;
}

TM_NOTRACE void tracemark_sel4_exit(void)
{
    if (!tm_on) {
        return;
    }
    if (!tm_open) {
        /* The first exit to user level after boot ends no kernel entry, but from here
         * the root task runs: say so with a switch record of its own (tm_last_thread
         * is the idle thread, current during boot), so that the first entry does not
         * carry a switch that did not happen there. */
        tcb_t *first = NODE_STATE(ksCurThread);
        tm_busy = 1;
        if (first != tm_last_thread) {
            (void)tm_thread_switch(0, (uint64_t)(word_t)first);
            tm_last_thread = first;
        }
#ifdef CONFIG_KERNEL_TRACEMARK_FUNCTIONS
        tm_booted = 1;
#endif
        tm_busy = 0;
        return;
    }
    tm_busy = 1;
    tcb_t *next = NODE_STATE(ksCurThread);
    uint64_t switch_to = 0;
    if (next != tm_last_thread) {
        switch_to = (uint64_t)(word_t)next;
        tm_last_thread = next;
    }
    /* Entry word, thread switch and exit in one call. */
    (void)tm_masked_kernel_exit_deferred(0, tm_entry_word(), switch_to);
    tm_open = 0;
    tm_busy = 0;
}

TM_NOTRACE void tracemark_sel4_interrupt(word_t irq)
{
    if (!tm_on) {
        return;
    }
    tm_busy = 1;
    (void)tm_masked_interrupt(0, (uint32_t)irq);
    tm_busy = 0;
}

#ifdef CONFIG_KERNEL_TRACEMARK_FUNCTIONS
/* The -finstrument-functions hooks; the kernel's C code is compiled with
 * -finstrument-functions, this file's functions are excluded by TM_NOTRACE. */
void __cyg_profile_func_enter(void *func, void *call_site);
void __cyg_profile_func_exit(void *func, void *call_site);

/* Counts a function record made outside every kernel entry (see tm_outside). */
static inline TM_NOTRACE void tm_count_outside(void)
{
    if (tm_open) {
        return;
    }
    if (tm_booted) {
        tm_outside.after_exit++;
    } else {
        tm_outside.boot++;
    }
}

TM_NOTRACE void __cyg_profile_func_enter(void *func, void *call_site)
{
    if (!tm_on || tm_busy) {
        return;
    }
    tm_busy = 1;
    tm_count_outside();
    (void)tm_function_entry(0, (uint64_t)((word_t)func - KERNEL_ELF_BASE));
    tm_busy = 0;
}

TM_NOTRACE void __cyg_profile_func_exit(void *func, void *call_site)
{
    if (!tm_on || tm_busy) {
        return;
    }
    tm_busy = 1;
    tm_count_outside();
    (void)tm_function_exit(0, (uint64_t)((word_t)func - KERNEL_ELF_BASE));
    tm_busy = 0;
}
#endif

static TM_NOTRACE int tm_sink(void *ctx, const uint8_t *data, word_t len)
{
    for (word_t i = 0; i < len; i++) {
        kernel_putDebugChar(data[i]);
    }
    return 0;
}

/* Called on seL4_DebugHalt: completes the halting entry (its information is known, and
 * the kernel is left for good), names the threads, then sends the ring over the serial
 * console. Nothing is recorded once the dump starts. */
TM_NOTRACE void tracemark_sel4_dump(void)
{
    if (!tm_on) {
        return;
    }
    tracemark_sel4_exit();
    tm_busy = 1;
#ifdef CONFIG_KERNEL_TRACEMARK_FUNCTIONS
    (void)tm_user(0, TRACEMARK_SEL4_OUTSIDE_ID, &tm_outside, sizeof(tm_outside));
#endif
    /* Every thread's name once more, at the end: an overwrite ring that lost the records
     * of its creation still names its threads (FORMAT.md 8.4.1). */
    tm_name_threads();
    tm_on = 0;
    for (tcb_t *t = NODE_STATE(ksDebugTCBs); t != NULL; t = TCB_PTR_DEBUG_PTR(t)->tcbDebugNext) {
        printf("tracemark: thread 0x%lx \"%s\"\n", (unsigned long)(word_t)t, TCB_PTR_DEBUG_PTR(t)->tcbName);
    }
    printf("tracemark: dumping the ring\n");
    int r = tm_dump_uart(0, 0x73654c34, tm_sink, NULL);
    printf("tracemark: dump done (%d)\n", r);
}

/* ---- Thread names ------------------------------------------------------------------
 *
 * A THREAD record (tm_thread_name) names a TCB by the id the switch records carry (its
 * address) with its name and priority: when seL4_DebugNameThread sets a name
 * (tracemark_sel4_thread_named), for every thread the kernel knows at tm_init (the idle
 * thread and the root task, named by the boot), after a reset and before the dump. The
 * records at the reset and the dump are the re-emission FORMAT.md 8.4.1 asks of an
 * overwrite ring: whatever the ring lost, it ends with every thread's name. */

/* TCB names and the list of all TCBs (tcbName, ksDebugTCBs) exist in debug builds only:
 * a release kernel writes no THREAD records (and has no seL4_DebugNameThread). */
#ifdef CONFIG_DEBUG_BUILD
static TM_NOTRACE void tm_name_thread(tcb_t *tcb)
{
    const char *name = TCB_PTR_DEBUG_PTR(tcb)->tcbName;
    (void)tm_thread_name(0, (uint64_t)(word_t)tcb, name, strnlen(name, TCB_NAME_LENGTH),
                         (uint32_t)tcb->tcbPriority);
}
#endif

static TM_NOTRACE void tm_name_threads(void)
{
#ifdef CONFIG_DEBUG_BUILD
    if (!tm_on) {
        return;
    }
    int busy = tm_busy;
    tm_busy = 1;
    for (tcb_t *t = NODE_STATE(ksDebugTCBs); t != NULL; t = TCB_PTR_DEBUG_PTR(t)->tcbDebugNext) {
        tm_name_thread(t);
    }
    tm_busy = busy;
#endif
}

#ifdef CONFIG_DEBUG_BUILD
TM_NOTRACE void tracemark_sel4_thread_named(tcb_t *tcb)
{
    if (!tm_on) {
        return;
    }
    tm_busy = 1;
    tm_name_thread(tcb);
    tm_busy = 0;
}
#endif

/* ---- User-level access: seL4_TracemarkSnapshot -------------------------------------
 *
 * seL4_TracemarkSnapshot(frame, flags) copies the ring into a frame the caller owns (and
 * maps, read-only is enough: the kernel writes it through its own window, as seL4's
 * benchmark log buffer), returns the image's length in the message-info register, and
 * with seL4_TracemarkSnapshotReset starts a new, empty ring in the same call.
 *
 * The image is consistent by construction: the copy runs inside this syscall, with
 * interrupts masked and, on one core, nothing else recording (tm_busy keeps the
 * function hooks quiet). It is taken with tm_snapshot, which would also cope with a
 * writer racing it (FORMAT.md 7.2's reclaim rule), but needs not here. The snapshot
 * syscall's own entry is completed before the copy (its exit record's time is the
 * snapshot's start), so the image ends with the entry that took it; with the reset, the
 * new ring begins with every thread's name and a switch to the caller, and nothing
 * between the two rings is lost or counted twice. */
TM_NOTRACE exception_t tracemark_sel4_snapshot(void)
{
    tcb_t *caller = NODE_STATE(ksCurThread);
    word_t cptr = getRegister(caller, capRegister);
    word_t flags = getRegister(caller, msgInfoRegister);
    word_t err = seL4_NoError;
    word_t len = 0;

    lookupCapAndSlot_ret_t lu = lookupCapAndSlot(caller, cptr);
    if (!tm_on) {
        userError("seL4_TracemarkSnapshot: tracemark is not recording");
        err = seL4_IllegalOperation;
    } else if (lu.status != EXCEPTION_NONE || cap_get_capType(lu.cap) != cap_frame_cap) {
        userError("seL4_TracemarkSnapshot: cap #%lu is not a frame", (unsigned long)cptr);
        err = seL4_InvalidCapability;
    } else if (cap_frame_cap_get_capFIsDevice(lu.cap)) {
        userError("seL4_TracemarkSnapshot: the frame is device memory");
        err = seL4_InvalidCapability;
    } else if (flags & ~(word_t)seL4_TracemarkSnapshotReset) {
        userError("seL4_TracemarkSnapshot: unknown flags %lx", (unsigned long)flags);
        err = seL4_InvalidArgument;
    } else {
        uint8_t *dst = (uint8_t *)cap_frame_cap_get_capFBasePtr(lu.cap);
        word_t cap = BIT(pageBitsForSize(cap_frame_cap_get_capFSize(lu.cap)));
        /* This entry ends here, in the image. */
        tracemark_sel4_exit();
        tm_busy = 1;
        int r = tm_snapshot(0, dst, cap, &len);
        if (r != TM_OK) {
            userError("seL4_TracemarkSnapshot: the frame holds %lu bytes, the ring needs %lu (%d)",
                      (unsigned long)cap, (unsigned long)len, r);
            err = seL4_NotEnoughMemory;
            len = 0;
        } else if (flags & seL4_TracemarkSnapshotReset) {
            (void)tm_release(0);
            r = tm_init_recover(0, tm_ring, sizeof(tm_ring), &tm_saved_config, NULL, NULL);
            tm_on = (r == TM_OK || r == TM_RECOVERED);
#ifdef CONFIG_KERNEL_TRACEMARK_FUNCTIONS
            (void)tm_image(0, KERNEL_ELF_BASE, (word_t)ki_end - KERNEL_ELF_BASE, 0x73654c34);
#endif
            tm_name_threads();
            if (tm_on) {
                (void)tm_thread_switch(0, (uint64_t)(word_t)caller);
            }
            tm_last_thread = caller;
        }
        tm_busy = 0;
    }
    setRegister(caller, msgInfoRegister, (word_t)len);
    setRegister(caller, capRegister, err);
    return EXCEPTION_NONE;
}

#endif /* CONFIG_KERNEL_TRACEMARK */
