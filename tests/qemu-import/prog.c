/*
 * A small static ARM Linux program for the `tracemark import qemu` tests, built twice:
 * with -marm and with -mthumb (glibc itself is Thumb-2 on Debian armhf).
 *
 * - raw_getpid: R7 is set and `svc` issued in the same translation block, so the
 *   block's own entry state does not show the number (only the next dump does);
 * - raw_gettid: the number is copied into R7 from another register;
 * - raw_exit_group (ARM build): the last syscall, set by `mov r7, #248` with no
 *   register dump after it; the Thumb build returns from main and exits through
 *   glibc's __libc_do_syscall (`mov r7, ip`);
 * - second_fn runs before first_fn, never_called never runs: the order file shows it.
 */
#include <unistd.h>
#include <sys/syscall.h>

__attribute__((noinline)) long raw_getpid(void)
{
    register long r0 asm("r0");
    asm volatile("push {r7}\n\t"
                 "mov r7, #20\n\t"
                 "svc #0\n\t"
                 "pop {r7}"
                 : "=r"(r0)
                 :
                 : "memory");
    return r0;
}

__attribute__((noinline)) long raw_gettid(void)
{
    register long r0 asm("r0");
    register long nr asm("r4") = 224; /* gettid */
    asm volatile("push {r7}\n\t"
                 "mov r7, %1\n\t"
                 "svc #0\n\t"
                 "pop {r7}"
                 : "=r"(r0)
                 : "r"(nr)
                 : "memory");
    return r0;
}

__attribute__((noinline, noreturn)) void raw_exit_group(long code)
{
    register long r0 asm("r0") = code;
    asm volatile("mov r7, #248\n\t"
                 "svc #0"
                 :
                 : "r"(r0)
                 : "memory");
    __builtin_unreachable();
}

__attribute__((noinline)) void first_fn(void)
{
    write(1, "first\n", 6);
}

__attribute__((noinline)) void second_fn(void)
{
    write(1, "second\n", 7);
}

__attribute__((noinline)) void never_called(void)
{
    write(1, "never\n", 6);
}

void (*volatile keep)(void) = never_called;

int main(int argc, char **argv)
{
    (void)argv;
    second_fn();
    first_fn();
    for (int i = 0; i < 3; i++)
        raw_getpid();
    raw_gettid();
    syscall(SYS_getppid);
    if (argc > 5)
        keep();
#ifdef __thumb__
    return 0;
#else
    raw_exit_group(0);
#endif
}
