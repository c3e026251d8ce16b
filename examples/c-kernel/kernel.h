/* Shared declarations of the c-kernel example (see kernel.c). */
#ifndef C_KERNEL_H
#define C_KERNEL_H

#include <stdint.h>

#define NCPUS 2

/* The CPU the calling thread is (each CPU is a thread; read by the signal handler and by
 * the -finstrument-functions hooks through tm_set_cpu_fn). */
extern _Thread_local uint32_t t_cpu;
/* Calls of instrumented functions, per CPU (each makes one FENTRY and one FEXIT). */
extern uint64_t g_fcalls[NCPUS];

/* Advances the calling CPU's clock by `ticks`. */
void clock_advance(uint64_t ticks);
/* A nested interrupt taken synchronously inside a syscall (kernel entry, IRQ, exit). */
void nested_interrupt(uint32_t cpu, uint32_t irq, uint64_t ticks);

/* instrumented.c, compiled with -finstrument-functions. */
uint32_t handle_syscall(uint32_t cpu, uint32_t i);
/* The addresses of the instrumented functions; returns how many. */
int instrumented_functions(const void **out, int max);

#endif
