#!/usr/bin/env bash
# The C library as shipped (issue 7, point 13): builds the lean static library for the
# host and for Cortex-M3 with encoder/c-api/build-lean.sh, checks that only the C ABI's
# symbols are global (the functions tracemark.h declares, and the two
# -finstrument-functions hooks), links a small C program against it with
# -Wl,--gc-sections and decodes what it recorded; then the warm-reset recovery of the
# QEMU firmware (examples/firmware-qemu/check-reset.sh, point 12). Installs llvm
# (llvm-objcopy, llvm-ar) if missing. The C-ABI behaviour tests themselves are cargo tests of tracemark-c
# (abi_checks, instrumented_clock, sel4_entry, c_kernel) run by `cargo test --workspace`.
#
# Usage: scripts/test-capi.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
. "$root/scripts/lib.sh"

need_pkg llvm-objcopy llvm
need_pkg llvm-ar llvm
rustup target add thumbv7m-none-eabi >/dev/null

globals() { # defined global or weak symbols of an archive, one per line
    readelf -sW "$1" | awk '($5 == "GLOBAL" || $5 == "WEAK") && $7 != "UND" { print $8 }' | sort -u
}
# What tracemark.h declares (minus its static inline helper), and the hooks: the name
# before the `(`, not a type in the return type (`const tm_owned *tm_owned_ring(`).
want="$( (grep -oE '^[a-z0-9_ ]+[ *]tm_[a-z0-9_]+\(' encoder/include/tracemark.h |
    grep -v 'static inline' | grep -oE 'tm_[a-z0-9_]+\($' | tr -d '('
    printf '%s\n' __cyg_profile_func_enter __cyg_profile_func_exit) | sort -u)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for target in host thumbv7m-none-eabi; do
    if [ "$target" = host ]; then
        lib="$(encoder/c-api/build-lean.sh)"
    else
        lib="$(encoder/c-api/build-lean.sh --target "$target" --features panic-handler)"
    fi
    got="$(globals "$lib")"
    if [ "$got" != "$want" ]; then
        echo "test-capi.sh: $target: global symbols of $lib differ from the C ABI:" >&2
        diff <(echo "$want") <(echo "$got") >&2 || true
        exit 1
    fi
    if readelf -SW "$lib" | grep -qE '\.debug_|\.llvmbc'; then
        echo "test-capi.sh: $target: $lib still has debug info or bitcode" >&2
        exit 1
    fi
    echo "test-capi.sh: $target: $(stat -c %s "$lib") bytes, $(echo "$got" | wc -l) global symbols"
done

lib="$(encoder/c-api/build-lean.sh)"
cc -O2 -Wall -Wextra -Werror -I encoder/include encoder/c-api/tests/c/lean_link.c "$lib" \
    -Wl,--gc-sections -lpthread -ldl -lm -o "$work/lean_link"
"$work/lean_link" > "$work/ring.bin"
out="$("$(tracemark_bin)" decode "$work/ring.bin" --format csv)"
n="$(echo "$out" | tail -n +2 | wc -l)"
kinds="$(echo "$out" | tail -n +2 | cut -d, -f5 | tr '\n' ' ')"
if [ "$n" != 3 ] || [ "$kinds" != "KENTRY IRQ KEXIT " ]; then
    echo "test-capi.sh: the program linked against the lean library recorded: $out" >&2
    exit 1
fi
echo "test-capi.sh: a program linked with -Wl,--gc-sections records and decodes: ok"
# No panic machinery (issue 20, point 23): nothing the program calls can panic, so
# std's panic hook, backtrace printer and DWARF reader (about 270 KB) are dropped by
# --gc-sections. A slice index or a division the compiler cannot prove safe in code
# the C ABI reaches brings them back.
cc -O2 -Wall -Wextra -Werror -I encoder/include encoder/c-api/tests/c/lean_recover.c "$lib" \
    -Wl,--gc-sections -lpthread -ldl -lm -o "$work/lean_recover"
for prog in lean_link lean_recover; do
    if nm "$work/$prog" | grep -qiE 'panicking|backtrace|gimli'; then
        echo "test-capi.sh: $prog links Rust's panic machinery:" >&2
        nm "$work/$prog" | grep -iE 'panicking|backtrace|gimli' | head >&2
        exit 1
    fi
done
text="$(size "$work/lean_link" | awk 'NR == 2 { print $1 }')"
if [ "$text" -gt 65536 ]; then
    echo "test-capi.sh: the lean program has $text bytes of code (at most 64 KiB expected)" >&2
    exit 1
fi
echo "test-capi.sh: no panic machinery linked, $text bytes of code: ok"

# A ring kept across a warm reset of the Cortex-M firmware (SYSRESETREQ under QEMU).
examples/firmware-qemu/check-reset.sh
