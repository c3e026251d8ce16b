/*
 * Copyright 2026, the tracemark authors
 *
 * SPDX-License-Identifier: GPL-2.0-only
 */

#include <config.h>

#ifdef CONFIG_BENCHMARK_TRACEMARK

#include <types.h>
#include <assert.h>
#include <util.h>
#include <benchmark/tracemark.h>
/* The node state, the clock and the hooks' inline common case (with tracemark_inline.h,
 * the single-owner writer's common pair). */
#include <benchmark/tracemark_hooks.h>
#include <benchmark/benchmark_track.h>
#include <model/statedata.h>
#include <machine/io.h>
#include <object/structures.h>
#include <hardware.h>
#include <arch/kernel/vspace.h>
#ifdef CONFIG_ARCH_X86
#include <arch/model/statedata.h>
#include <arch/machine/timer.h>
#include <plat/machine/io.h>
#else
#include <plat/machine/devices_gen.h>
#endif

/* One ring and one hook state per node (core), each written by its own node only: the
 * hooks index everything by CURRENT_CPU_INDEX() (0 on a single-core kernel), and
 * tm_init(node, ...) gives tracemark slot `node` its own ring. The kernel runs with
 * interrupts masked, and the -finstrument-functions hooks below record nothing while
 * another hook of this file runs on the same node (its `busy`): no record is ever written
 * into a ring while another is being written into it. That holds on SMP too, and
 * without the big kernel lock: a remote-call IPI entry runs c_entry_hook before (and
 * without) taking the lock, but it writes its own node's ring and state, which no other
 * node writes. The entry, exit and interrupt hooks therefore use tracemark's
 * single-owner calls (tm_owned_*, README "Tracing seL4"), which skip what nesting safety
 * costs: each node's state keeps its ring's writer handle (tm_owned_ring), the hooks
 * read the clock inline and pass the times; the entry hook writes nothing, and the exit
 * writes the entry and the exit together.
 *
 * What one node reads of another's: the dump (on the node that called seL4_DebugHalt or,
 * on a release kernel, seL4_BenchmarkFinalizeLog, holding the big kernel lock) sends
 * every node's ring. The other nodes are then in user
 * mode, or spin for the lock before their entry hook (every locked entry takes the lock
 * before c_entry_hook, and c_exit_hook runs before the unlock), or in a remote-call IPI,
 * which only the lock holder sends and the halting node sends none: no ring changes
 * while it is read.
 *
 * Nothing in this file is instrumented: it is the tracer (the function hooks below would
 * otherwise recurse, and the clock must not record). Only static inline kernel helpers
 * that are not instrumented either are called from the hooks. */
/* TM_NOTRACE: benchmark/tracemark_hooks.h. */

/* This node's index: 0 on a single-core kernel (a constant), else the kernel's own
 * per-core register read (x86_64: gs, aarch64: tpidr_el1). The CMake refuses
 * KernelTracemarkFunctions with KernelMaxNumNodes > 1: getCurrentCPUIndex is an
 * instrumented inline function, which the function hooks would call to find their node
 * before they can tell they are busy. */
#define TM_NODE() ((uint32_t)CURRENT_CPU_INDEX())

/* The rings: one per node, static arrays in the kernel's BSS. */
static uint8_t tm_ring[CONFIG_MAX_NUM_NODES][CONFIG_KERNEL_TRACEMARK_RING_BYTES] ALIGN(8);

/* The hook state of each node (tm_node_state_t, benchmark/tracemark_hooks.h: the
 * inline hooks read and write it too). */
tm_node_state_t tracemark_sel4_node[CONFIG_MAX_NUM_NODES];
word_t tracemark_sel4_syscall[CONFIG_MAX_NUM_NODES];

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

/* tm_ticks, tm_now (the clock) and TM_CLOCK_SHIFT: benchmark/tracemark_hooks.h. */
static TM_NOTRACE uint64_t tm_clock(void)
{
    return tm_now();
}

/* Writes the held entry of node state `st`, if any, before anything else is recorded
 * inside it (the cold path: an interrupt, a function record, a thread name or a note
 * inside a kernel entry). */
