/*
 * tracemark for FreeRTOS (V11): FreeRTOS's trace macros implemented over tracemark's C
 * ABI (tracemark.h). Include this header at the END of your FreeRTOSConfig.h, add
 * tracemark_freertos.c to the build and link the tracemark static library:
 *
 *     #define configUSE_TRACE_FACILITY 1          // the TCB's uxTaskNumber holds a stamp
 *     #include "tracemark_freertos.h"
 *
 * then, once, before vTaskStartScheduler():
 *
 *     static uint64_t ring[4096 / 8 * 8];          // 8-byte aligned
 *     tm_freertos_init(ring, sizeof ring, my_clock, 25000000, TM_MODE_OVERWRITE);
 *
 * What is recorded (FORMAT.md; the USER ids are tracemark_format::freertos):
 *   - task switched in: a SWITCH record (the TCB address), preceded, once per ring block,
 *     by a THREAD record with the task's name and priority (tm_thread_switch_named), so
 *     a ring that overwrote the task's creation still names it. Switched out: nothing
 *     (the next SWITCH says it);
 *   - task create: a THREAD record; task delete: USER TASK_DELETE;
 *   - ISR enter / exit / exit to scheduler: a kernel entry of path Interrupt whose word
 *     is the exception number read from IPSR (SysTick = 15, PendSV = 14, external IRQ n
 *     = 16 + n), and a kernel exit carrying the handler's duration measured on the
 *     target. The port's SysTick handler calls them; user ISRs use TM_FREERTOS_ISR;
 *   - the tick: the SysTick ISR's entry (and, with TM_FREERTOS_TICK_RECORDS 1, a USER
 *     TICK record with the tick count);
 *   - queue, semaphore and mutex create, send, receive, block, failure, from-ISR
 *     variants; task delay and delay-until; task notify (give, from ISR, wait, take);
 *     software timer create, command, expiry: USER records whose payload starts with
 *     the object's address.
 *
 * The clock: any monotonic counter the recording code can read from any context
 * (a free-running hardware timer; on Cortex-M3/M4 the DWT cycle counter, on QEMU's
 * mps2 boards a CMSDK timer). Use the SAME counter for configGENERATE_RUN_TIME_STATS
 * (portGET_RUN_TIME_COUNTER_VALUE) so that FreeRTOS's statistics and tracemark's
 * per-task times can be compared.
 *
 * Dumping: the dump must not race the tick. Call tm_freertos_dump_uart() (it dumps in a
 * critical section: taskENTER_CRITICAL) or copy the ring with tm_snapshot() while the
 * system runs.
 */
#ifndef TRACEMARK_FREERTOS_H
#define TRACEMARK_FREERTOS_H

#ifndef __ASSEMBLER__

#include <stddef.h>
#include <stdint.h>

#include "tracemark.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The USER event ids (tracemark_format::freertos::EVENTS; a test checks they agree). */
#define TM_FREERTOS_EV_QUEUE_CREATE 0x7f00
#define TM_FREERTOS_EV_QUEUE_SEND 0x7f01
#define TM_FREERTOS_EV_QUEUE_SEND_FROM_ISR 0x7f02
#define TM_FREERTOS_EV_QUEUE_RECEIVE 0x7f03
#define TM_FREERTOS_EV_QUEUE_RECEIVE_FROM_ISR 0x7f04
#define TM_FREERTOS_EV_QUEUE_BLOCK_ON_SEND 0x7f05
#define TM_FREERTOS_EV_QUEUE_BLOCK_ON_RECEIVE 0x7f06
#define TM_FREERTOS_EV_QUEUE_SEND_FAILED 0x7f07
#define TM_FREERTOS_EV_QUEUE_RECEIVE_FAILED 0x7f08
#define TM_FREERTOS_EV_QUEUE_DELETE 0x7f09
#define TM_FREERTOS_EV_TASK_DELETE 0x7f10
#define TM_FREERTOS_EV_TASK_DELAY 0x7f11
#define TM_FREERTOS_EV_TASK_DELAY_UNTIL 0x7f12
#define TM_FREERTOS_EV_TASK_NOTIFY 0x7f13
#define TM_FREERTOS_EV_TASK_NOTIFY_FROM_ISR 0x7f14
#define TM_FREERTOS_EV_TASK_NOTIFY_GIVE_FROM_ISR 0x7f15
#define TM_FREERTOS_EV_TASK_NOTIFY_WAIT 0x7f16
#define TM_FREERTOS_EV_TASK_NOTIFY_TAKE 0x7f17
#define TM_FREERTOS_EV_TIMER_CREATE 0x7f20
#define TM_FREERTOS_EV_TIMER_COMMAND 0x7f21
#define TM_FREERTOS_EV_TIMER_EXPIRED 0x7f22
#define TM_FREERTOS_EV_TICK 0x7f30

