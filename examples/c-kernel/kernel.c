/*
 * c-kernel: a small program that behaves like a kernel traced with tracemark's C ABI.
 *
 *   - two CPUs, each a real thread (pthreads) with its own ring and its own clock: CPU 0
 *     in drop mode with a ring large enough for everything (nothing is lost), CPU 1 in
 *     overwrite mode with a small ring that wraps many times (a flight recorder);
 *   - a syscall loop per CPU: kernel entry with seL4's fields, a syscall handler compiled
 *     with -finstrument-functions (instrumented.c), device interrupts nested inside
 *     syscalls, user events, kernel exit (its duration is measured by the encoder);
 *   - now and then a VM fault (tm_kernel_entry_other), an entry given as seL4's own
 *     packed kernel_entry_t (tm_kernel_entry_raw), and interrupts nested deeper than the
 *     encoder's kernel-entry stack (their exits say "nesting overflow");
 *   - a real POSIX signal (SIGALRM from setitimer) that preempts either thread at
 *     arbitrary points, including in the middle of a record, and records an interrupt
 *     entry, IRQ and exit on that thread's CPU from the handler;
 *   - fake clocks each thread advances itself, so it knows every duration exactly (the
 *     signal handler does not advance them: its kernel exits last 0 ticks);
 *   - at the end, the rings go to stdout framed as @TM: lines (tm_dump_uart), mixed
 *     with ordinary log lines as on a kernel's UART, and raw to files if asked.
 *
 * What it recorded (records written, per CPU and kind; every kernel-exit duration of the
 * main flow, in order, 18446744073709551615 for a nesting overflow) goes to a truth file
 * that the test compares with the decoded rings.
 *
 * Usage: c-kernel TRUTH_FILE [RAW_DUMP_PREFIX]
 *   writes RAW_DUMP_PREFIX.cpuN.bin (raw ring images) when the prefix is given.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "kernel.h"
#include "tracemark.h"

#define MIN_ITERATIONS 60000u
#define MAX_ITERATIONS 100000u
#define WANT_SIGNALS_IN_RECORD 20u
#define SIGNAL_IRQ 1000u  /* the IRQ number the signal handler records */
#define DEVICE_IRQ 27u
#define DEEP_NEST 11u     /* nested interrupt entries, more than the encoder's 8 */
#define OVERFLOW UINT64_MAX /* truth value of an exit beyond the entry stack */

/* CPU 0: drop mode, room for everything. CPU 1: overwrite mode, wraps. */
static const size_t RING_BYTES[NCPUS] = {(size_t)8 << 20, (size_t)64 << 10};
static const uint32_t RING_MODE[NCPUS] = {TM_MODE_DROP, TM_MODE_OVERWRITE};

enum { K_KENTRY, K_KEXIT, K_IRQ, K_FENTRY, K_FEXIT, K_USER, K_IMAGE, K_COUNT };
static const char *const KIND_NAMES[K_COUNT] = {"KENTRY", "KEXIT", "IRQ", "FENTRY",
                                                "FEXIT", "USER", "IMAGE"};

/* seL4's kernel_entry_t as libsel4/include/sel4/benchmark_track_types.h declares it
 * (Copyright 2020, Data61, CSIRO (ABN 41 687 119 230), SPDX-License-Identifier:
 * BSD-2-Clause), with the entry numbering of the seL4 this project pins. */
typedef uintptr_t seL4_Word;
enum { Entry_Unknown, Entry_Interrupt, Entry_UnknownSyscall, Entry_UserLevelFault,
       Entry_DebugFault, Entry_VMFault, Entry_Syscall, Entry_VCPUFault };
typedef struct __attribute__((packed)) kernel_entry {
    seL4_Word path: 3;
    union {
        struct {
            seL4_Word core: 3;
            seL4_Word word: 26;
        };
        struct {
            seL4_Word syscall_no: 4;
            seL4_Word cap_type: 5;
            seL4_Word is_fastpath: 1;
            seL4_Word invocation_tag: 19;
        };
    };
} kernel_entry_t;

_Thread_local uint32_t t_cpu;
uint64_t g_fcalls[NCPUS];

/* Each CPU's clock; only its own thread advances it. */
static volatile uint64_t g_now[NCPUS];
/* Records written by the main flow, per CPU and kind. */
static uint64_t g_written[NCPUS][K_COUNT];
/* Records written by the signal handler on each CPU. */
static volatile uint64_t g_sig_written[NCPUS][K_COUNT];
static atomic_ulong g_signals, g_signals_in_record;
static uint32_t g_iterations[NCPUS];

/* Kernel-exit durations of the main flow, per CPU, in recording order. */
static uint64_t *g_exits[NCPUS];
static size_t g_nexits[NCPUS], g_cap_exits[NCPUS];
/* Open kernel entries of the main flow, per CPU (to know which exits overflow). */
static uint32_t g_depth[NCPUS];

