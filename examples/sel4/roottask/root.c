/*
 * The root task of the tracemark seL4 example: a known, counted workload.
 *
 * It creates two threads, `server` (receives on an endpoint) and `faulter` (touches an
 * unmapped page), and makes syscalls of several kinds: Yield, Send/Call from the root
 * task and Recv/ReplyRecv in the server over an endpoint, invocations on Untyped, TCB
 * and CNode caps (one of which fails on purpose), a fault handled through a fault
 * endpoint, and enough spinning for timer interrupts to arrive. It counts every syscall
 * it (and its threads) make and prints the counts as one `TRUTH` line, then calls
 * seL4_DebugHalt, on which the traced kernel dumps its ring; examples/sel4/check.sh
 * compares the trace with the line.
 *
 * No C library, no TLS (libsel4 built with LibSel4UseThreadLocals=OFF): the IPC buffer
 * pointer is one global, used by the root task only; the threads use the *WithMRs
 * syscalls, which do not touch an IPC buffer, and have none.
 */
#include <sel4/sel4.h>

/* User-level access to the trace (KernelBenchmarksTracemark on a debug kernel of one
 * core, not with KernelTracemarkFunctions, whose check wants the whole run in the halt
 * dump): the root task snapshots the ring mid-run and ships it over the console itself
 * (with DebugPutChar). On a multicore kernel it does not: the per-core truth counts the
 * whole run, which the halt dump of every node's ring then holds. -DTM_NO_SNAPSHOTS
 * (check.sh --release, for the debug run it compares the release truth with) leaves
 * them out too. */
#if defined(CONFIG_BENCHMARK_TRACEMARK) && !defined(CONFIG_KERNEL_TRACEMARK_FUNCTIONS) && \
    defined(CONFIG_DEBUG_BUILD) && CONFIG_MAX_NUM_NODES == 1 && !defined(TM_NO_SNAPSHOTS)
#define TM_SNAPSHOTS 1
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <tracemark.h>
#endif

seL4_IPCBuffer *__sel4_ipc_buffer;

#define STACK_BYTES 16384
static char root_stack[STACK_BYTES] __attribute__((aligned(16)));
char *root_stack_top = root_stack + STACK_BYTES;
static char server_stack[STACK_BYTES] __attribute__((aligned(16)));
static char faulter_stack[STACK_BYTES] __attribute__((aligned(16)));

/* Workload sizes. */
#define N_YIELD 200
#define N_SEND 40
#define N_CALL 60
#define SPIN_ROUNDS 3

/* Truth: syscalls by number as seL4 stores it (-seL4_Sys*), and Calls by cap type. */
static volatile unsigned long sys_count[16];
static volatile unsigned long call_count[32];
static unsigned long failed_invocations;
static unsigned long faults_handled;
/* seL4_TracemarkSnapshot calls and spin rounds (timer interrupts) of the interval. */
static unsigned long snapshots;
static unsigned long spins;

/* cap_tag_t values at this seL4 commit (checked against the kernel build by
 * shared-format/tests/sel4_abi.rs through the format crate's table). */
enum { CAP_UNTYPED = 2, CAP_ENDPOINT = 4, CAP_CNODE = 10, CAP_THREAD = 12 };

#define COUNT_SYS(s) (sys_count[-(s)]++)
/* An invocation: one seL4_Call on a cap of type `cap`. */
#define INVOKE(cap, expr) (COUNT_SYS(seL4_SysCall), call_count[(cap)]++, (expr))

/* Functions the compiler may call for struct copies and that libsel4 uses. */
void *memset(void *d, int c, unsigned long n);
void *memcpy(void *d, const void *s, unsigned long n);
char *strcpy(char *d, const char *s);
void *memset(void *d, int c, unsigned long n)
{
    char *p = d;
    while (n--) {
        *p++ = (char)c;
    }
    return d;
}
void *memcpy(void *d, const void *s, unsigned long n)
{
    char *p = d;
    const char *q = s;
    while (n--) {
        *p++ = *q++;
    }
    return d;
}
char *strcpy(char *d, const char *s)
{
    char *p = d;
    while ((*p++ = *s++)) {
    }
    return d;
}

/* A kernel without KernelPrinting (release) has no seL4_DebugPutChar: the root task has
 * no console there, and ships its TRUTH line in the trace instead (finish). */
static void put(char c)
{
#ifdef CONFIG_PRINTING
    COUNT_SYS(seL4_SysDebugPutChar);
    seL4_DebugPutChar(c);
#else
    (void)c;
#endif
}

static void puts_(const char *s)
{
    while (*s) {
        put(*s++);
    }
}

/* Formats `v` in decimal, zero-padded to `width` digits (so a line's length does not
 * depend on the values), into `out`; returns the end. */
static char *fmt_num(char *out, unsigned long v, int width)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < 20);
    while (n < width) {
        tmp[n++] = '0';
    }
    while (n) {
        *out++ = tmp[--n];
    }
    return out;
}

static char *fmt_str(char *out, const char *s)
{
    while (*s) {
        *out++ = *s++;
    }
    return out;
}

static void print_num(const char *label, unsigned long v)
{
    char buf[64];
    char *e = fmt_str(buf, label);
    e = fmt_num(e, v, 1);
    *e++ = '\n';
    *e = 0;
    puts_(buf);
}

/* ---- threads ---------------------------------------------------------------------- */

enum { LABEL_SEND = 1, LABEL_CALL = 2 };

static seL4_CPtr ep_cap;
static volatile unsigned long server_received;

