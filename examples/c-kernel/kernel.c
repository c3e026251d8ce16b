/*
 * c-kernel: a small program that behaves like a kernel traced with tracemark's C ABI.
 *
 *   - two simulated CPUs, each with its own ring (drop mode, so nothing is lost silently);
 *   - a syscall loop: kernel entry with seL4's fields, a syscall handler compiled with
 *     -finstrument-functions (instrumented.c), device interrupts nested inside syscalls,
 *     user events, kernel exit (its duration is measured by the encoder);
 *   - a real POSIX signal (SIGALRM from setitimer) that preempts the loop at arbitrary
 *     points, including in the middle of a record, and records an interrupt entry, IRQ
 *     and exit from the handler;
 *   - a fake clock the program advances itself, so it knows every duration exactly (the
 *     signal handler does not advance it: its kernel exits last 0 ticks);
 *   - at the end, the rings go to stdout framed as @TM: lines (tm_dump_uart), mixed
 *     with ordinary log lines as on a kernel's UART, and raw to files if asked.
 *
 * What it recorded (records written, per CPU and kind; every kernel-exit duration of the
 * main flow, in order) goes to a truth file that the test compares with the decoded rings.
 *
 * Usage: c-kernel TRUTH_FILE [RAW_DUMP_PREFIX]
 *   writes RAW_DUMP_PREFIX.cpuN.bin (raw ring images) when the prefix is given.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "kernel.h"
#include "tracemark.h"

#define RING_BYTES ((size_t)4 << 20)
#define MIN_ITERATIONS 60000u
#define MAX_ITERATIONS 100000u
#define WANT_SIGNALS_IN_RECORD 20u
#define SIGNAL_IRQ 1000u  /* the IRQ number the signal handler records */
#define DEVICE_IRQ 27u

enum { K_KENTRY, K_KEXIT, K_IRQ, K_FENTRY, K_FEXIT, K_USER, K_IMAGE, K_COUNT };
static const char *const KIND_NAMES[K_COUNT] = {"KENTRY", "KEXIT", "IRQ", "FENTRY",
                                                "FEXIT", "USER", "IMAGE"};

volatile uint32_t g_cpu;
uint64_t g_fcalls[NCPUS];

static volatile uint64_t g_now;
/* Records written by the main flow, per CPU and kind. */
static uint64_t g_written[NCPUS][K_COUNT];
/* Records written by the signal handler (only it writes these while the timer runs). */
static volatile uint64_t g_sig_written[NCPUS][K_COUNT];
static volatile uint64_t g_signals, g_signals_in_record;

/* Kernel-exit durations of the main flow, per CPU, in recording order. */
static uint64_t *g_exits[NCPUS];
static size_t g_nexits[NCPUS], g_cap_exits[NCPUS];

static uint64_t fake_clock(void) { return g_now; }
static uint32_t current_cpu(void) { return g_cpu; }

void clock_advance(uint64_t ticks) { g_now += ticks; }

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

/* A kernel exit of the main flow whose entry was at `entry_ts`. */
static void kernel_exit(uint32_t cpu, uint64_t entry_ts)
{
    int rc = tm_kernel_exit(cpu);
    count(cpu, K_KEXIT, rc);
    if (rc == TM_OK) push_exit(cpu, g_now - entry_ts);
}

void nested_interrupt(uint32_t cpu, uint32_t irq, uint64_t ticks)
{
    uint64_t t0 = g_now;
    count(cpu, K_KENTRY, tm_kernel_entry_other(cpu, TM_PATH_INTERRUPT, cpu, irq));
    count(cpu, K_IRQ, tm_interrupt(cpu, irq));
    clock_advance(ticks);
    kernel_exit(cpu, t0);
}