static uint64_t clock_cpu0(void) { return g_now[0]; }
static uint64_t clock_cpu1(void) { return g_now[1]; }
static tm_clock_fn const CLOCKS[NCPUS] = {clock_cpu0, clock_cpu1};
static uint32_t current_cpu(void) { return t_cpu; }

void clock_advance(uint64_t ticks) { g_now[t_cpu] += ticks; }

static void die(const char *what, int rc)
{
    fprintf(stderr, "c-kernel: %s failed: %d\n", what, rc);
    exit(1);
}

/* Counts a main-flow record if it was written. */
static void count(uint32_t cpu, int kind, int rc)
{
    if (rc == TM_OK) {
        g_written[cpu][kind]++;
    } else if (rc != TM_DROPPED) {
        die(KIND_NAMES[kind], rc);
    }
}

static void push_exit(uint32_t cpu, uint64_t duration)
{
    if (g_nexits[cpu] == g_cap_exits[cpu]) {
        g_cap_exits[cpu] = g_cap_exits[cpu] ? 2 * g_cap_exits[cpu] : 4096;
        g_exits[cpu] = realloc(g_exits[cpu], g_cap_exits[cpu] * sizeof(uint64_t));
        if (!g_exits[cpu]) die("realloc", 0);
    }
    g_exits[cpu][g_nexits[cpu]++] = duration;
}

/* A kernel entry of the main flow (its result already in `rc`). */
static void kernel_entry(uint32_t cpu, int rc)
{
    count(cpu, K_KENTRY, rc);
    g_depth[cpu]++;
}

/* A kernel exit of the main flow whose entry was at `entry_ts`. */
static void kernel_exit(uint32_t cpu, uint64_t entry_ts)
{
    int rc = tm_kernel_exit(cpu);
    count(cpu, K_KEXIT, rc);
    /* The encoder keeps the times of the 8 outermost open entries. */
    if (rc == TM_OK) push_exit(cpu, g_depth[cpu] > 8 ? OVERFLOW : g_now[cpu] - entry_ts);
    g_depth[cpu]--;
}

void nested_interrupt(uint32_t cpu, uint32_t irq, uint64_t ticks)
{
    uint64_t t0 = g_now[cpu];
    kernel_entry(cpu, tm_kernel_entry_other(cpu, TM_PATH_INTERRUPT, cpu, irq));
    count(cpu, K_IRQ, tm_interrupt(cpu, irq));
    clock_advance(ticks);
    kernel_exit(cpu, t0);
}

/* Interrupts nested `levels` deep inside the current entry. */
static void deep_interrupts(uint32_t cpu, uint32_t levels)
{
    if (levels == 0) return;
    uint64_t t0 = g_now[cpu];
    kernel_entry(cpu, tm_kernel_entry_other(cpu, TM_PATH_INTERRUPT, cpu, 40 + levels));
    clock_advance(1);
    deep_interrupts(cpu, levels - 1);
    clock_advance(1);
    kernel_exit(cpu, t0);
}

/* SIGALRM: preempts either thread anywhere; records on that thread's CPU. The clock
 * stands still. */
static void on_alarm(int sig)
{
    (void)sig;
    int saved = errno;
    uint32_t cpu = t_cpu;
    atomic_fetch_add(&g_signals, 1);
    if (tm_in_record(cpu) == 1) atomic_fetch_add(&g_signals_in_record, 1);
    if (tm_kernel_entry_other(cpu, TM_PATH_INTERRUPT, cpu, SIGNAL_IRQ) == TM_OK)
        g_sig_written[cpu][K_KENTRY]++;
    if (tm_interrupt(cpu, SIGNAL_IRQ) == TM_OK) g_sig_written[cpu][K_IRQ]++;
    if (tm_kernel_exit(cpu) == TM_OK) g_sig_written[cpu][K_KEXIT]++;
    errno = saved;
}