static void server_main(void)
{
    seL4_Word badge = 0, mr0 = 0;
    COUNT_SYS(seL4_SysRecv);
    seL4_MessageInfo_t info = seL4_RecvWithMRs(ep_cap, &badge, &mr0, seL4_Null, seL4_Null, seL4_Null);
    for (;;) {
        server_received++;
        if (seL4_MessageInfo_get_label(info) == LABEL_CALL) {
            seL4_Word reply = mr0 + 1;
            COUNT_SYS(seL4_SysReplyRecv);
            info = seL4_ReplyRecvWithMRs(ep_cap, seL4_MessageInfo_new(0, 0, 0, 1), &badge, &reply,
                                         seL4_Null, seL4_Null, seL4_Null);
            mr0 = reply;
        } else {
            COUNT_SYS(seL4_SysRecv);
            info = seL4_RecvWithMRs(ep_cap, &badge, &mr0, seL4_Null, seL4_Null, seL4_Null);
        }
    }
}

static void faulter_main(void)
{
    /* Nothing is mapped at address 0x10 (the root task's image starts at 0x400000). */
    volatile unsigned long *volatile unmapped = (unsigned long *)0x10;
    *unmapped = 42;
    for (;;) {
    }
}

static seL4_Word thread_entry_pc(void (*f)(void))
{
    return (seL4_Word)f;
}

static int start_thread(seL4_CPtr tcb, seL4_CPtr fault_ep, void (*entry)(void), char *stack_top,
                        const char *name)
{
    seL4_Error err = INVOKE(CAP_THREAD, seL4_TCB_Configure(tcb, fault_ep, seL4_CapInitThreadCNode, 0,
                                                           seL4_CapInitThreadVSpace, 0, 0, 0));
    if (err) {
        return err;
    }
    err = INVOKE(CAP_THREAD, seL4_TCB_SetPriority(tcb, seL4_CapInitThreadTCB, 255));
    if (err) {
        return err;
    }
    seL4_UserContext regs;
    memset(&regs, 0, sizeof regs);
#if defined(CONFIG_ARCH_X86_64)
    regs.rip = thread_entry_pc(entry);
    /* As after a call: the stack is 16-byte aligned plus the return address slot. */
    regs.rsp = (seL4_Word)stack_top - 8;
#elif defined(CONFIG_ARCH_AARCH64)
    regs.pc = thread_entry_pc(entry);
    regs.sp = (seL4_Word)stack_top;
#else
#error "x86_64 or aarch64"
#endif
    err = INVOKE(CAP_THREAD, seL4_TCB_WriteRegisters(tcb, 0, 0, sizeof regs / sizeof(seL4_Word), &regs));
    if (err) {
        return err;
    }
#ifdef CONFIG_DEBUG_BUILD
    COUNT_SYS(seL4_SysDebugNameThread);
    seL4_DebugNameThread(tcb, name);
#else
    (void)name; /* release kernels keep no thread names */
#endif
    return INVOKE(CAP_THREAD, seL4_TCB_Resume(tcb));
}

/* ---- main --------------------------------------------------------------------------- */

/* The end of the run, `last` the last line the root task prints: the kernel dumps its
 * ring. A debug kernel dumps at seL4_DebugHalt and halts. A release kernel has no
 * seL4_DebugHalt: the tracer dumps at seL4_BenchmarkFinalizeLog (KernelBenchmarksTracemark
 * enables the benchmark syscalls), and without KernelPrinting, where the root task has no
 * console, `last` goes into the trace as the call's note: message word 0 its length in
 * bytes, the next words its bytes (the tracer records them as USER records). The root
 * task then prints "root: done" where it can, and suspends itself. */
static void finish(const char *last)
{
    puts_(last);
#ifdef CONFIG_DEBUG_BUILD
    COUNT_SYS(seL4_SysDebugHalt);
    seL4_DebugHalt();
#else
#ifndef CONFIG_PRINTING
    seL4_IPCBuffer *ipc = seL4_GetIPCBuffer();
    const unsigned long max = (seL4_MsgMaxLength - 1) * sizeof(seL4_Word);
    unsigned long len = 0;
    while (last[len]) {
        len++;
    }
    if (len > max) {
        /* Cut short, the note would read as a truth with counts missing: it says so
         * instead (a multicore truth of more than 4 cores, see smp_truth). */
        static char line[96];
        char *e = fmt_str(line, "root: FAILED a note of ");
        e = fmt_num(e, len, 1);
        e = fmt_str(e, " bytes, more than the message's ");
        e = fmt_num(e, max, 1);
        *e++ = '\n';
        *e = 0;
        last = line;
        len = (unsigned long)(e - line);
    }
    ipc->msg[0] = len;
    memcpy(&ipc->msg[1], last, len);
#endif
#ifdef CONFIG_ENABLE_BENCHMARKS
    (void)seL4_BenchmarkFinalizeLog();
#endif
    puts_("root: done\n");
    seL4_TCB_Suspend(seL4_CapInitThreadTCB);
#endif
    for (;;) {
    }
}

static void fail(const char *what, unsigned long err)
{
    static char line[160];
    char *e = fmt_str(line, "root: FAILED ");
    e = fmt_str(e, what);
    e = fmt_str(e, " error ");
    e = fmt_num(e, err, 1);
    *e++ = '\n';
    *e = 0;
    finish(line);
}