/* SIGALRM: preempts the loop anywhere. Records on the current CPU; the clock stands still. */
static void on_alarm(int sig)
{
    (void)sig;
    int saved = errno;
    uint32_t cpu = g_cpu;
    g_signals++;
    if (tm_in_record(cpu) == 1) g_signals_in_record++;
    if (tm_kernel_entry_other(cpu, TM_PATH_INTERRUPT, cpu, SIGNAL_IRQ) == TM_OK)
        g_sig_written[cpu][K_KENTRY]++;
    if (tm_interrupt(cpu, SIGNAL_IRQ) == TM_OK) g_sig_written[cpu][K_IRQ]++;
    if (tm_kernel_exit(cpu) == TM_OK) g_sig_written[cpu][K_KEXIT]++;
    errno = saved;
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

    tm_config config = {
        .block_size = 4096,
        .mode = TM_MODE_DROP,
        .clock = fake_clock,
        .clock_hz = 1000000000u,
        .producer_id = 0xc0ffee,
        .syscall_abi = TM_ABI_SEL4,
    };
    void *rings[NCPUS];
    for (uint32_t cpu = 0; cpu < NCPUS; cpu++) {
        rings[cpu] = aligned_alloc(8, RING_BYTES);
        if (!rings[cpu]) die("aligned_alloc", 0);
        memset(rings[cpu], 0, RING_BYTES);
        int rc = tm_init(cpu, rings[cpu], RING_BYTES, &config);
        if (rc != TM_OK) die("tm_init", rc);
    }
    /* The error paths the C ABI promises. */
    int rc;
    if ((rc = tm_init(0, rings[0], RING_BYTES, &config)) != TM_ERR_IN_USE) die("tm_init twice", rc);
    if ((rc = tm_interrupt(TM_MAX_CPUS, 1)) != TM_ERR_BAD_CPU) die("bad cpu", rc);
    if ((rc = tm_kernel_exit(NCPUS)) != TM_ERR_NOT_INIT) die("uninitialised cpu", rc);
    tm_set_cpu_fn(current_cpu);

    for (uint32_t cpu = 0; cpu < NCPUS; cpu++) {
        g_cpu = cpu;
        count(cpu, K_IMAGE, tm_image(cpu, 0x400000, 0x20000, 0xfeedf00d));
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGALRM, &sa, NULL) != 0) die("sigaction", errno);
    set_timer(100);
    printf("[kernel] entering the syscall loop\n");

    uint32_t i = 0;
    for (; i < MAX_ITERATIONS; i++) {
        if (i >= MIN_ITERATIONS && g_signals_in_record >= WANT_SIGNALS_IN_RECORD) break;
        uint32_t cpu = (i / 64) % NCPUS; /* the scheduler moves us every 64 syscalls */
        g_cpu = cpu;
        clock_advance(3 + i % 7);
        uint64_t entry_ts = g_now;
        count(cpu, K_KENTRY,
              tm_kernel_entry_syscall(cpu, 1 + i % 8, i % 20, i % 3 == 0, i & 0x7ffff));
        clock_advance(2);
        uint32_t label = handle_syscall(cpu, i);
        if (i % 16 == 0) {
            uint32_t payload[2] = {i, label};
            count(cpu, K_USER, tm_user(cpu, 7, payload, sizeof payload));
        }
        clock_advance(1 + i % 4);
        kernel_exit(cpu, entry_ts);
        if (i % 20000 == 0) printf("[kernel] syscall %u on cpu %u\n", i, cpu);
    }
    set_timer(0);
    signal(SIGALRM, SIG_IGN);
    printf("[kernel] %u syscalls, %llu signals (%llu inside a record)\n", i,
           (unsigned long long)g_signals, (unsigned long long)g_signals_in_record);

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
            if (ftell(f) != (long)span_len) die("dump length", (int)ftell(f));
            fclose(f);
        }
    }

    FILE *t = fopen(argv[1], "w");
    if (!t) die("fopen truth", errno);
    fprintf(t, "cpus %d\niterations %u\nsignals %llu\nsignals_in_record %llu\n", NCPUS, i,
            (unsigned long long)g_signals, (unsigned long long)g_signals_in_record);
    fprintf(t, "signal_irq %u\n", SIGNAL_IRQ);
    for (uint32_t cpu = 0; cpu < NCPUS; cpu++) {
        uint64_t over = 0, dropped = 0;
        tm_lost(cpu, &over, &dropped);
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
