#!/usr/bin/env bash
# Build the tracemark firmware demo and run it under QEMU (lm3s6965evb).
#
# Usage: examples/firmware-qemu/run.sh [BIN]     (default BIN: trace_demo)
# Env:   TIMEOUT  seconds before QEMU is killed (default 60)
#        QEMU     qemu binary (default qemu-system-arm)
#        FEATURES cargo features (e.g. FEATURES=defmt for BIN=defmt_demo)
#        ICOUNT   QEMU -icount shift (default 4: one instruction = 16 ns of virtual
#                 time, so SysTick's 12.5 MHz is one tick per 5 instructions);
#                 empty to run on host time
#
# Works from any CWD. QEMU runs with this directory as its CWD, so the
# firmware's semihosting paths ("target/trace-ring.bin", "target/trace-truth.txt") land under
# examples/firmware-qemu/target/. UART0 output goes to stdout. The exit code is
# the firmware's (semihosting exit), 124 on timeout, or cargo's on build errors.
#
# Why -icount: without it QEMU's virtual time follows the host clock and the
# SysTick timer callback runs on QEMU's main thread; a firmware that reads SysTick
# in a tight loop can starve it, and then SysTick stops (CVR stuck at 0/1, no
# interrupts) for the rest of the loop. With -icount, time advances with executed
# instructions, timers fire deterministically, and runs are reproducible.
#
# Note: QEMU 7.2 prints "Timer with period zero, disabling" on stderr at
# machine start-up; it comes from a Stellaris peripheral the demo does not use
# and is harmless.
set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
# The firmware is its own workspace and is run from its own target/ (a CARGO_TARGET_DIR
# meant for the root workspace must not move it).
unset CARGO_TARGET_DIR

BIN="${1:-trace_demo}"
TARGET="thumbv7m-none-eabi"
TIMEOUT="${TIMEOUT:-60}"
QEMU="${QEMU:-qemu-system-arm}"
ICOUNT="${ICOUNT-4}"
OUT_FILE="target/trace-truth.txt"
ELF="target/$TARGET/release/$BIN"

cargo build --release --target "$TARGET" --bin "$BIN" ${FEATURES:+--features "$FEATURES"}

rm -f "$OUT_FILE"
set +e
timeout "$TIMEOUT" "$QEMU" \
    -cpu cortex-m3 -machine lm3s6965evb -nographic \
    -semihosting-config enable=on,target=native \
    ${ICOUNT:+-icount shift=$ICOUNT} \
    -kernel "$ELF"
rc=$?
set -e

if [ "$rc" -eq 124 ]; then
    echo "run.sh: QEMU timed out after ${TIMEOUT}s" >&2
fi
if [ "$BIN" = trace_demo ]; then
    if [ -f "$OUT_FILE" ]; then
        echo "run.sh: output file: $(pwd)/$OUT_FILE"
    else
        echo "run.sh: output file $(pwd)/$OUT_FILE was not written" >&2
    fi
fi
echo "run.sh: firmware exit code $rc"
exit "$rc"
