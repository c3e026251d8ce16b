/*
 * Replays a list of single-owner calls (tests/inline_pair.rs writes it) into CPU 0's
 * ring, with the kernel pairs written through tracemark_inline.h's inline writer with its
 * fallback spelled out, counting what it wrote itself (`inline`), through its
 * tm_owned_inline_kernel_pair (`wrapper`, which cannot count them: 0), or by the library
 * alone (`library`), then writes the ring's memory to a file and prints the counts.
 *
 * Usage: inline_pair OPS OUT inline|wrapper|library overwrite|drop
 * OPS, one call per line (decimal):
 *   P entry_ts word next_thread exit_ts   a held entry and its exit (a kernel pair)
 *   E entry_ts                            an entry written at once (tm_owned_kernel_entry)
 *   I irq ts                              an interrupt inside it
 *   X word next_thread exit_ts            its exit (tm_owned_kernel_exit)
 *   S thread ts                           a thread switch
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tracemark_inline.h"

/* 4 blocks of 256 bytes: pairs cross blocks and laps often. */
static uint64_t ring[(TM_RING_HEADER_LEN + 4 * 256) / 8];
static uint64_t now;

static uint64_t clock_fn(void) { return now; }

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: inline_pair OPS OUT inline|wrapper|library overwrite|drop\n");
        return 2;
    }
    int wrapper = strcmp(argv[3], "wrapper") == 0;
    int use_inline = wrapper || strcmp(argv[3], "inline") == 0;
    tm_config config = {
        .block_size = 256,
        .mode = strcmp(argv[4], "drop") == 0 ? TM_MODE_DROP : TM_MODE_OVERWRITE,
        .clock = clock_fn,
        .clock_hz = 1000000000,
        .producer_id = 7,
        .syscall_abi = TM_ABI_RAW,
    };
    if (tm_init(0, ring, sizeof ring, &config) != TM_OK) {
        fprintf(stderr, "tm_init failed\n");
        return 1;
    }
    const tm_owned *t = tm_owned_ring(0);
    tm_owned_inline f;
    if (t == NULL || tm_owned_inline_sync(t, &f) != TM_OK) {
        fprintf(stderr, "no owned handle\n");
        return 1;
    }
    FILE *ops = fopen(argv[1], "r");
    if (ops == NULL) {
        perror(argv[1]);
        return 1;
    }
    char op;
    uint64_t a, b, c, d;
    unsigned long pairs = 0, inlined = 0, dropped = 0;
    int r = TM_OK;
    while (fscanf(ops, " %c", &op) == 1) {
        switch (op) {
        case 'P':
            if (fscanf(ops, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, &a, &b, &c, &d) != 4) {
                return 3;
            }
            now = d;
            pairs++;
            if (wrapper) {
                r = tm_owned_inline_kernel_pair(t, &f, a, (uint32_t)b, c, d);
            } else if (use_inline) {
                /* As tm_owned_inline_kernel_pair, counting the inline writes. */
                if (c == 0 && tm_owned_inline_pair(&f, a, (uint32_t)b, d)) {
                    inlined++;
                    r = TM_OK;
                } else {
                    r = tm_owned_inline_fallback(t, &f, a, (uint32_t)b, c, d);
                }
            } else {
                r = tm_owned_kernel_pair(t, a, (uint32_t)b, c, d);
            }
            break;
        case 'E':
            if (fscanf(ops, "%" SCNu64, &a) != 1) {
                return 3;
            }
            now = a;
            r = tm_owned_kernel_entry(t, a);
            break;
        case 'I':
            if (fscanf(ops, "%" SCNu64 " %" SCNu64, &a, &b) != 2) {
                return 3;
            }
            now = b;
            r = tm_owned_interrupt(t, (uint32_t)a, b);
            break;
        case 'X':
            if (fscanf(ops, "%" SCNu64 " %" SCNu64 " %" SCNu64, &a, &b, &c) != 3) {
                return 3;
            }
            now = c;
            r = tm_owned_kernel_exit(t, (uint32_t)a, b, c);
            /* As seL4's exit hook: the state taken again after the cold path, so that the
             * next pair is inline. After a switch (S) it is not: the next pair finds
             * write_pos moved and goes to the library. */
            if (use_inline && tm_owned_inline_sync(t, &f) != TM_OK) {
                return 1;
            }
            break;
        case 'S':
            if (fscanf(ops, "%" SCNu64 " %" SCNu64, &a, &b) != 2) {
                return 3;
            }
            now = b;
            r = tm_owned_thread_switch(t, a, b);
            break;
        default:
            fprintf(stderr, "bad op %c\n", op);
            return 3;
        }
        if (r == TM_DROPPED) {
            dropped++;
        } else if (r != TM_OK) {
            fprintf(stderr, "op %c returned %d\n", op, r);
            return 1;
        }
    }
    fclose(ops);
    FILE *out = fopen(argv[2], "wb");
    if (out == NULL || fwrite(ring, 1, sizeof ring, out) != sizeof ring || fclose(out) != 0) {
        perror(argv[2]);
        return 1;
    }
    printf("pairs %lu inline %lu dropped %lu\n", pairs, inlined, dropped);
    return 0;
}