#ifndef TM_FREERTOS_CPU
/* The tracemark CPU slot FreeRTOS records into (single-core ports). */
#define TM_FREERTOS_CPU 0u
#endif

#ifndef TM_FREERTOS_TICK_RECORDS
/* 1: a USER TICK record per tick besides the SysTick ISR's entry and exit. */
#define TM_FREERTOS_TICK_RECORDS 0
#endif

/* Initialises the ring FreeRTOS records into (tm_init on TM_FREERTOS_CPU); returns a
 * tracemark status (TM_OK). Call it before creating tasks and queues. */
int tm_freertos_init(void *mem, size_t len, tm_clock_fn clock, uint64_t clock_hz,
                     uint32_t mode);

/* Writes the ring to `sink` in tracemark's UART framing (tm_dump_uart), inside a
 * FreeRTOS critical section so that the tick cannot write while it is read. */
int tm_freertos_dump_uart(uint32_t dump_id, tm_sink_fn sink, void *ctx);

/* Hooks called by the macros below (not for direct use). */
uint32_t tm_freertos_isr_enter(void);
void tm_freertos_isr_exit(void);
void tm_freertos_isr_exit_to(uint32_t depth);
void tm_freertos_task_switched_in(void *tcb, const char *name, uint32_t prio,
                                  uint32_t *stamp);
void tm_freertos_task_create(void *tcb, const char *name, uint32_t prio);
void tm_freertos_object(uint32_t id, const void *object);
void tm_freertos_object_u8(uint32_t id, const void *object, uint32_t extra);
void tm_freertos_value(uint32_t id, uint32_t value);
void tm_freertos_index(uint32_t id, uint32_t index);

/*
 * The one line for a user interrupt handler: instead of
 *     void TIMER0_Handler(void) { ...body... }
 * write
 *     TM_FREERTOS_ISR(TIMER0_Handler) { ...body... }
 * The handler's entry and exit are recorded (its exception number from IPSR), with the
 * body's duration. A body that ends with portYIELD_FROM_ISR() already records the exit
 * (FreeRTOS calls traceISR_EXIT there); the macro then records none.
 */
#define TM_FREERTOS_ISR(handler)                                                        \
    static void handler##_tm_body(void);                                                \
    void handler(void);                                                                 \
    void handler(void)                                                                  \
    {                                                                                   \
        uint32_t tm_depth_ = tm_freertos_isr_enter();                                   \
        handler##_tm_body();                                                            \
        tm_freertos_isr_exit_to(tm_depth_);                                             \
    }                                                                                   \
    static void handler##_tm_body(void)

#ifdef __cplusplus
}
#endif

/* FreeRTOS's trace macros. They expand inside tasks.c, queue.c and timers.c, where the
 * TCB and queue fields are visible. */
#define traceISR_ENTER() (void)tm_freertos_isr_enter()
#define traceISR_EXIT() tm_freertos_isr_exit()
#define traceISR_EXIT_TO_SCHEDULER() tm_freertos_isr_exit()

/* uxTaskNumber (configUSE_TRACE_FACILITY) is "for use by third party trace code": it
 * keeps the block stamp of the task's last THREAD record (FORMAT.md 8.4.1). */
#define traceTASK_SWITCHED_IN()                                                         \
    do {                                                                                \
        uint32_t tm_stamp_ = (uint32_t)pxCurrentTCB->uxTaskNumber;                      \
        tm_freertos_task_switched_in((void *)pxCurrentTCB, pxCurrentTCB->pcTaskName,    \
                                     (uint32_t)pxCurrentTCB->uxPriority, &tm_stamp_);   \
        pxCurrentTCB->uxTaskNumber = (UBaseType_t)tm_stamp_;                            \
    } while (0)
#define traceTASK_CREATE(pxNewTCB)                                                      \
    tm_freertos_task_create((void *)(pxNewTCB), (pxNewTCB)->pcTaskName,                 \
                            (uint32_t)(pxNewTCB)->uxPriority)
#define traceTASK_DELETE(pxTaskToDelete)                                                \
    tm_freertos_object(TM_FREERTOS_EV_TASK_DELETE, (pxTaskToDelete))

