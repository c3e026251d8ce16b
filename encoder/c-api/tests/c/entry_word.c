/*
 * Hosted driver of freestanding.c: prints the entry words its helpers build for a
 * spread of fields (in range and out of it), one line per call:
 *   S syscall cap_type fastpath label rc word
 *   O path core value rc word
 *   B bits            (tm_sel4_entry_bits of 9 known bytes, sizes 5 and 9)
 * then records one deferred entry through freestanding.c and dumps the ring to argv[1].
 */
#include <stdint.h>
#include <stdio.h>

#include "tracemark.h"

int fs_word_syscall(uint32_t, uint32_t, int, uint32_t, uint32_t *);
int fs_word_other(uint32_t, uint32_t, uint32_t, uint32_t *);
uint64_t fs_sel4_bits(const void *, unsigned long);
int fs_record(uint32_t, uint32_t);

static uint64_t ticks;
static uint64_t clock_fn(void) { return ticks += 5; }

static int write_file(void *ctx, const uint8_t *data, size_t len)
{
    return fwrite(data, 1, len, (FILE *)ctx) == len ? 0 : 1;
}

static uint64_t ring[(192 + 4 * 256) / 8];

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    static const uint32_t syscalls[] = {0, 1, 7, 15, 16};
    static const uint32_t caps[] = {0, 4, 31, 32};
    static const uint32_t labels[] = {0, 1, 42, 0x7ffff, 0x80000};
    for (unsigned a = 0; a < sizeof syscalls / sizeof *syscalls; a++)
        for (unsigned b = 0; b < sizeof caps / sizeof *caps; b++)
            for (int f = 0; f < 2; f++)
                for (unsigned c = 0; c < sizeof labels / sizeof *labels; c++) {
                    uint32_t w = 0;
                    int rc = fs_word_syscall(syscalls[a], caps[b], f, labels[c], &w);
                    printf("S %u %u %d %u %d %u\n", syscalls[a], caps[b], f, labels[c], rc, w);
                }
    static const uint32_t values[] = {0, 27, 0x3ffffff, 0x4000000};
    for (uint32_t path = 0; path < 9; path++)
        for (uint32_t core = 0; core < 9; core += 4)
            for (unsigned v = 0; v < sizeof values / sizeof *values; v++) {
                uint32_t w = 0;
                int rc = fs_word_other(path, core, values[v], &w);
                printf("O %u %u %u %d %u\n", path, core, values[v], rc, w);
            }
    static const uint8_t bytes[9] = {0x06, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
    printf("B %llu\n", (unsigned long long)fs_sel4_bits(bytes, 5));
    printf("B %llu\n", (unsigned long long)fs_sel4_bits(bytes, 9));

    tm_config config = {.block_size = 256, .mode = TM_MODE_DROP, .clock = clock_fn,
                        .clock_hz = 1000000, .producer_id = 1, .syscall_abi = TM_ABI_SEL4};
    if (tm_init(0, ring, sizeof ring, &config) != TM_OK) return 3;
    uint32_t word;
    if (tm_entry_word_syscall(1, 12, false, 3, &word) != TM_OK) return 4;
    int rc = fs_record(0, word);
    printf("R %d\n", rc);
    if (tm_kernel_exit(0) != TM_OK) return 5;
    FILE *f = fopen(argv[1], "wb");
    if (!f) return 6;
    rc = tm_dump(0, write_file, f);
    fclose(f);
    return rc == TM_OK ? 0 : 7;
}
