/* Entry of the root task on aarch64: the kernel passes the boot info pointer in x0. */
    .section .text._start
    .global _sel4_start
    .global _start
_sel4_start:
_start:
    adrp x1, root_stack_top
    ldr x1, [x1, :lo12:root_stack_top]
    mov sp, x1
    bl root_main
1:  wfi
    b 1b