#define traceQUEUE_CREATE(pxNewQueue)                                                   \
    tm_freertos_object_u8(TM_FREERTOS_EV_QUEUE_CREATE, (pxNewQueue),                    \
                          (uint32_t)(pxNewQueue)->ucQueueType)
#define traceQUEUE_SEND(pxQueue) tm_freertos_object(TM_FREERTOS_EV_QUEUE_SEND, (pxQueue))
#define traceQUEUE_SEND_FROM_ISR(pxQueue)                                               \
    tm_freertos_object(TM_FREERTOS_EV_QUEUE_SEND_FROM_ISR, (pxQueue))
#define traceQUEUE_RECEIVE(pxQueue)                                                     \
    tm_freertos_object(TM_FREERTOS_EV_QUEUE_RECEIVE, (pxQueue))
#define traceQUEUE_RECEIVE_FROM_ISR(pxQueue)                                            \
    tm_freertos_object(TM_FREERTOS_EV_QUEUE_RECEIVE_FROM_ISR, (pxQueue))
#define traceBLOCKING_ON_QUEUE_SEND(pxQueue)                                            \
    tm_freertos_object(TM_FREERTOS_EV_QUEUE_BLOCK_ON_SEND, (pxQueue))
#define traceBLOCKING_ON_QUEUE_RECEIVE(pxQueue)                                         \
    tm_freertos_object(TM_FREERTOS_EV_QUEUE_BLOCK_ON_RECEIVE, (pxQueue))
#define traceQUEUE_SEND_FAILED(pxQueue)                                                 \
    tm_freertos_object(TM_FREERTOS_EV_QUEUE_SEND_FAILED, (pxQueue))
#define traceQUEUE_RECEIVE_FAILED(pxQueue)                                              \
    tm_freertos_object(TM_FREERTOS_EV_QUEUE_RECEIVE_FAILED, (pxQueue))
#define traceQUEUE_DELETE(pxQueue)                                                      \
    tm_freertos_object(TM_FREERTOS_EV_QUEUE_DELETE, (pxQueue))

#define traceTASK_DELAY() tm_freertos_value(TM_FREERTOS_EV_TASK_DELAY, 0u)
#define traceTASK_DELAY_UNTIL(x) tm_freertos_value(TM_FREERTOS_EV_TASK_DELAY_UNTIL, (uint32_t)(x))
#define traceTASK_NOTIFY(uxIndexToNotify)                                               \
    tm_freertos_object_u8(TM_FREERTOS_EV_TASK_NOTIFY, pxTCB, (uint32_t)(uxIndexToNotify))
#define traceTASK_NOTIFY_FROM_ISR(uxIndexToNotify)                                      \
    tm_freertos_object_u8(TM_FREERTOS_EV_TASK_NOTIFY_FROM_ISR, pxTCB,                   \
                          (uint32_t)(uxIndexToNotify))
#define traceTASK_NOTIFY_GIVE_FROM_ISR(uxIndexToNotify)                                 \
    tm_freertos_object_u8(TM_FREERTOS_EV_TASK_NOTIFY_GIVE_FROM_ISR, pxTCB,              \
                          (uint32_t)(uxIndexToNotify))
#define traceTASK_NOTIFY_WAIT(uxIndexToWait)                                            \
    tm_freertos_index(TM_FREERTOS_EV_TASK_NOTIFY_WAIT, (uint32_t)(uxIndexToWait))
#define traceTASK_NOTIFY_TAKE(uxIndexToWait)                                            \
    tm_freertos_index(TM_FREERTOS_EV_TASK_NOTIFY_TAKE, (uint32_t)(uxIndexToWait))

#define traceTIMER_CREATE(pxNewTimer)                                                   \
    tm_freertos_object(TM_FREERTOS_EV_TIMER_CREATE, (pxNewTimer))
#define traceTIMER_COMMAND_SEND(xTimer, xMessageID, xMessageValueValue, xReturn)        \
    tm_freertos_object_u8(TM_FREERTOS_EV_TIMER_COMMAND, (xTimer), (uint32_t)(xMessageID))
#define traceTIMER_EXPIRED(pxTimer)                                                     \
    tm_freertos_object(TM_FREERTOS_EV_TIMER_EXPIRED, (pxTimer))

#if TM_FREERTOS_TICK_RECORDS
#define traceTASK_INCREMENT_TICK(xTickCount)                                            \
    tm_freertos_value(TM_FREERTOS_EV_TICK, (uint32_t)(xTickCount) + 1u)
#endif

#endif /* __ASSEMBLER__ */
#endif /* TRACEMARK_FREERTOS_H */
