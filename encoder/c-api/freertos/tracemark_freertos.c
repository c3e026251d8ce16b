/*
 * tracemark for FreeRTOS: the hooks behind tracemark_freertos.h's trace macros.
 * See the header for what is recorded and how to set it up.
 */
#include "FreeRTOS.h"
#include "task.h"

#include "tracemark_freertos.h"

/* The exception number of the running handler (Cortex-M IPSR; 0 in thread mode). */
static inline uint32_t tm_ipsr(void)
{
#if defined(__ARM_ARCH) && (defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) ||   \
                            defined(__ARM_ARCH_6M__) || defined(__ARM_ARCH_8M_MAIN__) ||  \
                            defined(__ARM_ARCH_8M_BASE__))
    uint32_t r;
    __asm volatile("mrs %0, ipsr" : "=r"(r));
    return r & 0x1ffu;
#else
    return 0u;
#endif
}

/* Interrupt entries are "other" kernel entries (FORMAT.md section 9): path
 * TM_PATH_INTERRUPT, core 0, the exception number as the word. */

int tm_freertos_init(void *mem, size_t len, tm_clock_fn clock, uint64_t clock_hz,
                     uint32_t mode)
{
    tm_config config = {
        .block_size = 1024,
        .mode = mode,
        .clock = clock,
        .clock_hz = clock_hz,
        .producer_id = 0x46524545u, /* "FREE" */
        .syscall_abi = TM_ABI_RAW,
    };
    return tm_init(TM_FREERTOS_CPU, mem, len, &config);
}

int tm_freertos_dump_uart(uint32_t dump_id, tm_sink_fn sink, void *ctx)
{
    int r;
    taskENTER_CRITICAL();
    r = tm_dump_uart(TM_FREERTOS_CPU, dump_id, sink, ctx);
    taskEXIT_CRITICAL();
    return r;
}

/* Interrupt handlers open and not yet exited. A nested handler returns with it as it
 * found it, so the read-modify-writes need no lock. */
static volatile uint32_t tm_isr_depth;

uint32_t tm_freertos_isr_enter(void)
{
    uint32_t depth = tm_isr_depth;
    tm_isr_depth = depth + 1u;
    (void)tm_kernel_entry_other(TM_FREERTOS_CPU, TM_PATH_INTERRUPT, 0u, tm_ipsr());
    return depth;
}

void tm_freertos_isr_exit(void)
{
    uint32_t depth = tm_isr_depth;
    if (depth == 0u) {
        return;
    }
    tm_isr_depth = depth - 1u;
    (void)tm_kernel_exit(TM_FREERTOS_CPU);
}

void tm_freertos_isr_exit_to(uint32_t depth)
{
    if (tm_isr_depth > depth) {
        tm_freertos_isr_exit();
    }
}

static size_t tm_name_len(const char *name)
{
    size_t n = 0;
    while (n < configMAX_TASK_NAME_LEN && name[n] != '\0') {
        n++;
    }
    return n;
}

void tm_freertos_task_switched_in(void *tcb, const char *name, uint32_t prio,
                                  uint32_t *stamp)
{
    (void)tm_thread_switch_named(TM_FREERTOS_CPU, (uint64_t)(uintptr_t)tcb, name,
                                 tm_name_len(name), prio, stamp);
}

void tm_freertos_task_create(void *tcb, const char *name, uint32_t prio)
{
    (void)tm_thread_name(TM_FREERTOS_CPU, (uint64_t)(uintptr_t)tcb, name, tm_name_len(name),
                         prio);
}

static void tm_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

void tm_freertos_object(uint32_t id, const void *object)
{
    uint8_t p[4];
    tm_put_u32(p, (uint32_t)(uintptr_t)object);
    (void)tm_user(TM_FREERTOS_CPU, id, p, sizeof p);
}

void tm_freertos_object_u8(uint32_t id, const void *object, uint32_t extra)
{
    uint8_t p[5];
    tm_put_u32(p, (uint32_t)(uintptr_t)object);
    p[4] = (uint8_t)extra;
    (void)tm_user(TM_FREERTOS_CPU, id, p, sizeof p);
}

void tm_freertos_value(uint32_t id, uint32_t value)
{
    uint8_t p[4];
    tm_put_u32(p, value);
    (void)tm_user(TM_FREERTOS_CPU, id, id == TM_FREERTOS_EV_TASK_DELAY ? NULL : p,
                  id == TM_FREERTOS_EV_TASK_DELAY ? 0u : sizeof p);
}

void tm_freertos_index(uint32_t id, uint32_t index)
{
    uint8_t p = (uint8_t)index;
    (void)tm_user(TM_FREERTOS_CPU, id, &p, 1u);
}
