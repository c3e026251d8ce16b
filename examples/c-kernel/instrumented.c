/*
 * The part of the c-kernel example compiled with -finstrument-functions: every function
 * here records a function entry and exit through tracemark's __cyg_profile_func_enter/exit
 * hooks, with no tracing code in it. Each counts its own calls so the test can check
 * the trace.
 */
#include "kernel.h"

#define COUNT() (g_fcalls[t_cpu]++)

static uint32_t lookup_cap(uint32_t i)
{
    COUNT();
    clock_advance(2 + (i % 3));
    return (i * 2654435761u) >> 27;
}

static uint32_t decode_invocation(uint32_t cap, uint32_t i)
{
    COUNT();
    clock_advance(1);
    return (cap ^ i) & 0x7ffff;
}

static void do_invoke(uint32_t cpu, uint32_t i)
{
    COUNT();
    clock_advance(5);
    if (i % 5 == 0) {
        /* A device interrupt arrives while the kernel handles the syscall. */
        nested_interrupt(cpu, 27, 4 + (i % 11));
    }
    clock_advance(3);
}

uint32_t handle_syscall(uint32_t cpu, uint32_t i)
{
    COUNT();
    uint32_t cap = lookup_cap(i);
    uint32_t label = decode_invocation(cap, i);
    if (i % 2 == 0) {
        do_invoke(cpu, i);
    }
    return label;
}

__attribute__((no_instrument_function)) int instrumented_functions(const void **out, int max)
{
    const void *fns[] = {(const void *)lookup_cap, (const void *)decode_invocation,
                         (const void *)do_invoke, (const void *)handle_syscall};
    int n = 0;
    for (; n < 4 && n < max; n++) {
        out[n] = fns[n];
    }
    return n;
}
