/*
 * A "boot" of a program whose trace memory survives a reset: the ring lives in a file
 * mapped shared (MAP_SHARED), as a .noinit section survives a warm reset.
 *
 *   warm_reset MEMFILE crash BOOT   tm_init, records BOOT's events, then dies with
 *                                   abort() while the ring is claimed (no tm_release);
 *   warm_reset MEMFILE boot BOOT PREV CUR [released|smaller]
 *                                   checks that tm_init refuses the earlier boot's ring
 *                                   (TM_ERR_PREVIOUS; not if it was `released`: a
 *                                   released ring may be reused; `smaller`: this boot's
 *                                   ring is half as long, at the same address), recovers it with
 *                                   tm_init_recover
 *                                   (its bytes to PREV), records BOOT's events in a new
 *                                   session in the same memory and dumps it to CUR.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tracemark.h"

#define RING_BYTES (192 + 8 * 1024)

static uint64_t ticks;
static uint64_t test_clock(void) { return ticks += 7; }

static int file_sink(void *ctx, const uint8_t *data, size_t len)
{
    return fwrite(data, 1, len, (FILE *)ctx) == len ? 0 : 1;
}

static void record_boot(uint32_t boot)
{
    for (uint32_t i = 0; i < 300; i++) {
        tm_kernel_entry_syscall(0, 1 + i % 8, 4, 0, boot);
        tm_interrupt(0, 100 * boot + i % 10);
        tm_kernel_exit(0);
    }
    tm_user(0, boot, "boot", 4);
}

int main(int argc, char **argv)
{
    if (argc < 4) return 2;
    int fd = open(argv[1], O_RDWR | O_CREAT, 0600);
    if (fd < 0 || ftruncate(fd, RING_BYTES) != 0) return 3;
    void *mem = mmap(NULL, RING_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED) return 4;
    uint32_t boot = (uint32_t)atoi(argv[3]);
    ticks = 1000000u * boot;
    tm_config config = {.block_size = 1024, .mode = TM_MODE_OVERWRITE, .clock = test_clock,
                        .clock_hz = 1000000, .producer_id = boot, .syscall_abi = TM_ABI_SEL4};
    int rc;
    if (argv[2][0] == 'c') {
        if ((rc = tm_init(0, mem, RING_BYTES, &config)) != TM_OK) return 10;
        record_boot(boot);
        abort(); /* the crash: the ring stays claimed in the surviving memory */
    }
    if (argc < 6) return 2;
    int released = argc > 6 && argv[6][0] == 'r';
    size_t len = argc > 6 && argv[6][0] == 's' ? 192 + 4 * 1024 : RING_BYTES;
    if (!released && (rc = tm_init(0, mem, len, &config)) != TM_ERR_PREVIOUS) {
        fprintf(stderr, "tm_init on the earlier boot's ring: %d\n", rc);
        return 11;
    }
    FILE *prev = fopen(argv[4], "wb");
    if (!prev) return 5;
    rc = tm_init_recover(0, mem, len, &config, file_sink, prev);
    fclose(prev);
    if (rc != TM_RECOVERED) {
        fprintf(stderr, "tm_init_recover: %d\n", rc);
        return 12;
    }
    record_boot(boot);
    FILE *cur = fopen(argv[5], "wb");
    if (!cur) return 6;
    rc = tm_dump(0, file_sink, cur);
    fclose(cur);
    if (rc != TM_OK || tm_release(0) != TM_OK) return 13;
    printf("recovered ok\n");
    return 0;
}
