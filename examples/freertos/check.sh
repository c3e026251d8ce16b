#!/usr/bin/env bash
# Builds the FreeRTOS example for QEMU's mps2-an385 (Cortex-M3), runs it with -icount
# and -d int, and checks the trace against the firmware's own truth and QEMU's log of
# exceptions (issue 17, points 1, 5, 7), and that the Perfetto export names every task
# (check_perfetto.py). Prints what tracemark adds to the image.
#
# Usage: examples/freertos/check.sh        (from anywhere; needs arm-none-eabi-gcc with
#        newlib and qemu-system-arm; installs gcc-arm-none-eabi libnewlib-arm-none-eabi
#        when run as root and they are missing)
# Env:   TRACEMARK  the tracemark binary (default: built with cargo, under $CARGO_TARGET_DIR)
#        TRACEMARK_THIRD_PARTY  the folder of the pinned snapshots (default ../shared/third-party)
#        TM_FEATURES  more tracemark-c features for the library, e.g. TM_FEATURES=compact
#                   (less flash, more instructions per record: BENCHMARKS.md)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="$repo/target/freertos"
mkdir -p "$out"

root="$repo"
. "$repo/scripts/lib.sh"
# Without recommends: ~100 MB instead of 416 MB.
need_debs --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi
command -v qemu-system-arm >/dev/null || { echo "check.sh: qemu-system-arm is missing" >&2; exit 2; }

# FreeRTOS V11.3.0, pinned and unmodified, unpacked at build time (never committed).
third="${TRACEMARK_THIRD_PARTY:-$repo/../shared/third-party}"
tarball="$third/FreeRTOS-Kernel-9b777ae5.tar.gz"
if [ ! -f "$tarball" ]; then
    echo "check.sh: no FreeRTOS snapshot at $tarball: set TRACEMARK_THIRD_PARTY to the folder holding FreeRTOS-Kernel-*.tar.gz" >&2
    exit 2
fi
kernel="$out/FreeRTOS-Kernel-V11.3.0"
[ -d "$kernel" ] || tar -xzf "$tarball" -C "$out"

# The tracemark C library, lean, for thumbv7m.
lib="$("$repo/encoder/c-api/build-lean.sh" --target thumbv7m-none-eabi --no-default-features \
    --features "panic-handler${TM_FEATURES:+,$TM_FEATURES}" 2>/dev/null | tail -1)"
tracemark="${TRACEMARK:-$(tracemark_bin)}"

cflags=(-mcpu=cortex-m3 -mthumb -Os -g -ffunction-sections -fdata-sections -Wall -Wextra
    -Wno-unused-parameter -I"$here" -I"$repo/encoder/include" -I"$repo/encoder/c-api/freertos"
    -I"$kernel/include" -I"$kernel/portable/GCC/ARM_CM3")
srcs=("$kernel/tasks.c" "$kernel/queue.c" "$kernel/list.c" "$kernel/timers.c"
    "$kernel/portable/GCC/ARM_CM3/port.c" "$kernel/portable/MemMang/heap_4.c"
    "$here/main.c" "$here/startup.c")

# build NAME DEFINES...: the firmware as $out/NAME.elf with its linker map.
build() {
    local name="$1"
    shift
    local extra=()
    if [ "$*" != "-DTM_TRACE=0" ]; then
        extra=("$repo/encoder/c-api/freertos/tracemark_freertos.c" "$lib")
    fi
    arm-none-eabi-gcc "${cflags[@]}" "$@" "${srcs[@]}" "${extra[@]}" -T "$here/mps2.ld" \
        -nostartfiles --specs=nano.specs --specs=nosys.specs -Wl,--gc-sections \
        -Wl,-Map="$out/$name.map" -o "$out/$name.elf"
}
build demo
build nodump -DTM_DUMP=0
build untraced -DTM_TRACE=0

# Run: -icount shift=0 (1 instruction = 1 ns of virtual time, deterministic), every
# exception QEMU delivers logged by -d int.
rm -f "$out/int.log"
timeout 120 qemu-system-arm -M mps2-an385 -cpu cortex-m3 -nographic -monitor none \
    -serial stdio -semihosting-config enable=on,target=native -icount shift=0 \
    -d int -D "$out/int.log" -kernel "$out/demo.elf" >"$out/uart.log"
grep -E '^(TRUTH|TASK|COST|ASSERT)' "$out/uart.log"

python3 "$here/check.py" --tracemark "$tracemark" --out "$out" --lib "$lib"

# Every task named in the Perfetto export (issue 17 point 5), read back with Perfetto's
# own schema (PyPI `perfetto`, in the venv scripts/test-export.sh uses).
venv="${CARGO_TARGET_DIR:-$repo/target}/export-venv"
if ! "$venv/bin/python" -c 'import perfetto.protos.perfetto.trace.perfetto_trace_pb2' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q perfetto protobuf
fi
"$tracemark" export --format perfetto -o "$out/freertos.perfetto-trace" "$out/uart.log"
"$tracemark" stats --json "$out/uart.log" >"$out/stats.json"
"$venv/bin/python" "$here/check_perfetto.py" "$out/freertos.perfetto-trace" "$out/uart.log" \
    "$out/stats.json"
