#!/usr/bin/env bash
# The real seL4 kernel traced by tracemark under QEMU, checked end to end.
#
# Usage: examples/sel4/check.sh ARCH        (ARCH: x86_64 or aarch64)
#
# 1. Builds the kernel from the pinned snapshots with tracemark linked in (build.sh),
#    twice: "trace" (kernel entries, exits, interrupts, thread switches) and "ftrace"
#    (the same plus the kernel's functions, -finstrument-functions).
# 2. Boots each under QEMU (TCG, -icount: emulated time counts guest instructions, so
#    the runs do not depend on the host's speed or load, see run.sh); the root task runs
#    its counted workload, prints its TRUTH line and halts; the kernel dumps its ring over
#    the serial console. The trace run's console is examples/sel4/target/ARCH/console.log.
# 3. Checks both consoles with the tracemark tool (check_trace.py: per-syscall counts
#    equal the truth, every exit has its entry's duration, interrupts, the fault, thread
#    switches by name, function entries and exits balance, the ring at most half full),
#    checks that a second run of the trace image gives the same console byte for byte,
#    that a wrong truth and a ring fuller than allowed are caught, that a multicore
#    configuration (KernelMaxNumNodes=2) is refused by the kernel's CMake, and checks the
#    format crate's seL4 tables against the kernel build.
# Exits non-zero on any mismatch. Installs what it needs first (setup.sh: Debian
# packages when run as root, a Python environment under target/, Rust targets).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
arch="${1:?usage: check.sh x86_64|aarch64}"
out="$here/target/$arch"
mkdir -p "$out"

"$here/setup.sh"

. "$root/scripts/lib.sh"
tool="$(tracemark_bin)"

for variant in trace ftrace; do
    "$here/build.sh" "$arch" "$variant"
    "$here/run.sh" "$arch" "$variant"
done
cp "$out/trace/console.log" "$out/console.log"

echo "== $arch: kernel entries, exits, interrupts, thread switches"
python3 "$here/check_trace.py" "$tool" "$out/console.log"
echo "== $arch: with the kernel's functions"
python3 "$here/check_trace.py" "$tool" "$out/ftrace/console.log" --functions

echo "== $arch: the same image run again gives the same console, byte for byte"
# run.sh's -icount makes the guest's time count instructions: what it records does not
# depend on the host's speed or load. On host time two runs differ (timer interrupts and
# timestamps follow the host's clock).
"$here/run.sh" "$arch" trace "$out/trace/console-again.log"
if ! cmp "$out/trace/console.log" "$out/trace/console-again.log"; then
    echo "check.sh: two runs of the same $arch image differ: the run depends on the host (is QEMU's -icount on in run.sh?)" >&2
    exit 1
fi
echo "check.sh: identical ($(stat -c %s "$out/trace/console.log") bytes)"

echo "== $arch: a truth the trace does not match is caught"
sed -E 's/sys\.Yield=([0-9]{8})/sys.Yield=99999999/' "$out/console.log" >"$out/wrong-truth.log"
if python3 "$here/check_trace.py" "$tool" "$out/wrong-truth.log" 2>"$out/wrong-truth.err"; then
    echo "check.sh: check_trace.py accepted a wrong truth" >&2
    exit 1
fi
grep -q "syscall Yield" "$out/wrong-truth.err"
echo "check.sh: rejected as expected: $(grep 'syscall Yield' "$out/wrong-truth.err")"

echo "== $arch: a ring fuller than allowed is caught"
# The trace run fills about 1% of its ring: a limit of 0.5% must fail, naming the fill.
if python3 "$here/check_trace.py" "$tool" "$out/console.log" --max-fill=0.005 2>"$out/full-ring.err"; then
    echo "check.sh: check_trace.py accepted a ring fuller than its limit" >&2
    exit 1
fi
grep -q "the ring is .* full" "$out/full-ring.err"
echo "check.sh: rejected as expected: $(grep -o 'the ring is [^(]* full ([^)]*)' "$out/full-ring.err")"

echo "== $arch: a multicore kernel is refused at configuration"
# The hooks have one ring and one state, for one core (README, Tracing seL4): CMake must
# stop a KernelMaxNumNodes=2 build with a message saying so, not build a kernel whose
# cores would write one ring at once.
rm -rf "$out/smp-refused"
if OUT_NAME=smp-refused SEL4_CMAKE_OPTS=-DKernelMaxNumNodes=2 "$here/build.sh" "$arch" trace \
    >"$out/smp-refused.log" 2>&1; then
    echo "check.sh: a KernelTracemark kernel with KernelMaxNumNodes=2 was configured and built" >&2
    exit 1
fi
if ! grep -q "KernelTracemark does not support SMP yet" "$out/smp-refused.log"; then
    echo "check.sh: the SMP build failed, but not with KernelTracemark's message:" >&2
    tail -n 20 "$out/smp-refused.log" >&2
    exit 1
fi
echo "check.sh: refused as expected: $(grep -m 1 -o 'KernelTracemark does not support SMP yet.*' "$out/smp-refused.log")"
rm -rf "$out/smp-refused"

if [ "$arch" = x86_64 ]; then
    echo "== x86_64: the clock's frequency is the one the boot measured, not measured again"
    # The boot calibrates the TSC against the PIT once (tsc_init, for the boot info); the
    # tracer takes that value (TRACEMARK_TSC_MHZ) instead of calling tsc_init a second time.
    calls="$(objdump -d "$out/trace/kernel/kernel.elf" | grep -c 'call.*<tsc_init>' || true)"
    if [ "$calls" != 1 ]; then
        echo "check.sh: the traced x86_64 kernel calls tsc_init from $calls places, not 1 (the boot's): the PIT calibration runs again" >&2
        exit 1
    fi
    hz="$(grep -a -m 1 -o 'tracemark: recording, .* clock [0-9]* Hz' "$out/console.log" | grep -o '[0-9]* Hz$' | cut -d' ' -f1)"
    if [ -z "$hz" ] || [ "$hz" -eq 0 ] || [ $((hz % 1000000)) -ne 0 ]; then
        echo "check.sh: the tracer's clock is '${hz:-missing}' Hz, not the boot's TSC MHz in Hz" >&2
        exit 1
    fi
    echo "check.sh: one tsc_init call (the boot's); clock $hz Hz"
fi

echo "== $arch: the format crate's seL4 tables against this kernel build"
kernel_build="$out/trace/kernel"
libsel4_build="$kernel_build/libsel4"
# The aarch64 project build (elfloader) puts the kernel in a subfolder.
[ "$arch" = aarch64 ] && kernel_build="$out/trace/kernel/kernel"
TRACEMARK_SEL4_BUILD="$kernel_build" TRACEMARK_SEL4_LIBSEL4="$libsel4_build" \
    TRACEMARK_SEL4_SRC="$out/trace/src/seL4" cargo test -q --manifest-path "$root/Cargo.toml" -p tracemark-format --test sel4_abi \
    -- --include-ignored

echo "check.sh: $arch ok"