/* One CPU: the syscall loop. */
static void *cpu_main(void *arg)
{
    uint32_t cpu = (uint32_t)(uintptr_t)arg;
    t_cpu = cpu;
    count(cpu, K_IMAGE, tm_image(cpu, 0x400000, 0x20000, 0xfeedf00d));
    uint32_t i = 0;
    for (; i < MAX_ITERATIONS; i++) {
        if (i >= MIN_ITERATIONS &&
            atomic_load(&g_signals_in_record) >= WANT_SIGNALS_IN_RECORD)
            break;
        clock_advance(3 + i % 7);
        uint64_t entry_ts = g_now[cpu];
        if (i % 100 == 3) {
            /* A VM fault: the word is the faulting address's page. */
            kernel_entry(cpu, tm_kernel_entry_other(cpu, TM_PATH_VM_FAULT, cpu, i & 0xffff));
            clock_advance(20);
            kernel_exit(cpu, entry_ts);
            continue;
        }
        if (i % 100 == 53) {
            /* What seL4 itself fills in: a user-level fault, given as its own struct. */
            kernel_entry_t e;
            memset(&e, 0, sizeof e);
            e.path = Entry_UserLevelFault;
            e.core = cpu;
            e.word = i & 0xfff;
            kernel_entry(cpu, tm_kernel_entry_raw(cpu, tm_sel4_entry_bits(&e, sizeof e)));
            clock_advance(9);
            kernel_exit(cpu, entry_ts);
            continue;
        }
        kernel_entry_t e;
        memset(&e, 0, sizeof e);
        e.path = Entry_Syscall;
        e.syscall_no = 1 + i % 8;
        e.cap_type = i % 20;
        e.is_fastpath = i % 3 == 0;
        e.invocation_tag = i & 0x7ffff;
        /* Half the syscalls as seL4 hands them over, half field by field. */
        int rc = i % 2 ? tm_kernel_entry_raw(cpu, tm_sel4_entry_bits(&e, sizeof e))
                       : tm_kernel_entry_syscall(cpu, 1 + i % 8, i % 20, i % 3 == 0,
                                                 i & 0x7ffff);
        kernel_entry(cpu, rc);
        clock_advance(2);
        uint32_t label = handle_syscall(cpu, i);
        if (i % 1000 == 500) deep_interrupts(cpu, DEEP_NEST);
        if (i % 16 == 0) {
            uint32_t payload[2] = {i, label};
            count(cpu, K_USER, tm_user(cpu, 7, payload, sizeof payload));
        }
        clock_advance(1 + i % 4);
        kernel_exit(cpu, entry_ts);
    }
    g_iterations[cpu] = i;
    return NULL;
}

static int stdout_sink(void *ctx, const uint8_t *data, size_t len)
{
    unsigned *lines = ctx;
    if (fwrite(data, 1, len, stdout) != len) return 1;
    /* An ordinary log line between framed lines now and then, as a busy console has. */
    if (++*lines % 97 == 0) printf("[kernel] heartbeat %u\n", *lines);
    return 0;
}

static int file_sink(void *ctx, const uint8_t *data, size_t len)
{
    return fwrite(data, 1, len, (FILE *)ctx) == len ? 0 : 1;
}

