/*
 * tracemark FreeRTOS example (QEMU mps2-an385, Cortex-M3): five tasks of different
 * priorities, a producer/consumer queue, a semaphore given from a CMSDK timer interrupt
 * with its own handler, task delays, task notifications and a software timer. It keeps
 * its own truth, prints it (items sent and received, its tick count, its timer
 * interrupts, FreeRTOS's run-time statistics per task on the trace's own counter),
 * dumps the trace ring over the UART in a critical section, and exits through
 * semihosting. check.sh compares the two.
 */
#include <stdint.h>

#include "FreeRTOS.h"
#include "queue.h"
#include "semphr.h"
#include "task.h"
#include "timers.h"

#ifndef TM_DUMP
#define TM_DUMP 1
#endif
#if !defined(TM_TRACE) || TM_TRACE
#define TRACED 1
#else
#define TRACED 0
#define TM_FREERTOS_ISR(handler) void handler(void)
#endif

#define N_ITEMS 300u
#define N_TIMER_IRQS 40u

/* ---- board: UART0, CMSDK timers 0 (user interrupt) and 1 (the clock) ---- */
#define REG(a) (*(volatile uint32_t *)(a))
#define UART0 0x40004000u
#define TIMER0 0x40000000u
#define TIMER1 0x40001000u
#define NVIC_ISER0 0xE000E100u
#define NVIC_IPR 0xE000E400u

static void uart_init(void)
{
    REG(UART0 + 0x10) = 16; /* BAUDDIV */
    REG(UART0 + 0x08) = 1;  /* TX enable */
}

static void uart_putc(char c)
{
    while (REG(UART0 + 0x04) & 1u) {
    }
    REG(UART0) = (uint32_t)(uint8_t)c;
}

static void uart_puts(const char *s)
{
    while (*s) {
        uart_putc(*s++);
    }
}

