/*
 * Copyright 2026, the tracemark authors
 *
 * SPDX-License-Identifier: GPL-2.0-only
 */

/* Tracing the kernel with tracemark: kernel entries and
 * exits with their durations, interrupts, thread switches and, optionally, the kernel's
 * own functions (-finstrument-functions), recorded into a ring in the kernel's BSS and
 * dumped over the serial console at seL4_DebugHalt in tracemark's UART framing.
 *
 * Enabled by KernelBenchmarksTracemark (off by default), an option of seL4's benchmark
 * family. seL4's own files call the tracer only through the TRACEMARK_* macros below,
 * each where seL4 calls its own benchmark hooks or at the end of the boot; every one
 * compiles to nothing when the option is off. */

#pragma once

#include <config.h>
#include <types.h>
#include <api/failures.h>

#ifdef CONFIG_BENCHMARK_TRACEMARK

/* The tracemark C ABI (libtracemark_c.a), declared by tracemark's own header
 * (TRACEMARK_DIR/include, found by the kernel's CMake). The kernel is built with -nostdinc:
 * TM_NO_STDINC makes tracemark.h include nothing and use the kernel's uint8_t,
 * uint32_t and uint64_t (from types.h above). */
#define TM_NO_STDINC
#include <tracemark.h>

/* The kernel's hooks. */
void tracemark_sel4_init(void);
/* The entry and exit hooks (tracemark_sel4_entry, tracemark_sel4_exit) are inline:
 * benchmark/tracemark_hooks.h, which include/kernel/traps.h includes. */
void tracemark_sel4_interrupt(word_t irq);
void tracemark_sel4_dump(void);
void tracemark_sel4_finalize(void);
/* seL4_DebugNameThread named `tcb`: records its name (a THREAD record). */
struct tcb;
void tracemark_sel4_thread_named(struct tcb *tcb);
/* The seL4_TracemarkSnapshot syscall (libsel4: seL4_TracemarkSnapshot). */
exception_t tracemark_sel4_snapshot(void);

/* Per node: the syscall number of the node's current entry as the entry code saw it
 * (seL4 keeps only 4 bits of it in ksKernelEntry); 0 when the entry is not a syscall. */
extern word_t tracemark_sel4_syscall[CONFIG_MAX_NUM_NODES];

/* The id of the USER record the dump adds with KernelTracemarkFunctions ("OUT" in
 * ASCII): its 16 bytes are two little-endian uint64_t, the function records made outside
 * every kernel entry during the rest of the boot, and between an exit record and the
 * next entry record (the way out after c_exit_hook's exit record; x86's
 * pending-interrupt service), see tm_outside in src/benchmark/tracemark.c. */
#define TRACEMARK_SEL4_OUTSIDE_ID 0x4f5554u

/* The id of the USER records that carry the note of seL4_BenchmarkFinalizeLog's caller
 * ("NOT" in ASCII): its bytes, 32 per record, in order (tracemark_sel4_finalize). */
#define TRACEMARK_SEL4_NOTE_ID 0x4e4f54u

#ifdef CONFIG_ARCH_X86
/* The TSC frequency in MHz that the boot measures once (tsc_init, for the boot info's
 * X86_TSC_FREQ): the tracer's clock frequency, so that the PIT calibration does not
 * run a second time. */
extern uint32_t tracemark_sel4_tsc_mhz;
#define TRACEMARK_TSC_MHZ(mhz) (tracemark_sel4_tsc_mhz = (mhz))
#else
#define TRACEMARK_TSC_MHZ(mhz) do {} while (0)
#endif

/* The end of the boot, just before the first exit to user level. */
#define TRACEMARK_BOOT_DONE() tracemark_sel4_init()
/* seL4_DebugHalt: the ring goes out over the serial console. */
#define TRACEMARK_DUMP() tracemark_sel4_dump()
/* seL4_BenchmarkFinalizeLog: the caller's note, then the ring, go out (release kernels
 * have no seL4_DebugHalt). A debug kernel dumps at seL4_DebugHalt only: there
 * FinalizeLog is seL4's own (track_utilisation's window, which the root task of the
 * util variant closes mid-run), and the ring keeps recording. */
#ifdef CONFIG_DEBUG_BUILD
#define TRACEMARK_FINALIZE() do {} while (0)
#else
#define TRACEMARK_FINALIZE() tracemark_sel4_finalize()
#endif
#define TRACEMARK_SYSCALL(n) (tracemark_sel4_syscall[CURRENT_CPU_INDEX()] = (word_t)(n))
#define TRACEMARK_ENTRY() tracemark_sel4_entry()
#define TRACEMARK_EXIT() tracemark_sel4_exit()
#define TRACEMARK_INTERRUPT(irq) tracemark_sel4_interrupt(irq)
#define TRACEMARK_THREAD_NAMED(tcb) tracemark_sel4_thread_named(tcb)

#else

#define TRACEMARK_TSC_MHZ(mhz) do {} while (0)
#define TRACEMARK_BOOT_DONE() do {} while (0)
#define TRACEMARK_DUMP() do {} while (0)
#define TRACEMARK_FINALIZE() do {} while (0)
#define TRACEMARK_SYSCALL(n) do {} while (0)
#define TRACEMARK_ENTRY() do {} while (0)
#define TRACEMARK_EXIT() do {} while (0)
#define TRACEMARK_INTERRUPT(irq) do {} while (0)
#define TRACEMARK_THREAD_NAMED(tcb) do {} while (0)

#endif /* CONFIG_BENCHMARK_TRACEMARK */