static void set_timer(long usec)
{
    struct itimerval it = {{0, usec}, {0, usec}};
    if (setitimer(ITIMER_REAL, &it, NULL) != 0) die("setitimer", errno);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s TRUTH_FILE [RAW_DUMP_PREFIX]\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    printf("[kernel] booting, %d CPUs, tracemark slot state %zu bytes per CPU\n", NCPUS,
           tm_slot_size());

    void *rings[NCPUS];
    for (uint32_t cpu = 0; cpu < NCPUS; cpu++) {
        tm_config config = {
            .block_size = 4096,
            .mode = RING_MODE[cpu],
            .clock = CLOCKS[cpu],
            .clock_hz = 1000000000u,
            .producer_id = 0xc0ffee,
            .syscall_abi = TM_ABI_SEL4,
        };
        rings[cpu] = aligned_alloc(8, RING_BYTES[cpu]);
        if (!rings[cpu]) die("aligned_alloc", 0);
        memset(rings[cpu], 0, RING_BYTES[cpu]);
        int rc = tm_init(cpu, rings[cpu], RING_BYTES[cpu], &config);
        if (rc != TM_OK) die("tm_init", rc);
    }
    /* The error paths the C ABI promises. */
    int rc;
    tm_config again = {.clock = clock_cpu0};
    if ((rc = tm_init(0, rings[0], RING_BYTES[0], &again)) != TM_ERR_IN_USE)
        die("tm_init twice", rc);
    if ((rc = tm_init(2, (char *)rings[1] + 8, 16384, &again)) != TM_ERR_IN_USE)
        die("tm_init on overlapping memory", rc);
    if ((rc = tm_interrupt(TM_MAX_CPUS, 1)) != TM_ERR_BAD_CPU) die("bad cpu", rc);
    if ((rc = tm_kernel_exit(NCPUS)) != TM_ERR_NOT_INIT) die("uninitialised cpu", rc);
    if ((rc = tm_kernel_entry_syscall(0, 16, 0, 0, 0)) != TM_ERR_RANGE) die("syscall 16", rc);
    if ((rc = tm_user(0, 1, NULL, 5)) != TM_ERR_BAD_ARG) die("user NULL data", rc);
    tm_set_cpu_fn(current_cpu);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGALRM, &sa, NULL) != 0) die("sigaction", errno);
    /* The main thread takes no signal: they land on the CPU threads. */
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &block, NULL);
    pthread_t threads[NCPUS];
    for (uint32_t cpu = 0; cpu < NCPUS; cpu++) {
        sigset_t none;
        sigemptyset(&none);
        pthread_sigmask(SIG_SETMASK, &none, NULL);
        if ((rc = pthread_create(&threads[cpu], NULL, cpu_main, (void *)(uintptr_t)cpu)))
            die("pthread_create", rc);
        pthread_sigmask(SIG_BLOCK, &block, NULL);
    }
    set_timer(100);
    printf("[kernel] %d CPUs in their syscall loops\n", NCPUS);
    for (uint32_t cpu = 0; cpu < NCPUS; cpu++) pthread_join(threads[cpu], NULL);
    set_timer(0);
    signal(SIGALRM, SIG_IGN);
    tm_set_cpu_fn(NULL);
    printf("[kernel] %u + %u syscalls, %lu signals (%lu inside a record), %u hook calls "
           "skipped\n",
           g_iterations[0], g_iterations[1], atomic_load(&g_signals),
           atomic_load(&g_signals_in_record), tm_hook_skipped());

    /* Dump: framed over the "UART" (stdout) and/or raw to files. */
    unsigned lines = 0;
    for (uint32_t cpu = 0; cpu < NCPUS; cpu++) {
        uint64_t over = 0, dropped = 0;
        tm_lost(cpu, &over, &dropped);
        printf("[kernel] cpu %u: overwritten %llu, dropped %llu\n", cpu,
               (unsigned long long)over, (unsigned long long)dropped);
        printf("[kernel] dumping cpu %u trace\n", cpu);
        if ((rc = tm_dump_uart(cpu, 0x100 + cpu, stdout_sink, &lines)) != TM_OK)
            die("tm_dump_uart", rc);
        printf("[kernel] dump of cpu %u done\n", cpu);
        if (argc > 2) {
            char path[4096];
            snprintf(path, sizeof path, "%s.cpu%u.bin", argv[2], cpu);
            FILE *f = fopen(path, "wb");
            if (!f) die("fopen dump", errno);
            const void *span;
            size_t span_len;
            if ((rc = tm_memory_span(cpu, &span, &span_len)) != TM_OK) die("tm_memory_span", rc);
            if ((rc = tm_dump(cpu, file_sink, f)) != TM_OK) die("tm_dump", rc);
            /* The used part of the ring, at most all of it (FORMAT.md 7.3). */
            if (ftell(f) <= 0 || ftell(f) > (long)span_len) die("dump length", (int)ftell(f));
            fclose(f);
        }
    }

    FILE *t = fopen(argv[1], "w");
    if (!t) die("fopen truth", errno);
    fprintf(t, "cpus %d\niterations %u %u\nsignals %lu\nsignals_in_record %lu\n", NCPUS,
            g_iterations[0], g_iterations[1], atomic_load(&g_signals),
            atomic_load(&g_signals_in_record));
    fprintf(t, "signal_irq %u\nhook_skipped %u\n", SIGNAL_IRQ, tm_hook_skipped());
    for (uint32_t cpu = 0; cpu < NCPUS; cpu++) {
        uint64_t over = 0, dropped = 0;
        tm_lost(cpu, &over, &dropped);
        fprintf(t, "mode %u %s\n", cpu, RING_MODE[cpu] == TM_MODE_DROP ? "drop" : "overwrite");
        fprintf(t, "lost %u %llu %llu\n", cpu, (unsigned long long)over,
                (unsigned long long)dropped);
        for (int k = 0; k < K_COUNT; k++) {
            uint64_t n = g_written[cpu][k] + g_sig_written[cpu][k];
            /* Each instrumented call wrote an entry and an exit (the hooks' results are
             * not visible to us; the test checks nothing was dropped). */
            if (k == K_FENTRY || k == K_FEXIT) n += g_fcalls[cpu];
            fprintf(t, "count %u %s %llu\n", cpu, KIND_NAMES[k], (unsigned long long)n);
        }
        fprintf(t, "signal_kexits %u %llu\n", cpu, (unsigned long long)g_sig_written[cpu][K_KEXIT]);
        fprintf(t, "exits %u", cpu);
        for (size_t j = 0; j < g_nexits[cpu]; j++)
            fprintf(t, " %llu", (unsigned long long)g_exits[cpu][j]);
        fprintf(t, "\n");
    }
    const void *fns[8];
    int nfns = instrumented_functions(fns, 8);
    fprintf(t, "functions");
    for (int j = 0; j < nfns; j++) fprintf(t, " %llu", (unsigned long long)(uintptr_t)fns[j]);
    fprintf(t, "\n");
    fclose(t);

    for (uint32_t cpu = 0; cpu < NCPUS; cpu++) {
        if ((rc = tm_release(cpu)) != TM_OK) die("tm_release", rc);
    }
    printf("[kernel] halt\n");
    return 0;
}