static void uart_dec(uint32_t v)
{
    char b[11];
    int n = 0;
    do {
        b[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (n) {
        uart_putc(b[--n]);
    }
}

static void uart_hex(uint32_t v)
{
    uart_puts("0x");
    for (int i = 28; i >= 0; i -= 4) {
        uart_putc("0123456789abcdef"[(v >> i) & 0xfu]);
    }
}

static void semihosting_exit(int code)
{
    /* SYS_EXIT_EXTENDED would need a block; SYS_EXIT with ApplicationExit. */
    register uint32_t r0 __asm("r0") = 0x18;
    register uint32_t r1 __asm("r1") = code == 0 ? 0x20026u : 0x20024u;
    __asm volatile("bkpt 0xab" : : "r"(r0), "r"(r1) : "memory");
    for (;;) {
    }
}

void demo_assert_failed(const char *file, int line)
{
    __asm volatile("cpsid i");
    uart_puts("ASSERT ");
    uart_puts(file);
    uart_putc(':');
    uart_dec((uint32_t)line);
    uart_putc('\n');
    semihosting_exit(1);
}

/* Timer 1 runs free from 0xffffffff down at 25 MHz: the trace clock and FreeRTOS's
 * run-time counter (32 bits: 171 s before it wraps, far more than the run). */
void demo_clock_start(void)
{
    if (REG(TIMER1) & 1u) {
        return;
    }
    REG(TIMER1 + 0x08) = 0xffffffffu;
    REG(TIMER1 + 0x04) = 0xffffffffu;
    REG(TIMER1) = 1u;
}

uint32_t demo_clock32(void)
{
    return 0xffffffffu - REG(TIMER1 + 0x04);
}

#if TRACED
static uint64_t demo_clock(void)
{
    return demo_clock32();
}
#endif

/* ---- the truth ---- */
static volatile uint32_t sent, received, timer_irqs, sem_taken, notified, soft_timer_runs;
static QueueHandle_t queue;
static SemaphoreHandle_t irq_sem;
static TaskHandle_t reporter;

/* The user interrupt: CMSDK timer 0, its own handler, traced with the one-line macro. */
TM_FREERTOS_ISR(TIMER0_Handler)
{
    BaseType_t woken = pdFALSE;
    REG(TIMER0 + 0x0c) = 1u; /* clear */
    timer_irqs++;
    if (timer_irqs >= N_TIMER_IRQS) {
        REG(TIMER0) = 0u; /* stop */
    }
    xSemaphoreGiveFromISR(irq_sem, &woken);
    portYIELD_FROM_ISR(woken);
}

static void producer(void *arg)
{
    (void)arg;
    for (uint32_t i = 0; i < N_ITEMS; i++) {
        xQueueSend(queue, &i, portMAX_DELAY);
        sent++;
        if (i % 16u == 15u) {
            vTaskDelay(1);
        }
    }
    for (;;) {
        vTaskDelay(1000);
    }
}

static void consumer(void *arg)
{
    (void)arg;
    uint32_t v;
    for (;;) {
        xQueueReceive(queue, &v, portMAX_DELAY);
        received++;
        for (volatile uint32_t spin = 0; spin < 200u; spin++) {
        }
        if (received == N_ITEMS) {
            xTaskNotifyGive(reporter);
            notified++;
        }
    }
}

static void irq_waiter(void *arg)
{
    (void)arg;
    for (;;) {
        if (xSemaphoreTake(irq_sem, portMAX_DELAY) == pdTRUE) {
            sem_taken++;
        }
    }
}

static void soft_timer(TimerHandle_t t)
{
    (void)t;
    soft_timer_runs++;
}

#if TRACED && TM_DUMP
static int uart_sink(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    for (size_t i = 0; i < len; i++) {
        uart_putc((char)data[i]);
    }
    return 0;
}
#endif

#define MAX_TASKS 8
static TaskStatus_t status[MAX_TASKS];

static void report(void *arg)
{
    (void)arg;
    ulTaskNotifyTake(pdTRUE, portMAX_DELAY);
    while (timer_irqs < N_TIMER_IRQS || sem_taken < N_TIMER_IRQS) {
        vTaskDelay(2);
    }
    vTaskDelay(3);
    /* Everything below runs with the tick and the timer masked: the truth and the
     * trace end at the same moment, and the dump cannot race the tick. */
    taskENTER_CRITICAL();
    configRUN_TIME_COUNTER_TYPE total = 0;
    UBaseType_t n = uxTaskGetSystemState(status, MAX_TASKS, &total);
    uint32_t ticks = (uint32_t)xTaskGetTickCount();
    uint32_t now = demo_clock32();
    uart_puts("TRUTH sent=");
    uart_dec(sent);
    uart_puts(" received=");
    uart_dec(received);
    uart_puts(" ticks=");
    uart_dec(ticks);
    uart_puts(" timer_irqs=");
    uart_dec(timer_irqs);
    uart_puts(" sem_taken=");
    uart_dec(sem_taken);
    uart_puts(" soft_timer_runs=");
    uart_dec(soft_timer_runs);
    uart_puts(" queue=");
    uart_hex((uint32_t)(uintptr_t)queue);
    uart_puts(" clock=");
    uart_dec(now);
    uart_putc('\n');
    for (UBaseType_t i = 0; i < n; i++) {
        uart_puts("TASK tcb=");
        uart_hex((uint32_t)(uintptr_t)status[i].xHandle);
        uart_puts(" prio=");
        uart_dec((uint32_t)status[i].uxCurrentPriority);
        uart_puts(" runtime=");
        uart_dec((uint32_t)status[i].ulRunTimeCounter);
        uart_puts(" running=");
        uart_dec(status[i].eCurrentState == eRunning);
        uart_puts(" name=");
        uart_puts(status[i].pcTaskName);
        uart_putc('\n');
    }
#if TRACED && TM_DUMP
    tm_dump_uart(TM_FREERTOS_CPU, 1, uart_sink, 0);
#endif
    /* Cost of a task-switch record, after the dump (so it is not in the trace): with
     * QEMU's -icount shift=0 an instruction takes 1 ns, 40 per 25 MHz clock tick. */
#if TRACED
    {
        uint32_t stamp = 0;
        static const char name[] = "bench";
        uint32_t t0 = demo_clock32();
        for (int i = 0; i < 1000; i++) {
            tm_freertos_task_switched_in((void *)0x20001000, name, 1, &stamp);
        }
        uint32_t t1 = demo_clock32();
        uart_puts("COST switch_record_clock_ticks_per_1000=");
        uart_dec(t1 - t0);
        uart_putc('\n');
    }
#endif
    uart_puts("END\n");
    semihosting_exit(0);
}

#if TRACED
static uint64_t ring[(64 * 1024) / 8];
#endif

int main(void)
{
    uart_init();
    demo_clock_start();
#if TRACED
    if (tm_freertos_init(ring, sizeof ring, demo_clock, 25000000u, TM_MODE_DROP) != TM_OK) {
        uart_puts("tm_freertos_init failed\n");
        semihosting_exit(1);
    }
#endif
    queue = xQueueCreate(8, sizeof(uint32_t));
    irq_sem = xSemaphoreCreateBinary();
    configASSERT(queue && irq_sem);
    xTaskCreate(report, "reporter", 512, 0, 1, &reporter);
    xTaskCreate(producer, "producer", 256, 0, 2, 0);
    xTaskCreate(consumer, "consumer", 256, 0, 3, 0);
    xTaskCreate(irq_waiter, "irq_waiter", 256, 0, 4, 0);
    TimerHandle_t t = xTimerCreate("soft", 5, pdTRUE, 0, soft_timer);
    configASSERT(t);
    xTimerStart(t, 0);
    /* Timer 0: an interrupt every 1.2 ms (30000 ticks of 25 MHz), priority below
     * configMAX_SYSCALL_INTERRUPT_PRIORITY so that it may call FromISR APIs. */
    REG(NVIC_IPR + 8) = 0xe0u;
    REG(NVIC_ISER0) = 1u << 8;
    REG(TIMER0 + 0x08) = 30000u;
    REG(TIMER0 + 0x04) = 30000u;
    REG(TIMER0) = 1u | 8u; /* enable, interrupt enable */
    vTaskStartScheduler();
    uart_puts("scheduler returned\n");
    semihosting_exit(1);
}
