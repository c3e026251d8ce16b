/* Entry of the root task on x86_64: the kernel passes the boot info pointer in rdi. */
    .section .text._start
    .global _start
_start:
    movq root_stack_top(%rip), %rsp
    call root_main
1:  hlt
    jmp 1b