#if CONFIG_MAX_NUM_NODES > 1
/* ---- multicore (a kernel built with KernelMaxNumNodes > 1, check.sh --cores N) ------ *
 *
 * One `worker<c>` thread for each core c > 0, with an endpoint of its own. Every step is
 * ordered by seL4's own blocking, never by timing, so that the per-core counts below
 * follow from this code (a core spinning on another's progress is no ordering: under
 * QEMU's -icount the spinning core may hold the other back for good):
 * 1. started on core 0 (a new TCB's core is its creator's), at the root task's priority,
 *    the worker runs when the root task Yields, and blocks in Recv on its endpoint;
 * 2. blocked, it is moved to core c (seL4_TCB_SetAffinity: no IPI, it is not runnable);
 * 3. the root task Calls it SMP_CALL times (cross-core IPC); at the first Call the
 *    worker makes SMP_YIELD Yields on core c (alone there: no switch) before it replies;
 *    it replies with ReplyRecv, which blocks it again;
 * 4. a last Call (LABEL_SPIN) the worker answers with Reply, which does not block it: it
 *    stays core c's current thread and spins in user mode. The root task then suspends
 *    it: seL4 first stalls core c with a remote-call IPI (remoteTCBStall: a TCB
 *    invocation on a thread current on another core), which core c takes without the
 *    big kernel lock, while core 0 holds it in the middle of its own Suspend entry (the
 *    case per-node kernel-entry information is for), and core c drops to its idle
 *    thread.
 * Each thread counts its syscalls in its core's row of smp_sys (the worker's first Recv
 * in core 0's row, sys_count), and the root task prints one `TRUTH_CORE c` line per
 * core c > 0, and one for core 0 with what it knows of core 0 beyond syscalls (core 0's
 * syscalls are the TRUTH line's minus the other cores'):
 * - sys.*: the syscalls the core's threads made;
 * - switches: the thread switches on core c: to the worker at each Call, back to the
 *   idle thread at each ReplyRecv and at the stall;
 * - ipi.resched: the reschedule IPIs the core receives: seL4 sends one whenever it makes
 *   a thread runnable on another core whose current thread is the idle thread
 *   (remoteQueueUpdate), and here every wake-up finds its core idle: the worker's core at
 *   each Call (the worker blocked in Recv), core 0 at each reply (the root task blocked
 *   in Call, the server in Recv, the faulter suspended); ipi.resched_extra: at most one
 *   more on core c: remoteTCBStall also asks for a reschedule IPI to the stalled core
 *   (ipiReschedulePending); the x86_64 runs under QEMU show none arrive, and it is
 *   not counted as certain;
 * - ipi.call: remote-call IPIs: the one stall of step 4 on each core c > 0. */
#define SMP_YIELD 20
#define SMP_CALL 30

static volatile unsigned long smp_sys[CONFIG_MAX_NUM_NODES][16];
static seL4_CPtr smp_ep[CONFIG_MAX_NUM_NODES];
static seL4_CPtr smp_tcb[CONFIG_MAX_NUM_NODES];
enum { LABEL_SPIN = 3 };
static char smp_stack[CONFIG_MAX_NUM_NODES][STACK_BYTES] __attribute__((aligned(16)));

#define SMP_COUNT(core, s) (smp_sys[(core)][-(s)]++)

/* A worker; `core` is the core it moves to (its first argument register, set by
 * smp_start). */
static void smp_worker(seL4_Word core)
{
    seL4_CPtr ep = smp_ep[core];
    seL4_Word badge = 0, mr0 = 0;
    /* On core 0, with the root task in Yield: core 0's count. */
    COUNT_SYS(seL4_SysRecv);
    seL4_RecvWithMRs(ep, &badge, &mr0, seL4_Null, seL4_Null, seL4_Null);
    for (int i = 0;; i++) {
        if (i == SMP_CALL) {
            /* Step 4: reply without blocking, then run until suspended. */
            SMP_COUNT(core, seL4_SysReply);
            seL4_ReplyWithMRs(seL4_MessageInfo_new(0, 0, 0, 0), seL4_Null, seL4_Null, seL4_Null,
                              seL4_Null);
            for (;;) {
            }
        }
        if (i == 0) {
            for (int y = 0; y < SMP_YIELD; y++) {
                SMP_COUNT(core, seL4_SysYield);
                seL4_Yield();
            }
        }
        seL4_Word reply = mr0 * 2;
        SMP_COUNT(core, seL4_SysReplyRecv);
        seL4_ReplyRecvWithMRs(ep, seL4_MessageInfo_new(0, 0, 0, 1), &badge, &reply, seL4_Null,
                              seL4_Null, seL4_Null);
        mr0 = reply;
    }
}

/* Creates and starts the worker of core `core` in slots `slot` (endpoint) and `slot + 1`
 * (TCB), from untyped `ut`; returns once it is blocked in Recv on core `core`. */
static int smp_start(seL4_CPtr ut, seL4_CPtr slot, seL4_Word core)
{
    static char name[] = "worker0";
    seL4_CPtr tcb = slot + 1;
    smp_ep[core] = slot;
    smp_tcb[core] = tcb;
    seL4_Error err = INVOKE(CAP_UNTYPED, seL4_Untyped_Retype(ut, seL4_EndpointObject, 0,
                                                             seL4_CapInitThreadCNode, 0, 0, slot, 1));
    if (!err) {
        err = INVOKE(CAP_UNTYPED, seL4_Untyped_Retype(ut, seL4_TCBObject, 0, seL4_CapInitThreadCNode,
                                                      0, 0, tcb, 1));
    }
    if (!err) {
        err = INVOKE(CAP_THREAD, seL4_TCB_Configure(tcb, seL4_CapNull, seL4_CapInitThreadCNode, 0,
                                                    seL4_CapInitThreadVSpace, 0, 0, 0));
    }
    if (!err) {
        err = INVOKE(CAP_THREAD, seL4_TCB_SetPriority(tcb, seL4_CapInitThreadTCB, 255));
    }
    if (err) {
        return err;
    }
    seL4_UserContext regs;
    memset(&regs, 0, sizeof regs);
    char *stack_top = smp_stack[core] + STACK_BYTES;
#if defined(CONFIG_ARCH_X86_64)
    regs.rip = (seL4_Word)smp_worker;
    regs.rsp = (seL4_Word)stack_top - 8;
    regs.rdi = core;
#else
    regs.pc = (seL4_Word)smp_worker;
    regs.sp = (seL4_Word)stack_top;
    regs.x0 = core;
#endif
    err = INVOKE(CAP_THREAD, seL4_TCB_WriteRegisters(tcb, 0, 0, sizeof regs / sizeof(seL4_Word), &regs));
    if (err) {
        return err;
    }
#ifdef CONFIG_DEBUG_BUILD
    name[6] = (char)('0' + core);
    COUNT_SYS(seL4_SysDebugNameThread);
    seL4_DebugNameThread(tcb, name);
#else
    (void)name; /* release kernels keep no thread names: switches are checked by TCB */
#endif
    err = INVOKE(CAP_THREAD, seL4_TCB_Resume(tcb));
    if (err) {
        return err;
    }
    /* The worker, queued behind the root task on core 0, runs until it blocks in Recv. */
    COUNT_SYS(seL4_SysYield);
    seL4_Yield();
    return INVOKE(CAP_THREAD, seL4_TCB_SetAffinity(tcb, core));
}

