#!/usr/bin/env bash
# Boots an image built by build.sh under QEMU (TCG) and captures the serial console.
#
# Usage: examples/sel4/run.sh ARCH VARIANT [LOG]
#   LOG defaults to examples/sel4/target/ARCH/VARIANT/console.log
#   VARIANT is the build folder's name (build.sh's OUT_NAME). The number of cores is the
#   build's (its `cores` file, from build.sh's SEL4_CORES): QEMU gets -smp N, and on
#   aarch64 with N > 1 virtualization=on (PSCI through HVC, as the build's device tree).
# QEMU is stopped once the kernel halts (after the ring dump, if tracing is on), or
# after $SEL4_RUN_TIMEOUT seconds of wall time (default 600, some 10 times what a run
# takes on a loaded 2-core host: a bound for a hung guest, not a timing), which is an error.
#
# QEMU runs with -icount shift=0,sleep=off: the emulated clocks (x86_64: TSC, PIT, local
# APIC timer; aarch64: the generic timer) advance by exactly 1 ns per guest instruction,
# and when the guest idles (hlt, wfi) time jumps to the next timer deadline instead of
# following the host's clock. The guest then sees the same time at the same instruction
# on every host: the number of timer interrupts, hence of records, does not depend on how
# fast or loaded the host is, and two runs of the same image give the same console byte
# for byte. (Without -icount, emulated time follows the host's clock: a slower host gets
# more timer interrupts for the same work, which once filled the function-tracing run's
# ring and wrapped it.) SEL4_ICOUNT=0 runs on host time instead, for comparison only.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
arch="${1:?usage: run.sh x86_64|aarch64 VARIANT [LOG]}"
variant="${2:?usage: run.sh x86_64|aarch64 VARIANT [LOG]}"
out="$here/target/$arch/$variant"
log="${3:-$out/console.log}"
timeout_s="${SEL4_RUN_TIMEOUT:-600}"
cores=1
if [ -f "$out/cores" ]; then
    cores="$(cat "$out/cores")"
fi

case "$arch" in
x86_64)
    cmd=(qemu-system-x86_64 -machine q35,accel=tcg
        -cpu Nehalem,-vme,+pdpe1gb,-xsave,-xsaveopt,-xsavec,-fsgsbase,-invpcid,+syscall,+lm,enforce
        -m 512 -display none -serial "file:$log" -monitor none
        -kernel "$out/image.elf" -initrd "$out/root.elf" -smp "$cores")
    ;;
aarch64)
    machine=virt,accel=tcg
    if [ "$cores" != 1 ]; then
        machine="$machine,virtualization=on"
    fi
    cmd=(qemu-system-aarch64 -machine "$machine" -cpu cortex-a53 -m size=1024M
        -display none -serial "file:$log" -monitor none -kernel "$out/image.elf" -smp "$cores")
    ;;
*) echo "run.sh: unknown ARCH $arch" >&2; exit 2 ;;
esac

# aarch64 with several cores boots only on host time: under -icount (QEMU 7.2) the boot
# stops after the kernel's "Reserved virt address space regions" lines, where the boot
# core waits for the others to initialise (release_secondary_cpus), and makes no
# progress in 15 minutes. Such a run's records then follow the host's clock (the
# per-core truth does not: check.sh compares counts only), and two runs differ.
icount="${SEL4_ICOUNT:-1}"
if [ "$arch" = aarch64 ] && [ "$cores" != 1 ] && [ -z "${SEL4_ICOUNT:-}" ]; then
    echo "run.sh: aarch64 with $cores cores runs on host time (no -icount: the SMP boot does not progress under it)" >&2
    icount=0
fi
if [ "$icount" != 0 ]; then
    cmd+=(-icount shift=0,sleep=off,align=off)
fi
rm -f "$log"
: >"$log"
"${cmd[@]}" &
qemu=$!
trap 'kill "$qemu" 2>/dev/null || true' EXIT
# The kernel prints "halting..." when the root task calls seL4_DebugHalt (after the
# ring dump, when tracing is on), then idles with interrupts off.
# A release kernel has no seL4_DebugHalt (build.sh marks its build folder with
# release-run): the run ends when the tracer has dumped every node's ring (a kernel
# without KernelPrinting: one "tracemark: dump done" or "dump failed" line per node) or
# the root task says "root: done".
finished() {
    if [ -f "$out/release-run" ]; then
        grep -q "^root: done" "$log" ||
            [ "$(grep -Eac '^tracemark: dump (done|failed)' "$log")" -ge "$cores" ]
    else
        grep -q "halting\.\.\." "$log"
    fi
}
deadline=$((SECONDS + timeout_s))
while ! finished; do
    if ! kill -0 "$qemu" 2>/dev/null; then
        echo "run.sh: QEMU exited before the kernel halted; console in $log" >&2
        exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "run.sh: no halt within ${timeout_s}s; console in $log" >&2
        exit 1
    fi
    sleep 0.2
done
kill "$qemu" 2>/dev/null || true
wait "$qemu" 2>/dev/null || true
trap - EXIT
echo "run.sh: $arch $variant console -> $log"
