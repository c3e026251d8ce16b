/*
 * Records kernel entries given as seL4's own kernel_entry_t, packed by the C compiler
 * from seL4's bitfield definition, through tm_kernel_entry_raw. Writes CPU 0's ring to
 * argv[1]. Build with -DLEGACY for the entry_type_t numbering of releases that start at
 * Entry_Interrupt = 0 (and then initialise with TM_ABI_SEL4_LEGACY).
 *
 * entry_type_t and kernel_entry_t below are copied from seL4's
 * libsel4/include/sel4/benchmark_track_types.h (pinned 1326364b, 16.0.0-dev; the legacy
 * enum as in earlier releases), Copyright 2020, Data61, CSIRO (ABN 41 687 119 230),
 * SPDX-License-Identifier: BSD-2-Clause. seL4_Word and SEL4_PACKED as libsel4 defines
 * them (simple_types.h, macros.h).
 */
#include <stdint.h>
#include <stdio.h>

#include "tracemark.h"

typedef uintptr_t seL4_Word;
#define SEL4_PACKED __attribute__((packed))
#define CONFIG_ARCH_ARM

#ifndef LEGACY
typedef enum {
    /* The kernel doesn't know why */
    Entry_Unknown,
    Entry_Interrupt,
    Entry_UnknownSyscall,
    Entry_UserLevelFault,
    Entry_DebugFault,
    Entry_VMFault,
    Entry_Syscall,
#ifdef CONFIG_ARCH_ARM
    Entry_VCPUFault,
#endif
} entry_type_t;
#define ABI TM_ABI_SEL4
#else
typedef enum {
    Entry_Interrupt,
    Entry_UnknownSyscall,
    Entry_UserLevelFault,
    Entry_DebugFault,
    Entry_VMFault,
    Entry_Syscall,
    Entry_UnimplementedDevice,
#ifdef CONFIG_ARCH_ARM
    Entry_VCPUFault,
#endif
} entry_type_t;
#define ABI TM_ABI_SEL4_LEGACY
#endif

typedef struct SEL4_PACKED kernel_entry {
    seL4_Word path: 3;
    union {
        struct {
            seL4_Word core: 3;
            seL4_Word word: 26;
        };
        /* Tracked kernel entry info filled from outside this file */
        struct {
            seL4_Word syscall_no: 4;
            seL4_Word cap_type: 5;
            seL4_Word is_fastpath: 1;
            seL4_Word invocation_tag: 19;
        };
    };
} kernel_entry_t;

static uint64_t clock_ticks;
static uint64_t test_clock(void) { return clock_ticks += 10; }

static int write_file(void *ctx, const uint8_t *data, size_t len) {
    return fwrite(data, 1, len, (FILE *)ctx) == len ? 0 : 1;
}

static uint64_t ring[(192 + 4 * 1024) / 8];

/* What the kernel does: fill ksKernelEntry field by field, then record it. */
static int syscall_entry(seL4_Word no, seL4_Word cap, seL4_Word fast, seL4_Word tag) {
    kernel_entry_t e = {0};
    e.path = Entry_Syscall;
    e.syscall_no = no;
    e.cap_type = cap;
    e.is_fastpath = fast;
    e.invocation_tag = tag;
    return tm_kernel_entry_raw(0, tm_sel4_entry_bits(&e, sizeof e));
}

static int other_entry(entry_type_t path, seL4_Word core, seL4_Word word) {
    kernel_entry_t e = {0};
    e.path = path;
    e.core = core;
    e.word = word;
    return tm_kernel_entry_raw(0, tm_sel4_entry_bits(&e, sizeof e));
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    tm_config config = {.block_size = 1024, .mode = TM_MODE_DROP, .clock = test_clock,
                        .clock_hz = 1000000, .producer_id = 9, .syscall_abi = ABI};
    if (tm_init(0, ring, sizeof ring, &config) != TM_OK) return 3;
    int rc = 0;
    rc |= syscall_entry(1, 10, 1, 42);
    rc |= syscall_entry(15, 31, 0, 0x7ffff);
    rc |= other_entry(Entry_Interrupt, 3, 27);
    rc |= other_entry(Entry_VMFault, 0, 0x3ffffff);
    rc |= other_entry(Entry_UnknownSyscall, 1, 456);
    rc |= other_entry(Entry_UserLevelFault, 2, 0x1234);
    rc |= other_entry(Entry_DebugFault, 4, 5);
    rc |= other_entry(Entry_VCPUFault, 7, 6);
    if (rc != TM_OK) return 4;
    printf("sizeof(kernel_entry_t) %zu\n", sizeof(kernel_entry_t));
    FILE *f = fopen(argv[1], "wb");
    if (!f) return 5;
    rc = tm_dump(0, write_file, f);
    fclose(f);
    return rc == TM_OK ? 0 : 6;
}
