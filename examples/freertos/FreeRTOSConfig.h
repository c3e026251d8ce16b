/* FreeRTOS configuration of the tracemark FreeRTOS example (QEMU mps2-an385). */
#ifndef FREERTOS_CONFIG_H
#define FREERTOS_CONFIG_H

#ifndef __ASSEMBLER__
#include <stdint.h>
extern void demo_assert_failed(const char *file, int line);
extern uint32_t demo_clock32(void);
extern void demo_clock_start(void);
#endif

#define configCPU_CLOCK_HZ 25000000UL
#define configTICK_RATE_HZ 1000
#define configUSE_PREEMPTION 1
#define configUSE_TIME_SLICING 1
#define configUSE_PORT_OPTIMISED_TASK_SELECTION 0
#define configMAX_PRIORITIES 8
#define configMINIMAL_STACK_SIZE 256
#define configMAX_TASK_NAME_LEN 16
#define configTICK_TYPE_WIDTH_IN_BITS TICK_TYPE_WIDTH_32_BITS
#define configIDLE_SHOULD_YIELD 1
#define configUSE_TASK_NOTIFICATIONS 1
#define configUSE_MUTEXES 1
#define configUSE_COUNTING_SEMAPHORES 1
#define configQUEUE_REGISTRY_SIZE 0
#define configSUPPORT_DYNAMIC_ALLOCATION 1
#define configSUPPORT_STATIC_ALLOCATION 0
#define configTOTAL_HEAP_SIZE (48 * 1024)
#define configUSE_IDLE_HOOK 0
#define configUSE_TICK_HOOK 0
#define configCHECK_FOR_STACK_OVERFLOW 0
#define configUSE_MALLOC_FAILED_HOOK 0
#define configUSE_TIMERS 1
#define configTIMER_TASK_PRIORITY 5
#define configTIMER_QUEUE_LENGTH 8
#define configTIMER_TASK_STACK_DEPTH 256
#define configKERNEL_INTERRUPT_PRIORITY 255
#define configMAX_SYSCALL_INTERRUPT_PRIORITY 32
#define INCLUDE_vTaskDelay 1
#define INCLUDE_vTaskDelayUntil 1
#define INCLUDE_xTaskGetSchedulerState 1
#define INCLUDE_vTaskDelete 1
#define configUSE_TRACE_FACILITY 1
#define configUSE_STATS_FORMATTING_FUNCTIONS 0

/* Run-time statistics on the same counter as the trace (CMSDK timer 1, 25 MHz). */
#define configGENERATE_RUN_TIME_STATS 1
#define configRUN_TIME_COUNTER_TYPE uint32_t
#define portCONFIGURE_TIMER_FOR_RUN_TIME_STATS() demo_clock_start()
#define portGET_RUN_TIME_COUNTER_VALUE() demo_clock32()

#define configASSERT(x)                                                                 \
    do {                                                                                \
        if (!(x)) demo_assert_failed(__FILE__, __LINE__);                               \
    } while (0)

/* The one line that traces FreeRTOS (TM_TRACE=0 builds the untraced image for the
 * cost comparison). */
#if !defined(TM_TRACE) || TM_TRACE
#include "tracemark_freertos.h"
#endif

#endif