/* The multicore part of the workload, from the root task on core 0; `slot` is the first
 * of 2 * (CONFIG_MAX_NUM_NODES - 1) free slots. */
static void smp_workload(seL4_CPtr ut, seL4_CPtr slot)
{
    for (seL4_Word c = 1; c < CONFIG_MAX_NUM_NODES; c++) {
        int err = smp_start(ut, slot + 2 * (c - 1), c);
        if (err) {
            fail("start worker", err);
        }
    }
    unsigned long sum = 0;
    for (int i = 0; i < SMP_CALL; i++) {
        for (seL4_Word c = 1; c < CONFIG_MAX_NUM_NODES; c++) {
            seL4_Word mr0 = (seL4_Word)i;
            seL4_MessageInfo_t r = INVOKE(CAP_ENDPOINT, seL4_CallWithMRs(smp_ep[c], seL4_MessageInfo_new(LABEL_CALL, 0, 0, 1),
                                                                         &mr0, seL4_Null, seL4_Null, seL4_Null));
            (void)r;
            sum += mr0;
        }
    }
    if (sum != (unsigned long)(CONFIG_MAX_NUM_NODES - 1) * SMP_CALL * (SMP_CALL - 1)) {
        fail("worker replies", sum);
    }
    for (seL4_Word c = 1; c < CONFIG_MAX_NUM_NODES; c++) {
        seL4_Word mr0 = 0;
        seL4_MessageInfo_t r = INVOKE(CAP_ENDPOINT, seL4_CallWithMRs(smp_ep[c], seL4_MessageInfo_new(LABEL_SPIN, 0, 0, 1),
                                                                     &mr0, seL4_Null, seL4_Null, seL4_Null));
        (void)r;
        seL4_Error err = INVOKE(CAP_THREAD, seL4_TCB_Suspend(smp_tcb[c]));
        if (err) {
            fail("suspend worker", err);
        }
    }
}

/* The per-core truth lines (see above), written at `line`; returns their end. A debug
 * kernel's root task prints them before the TRUTH line; a release kernel's, which has no
 * console, ships them in the note of seL4_BenchmarkFinalizeLog before the TRUTH line
 * (finish). Their numbers have fixed widths, as the TRUTH line's: the lines of a debug
 * and a release run are then the same text when their counts are the same. */
static char *smp_truth(char *line)
{
    static const struct {
        const char *name;
        int sys;
    } names[] = {{"Yield", -seL4_SysYield}, {"ReplyRecv", -seL4_SysReplyRecv}, {"Reply", -seL4_SysReply}};
    char *e = fmt_str(line, "TRUTH_CORE 0 ipi.resched=");
    e = fmt_num(e, (unsigned long)(CONFIG_MAX_NUM_NODES - 1) * (SMP_CALL + 1), 8);
    e = fmt_str(e, " ipi.call=");
    e = fmt_num(e, 0, 8);
    e = fmt_str(e, "\n");
    for (unsigned c = 1; c < CONFIG_MAX_NUM_NODES; c++) {
        e = fmt_str(e, "TRUTH_CORE ");
        e = fmt_num(e, c, 1);
        for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
            e = fmt_str(e, " sys.");
            e = fmt_str(e, names[i].name);
            e = fmt_str(e, "=");
            e = fmt_num(e, smp_sys[c][names[i].sys], 8);
        }
        e = fmt_str(e, " switches=");
        e = fmt_num(e, 2 * SMP_CALL + 2, 8);
        e = fmt_str(e, " ipi.resched=");
        e = fmt_num(e, SMP_CALL + 1, 8);
        e = fmt_str(e, " ipi.resched_extra=");
        e = fmt_num(e, 1, 8);
        e = fmt_str(e, " ipi.call=");
        e = fmt_num(e, 1, 8);
        e = fmt_str(e, " threads=worker");
        e = fmt_num(e, c, 1);
        e = fmt_str(e, "\n");
    }
    *e = 0;
    return e;
}
#endif

#ifdef TM_SNAPSHOTS
/* ---- user-level access to the trace ----------------------------------------------- *
 *
 * A large frame (2 MiB, the ring is 1 MiB) the root task maps read-only at SNAP_VADDR;
 * seL4_TracemarkSnapshot has the kernel copy its ring into it and start a new one
 * (seL4_TracemarkSnapshotReset), and tracemark's tm_frame_uart ships the image's used
 * part over the debug console, in tracemark's UART framing, one seL4_DebugPutChar per
 * character (counted, as every syscall). */
#define SNAP_VADDR 0x20000000ul
static seL4_CPtr snap_frame;

