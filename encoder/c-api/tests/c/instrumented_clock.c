/*
 * The whole program compiled with -finstrument-functions, its clock and cpu function
 * included (no no_instrument_function attribute anywhere): the hooks must not recurse
 * through them. Prints the addresses of the functions it calls and the hooks' skip
 * count; writes CPU 0's ring to argv[1].
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tracemark.h"

static uint64_t ticks;

uint64_t instrumented_clock(void) { return ticks += 3; }
uint32_t instrumented_cpu(void) { return 0; }

int leaf(int x) { return x * 2 + 1; }

int middle(int x) { return leaf(x) + leaf(x + 1); }

static int write_file(void *ctx, const uint8_t *data, size_t len) {
    return fwrite(data, 1, len, (FILE *)ctx) == len ? 0 : 1;
}

static uint64_t ring[(192 + 16 * 1024) / 8];

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    tm_config config = {
        .block_size = 1024,
        .mode = TM_MODE_OVERWRITE,
        .clock = instrumented_clock,
        .clock_hz = 1000000,
        .producer_id = 1,
        .syscall_abi = TM_ABI_RAW,
    };
    if (tm_init(0, ring, sizeof ring, &config) != TM_OK) return 3;
    tm_set_cpu_fn(instrumented_cpu);
    int sum = 0;
    for (int i = 0; i < 10; i++) sum += middle(i);
    tm_set_cpu_fn(NULL);
    printf("sum %d\nmiddle %llu\nleaf %llu\nskipped %u\n", sum,
           (unsigned long long)(uintptr_t)middle, (unsigned long long)(uintptr_t)leaf,
           tm_hook_skipped());
    FILE *f = fopen(argv[1], "wb");
    if (!f) return 4;
    int rc = tm_dump(0, write_file, f);
    fclose(f);
    return rc == TM_OK ? 0 : 5;
}
