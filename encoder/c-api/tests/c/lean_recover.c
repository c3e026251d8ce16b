/* The C ABI's recovery, raw dump and UART dump, linked against the lean library by
 * scripts/test-capi.sh, which checks that no Rust panic machinery comes with them (the
 * UART dump brought it until its base64 encoder stopped using the base64 crate's). */
#include "tracemark.h"
static int sink(void *ctx, const uint8_t *data, size_t len) { (void)ctx; (void)data; (void)len; return 0; }
static uint64_t clk(void) { return 1; }
static uint64_t ring[(192 + 2 * 256) / 8];
int main(void) {
    tm_config c = {.block_size = 256, .clock = clk};
    if (tm_init_recover(0, ring, sizeof ring, &c, sink, 0) < 0) return 1;
    if (tm_dump(0, sink, 0) < 0) return 1;
    return tm_dump_uart(0, 1, sink, 0) < 0;
}
