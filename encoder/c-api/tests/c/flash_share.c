/*
 * Flash share of tracemark in a Cortex-M3 firmware (issue 15, goal 2): what an RTOS's
 * trace hooks call (initialisation, kernel entry and exit, interrupt, thread switch, a
 * user event) and, with -DTM_FLASH_DUMP, the UART dump. Built freestanding by
 * encoder/c-api/flash-share.sh, which sums tracemark's symbols from the linker map. The
 * values come from volatile memory so that nothing is folded away.
 */
typedef unsigned char uint8_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
#define TM_NO_STDINC
#include "tracemark.h"

static uint8_t ring[8192] __attribute__((aligned(8)));
static volatile uint32_t tick;
static volatile uint32_t in;
static volatile uint8_t uart;

static uint64_t clock_read(void) { return tick; }

#ifdef TM_FLASH_DUMP
static int sink(void *ctx, const uint8_t *data, __SIZE_TYPE__ len)
{
    (void)ctx;
    for (__SIZE_TYPE__ i = 0; i < len; i++) {
        uart = data[i];
    }
    return 0;
}
#endif

void Reset_Handler(void)
{
    tm_config config = {
        .block_size = 1024,
        .mode = TM_MODE_OVERWRITE,
        .clock = clock_read,
        .clock_hz = 25000000,
        .producer_id = 0x52544f53,
        .syscall_abi = TM_ABI_RAW,
    };
    if (tm_init(0, ring, sizeof ring, &config) != TM_OK) {
        for (;;) {}
    }
    for (uint32_t i = 0; i < in; i++) {
        tm_kernel_entry_other(0, TM_PATH_INTERRUPT, 0, in);
        tm_interrupt(0, in);
        tm_thread_switch(0, in);
        tm_user(0, in, ring, in & 31);
        tm_kernel_exit(0);
    }
#ifdef TM_FLASH_DUMP
    (void)tm_dump_uart(0, in, sink, 0);
#endif
    for (;;) {}
}

__attribute__((section(".vectors"), used)) static void (*const vectors[2])(void) = {
    (void (*)(void))0x20008000, Reset_Handler};
