/*
 * Compiled with -finstrument-functions (issue 20, point 22): an instrumented dump sink
 * must not record into the ring it dumps, and hook calls for a CPU out of the table
 * must be counted. Dumps CPU 0's ring twice, to argv[1] and argv[2], then prints the
 * hooks' skip count before the dumps, after them, and after two calls made while the
 * cpu function returns 9:
 *   skipped BEFORE AFTER_DUMPS AFTER_BAD_CPU
 *   chunks N        (sink calls of the two dumps)
 */
#include <stdint.h>
#include <stdio.h>

#include "tracemark.h"

static uint64_t ticks;
static uint32_t cpu_value;
static unsigned chunks;

__attribute__((no_instrument_function)) static uint64_t clock_fn(void) { return ticks += 3; }
__attribute__((no_instrument_function)) static uint32_t cpu_fn(void) { return cpu_value; }

int leaf(int x) { return x * 3 + 1; }

/* Instrumented, and calls an instrumented function for every chunk. */
static int write_file(void *ctx, const uint8_t *data, size_t len)
{
    chunks++;
    (void)leaf((int)len);
    return fwrite(data, 1, len, (FILE *)ctx) == len ? 0 : 1;
}

__attribute__((no_instrument_function)) static int dump(const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -100;
    int rc = tm_dump(0, write_file, f);
    fclose(f);
    return rc;
}

static uint64_t ring[(192 + 4 * 256) / 8];

int main(int argc, char **argv)
{
    if (argc != 3) return 2;
    tm_config config = {.block_size = 256, .mode = TM_MODE_OVERWRITE, .clock = clock_fn,
                        .clock_hz = 1000000, .producer_id = 1, .syscall_abi = TM_ABI_RAW};
    if (tm_init(0, ring, sizeof ring, &config) != TM_OK) return 3;
    tm_set_cpu_fn(cpu_fn);
    int sum = 0;
    for (int i = 0; i < 5; i++) sum += leaf(i);
    unsigned before = tm_hook_skipped();
    if (dump(argv[1]) != TM_OK || dump(argv[2]) != TM_OK) return 4;
    unsigned after_dumps = tm_hook_skipped();
    cpu_value = 9;
    sum += leaf(1) + leaf(2);
    cpu_value = 0;
    unsigned after_bad = tm_hook_skipped();
    tm_set_cpu_fn(NULL);
    printf("sum %d\nskipped %u %u %u\nchunks %u\n", sum, before, after_dumps, after_bad, chunks);
    return 0;
}
