/* The smallest use of the C ABI, linked against the lean library by scripts/test-capi.sh:
 * one syscall entry, an interrupt and the exit, dumped raw to stdout. */
#include <stdio.h>
#include "tracemark.h"
static uint64_t t;
static uint64_t clk(void) { return ++t; }
static uint64_t ring[(192 + 4 * 4096) / 8];
static int out(void *ctx, const uint8_t *d, size_t n) { return fwrite(d, 1, n, (FILE *)ctx) != n; }
int main(void) {
    tm_config c = {0, TM_MODE_OVERWRITE, clk, 1000000, 1, TM_ABI_SEL4};
    if (tm_init(0, ring, sizeof ring, &c)) return 1;
    tm_kernel_entry_syscall(0, 1, 4, 0, 7);
    tm_interrupt(0, 27);
    tm_kernel_exit(0);
    return tm_dump(0, out, stdout);
}