static void snapshot_setup(seL4_BootInfo *bi, seL4_CPtr frame_slot, seL4_CPtr pd_slot)
{
    seL4_CPtr big = 0;
    for (seL4_Word i = 0; i < bi->untyped.end - bi->untyped.start; i++) {
        if (!bi->untypedList[i].isDevice && bi->untypedList[i].sizeBits >= seL4_LargePageBits + 1) {
            big = bi->untyped.start + i;
            break;
        }
    }
    if (!big) {
        fail("no untyped for the snapshot frame", 0);
    }
#if defined(CONFIG_ARCH_X86_64)
    seL4_Word frame_type = seL4_X86_LargePageObject, pd_type = seL4_X86_PageDirectoryObject;
#else
    seL4_Word frame_type = seL4_ARM_LargePageObject, pd_type = seL4_ARM_PageDirectoryObject;
#endif
    seL4_Error err = INVOKE(CAP_UNTYPED, seL4_Untyped_Retype(big, frame_type, 0, seL4_CapInitThreadCNode,
                                                             0, 0, frame_slot, 1));
    if (err) {
        fail("retype the snapshot frame", err);
    }
    /* Read-only: the kernel writes the frame through its own window. */
#if defined(CONFIG_ARCH_X86_64)
#define MAP_FRAME() seL4_X86_Page_Map(frame_slot, seL4_CapInitThreadVSpace, SNAP_VADDR, seL4_CanRead, \
                                      seL4_X86_Default_VMAttributes)
#define MAP_PD() seL4_X86_PageDirectory_Map(pd_slot, seL4_CapInitThreadVSpace, SNAP_VADDR, \
                                            seL4_X86_Default_VMAttributes)
#else
#define MAP_FRAME() seL4_ARM_Page_Map(frame_slot, seL4_CapInitThreadVSpace, SNAP_VADDR, seL4_CanRead, \
                                      seL4_ARM_Default_VMAttributes)
#define MAP_PD() seL4_ARM_PageDirectory_Map(pd_slot, seL4_CapInitThreadVSpace, SNAP_VADDR, \
                                            seL4_ARM_Default_VMAttributes)
#endif
    COUNT_SYS(seL4_SysCall);
    err = MAP_FRAME();
    if (err == seL4_FailedLookup) {
        /* No page directory covers SNAP_VADDR yet: add one. */
        err = INVOKE(CAP_UNTYPED, seL4_Untyped_Retype(big, pd_type, 0, seL4_CapInitThreadCNode, 0, 0, pd_slot, 1));
        if (err) {
            fail("retype the snapshot page directory", err);
        }
        COUNT_SYS(seL4_SysCall);
        err = MAP_PD();
        if (err) {
            fail("map the snapshot page directory", err);
        }
        COUNT_SYS(seL4_SysCall);
        err = MAP_FRAME();
    }
    if (err) {
        fail("map the snapshot frame", err);
    }
    snap_frame = frame_slot;
    /* For the check: the number the trace records the snapshot syscall's entries by. */
    print_num("root: snapshot syscall ", (unsigned long)-seL4_SysTracemarkSnapshot);
}

/* Snapshots the ring into the frame and starts a new one; returns the image's length. */
static seL4_Word snapshot_take(void)
{
    seL4_Word len = 0;
    snapshots++;
    seL4_Error err = seL4_TracemarkSnapshot(snap_frame, seL4_TracemarkSnapshotReset, &len);
    if (err) {
        fail("seL4_TracemarkSnapshot", err);
    }
    return len;
}

static int snapshot_sink(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    for (size_t i = 0; i < len; i++) {
        put((char)data[i]);
    }
    return 0;
}

/* Ships the image of `len` bytes in the frame as dump `dump_id`. */
static void snapshot_ship(seL4_Word len, uint32_t dump_id)
{
    int r = tm_frame_uart((const uint8_t *)SNAP_VADDR, len, dump_id, snapshot_sink, NULL);
    if (r != TM_OK) {
        fail("tm_frame_uart", (unsigned long)-r);
    }
}

/* The truth counters start again: each snapshot's interval has its own. */
static void truth_reset(void)
{
    for (unsigned i = 0; i < sizeof sys_count / sizeof sys_count[0]; i++) {
        sys_count[i] = 0;
    }
    for (unsigned i = 0; i < sizeof call_count / sizeof call_count[0]; i++) {
        call_count[i] = 0;
    }
    failed_invocations = 0;
    faults_handled = 0;
    snapshots = 0;
    spins = 0;
}
#endif

#if defined(TM_SNAPSHOTS) && defined(CONFIG_BENCHMARK_TRACK_UTILISATION)
/* ---- seL4's own utilisation tracking, for the cross-check (build.sh VARIANT util) -- *
 *
 * seL4_BenchmarkResetLog starts seL4's per-thread accounting right after snapshot 1, and
 * seL4_BenchmarkFinalizeLog stops it right before snapshot 2: its window is snapshot 2's
 * but for the syscalls at both ends. The figures are printed after snapshot 2, as
 * `UTIL name util=... kernel=... schedules=... entries=...` lines (seL4's timestamp()
 * ticks), for check.sh to compare with `tracemark stats` of snapshot 2. */
#include <sel4/benchmark_utilisation_types.h>

