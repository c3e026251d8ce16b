/*
 * Copyright 2026, the tracemark authors
 *
 * SPDX-License-Identifier: GPL-2.0-only
 */

/* The common case of tracemark's kernel entry and exit hooks, inline in seL4's
 * c_entry_hook and c_exit_hook (include/kernel/traps.h, the only file that includes
 * this one besides src/benchmark/tracemark.c): the node state they share with the rest
 * of the tracer, the clock, the entry hook whole, and the exit of a held syscall entry
 * without a thread switch written as the short pair (tracemark_inline.h). Everything
 * else is out of line in src/benchmark/tracemark.c, reached by a tail call from here
 * (tracemark_sel4_exit_other, tracemark_sel4_exit_write), where the out-of-line hooks
 * called it before.
 *
 * Nothing here is instrumented (KernelTracemarkFunctions): TM_NOTRACE on every function,
 * and the kernel's CMake excludes this file and tracemark's headers from
 * -finstrument-functions (GCC instruments an inlined function by its own file). */

#pragma once

#include <config.h>

#ifdef CONFIG_BENCHMARK_TRACEMARK

#include <types.h>
#include <benchmark/tracemark.h>
#include <benchmark/benchmark_track.h>
#include <model/statedata.h>
#include <api/syscall.h>
/* The single-owner writer's common pair (generated from tracemark's format crate;
 * TRACEMARK_DIR/include). */
#include <tracemark_inline.h>

#define TM_NOTRACE __attribute__((no_instrument_function))
/* What the hooks' common case calls, inline wherever it is called: GCC would otherwise
 * call some of it out of line from seL4's entry and exit paths (see
 * TRACEMARK_HOOK_INLINE). */
#define TM_ALWAYS_INLINE __attribute__((always_inline, no_instrument_function))

/* The hook state of one node, written by that node's hooks only (and by the boot node's
 * tracemark_sel4_init, before any hook of another node runs on it, and by the dump, see
 * src/benchmark/tracemark.c). */
typedef struct tm_node_state {
    /* 1 while a hook of tracemark.c runs on this node: the -finstrument-functions hooks
     * then record nothing (a kernel function the tracer calls, such as memcpy, is not
     * traced). The inline common case calls nothing and needs no `busy`. */
    int busy;
    /* TM_ST_ON, TM_ST_OPEN and TM_ST_HELD (below) in one word, which the exit hook's
     * common case tests with one compare (TM_ST_ENTRY) and sets with one store. */
    uint32_t state;
    /* The thread that ran when the kernel was last left on this node. */
    struct tcb *last_thread;
    /* The single-owner writer state: the ring's handle (tm_owned_ring) and the kernel
     * entry in progress, *held* (its time kept here, nothing written: TM_ST_HELD) until
     * the exit hook writes it together with the exit (tm_owned_kernel_pair), or written
     * by tm_flush as soon as anything else is recorded inside it (an interrupt, a
     * function record, a thread name, a note), its word then filled in at the exit
     * (tm_owned_kernel_exit). */
    const tm_owned *ring;
    /* What the inline pair writer (tracemark_inline.h) works from, taken from `ring`
     * with tm_owned_inline_sync whenever `ring` is set. */
    tm_owned_inline inl;
    uint64_t entry_ts;
} tm_node_state_t;

/* tm_node_state_t.state: */
/* This node's ring is initialised, until the dump starts. */
#define TM_ST_ON 1u
/* Between a recorded entry and its exit: the exit to the first user thread after boot is
 * not the end of a kernel entry. */
#define TM_ST_OPEN 2u
/* The entry in progress is held (below: `ring`). */
#define TM_ST_HELD 4u
/* What the entry hook sets: the state of the exit hook's common case. */
#define TM_ST_ENTRY (TM_ST_ON | TM_ST_OPEN | TM_ST_HELD)

/* One per node (src/benchmark/tracemark.c). */
extern tm_node_state_t tracemark_sel4_node[CONFIG_MAX_NUM_NODES];

/* The exit hook past its inline common case (src/benchmark/tracemark.c): the whole exit
 * (nothing recorded, the first exit after boot, an entry written early, an entry word
 * other than a syscall's as it is), or the write of what the common case took (a switch,
 * a pair that is not the short one, the inline writer's state gone stale). */
void tracemark_sel4_exit_other(void);
/* tracemark_sel4_exit_write: called with the node's `busy` set, which it clears. */
void tracemark_sel4_exit_write(tm_node_state_t *st, struct tcb *next, uint32_t word,
                               uint64_t now);

/* KernelTracemarkClockShift: timestamps in units of 2^TM_CLOCK_SHIFT clock ticks, and
 * the ring's clock frequency divided alike (tm_clock_hz), so that decoded times stay
 * true at the coarser resolution. */
#define TM_CLOCK_SHIFT CONFIG_KERNEL_TRACEMARK_CLOCK_SHIFT

/* The clock's raw ticks. */
static inline TM_ALWAYS_INLINE uint64_t tm_ticks(void)
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
#error "KernelBenchmarksTracemark supports x86_64 and aarch64"
#endif
}

/* A timestamp: the clock's ticks in the ring's units. */
static inline TM_ALWAYS_INLINE uint64_t tm_now(void)
{
    return tm_ticks() >> TM_CLOCK_SHIFT;
}

/* ksKernelEntry's fields as tracemark's entry word would hold a syscall's. seL4's
 * packed kernel_entry_t has the path in bits 0-2 and its union from bit 8 (syscall 0-3,
 * cap type 4-8, fastpath 9, label 10-28 of the union); tracemark's word has the same
 * fields in the same order from bit 3. So one 8-byte load, the union moved down by 5
 * bits, and the path: for a syscall, the word but for seL4's quirks (tm_entry_word).
 * tracemark_sel4_init checks the layout at boot (tm_entry_layout_ok). */
