#!/usr/bin/env bash
# Builds the C static library as shipped: lean (no debug info, the Rust side optimised
# as one unit with fat LTO so that only what the tm_* functions reach is kept) and with
# only the library's own symbols global (tm_*, and __cyg_profile_func_* with the default
# `cyg-profile` feature): Rust's and compiler-builtins' symbols become local, so they
# cannot clash with the program's.
#
# Usage: encoder/c-api/build-lean.sh [--target TRIPLE] [other cargo rustc args, e.g.
#        --features panic-handler]
# Prints the path of the library: TARGET_DIR/[TRIPLE/]PROFILE/lean/libtracemark_c.a
# Env:   TRACEMARK_C_PROFILE  the cargo profile (default: c-small, optimised for size, for
#        bare-metal triples `*-none*`; c-release, optimised for speed, for the others)
#
# How: `cargo rustc --profile PROFILE --crate-type staticlib` (the profiles are in the
# workspace Cargo.toml), then a post-link step with the tools rustup ships with rustc:
# `rust-lld -r --whole-archive` joins the archive's objects into one relocatable object
# (sections stay separate, so `-Wl,--gc-sections` still drops what a program does not
# use), `llvm-objcopy --strip-debug --keep-global-symbol=...` localises everything else,
# and `ar` packs it again. Works for every target (the tools are LLVM's).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
triple=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
        --target) triple="${args[i + 1]}" ;;
        --target=*) triple="${args[i]#--target=}" ;;
    esac
done

# Bare metal: flash is the scarce resource (issue 15, goal 2); opt-level "s" is a third
# smaller on thumbv7m for a few instructions more per record (BENCHMARKS.md, "Target
# cost (issue 15), third round: flash").
case "$triple" in
    *-none*) profile="${TRACEMARK_C_PROFILE:-c-small}" ;;
    *) profile="${TRACEMARK_C_PROFILE:-c-release}" ;;
esac

cargo rustc --quiet --manifest-path "$repo/Cargo.toml" --profile "$profile" -p tracemark-c \
    --crate-type staticlib "$@"

target_dir="${CARGO_TARGET_DIR:-$repo/target}"
dir="$target_dir/${triple:+$triple/}$profile"
host="$(rustc -vV | sed -n 's/^host: //p')"
tools="$(rustc --print sysroot)/lib/rustlib/$host/bin"
lld="$tools/rust-lld"
if [ ! -x "$lld" ]; then
    echo "build-lean.sh: $lld not found (it ships with rustc through rustup)" >&2
    exit 2
fi
# LLVM's objcopy and ar handle every target's ELF (Debian: apt-get install llvm).
objcopy="${OBJCOPY:-$(command -v llvm-objcopy || true)}"
ar_tool="${AR:-$(command -v llvm-ar || true)}"
if [ -z "$objcopy" ] || [ -z "$ar_tool" ]; then
    echo "build-lean.sh: llvm-objcopy and llvm-ar are needed (Debian: apt-get install llvm)" >&2
    exit 2
fi

mkdir -p "$dir/lean"
obj="$dir/lean/tracemark_c.o"
"$lld" -flavor gnu -r --whole-archive "$dir/libtracemark_c.a" -o "$obj"
"$objcopy" --strip-debug --remove-section=.llvmbc --remove-section=.llvmcmd --wildcard \
    --keep-global-symbol='tm_*' --keep-global-symbol='__cyg_profile_func_*' "$obj"
rm -f "$dir/lean/libtracemark_c.a"
"$ar_tool" rcs "$dir/lean/libtracemark_c.a" "$obj"
rm -f "$obj"
echo "$dir/lean/libtracemark_c.a"