static void util_print(const char *name, seL4_CPtr tcb)
{
    seL4_BenchmarkGetThreadUtilisation(tcb);
    uint64_t *b = (uint64_t *)&seL4_GetIPCBuffer()->msg[0];
    unsigned long util = b[BENCHMARK_TCB_UTILISATION], kernel = b[BENCHMARK_TCB_KERNEL_UTILISATION];
    unsigned long schedules = b[BENCHMARK_TCB_NUMBER_SCHEDULES], entries = b[BENCHMARK_TCB_NUMBER_KERNEL_ENTRIES];
    char line[160];
    char *e = fmt_str(line, "UTIL ");
    e = fmt_str(e, name);
    e = fmt_str(e, " util=");
    e = fmt_num(e, util, 1);
    e = fmt_str(e, " kernel=");
    e = fmt_num(e, kernel, 1);
    e = fmt_str(e, " schedules=");
    e = fmt_num(e, schedules, 1);
    e = fmt_str(e, " entries=");
    e = fmt_num(e, entries, 1);
    *e++ = '\n';
    *e = 0;
    puts_(line);
}
#define UTIL_START() ((void)seL4_BenchmarkResetLog())
#define UTIL_STOP() ((void)seL4_BenchmarkFinalizeLog())
#define UTIL_PRINT(server_tcb) (util_print("rootserver", seL4_CapInitThreadTCB), util_print("server", (server_tcb)))
#else
#define UTIL_START() ((void)0)
#define UTIL_STOP() ((void)0)
#define UTIL_PRINT(server_tcb) ((void)(server_tcb))
#endif

#ifdef TM_BENCH
/* ---- benchmark (examples/sel4/bench.sh builds with -DTM_BENCH) -------------------- */

#define BENCH_WARMUP 2000
#define BENCH_YIELDS 20000
#define BENCH_BATCH 100

static inline unsigned long counter(void)
{
#if defined(CONFIG_ARCH_X86_64)
    unsigned int lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((unsigned long)hi << 32) | lo;
#else
    unsigned long v;
    __asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v));
    return v;
#endif
}

static unsigned long counter_hz(void)
{
#if defined(CONFIG_ARCH_X86_64)
    return 0; /* the TSC rate: the kernel prints it (tracemark: ... clock N Hz) */
#else
    unsigned long f;
    __asm__ volatile("mrs %0, cntfrq_el0" : "=r"(f));
    return f;
#endif
}

/* A tight seL4_Yield loop (no other thread is ready: every Yield enters and leaves the
 * kernel without a switch), timed with the user-readable counter. With seL4's
 * track_kernel_entries, its log buffer is set up first so that the kernel really logs. */
static void bench(seL4_BootInfo *bi)
{
#ifdef CONFIG_BENCHMARK_TRACK_KERNEL_ENTRIES
    seL4_CPtr big = 0;
    for (seL4_Word i = 0; i < bi->untyped.end - bi->untyped.start; i++) {
        if (!bi->untypedList[i].isDevice && bi->untypedList[i].sizeBits >= seL4_LargePageBits) {
            big = bi->untyped.start + i;
            break;
        }
    }
    seL4_CPtr log_frame = bi->empty.end - 1;
    if (!big || seL4_Untyped_Retype(big, seL4_ARM_LargePageObject, 0, seL4_CapInitThreadCNode, 0, 0,
                                    log_frame, 1)
        || seL4_BenchmarkSetLogBuffer(log_frame) || seL4_BenchmarkResetLog()) {
        puts_("root: BENCH log buffer set-up failed\n");
    }
#else
    (void)bi;
#endif
    for (int i = 0; i < BENCH_WARMUP; i++) {
        seL4_Yield();
    }
    /* Batches of BENCH_BATCH Yields; the median batch is reported, so that the host
     * descheduling QEMU now and then (TCG's counters follow the host's clock) does not
     * count. */
    static unsigned long batch[BENCH_YIELDS / BENCH_BATCH];
    const int n = BENCH_YIELDS / BENCH_BATCH;
    for (int b = 0; b < n; b++) {
        unsigned long t0 = counter();
        for (int i = 0; i < BENCH_BATCH; i++) {
            seL4_Yield();
        }
        batch[b] = counter() - t0;
    }
    for (int i = 1; i < n; i++) {
        unsigned long v = batch[i];
        int j = i;
        while (j > 0 && batch[j - 1] > v) {
            batch[j] = batch[j - 1];
            j--;
        }
        batch[j] = v;
    }
#ifdef CONFIG_BENCHMARK_TRACK_KERNEL_ENTRIES
    print_num("root: BENCH logged entries ", seL4_BenchmarkFinalizeLog());
#endif
    puts_("BENCH yields=");
    print_num("", BENCH_BATCH);
    print_num("BENCH ticks=", batch[n / 2]);
    print_num("BENCH min_ticks=", batch[0]);
    print_num("BENCH counter_hz=", counter_hz());
    finish("");
}
#endif

/* The truth line of an interval, `label` first (TRUTH1, TRUTH2: the snapshots'
 * intervals; TRUTH: the one the halt dump holds, the whole run without snapshots),
 * naming the threads that must run in it; returned for the caller to print. Every
 * number has a fixed width, so the line's length is known before it is printed and the
 * count of DebugPutChar can include the line itself; the syscall that ends the interval
 * (`ends_in_halt`: seL4_DebugHalt, else seL4_TracemarkSnapshot) is counted too. On a
 * multicore kernel the syscalls of the other cores' workers are counted too, and the
 * workers are among the threads. */
