/*
 * Benchmark workload for `tracemark import qemu` (scripts/bench-import.sh): a loop of
 * N iterations (argv[1]) that calls a few small functions and makes a syscall every
 * 16 iterations, so that a `-d exec,cpu,in_asm,nochain` log grows by about 3 KB per
 * iteration with the block/dump/syscall mix of a real program.
 */
#include <stdlib.h>
#include <unistd.h>

__attribute__((noinline)) unsigned mix(unsigned x)
{
    return x * 2654435761u ^ (x >> 13);
}

__attribute__((noinline)) unsigned step(unsigned x, int i)
{
    return mix(x + (unsigned)i) + (i & 3 ? 1 : mix(x));
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    unsigned x = 1;
    for (int i = 0; i < n; i++) {
        x = step(x, i);
        if ((i & 15) == 0)
            x += (unsigned)getppid();
    }
    return (int)(x & 1);
}
