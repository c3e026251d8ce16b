#!/usr/bin/env bash
# Builds the FreeRTOS example for QEMU's mps2-an385 (Cortex-M3), runs it with -icount
# and -d int, and checks the trace against the firmware's own truth and QEMU's log of
# exceptions (issue 17, points 1, 5, 7), and that the Perfetto export names every task
# (check_perfetto.py). Prints what tracemark adds to the image.
#
# Usage: examples/freertos/check.sh        (from anywhere; needs arm-none-eabi-gcc with
#        newlib and qemu-system-arm; installs gcc-arm-none-eabi libnewlib-arm-none-eabi
#        when run as root and they are missing)
# Env:   TRACEMARK  the tracemark binary (default: target/debug/tracemark, built first)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="$repo/target/freertos"
mkdir -p "$out"

if ! command -v arm-none-eabi-gcc >/dev/null || [ ! -d /usr/lib/arm-none-eabi/newlib ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        # One package per call (combinations can fail with "Resolve generated breaks");
        # without recommends: ~100 MB instead of 416 MB.
        for p in gcc-arm-none-eabi libnewlib-arm-none-eabi; do
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null
        done
    else
        echo "check.sh: arm-none-eabi-gcc and newlib are missing; install gcc-arm-none-eabi libnewlib-arm-none-eabi" >&2
        exit 2
    fi
fi
command -v qemu-system-arm >/dev/null || { echo "check.sh: qemu-system-arm is missing" >&2; exit 2; }

# FreeRTOS V11.3.0, pinned and unmodified, unpacked at build time (never committed).
tarball="$repo/../shared/third-party/FreeRTOS-Kernel-9b777ae5.tar.gz"
[ -f "$tarball" ] || tarball="/work/shared/third-party/FreeRTOS-Kernel-9b777ae5.tar.gz"
kernel="$out/FreeRTOS-Kernel-V11.3.0"
[ -d "$kernel" ] || tar -xzf "$tarball" -C "$out"

# The tracemark C library, lean, for thumbv7m.
lib="$("$repo/encoder/c-api/build-lean.sh" --target thumbv7m-none-eabi --no-default-features \
    --features panic-handler 2>/dev/null | tail -1)"
if [ -z "${TRACEMARK:-}" ]; then
    cargo build --quiet --manifest-path "$repo/Cargo.toml" -p tracemark-cli
fi
tracemark="${TRACEMARK:-$repo/target/debug/tracemark}"

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