static const char *print_truth(const char *label, const char *threads, int ends_in_halt)
{
    static const struct {
        const char *name;
        int sys;
    } names[] = {
        {"Call", -seL4_SysCall},       {"ReplyRecv", -seL4_SysReplyRecv},
        {"Send", -seL4_SysSend},       {"NBSend", -seL4_SysNBSend},
        {"Recv", -seL4_SysRecv},       {"Reply", -seL4_SysReply},
        {"Yield", -seL4_SysYield},     {"NBRecv", -seL4_SysNBRecv},
#ifdef CONFIG_PRINTING
        {"DebugPutChar", -seL4_SysDebugPutChar},
#endif
#ifdef CONFIG_DEBUG_BUILD
        {"DebugNameThread", -seL4_SysDebugNameThread},
        {"DebugHalt", -seL4_SysDebugHalt},
#endif
    };
    static const struct {
        const char *name;
        int cap;
    } caps[] = {{"Untyped", CAP_UNTYPED}, {"Endpoint", CAP_ENDPOINT}, {"CNode", CAP_CNODE}, {"Thread", CAP_THREAD}};
    static char line[512];
    unsigned long extra_putchar = 0;
    for (int pass = 0; pass < 2; pass++) {
        char *e = fmt_str(line, label);
        for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
            unsigned long v = sys_count[names[i].sys];
#if CONFIG_MAX_NUM_NODES > 1
            for (unsigned c = 1; c < CONFIG_MAX_NUM_NODES; c++) {
                v += smp_sys[c][names[i].sys];
            }
#endif
#ifdef CONFIG_PRINTING
            if (names[i].sys == -seL4_SysDebugPutChar) {
                v += extra_putchar;
            }
#endif
#ifdef CONFIG_DEBUG_BUILD
            if (names[i].sys == -seL4_SysDebugHalt && ends_in_halt) {
                v += 1;
            }
#endif
            e = fmt_str(e, " sys.");
            e = fmt_str(e, names[i].name);
            e = fmt_str(e, "=");
            e = fmt_num(e, v, 8);
        }
        for (unsigned i = 0; i < sizeof caps / sizeof caps[0]; i++) {
            e = fmt_str(e, " call.");
            e = fmt_str(e, caps[i].name);
            e = fmt_str(e, "=");
            e = fmt_num(e, call_count[caps[i].cap], 8);
        }
        e = fmt_str(e, " failed=");
        e = fmt_num(e, failed_invocations, 8);
        e = fmt_str(e, " faults=");
        e = fmt_num(e, faults_handled, 8);
        e = fmt_str(e, " snapshots=");
        e = fmt_num(e, snapshots + !ends_in_halt, 8);
        e = fmt_str(e, " spins=");
        e = fmt_num(e, spins, 8);
        e = fmt_str(e, " threads=");
        e = fmt_str(e, threads);
#if CONFIG_MAX_NUM_NODES > 1
        for (unsigned c = 1; c < CONFIG_MAX_NUM_NODES; c++) {
            e = fmt_str(e, ",worker");
            e = fmt_num(e, c, 1);
        }
#endif
        e = fmt_str(e, "\n");
        *e = 0;
        extra_putchar = (unsigned long)(e - line);
    }
    (void)extra_putchar;
    return line;
}