static inline TM_NOTRACE void tm_flush(tm_node_state_t *st)
{
    if (st->state & TM_ST_HELD) {
        st->state &= ~TM_ST_HELD;
        (void)tm_owned_kernel_entry(st->ring, st->entry_ts);
    }
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

/* The tracer's serial output. With KernelPrinting it is the kernel's console
 * (kernel_putDebugChar). A release kernel without it has no console: the tracer then
 * writes the UART itself, x86's COM1 (I/O port 0x3f8, the port seL4's console uses by
 * default, left set up by the firmware) or the UART the kernel maps at UART_PPTR on ARM
 * (mapped for tracemark too: KernelMapSerial in config.cmake). */
#ifdef CONFIG_PRINTING
static inline TM_NOTRACE void tm_putc(uint8_t c)
{
    kernel_putDebugChar(c);
}
#elif defined(CONFIG_ARCH_X86)
#define TM_COM1 0x3f8
static inline TM_NOTRACE void tm_putc(uint8_t c)
{
    /* Wait for the transmit holding register to empty (LSR bit 5). */
    while ((in8(TM_COM1 + 5) & 0x20) == 0) {
    }
    out8(TM_COM1, c);
}
#elif defined(CONFIG_PLAT_QEMU_ARM_VIRT)
/* The PL011 of QEMU's virt board, as seL4's pl011.c writes it. */
static inline TM_NOTRACE void tm_putc(uint8_t c)
{
    volatile uint32_t *uart = (volatile uint32_t *)UART_PPTR;
    while ((uart[0x18 / 4] & BIT(5)) != 0) {
    }
    uart[0] = c;
}
#else
#error "KernelBenchmarksTracemark without KernelPrinting: no serial output for this platform"
#endif

#ifndef CONFIG_PRINTING
/* Text lines of the release dump (no printf without KernelPrinting). */
static TM_NOTRACE void tm_puts(const char *s)
{
    while (*s) {
        tm_putc((uint8_t)*s++);
    }
}

static TM_NOTRACE void tm_putu(uint64_t v)
{
    char buf[21];
    int i = sizeof(buf) - 1;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    tm_puts(&buf[i]);
}
#endif

/* The configuration of tm_init, kept for the re-initialisation of a reset
 * (tracemark_sel4_snapshot): tm_clock_hz is boot code, gone after the boot. */
static tm_config tm_saved_config;

static TM_NOTRACE void tm_name_threads(uint32_t node);
static BOOT_CODE TM_NOTRACE bool_t tm_entry_layout_ok(void);

BOOT_CODE TM_NOTRACE void tracemark_sel4_init(void)
{
    tm_config config = {
        .block_size = 4096,
        .mode = config_set(CONFIG_KERNEL_TRACEMARK_DROP) ? TM_MODE_DROP : TM_MODE_OVERWRITE,
        .clock = tm_clock,
        .clock_hz = tm_clock_hz() >> TM_CLOCK_SHIFT,
        .producer_id = 0x73654c34, /* "seL4" */
        .syscall_abi = config_set(CONFIG_KERNEL_MCS) ? TM_ABI_SEL4_MCS : TM_ABI_SEL4,
    };
    /* Every node's ring, from the boot node, which holds the big kernel lock here: the
     * other nodes have booted (on SMP) but their hooks do nothing until their TM_ST_ON is
     * set, and they read it only after they take the lock this node holds, or in a
     * remote-call IPI entry, which a lock holder sends after taking the lock: either way
     * after this node's release of the lock, which orders these writes before. */
    tm_saved_config = config;
    tm_node_state_t *self = &tracemark_sel4_node[TM_NODE()];
    self->busy = 1;
    int r = TM_OK;
    /* tm_entry_word takes a syscall's word from ksKernelEntry's bits as they are: a
     * kernel_entry_t laid out otherwise would give wrong words, so record nothing. */
    bool_t layout_ok = tm_entry_layout_ok();
    for (word_t n = 0; n < CONFIG_MAX_NUM_NODES; n++) {
        int rn = tm_init((uint32_t)n, tm_ring[n], sizeof(tm_ring[n]), &config);
        tm_node_state_t *st = &tracemark_sel4_node[n];
        st->ring = tm_owned_ring((uint32_t)n);
        st->state = (layout_ok && rn == TM_OK &&
                     tm_owned_inline_sync(st->ring, &st->inl) == TM_OK) ? TM_ST_ON : 0;
        st->last_thread = NODE_STATE_ON_CORE(ksCurThread, n);
        if (rn != TM_OK) {
            r = rn;
        }
    }
    /* The threads the boot created and named (the idle threads, the root task). */
    tm_name_threads(TM_NODE());
#ifdef CONFIG_KERNEL_TRACEMARK_FUNCTIONS
    /* Function records carry the address minus KERNEL_ELF_BASE (3 bytes instead of 10
     * for a kernel address); the IMAGE record says where the kernel image lies. */
    (void)tm_image(TM_NODE(), KERNEL_ELF_BASE, (word_t)ki_end - KERNEL_ELF_BASE, 0x73654c34);
#endif
    /* The tracer's own message: not kernel work, not recorded. */
#ifdef CONFIG_PRINTING
    printf("tracemark: %s, ring of %lu bytes at %p, clock %llu Hz\n",
           !layout_ok ? "kernel_entry_t is not laid out as tracemark's entry word, not recording" :
           r == TM_OK ? "recording" : "tm_init failed", (unsigned long)sizeof(tm_ring[0]),
           tm_ring[0], (unsigned long long)config.clock_hz);
#ifdef ENABLE_SMP_SUPPORT
    /* What a reader needs to tell the cores' IPIs among their IRQ records. */
    printf("tracemark: %lu nodes, one ring each; IPI irqs: remote call %lu, reschedule %lu\n",
           (unsigned long)CONFIG_MAX_NUM_NODES, (unsigned long)irq_remote_call_ipi,
           (unsigned long)irq_reschedule_ipi);
#endif
#else
    tm_puts(!layout_ok ? "tracemark: kernel_entry_t is not laid out as tracemark's entry word, not recording, ring of " :
            r == TM_OK ? "tracemark: recording, ring of " : "tracemark: tm_init failed, ring of ");
    tm_putu(sizeof(tm_ring[0]));
    tm_puts(" bytes, clock ");
    tm_putu(config.clock_hz);
    tm_puts(" Hz\n");
#ifdef ENABLE_SMP_SUPPORT
    tm_puts("tracemark: ");
    tm_putu(CONFIG_MAX_NUM_NODES);
    tm_puts(" nodes, one ring each; IPI irqs: remote call ");
    tm_putu(irq_remote_call_ipi);
    tm_puts(", reschedule ");
    tm_putu(irq_reschedule_ipi);
    tm_puts("\n");
#endif
#endif
    self->busy = 0;
}

/* tracemark_sel4_entry: inline, benchmark/tracemark_hooks.h. */

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
#if defined(CONFIG_DEBUG_BUILD)
#define TM_LAST_DEBUG_SYSCALL SysDebugNameThread
#elif defined(CONFIG_PRINTING)
/* A release kernel with KernelPrinting numbers its two printing syscalls as a debug
 * kernel does; the benchmark syscalls that follow have other numbers than in a debug
 * kernel, and stay UnknownSyscall entries with their number. */
#define TM_LAST_DEBUG_SYSCALL SysDebugDumpScheduler
#endif

/* tm_entry_bits_of (ksKernelEntry's fields as tracemark's entry word would hold a
 * syscall's, from one load): benchmark/tracemark_hooks.h. */

/* Whether tm_entry_bits_of gives tracemark's word for a syscall entry (the compiler
 * lays seL4's bit-fields out from bit 0 up, the union from the next byte). */
static BOOT_CODE TM_NOTRACE bool_t tm_entry_layout_ok(void)
{
    kernel_entry_t e;
    __builtin_memset(&e, 0, sizeof(e));
    e.path = Entry_Syscall;
    e.syscall_no = 5;
    e.cap_type = 17;
    e.is_fastpath = 1;
    e.invocation_tag = 0x5a5a5;
    uint32_t want = 0;
    return tm_entry_word_syscall(5, 17, true, 0x5a5a5, &want) == TM_OK &&
           tm_entry_bits_of(&e) == want;
}

static inline TM_NOTRACE uint32_t tm_entry_word(uint32_t node)
{
    /* The common case: a syscall other than Yield and DebugPutChar is its bits as they
     * are; a Yield's without its cap type and label (below). */
    uint32_t word = TM_PATH_UNKNOWN;
    if (tm_entry_word_common(&word)) {
        return word;
    }
    uint32_t path = ksKernelEntry.path;
    uint32_t core = (uint32_t)CURRENT_CPU_INDEX() & TM_ENTRY_MAX_CORE;
    /* seL4 sets is_fastpath before it knows; the unknown-syscall path is never the
     * fastpath. */
    bool_t fastpath = ksKernelEntry.is_fastpath;
    if (path == TM_PATH_UNKNOWN_SYSCALL && tracemark_sel4_syscall[node] != 0) {
        word_t n = -tracemark_sel4_syscall[node];
#ifdef TM_LAST_DEBUG_SYSCALL
        if (n >= 1 && n <= (word_t) - TM_LAST_DEBUG_SYSCALL) {
            path = TM_PATH_SYSCALL;
            fastpath = 0;
        } else
#endif
        {
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
#ifdef CONFIG_PRINTING
        if (ksKernelEntry.syscall_no == (word_t)(-SysDebugPutChar)) {
            cap_type = 0;
            label = (uint32_t)(getRegister(NODE_STATE(ksCurThread), capRegister) & 0xff);
        }
#endif
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

/* After a record written through the library on a cold path (the exit of an entry
 * written early, a switch): the inline pair writer's state taken again, so that the next
 * pair is written inline (it writes only while nothing else recorded since it moved). */
static inline TM_NOTRACE void tm_inline_resync(tm_node_state_t *st)
{
#ifdef CONFIG_KERNEL_TRACEMARK_INLINE_PAIR
    (void)tm_owned_inline_sync(st->ring, &st->inl);
#else
    (void)st;
#endif
}

/* The node's first exit to user level after boot ends no kernel entry, but from here its
 * first thread runs (the root task on the boot node): say so with a switch record of its
 * own (last_thread is the thread current during boot), so that the first entry does not
 * carry a switch that did not happen there. */
static TM_NOTRACE __attribute__((noinline, cold)) void tm_exit_first(tm_node_state_t *st,
                                                                     uint32_t node)
{
    tcb_t *first = NODE_STATE(ksCurThread);
    st->busy = 1;
    if (first != st->last_thread) {
        (void)tm_thread_switch(node, (uint64_t)(word_t)first);
        st->last_thread = first;
        tm_inline_resync(st);
    }
#ifdef CONFIG_KERNEL_TRACEMARK_FUNCTIONS
    tm_booted = 1;
#endif
    st->busy = 0;
}

/* An exit past the inline common case (tracemark_hooks.h, which calls it with the word and
 * the time taken): entry word, thread switch and exit in one call into the library; a
 * held entry and its exit in one reservation. Its callers set `busy` (both before they
 * build the word or call it); it clears it. */
TM_NOTRACE __attribute__((noinline)) void tracemark_sel4_exit_write(tm_node_state_t *st,
                                                                    tcb_t *next, uint32_t word,
                                                                    uint64_t now)
{
    uint64_t switch_to = 0;
    if (next != st->last_thread) {
        switch_to = (uint64_t)(word_t)next;
        st->last_thread = next;
    }
    if (st->state & TM_ST_HELD) {
#ifdef CONFIG_KERNEL_TRACEMARK_INLINE_PAIR
        /* The library's pair, then the inline writer's state taken again. */
        (void)tm_owned_inline_fallback(st->ring, &st->inl, st->entry_ts, word, switch_to, now);
#else
        (void)tm_owned_kernel_pair(st->ring, st->entry_ts, word, switch_to, now);
#endif
    } else {
        (void)tm_owned_kernel_exit(st->ring, word, switch_to, now);
        tm_inline_resync(st);
    }
    st->state &= ~(TM_ST_OPEN | TM_ST_HELD);
    st->busy = 0;
}

/* The exit hook whole (tracemark_sel4_exit, tracemark_hooks.h, writes its common case
 * inline and calls this for anything else; the dump and the snapshot call it to end
 * their entry). */
TM_NOTRACE void tracemark_sel4_exit_other(void)
{
    uint32_t node = TM_NODE();
    tm_node_state_t *st = &tracemark_sel4_node[node];
    if (!(st->state & TM_ST_ON)) {
        return;
    }
    if (!(st->state & TM_ST_OPEN)) {
        tm_exit_first(st, node);
        return;
    }
    /* Busy from here (tracemark_sel4_exit_write clears it): the word of a DebugPutChar
     * reads its character with seL4's getRegister, which the function-tracing kernel
     * instruments. */
    st->busy = 1;
    tcb_t *next = NODE_STATE(ksCurThread);
    uint32_t word = tm_entry_word(node);
    uint64_t now = tm_now();
    tracemark_sel4_exit_write(st, next, word, now);
}

TM_NOTRACE void tracemark_sel4_interrupt(word_t irq)
{
    uint32_t node = TM_NODE();
    tm_node_state_t *st = &tracemark_sel4_node[node];
    if (!(st->state & TM_ST_ON)) {
        return;
    }
    st->busy = 1;
    uint64_t now = tm_now();
    tm_flush(st);
    (void)tm_owned_interrupt(st->ring, (uint32_t)irq, now);
    st->busy = 0;
}

#ifdef CONFIG_KERNEL_TRACEMARK_FUNCTIONS
/* The -finstrument-functions hooks; the kernel's C code is compiled with
 * -finstrument-functions, this file's functions are excluded by TM_NOTRACE. */
void __cyg_profile_func_enter(void *func, void *call_site);
void __cyg_profile_func_exit(void *func, void *call_site);

/* Counts a function record made outside every kernel entry (see tm_outside). */
static inline TM_NOTRACE void tm_count_outside(void)
{
    if (tracemark_sel4_node[TM_NODE()].state & TM_ST_OPEN) {
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
    uint32_t node = TM_NODE();
    tm_node_state_t *st = &tracemark_sel4_node[node];
    if (!(st->state & TM_ST_ON) || st->busy) {
        return;
    }
    st->busy = 1;
    tm_count_outside();
    tm_flush(st);
    (void)tm_function_entry(node, (uint64_t)((word_t)func - KERNEL_ELF_BASE));
    st->busy = 0;
}

TM_NOTRACE void __cyg_profile_func_exit(void *func, void *call_site)
{
    uint32_t node = TM_NODE();
    tm_node_state_t *st = &tracemark_sel4_node[node];
    if (!(st->state & TM_ST_ON) || st->busy) {
        return;
    }
    st->busy = 1;
    tm_count_outside();
    tm_flush(st);
    (void)tm_function_exit(node, (uint64_t)((word_t)func - KERNEL_ELF_BASE));
    st->busy = 0;
}
#endif

static TM_NOTRACE int tm_sink(void *ctx, const uint8_t *data, word_t len)
{
    for (word_t i = 0; i < len; i++) {
        tm_putc(data[i]);
    }
    return 0;
}

/* Called on seL4_DebugHalt: completes the halting entry (its information is known, and
 * the kernel is left for good), names the threads of every node, then sends every
 * node's ring over the serial console, each as a UART dump of its own (dump id "seL4"
 * plus the node: 0x73654c34 for node 0), which the decoder puts together as one dump of
 * several rings. Nothing is recorded once the dump starts; see the top of this file for
 * why the other nodes' rings do not change while they are read. */
TM_NOTRACE void tracemark_sel4_dump(void)
{
    uint32_t node = TM_NODE();
    tm_node_state_t *st = &tracemark_sel4_node[node];
    if (!(st->state & TM_ST_ON)) {
        return;
    }
    tracemark_sel4_exit_other();
    st->busy = 1;
#ifdef CONFIG_KERNEL_TRACEMARK_FUNCTIONS
    (void)tm_user(node, TRACEMARK_SEL4_OUTSIDE_ID, &tm_outside, sizeof(tm_outside));
#endif
    /* Every thread's name once more, at the end: an overwrite ring that lost the records
     * of its creation still names its threads (FORMAT.md 8.4.1). */
    tm_name_threads(node);
    for (word_t n = 0; n < CONFIG_MAX_NUM_NODES; n++) {
        /* The other nodes run no hook meanwhile (see the top of this file): nothing
         * else writes their state. */
        tracemark_sel4_node[n].state &= ~TM_ST_ON;
    }
#if defined(CONFIG_DEBUG_BUILD) && defined(CONFIG_PRINTING)
    /* Thread names exist in debug kernels only (seL4_DebugNameThread). */
    for (word_t n = 0; n < CONFIG_MAX_NUM_NODES; n++) {
        for (tcb_t *t = NODE_STATE_ON_CORE(ksDebugTCBs, n); t != NULL;
             t = TCB_PTR_DEBUG_PTR(t)->tcbDebugNext) {
            printf("tracemark: thread 0x%lx \"%s\"\n", (unsigned long)(word_t)t,
                   TCB_PTR_DEBUG_PTR(t)->tcbName);
        }
    }
#endif
    for (word_t n = 0; n < CONFIG_MAX_NUM_NODES; n++) {
#ifdef CONFIG_PRINTING
        if (CONFIG_MAX_NUM_NODES > 1) {
            printf("tracemark: dumping the ring of node %lu\n", (unsigned long)n);
        } else {
            printf("tracemark: dumping the ring\n");
        }
        int r = tm_dump_uart((uint32_t)n, 0x73654c34 + (uint32_t)n, tm_sink, NULL);
        printf("tracemark: dump done (%d)\n", r);
#else
        if (CONFIG_MAX_NUM_NODES > 1) {
            tm_puts("tracemark: dumping the ring of node ");
            tm_putu(n);
            tm_puts("\n");
        } else {
            tm_puts("tracemark: dumping the ring\n");
        }
        int r = tm_dump_uart((uint32_t)n, 0x73654c34 + (uint32_t)n, tm_sink, NULL);
        tm_puts(r < 0 ? "tracemark: dump failed\n" : "tracemark: dump done (0)\n");
#endif
    }
}

/* seL4_BenchmarkFinalizeLog: the way out of a kernel without seL4_DebugHalt (release).
 * The caller's note, if any, goes into the trace first: its IPC buffer's message word 0
 * is a length in bytes (at most the rest of the message), message words 1... the bytes,
 * recorded as USER records of TRACEMARK_SEL4_NOTE_ID with up to 32 bytes each, in order
 * (a root task without a console ships what it would print this way). Then the ring is
 * dumped, as at seL4_DebugHalt; nothing is recorded after it. The syscall returns. */
TM_NOTRACE void tracemark_sel4_finalize(void)
{
    uint32_t node = TM_NODE();
    tm_node_state_t *st = &tracemark_sel4_node[node];
    if (!(st->state & TM_ST_ON)) {
        return;
    }
    word_t *ipc = lookupIPCBuffer(false, NODE_STATE(ksCurThread));
    if (ipc != NULL) {
        /* The message registers start at word 1 of seL4_IPCBuffer (word 0 is the tag). */
        const word_t *msg = &ipc[1];
        word_t len = msg[0];
        word_t max = (seL4_MsgMaxLength - 1) * sizeof(word_t);
        const uint8_t *bytes = (const uint8_t *)&msg[1];
        if (len > max) {
            len = max;
        }
        st->busy = 1;
        /* Inside seL4_BenchmarkFinalizeLog's entry: that entry is written first. */
        tm_flush(st);
        for (word_t off = 0; off < len; off += 32) {
            word_t n = len - off < 32 ? len - off : 32;
            (void)tm_user(node, TRACEMARK_SEL4_NOTE_ID, bytes + off, n);
        }
        st->busy = 0;
    }
    tracemark_sel4_dump();
}

/* ---- Thread names ------------------------------------------------------------------
 *
 * A THREAD record (tm_thread_name) names a TCB by the id the switch records carry (its
 * address) with its name and priority: when seL4_DebugNameThread sets a name
 * (tracemark_sel4_thread_named), for every thread the kernel knows at tm_init (the idle
 * thread and the root task, named by the boot), after a reset and before the dump. The
 * records at the reset and the dump are the re-emission FORMAT.md 8.4.1 asks of an
 * overwrite ring: whatever the ring lost, it ends with every thread's name. */

#ifdef CONFIG_DEBUG_BUILD
static TM_NOTRACE void tm_name_thread(uint32_t node, tcb_t *tcb)
{
    const char *name = TCB_PTR_DEBUG_PTR(tcb)->tcbName;
    /* Inside seL4_DebugNameThread's entry: that entry is written first. */
    tm_flush(&tracemark_sel4_node[node]);
    (void)tm_thread_name(node, (uint64_t)(word_t)tcb, name, strnlen(name, TCB_NAME_LENGTH),
                         (uint32_t)tcb->tcbPriority);
}
#endif

/* Names every thread of every node in `node`'s ring (this node's: the caller runs on it,
 * holding the big kernel lock on SMP). Thread names exist in debug kernels only. */
static TM_NOTRACE void tm_name_threads(uint32_t node)
{
#ifdef CONFIG_DEBUG_BUILD
    tm_node_state_t *st = &tracemark_sel4_node[node];
    if (!(st->state & TM_ST_ON)) {
        return;
    }
    int busy = st->busy;
    st->busy = 1;
    for (word_t n = 0; n < CONFIG_MAX_NUM_NODES; n++) {
        for (tcb_t *t = NODE_STATE_ON_CORE(ksDebugTCBs, n); t != NULL;
             t = TCB_PTR_DEBUG_PTR(t)->tcbDebugNext) {
            tm_name_thread(node, t);
        }
    }
    st->busy = busy;
#endif
}

#ifdef CONFIG_DEBUG_BUILD
TM_NOTRACE void tracemark_sel4_thread_named(tcb_t *tcb)
{
    uint32_t node = TM_NODE();
    tm_node_state_t *st = &tracemark_sel4_node[node];
    if (!(st->state & TM_ST_ON)) {
        return;
    }
    st->busy = 1;
    tm_name_thread(node, tcb);
    st->busy = 0;
}
#endif

/* ---- User-level access: seL4_TracemarkSnapshot -------------------------------------
 *
 * seL4_TracemarkSnapshot(frame, flags) copies the ring into a frame the caller owns (and
 * maps, read-only is enough: the kernel writes it through its own window, as seL4's
 * benchmark log buffer), returns the image's length in the message-info register, and
 * with seL4_TracemarkSnapshotReset starts a new, empty ring in the same call.
 *
 * The image is the ring of the caller's node (on SMP: a snapshot per node, taken by a
 * thread running there; the other nodes' rings go on). It is consistent by construction:
 * the copy runs inside this syscall, with interrupts masked, and only this node writes
 * its ring (its `busy` keeps the function hooks quiet). It is taken with tm_snapshot, which would also cope with a
 * writer racing it (FORMAT.md 7.2's reclaim rule), but needs not here. The snapshot
 * syscall's own entry is completed before the copy (its exit record's time is the
 * snapshot's start), so the image ends with the entry that took it; with the reset, the
 * new ring begins with every thread's name and a switch to the caller, and nothing
 * between the two rings is lost or counted twice. */
TM_NOTRACE exception_t tracemark_sel4_snapshot(void)
{
    uint32_t node = TM_NODE();
    tm_node_state_t *st = &tracemark_sel4_node[node];
    tcb_t *caller = NODE_STATE(ksCurThread);
    word_t cptr = getRegister(caller, capRegister);
    word_t flags = getRegister(caller, msgInfoRegister);
    word_t err = seL4_NoError;
    word_t len = 0;

    lookupCapAndSlot_ret_t lu = lookupCapAndSlot(caller, cptr);
    if (!(st->state & TM_ST_ON)) {
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
        tracemark_sel4_exit_other();
        st->busy = 1;
        int r = tm_snapshot(node, dst, cap, &len);
        if (r != TM_OK) {
            userError("seL4_TracemarkSnapshot: the frame holds %lu bytes, the ring needs %lu (%d)",
                      (unsigned long)cap, (unsigned long)len, r);
            err = seL4_NotEnoughMemory;
            len = 0;
        } else if (flags & seL4_TracemarkSnapshotReset) {
            (void)tm_release(node);
            r = tm_init_recover(node, tm_ring[node], sizeof(tm_ring[node]), &tm_saved_config,
                                NULL, NULL);
            /* A new ring: a new single-owner handle (nothing is held: the exit above
             * wrote this entry). */
            st->ring = tm_owned_ring(node);
            st->state = ((r == TM_OK || r == TM_RECOVERED) &&
                         tm_owned_inline_sync(st->ring, &st->inl) == TM_OK) ? TM_ST_ON : 0;
#ifdef CONFIG_KERNEL_TRACEMARK_FUNCTIONS
            (void)tm_image(node, KERNEL_ELF_BASE, (word_t)ki_end - KERNEL_ELF_BASE, 0x73654c34);
#endif
            tm_name_threads(node);
            if (st->state & TM_ST_ON) {
                (void)tm_thread_switch(node, (uint64_t)(word_t)caller);
            }
            st->last_thread = caller;
        }
        st->busy = 0;
    }
    setRegister(caller, msgInfoRegister, (word_t)len);
    setRegister(caller, capRegister, err);
    return EXCEPTION_NONE;
}

#endif /* CONFIG_BENCHMARK_TRACEMARK */