compile_assert(tm_entry_bits_fit, sizeof(kernel_entry_t) >= sizeof(uint64_t))
static inline TM_ALWAYS_INLINE uint32_t tm_entry_bits_of(const kernel_entry_t *e)
{
    uint64_t bits;
    __builtin_memcpy(&bits, e, sizeof(bits));
    return ((uint32_t)(bits >> 5) & ~(uint32_t)TM_ENTRY_PATH_MASK) |
           ((uint32_t)bits & TM_ENTRY_PATH_MASK);
}

/* The entry word of the common case, a syscall other than DebugPutChar, into *word:
 * its bits as they are, a Yield's without its cap type and label (seL4_Yield takes no
 * cap and no message, but seL4 still copies whatever the caller left in its cptr and
 * message-info registers). 0 for anything else, which tm_entry_word (tracemark.c)
 * builds field by field. */
static inline TM_ALWAYS_INLINE bool_t tm_entry_word_common(uint32_t *word)
{
    uint32_t bits = tm_entry_bits_of(&ksKernelEntry);
    if ((bits & TM_ENTRY_PATH_MASK) != TM_PATH_SYSCALL) {
        return false;
    }
    uint32_t no = (bits >> TM_ENTRY_SYSCALL_SHIFT) & TM_ENTRY_MAX_SYSCALL;
    if (no == (word_t)(-SysYield)) {
        *word = bits & (TM_ENTRY_PATH_MASK | TM_ENTRY_MAX_SYSCALL << TM_ENTRY_SYSCALL_SHIFT |
                        1u << TM_ENTRY_FASTPATH_SHIFT);
        return true;
    }
#ifdef CONFIG_PRINTING
    /* seL4_DebugPutChar: its character is recorded as the label (tm_entry_word). */
    if (no == (word_t)(-SysDebugPutChar)) {
        return false;
    }
#endif
    *word = bits;
    return true;
}

/* The inline pair writer and its varint helper, declared again always inline: GCC judges
 * the pair's path in c_exit_hook unlikely (seL4 calls c_exit_hook from noreturn
 * functions) and, by its size heuristics, would call the writer's varint helper out of
 * line (four calls, a frame, the arguments spilled). These declarations follow the
 * generated header's names and types by hand: a renamed or retyped function there
 * stops the kernel's build (a conflicting declaration, or a static function declared
 * and never defined, which -Werror refuses) rather than losing the attribute silently. */
static inline __attribute__((always_inline)) uint8_t *tm_inline_put_short(uint8_t *at,
                                                                          uint32_t v);
static inline __attribute__((always_inline)) int tm_owned_inline_pair(tm_owned_inline *f,
                                                                      uint64_t entry_ts,
                                                                      uint32_t word,
                                                                      uint64_t exit_ts);

/* c_entry_hook, first: the entry is held (only its time kept, written with the exit or
 * by tm_flush). */
static inline TM_ALWAYS_INLINE void tracemark_sel4_entry(void)
{
    word_t node = CURRENT_CPU_INDEX();
    tm_node_state_t *st = &tracemark_sel4_node[node];
    if (unlikely(!(st->state & TM_ST_ON))) {
        return;
    }
    st->entry_ts = tm_now();
    st->state = TM_ST_ENTRY;
    tracemark_sel4_syscall[node] = 0;
}

/* c_exit_hook, first: the kernel entry and its exit. */
static inline TM_ALWAYS_INLINE void tracemark_sel4_exit(void)
{
#ifdef CONFIG_KERNEL_TRACEMARK_INLINE_PAIR
    word_t node = CURRENT_CPU_INDEX();
    tm_node_state_t *st = &tracemark_sel4_node[node];
    uint32_t word;
    /* The common case: recording, the entry held, a syscall's word, no thread switch,
     * and the short pair (tracemark_inline.h), written here. It calls nothing, so it
     * needs no `busy` (nothing the function hooks could record in runs). */
    if (unlikely(st->state != TM_ST_ENTRY || !tm_entry_word_common(&word))) {
        tracemark_sel4_exit_other();
        return;
    }
    struct tcb *next = NODE_STATE(ksCurThread);
    uint64_t now = tm_now();
    if (likely(next == st->last_thread &&
               tm_owned_inline_pair(&st->inl, st->entry_ts, word, now))) {
        st->state = TM_ST_ON;
        return;
    }
    /* The rest with the word and the time already taken (one clock read per record),
     * busy (tracemark_sel4_exit_write clears it). */
    st->busy = 1;
    tracemark_sel4_exit_write(st, next, word, now);
#else
    /* KernelTracemarkInlinePair=OFF: the pair through the library (tm_owned_kernel_pair). */
    tracemark_sel4_exit_other();
#endif
}

/* seL4's c_entry_hook and c_exit_hook (include/kernel/traps.h) always inline into the
 * kernel's entry and exit paths (c_handle_*, restore_user_context, the fastpath): with
 * the hooks inside them GCC calls them out of line (their callers are noreturn
 * functions, where it inlines only what does not grow the code), a call, a return and,
 * for the exit, a frame per kernel entry. The price is code: c_exit_hook's common case
 * (about 100 instructions) in each of its callers (3 on aarch64 and x86_64). */
#define TRACEMARK_HOOK_INLINE __attribute__((always_inline))

#else

#define TRACEMARK_HOOK_INLINE

#endif /* CONFIG_BENCHMARK_TRACEMARK */