void root_main(seL4_BootInfo *bi);
void root_main(seL4_BootInfo *bi)
{
    __sel4_ipc_buffer = bi->ipcBuffer;
#ifdef TM_BENCH
    bench(bi);
#endif
    puts_("root: tracemark workload starts\n");

    /* An untyped of at least 64 KiB that is not device memory. */
    seL4_CPtr ut = 0;
    for (seL4_Word i = 0; i < bi->untyped.end - bi->untyped.start; i++) {
        if (!bi->untypedList[i].isDevice && bi->untypedList[i].sizeBits >= 16) {
            ut = bi->untyped.start + i;
            break;
        }
    }
    if (!ut) {
        fail("no untyped", 0);
    }
    seL4_CPtr free = bi->empty.start;
    seL4_CPtr ep = free, fault_ep = free + 1, server_tcb = free + 2, faulter_tcb = free + 3;
    seL4_CPtr copy_slot = free + 4, mint_slot = free + 5;
    ep_cap = ep;
#ifdef TM_SNAPSHOTS
    snapshot_setup(bi, free + 6, free + 7);
#endif
#ifdef CONFIG_DEBUG_BUILD
    /* The initial thread names itself (the kernel named it "rootserver" at boot; a
     * traced kernel records the name as a THREAD record either way). Release kernels
     * keep no thread names. */
    COUNT_SYS(seL4_SysDebugNameThread);
    seL4_DebugNameThread(seL4_CapInitThreadTCB, "rootserver");
#endif

    seL4_Error err = INVOKE(CAP_UNTYPED, seL4_Untyped_Retype(ut, seL4_EndpointObject, 0,
                                                             seL4_CapInitThreadCNode, 0, 0, ep, 2));
    if (err) {
        fail("retype endpoints", err);
    }
    err = INVOKE(CAP_UNTYPED, seL4_Untyped_Retype(ut, seL4_TCBObject, 0, seL4_CapInitThreadCNode, 0,
                                                  0, server_tcb, 2));
    if (err) {
        fail("retype TCBs", err);
    }

    /* CNode invocations: copy, mint, delete; then a copy into an occupied slot, which
     * fails (seL4_DeleteFirst). */
    err = INVOKE(CAP_CNODE, seL4_CNode_Copy(seL4_CapInitThreadCNode, copy_slot, seL4_WordBits,
                                            seL4_CapInitThreadCNode, ep, seL4_WordBits, seL4_AllRights));
    if (err) {
        fail("cnode copy", err);
    }
    err = INVOKE(CAP_CNODE, seL4_CNode_Mint(seL4_CapInitThreadCNode, mint_slot, seL4_WordBits,
                                            seL4_CapInitThreadCNode, ep, seL4_WordBits, seL4_AllRights, 7));
    if (err) {
        fail("cnode mint", err);
    }
    err = INVOKE(CAP_CNODE, seL4_CNode_Delete(seL4_CapInitThreadCNode, copy_slot, seL4_WordBits));
    if (err) {
        fail("cnode delete", err);
    }
    err = INVOKE(CAP_CNODE, seL4_CNode_Copy(seL4_CapInitThreadCNode, mint_slot, seL4_WordBits,
                                            seL4_CapInitThreadCNode, ep, seL4_WordBits, seL4_AllRights));
    if (err != seL4_DeleteFirst) {
        fail("the failing invocation did not fail", err);
    }
    failed_invocations++;

    /* The server thread blocks in Recv on the endpoint. */
    err = start_thread(server_tcb, seL4_CapNull, server_main, server_stack + STACK_BYTES, "server");
    if (err) {
        fail("start server", err);
    }

    for (int i = 0; i < N_YIELD; i++) {
        COUNT_SYS(seL4_SysYield);
        seL4_Yield();
    }

    for (int i = 0; i < N_SEND; i++) {
        seL4_Word mr0 = (seL4_Word)i;
        COUNT_SYS(seL4_SysSend);
        seL4_SendWithMRs(ep, seL4_MessageInfo_new(LABEL_SEND, 0, 0, 1), &mr0, seL4_Null, seL4_Null, seL4_Null);
    }
    unsigned long reply_sum = 0;
    for (int i = 0; i < N_CALL; i++) {
        seL4_Word mr0 = (seL4_Word)i;
        seL4_MessageInfo_t r = INVOKE(CAP_ENDPOINT, seL4_CallWithMRs(ep, seL4_MessageInfo_new(LABEL_CALL, 0, 0, 1),
                                                                     &mr0, seL4_Null, seL4_Null, seL4_Null));
        (void)r;
        reply_sum += mr0;
    }
    if (reply_sum != (unsigned long)N_CALL * (N_CALL + 1) / 2) {
        fail("server replies", reply_sum);
    }

    /* The faulting thread: its fault arrives as a message on fault_ep. */
    err = start_thread(faulter_tcb, fault_ep, faulter_main, faulter_stack + STACK_BYTES, "faulter");
    if (err) {
        fail("start faulter", err);
    }
    seL4_Word badge = 0;
    COUNT_SYS(seL4_SysRecv);
    seL4_MessageInfo_t f = seL4_Recv(fault_ep, &badge);
    if (seL4_MessageInfo_get_label(f) != seL4_Fault_VMFault) {
        fail("fault label", seL4_MessageInfo_get_label(f));
    }
    faults_handled++;
    err = INVOKE(CAP_THREAD, seL4_TCB_Suspend(faulter_tcb));
    if (err) {
        fail("suspend faulter", err);
    }

#if CONFIG_MAX_NUM_NODES > 1
    smp_workload(ut, free + 8); /* free + 6 and + 7: the snapshot frame, on one core */
#endif

    /* Work long enough for timer interrupts to arrive. */
    volatile unsigned long spin = 0;
    for (int r = 0; r < SPIN_ROUNDS; r++) {
        for (unsigned long i = 0; i < 3000000; i++) {
            spin += i;
        }
        puts_("root: spin round done\n");
        spins++;
    }

    print_num("root: server received ", server_received);
#if CONFIG_MAX_NUM_NODES > 1
    /* The per-core truth lines: printed (debug), and on a release kernel the start of
     * the note, which the TRUTH line then ends (below). */
    static char smp_note[2048];
    char *smp_note_end = smp_truth(smp_note);
    puts_(smp_note);
#endif

#ifdef TM_SNAPSHOTS
    /* Snapshot 1: the interval from the boot to here. */
    puts_(print_truth("TRUTH1", "rootserver,server,faulter", 0));
    seL4_Word len = snapshot_take();
    UTIL_START();
    truth_reset();
    snapshot_ship(len, 1);
    /* Interval 2: shipping snapshot 1 (above), and more work. */
    for (int i = 0; i < N_YIELD / 4; i++) {
        COUNT_SYS(seL4_SysYield);
        seL4_Yield();
    }
    for (int i = 0; i < N_SEND / 4; i++) {
        seL4_Word mr0 = (seL4_Word)i;
        COUNT_SYS(seL4_SysSend);
        seL4_SendWithMRs(ep, seL4_MessageInfo_new(LABEL_SEND, 0, 0, 1), &mr0, seL4_Null, seL4_Null, seL4_Null);
    }
    for (int i = 0; i < N_CALL / 3; i++) {
        seL4_Word mr0 = (seL4_Word)i;
        INVOKE(CAP_ENDPOINT, seL4_CallWithMRs(ep, seL4_MessageInfo_new(LABEL_CALL, 0, 0, 1), &mr0, seL4_Null,
                                              seL4_Null, seL4_Null));
    }
    for (unsigned long i = 0; i < 3000000; i++) {
        spin += i;
    }
    spins++;
    puts_("root: phase 2 done\n");
    puts_(print_truth("TRUTH2", "rootserver,server", 0));
    UTIL_STOP();
    len = snapshot_take();
    truth_reset();
    snapshot_ship(len, 2);
    UTIL_PRINT(server_tcb);
    /* Shipping costs a traced seL4_DebugPutChar per character, about 2 characters per
     * image byte, and each DebugPutChar's entry and exit take about 9 bytes of ring:
     * shipping snapshot 2 (some 220 KB) would wrap the 1 MiB ring. Start afresh once more without shipping; the halt dump then holds the last
     * truth line and the halt. */
    (void)snapshot_take();
    truth_reset();
    finish(print_truth("TRUTH", "rootserver", 1));
#else
    const char *truth = print_truth("TRUTH", "rootserver,server,faulter", 1);
#if CONFIG_MAX_NUM_NODES > 1 && !defined(CONFIG_PRINTING)
    /* No console: the note holds the per-core lines and the TRUTH line, 581 bytes on 2
     * cores, 945 on 4 (the note's limit is 952: more cores do not fit, finish). */
    *fmt_str(smp_note_end, truth) = 0;
    finish(smp_note);
#else
#if CONFIG_MAX_NUM_NODES > 1
    (void)smp_note_end;
#endif
    finish(truth);
#endif
#endif
}
