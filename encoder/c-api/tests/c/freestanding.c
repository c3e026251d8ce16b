/*
 * A kernel translation unit built as seL4 builds its kernel: -ffreestanding -nostdinc,
 * with its own exact-width types and no libc headers (issue 20, point 21). It includes
 * tracemark.h with TM_NO_STDINC and uses the entry-word helpers (point 19) and the
 * seL4 bits helper, and the inline pair writer of tracemark_inline.h; tests/entry_word.rs
 * links it with a hosted driver (entry_word.c).
 */
typedef unsigned char uint8_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
/* seL4's own spellings, which the header must not disturb. */
enum _bool { false = 0, true = 1 };
typedef unsigned long word_t;

#define TM_NO_STDINC
#include "tracemark.h"
/* Included twice, as a kernel's headers do: the include guards hold. */
#include "tracemark.h"
/* The generated inline pair writer (issue 15), as seL4's tracemark.c includes it. */
#include "tracemark_inline.h"
#include "tracemark_inline.h"

#if defined(bool) || defined(size_t)
#error "tracemark.h leaked its bool/size_t macros"
#endif

int fs_word_syscall(uint32_t syscall, uint32_t cap_type, int fastpath, uint32_t label,
                    uint32_t *word)
{
    return tm_entry_word_syscall(syscall, cap_type, fastpath != 0, label, word);
}

int fs_word_other(uint32_t path, uint32_t core, uint32_t value, uint32_t *word)
{
    return tm_entry_word_other(path, core, value, word);
}

uint64_t fs_sel4_bits(const void *entry, word_t size)
{
    return tm_sel4_entry_bits(entry, size);
}

/* A call through the declarations, as the kernel makes it. */
int fs_record(uint32_t cpu, uint32_t word)
{
    int rc = tm_kernel_entry_deferred(cpu);
    if (rc < 0) {
        return rc;
    }
    return tm_kernel_entry_info(cpu, word);
}

/* The inline pair writer, as seL4's exit hook calls it. */
int fs_inline_pair(const tm_owned *t, tm_owned_inline *f, uint64_t entry_ts, uint32_t word,
                   uint64_t exit_ts)
{
    return tm_owned_inline_kernel_pair(t, f, entry_ts, word, 0, exit_ts);
}
