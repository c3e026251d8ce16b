#!/usr/bin/env bash
# The real seL4 kernel traced by tracemark under QEMU, checked end to end.
#
# Usage: examples/sel4/check.sh ARCH [--cores 1]   (ARCH: x86_64 or aarch64; more cores
#                                                  are refused until the hooks have a
#                                                  ring per core)
#
# 1. Builds the kernel from the pinned snapshots with tracemark linked in (build.sh),
#    twice: "trace" (kernel entries, exits, interrupts, thread switches) and "ftrace"
#    (the same plus the kernel's functions, -finstrument-functions).
# 2. Boots each under QEMU (TCG, -icount: emulated time counts guest instructions, so
#    the runs do not depend on the host's speed or load, see run.sh); the root task runs
#    its counted workload, prints its TRUTH line and halts; the kernel dumps its ring over
#    the serial console. The trace run's console is examples/sel4/target/ARCH/console.log.
# 3. Checks both consoles with the tracemark tool (check_trace.py; the trace run's three
#    dumps each against its interval's truth: the root task's two snapshots, taken and
#    shipped while it runs, and the kernel's halt dump; thread names in stats and
#    Perfetto, and per-thread time against seL4's track_utilisation
#    (check_threads.py, a third kernel build, util); per-syscall counts
#    equal the truth, every exit has its entry's duration, interrupts, the fault, thread
#    switches by name, function entries and exits balance, the ring at most half full),
#    checks that a second run of the trace image gives the same console byte for byte,
#    that a wrong truth and a ring fuller than allowed are caught, that a multicore
#    configuration (KernelMaxNumNodes=2) is refused by the kernel's CMake, on x86_64 that
#    the TSC is calibrated once (one tsc_init call), on aarch64 that the cycle-counter
#    clock (KernelTracemarkClock=cycles) times the run as the generic timer does, and
#    checks the format crate's seL4 tables against the kernel build.
# Exits non-zero on any mismatch. Installs what it needs first (setup.sh: Debian
# packages when run as root, a Python environment under target/, Rust targets).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
arch="${1:?usage: check.sh x86_64|aarch64 [--cores N]}"
cores=1
if [ "${2:-}" = --cores ]; then
    cores="${3:?usage: check.sh x86_64|aarch64 [--cores N]}"
fi
if [ "$cores" != 1 ]; then
    # The kernel's CMake refuses KernelTracemark with KernelMaxNumNodes > 1 (checked below).
    echo "check.sh: --cores $cores: not supported yet, the seL4 hooks have one ring for one core (README, Tracing seL4, known limits)" >&2
    exit 2
fi
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
# The root task snapshots the ring twice while it runs (seL4_TracemarkSnapshot, with a
# reset) and ships each image over the console itself (dumps 1 and 2); the kernel's halt
# dump holds what follows the last reset. Each is checked against its interval's truth
# (TRUTH1, TRUTH2, TRUTH): together they cover the run, no record lost or counted twice.
echo "-- snapshot 1 (boot to the first snapshot), shipped by the root task"
python3 "$here/check_trace.py" "$tool" "$out/console.log" --dump-id=1 --truth=TRUTH1
echo "-- snapshot 2 (the first reset to the second snapshot), shipped by the root task"
python3 "$here/check_trace.py" "$tool" "$out/console.log" --dump-id=2 --truth=TRUTH2
echo "-- the kernel's halt dump (the last reset to the halt)"
python3 "$here/check_trace.py" "$tool" "$out/console.log"
echo "== $arch: thread names (THREAD records) in stats and in the Perfetto export"
python3 "$here/check_threads.py" "$tool" "$out/console.log" --dump-id=1 rootserver server faulter

echo "== $arch: per-thread time against seL4's own track_utilisation"
# The same kernel with KernelBenchmarks=track_utilisation: the root task brackets
# interval 2 with seL4_BenchmarkResetLog/FinalizeLog and prints seL4's
# GetThreadUtilisation figures; check_threads.py holds tracemark stats of snapshot 2 to
# them within a bound the trace gives (its docstring). Both must count the same clock:
# seL4's timestamp() is the TSC on x86_64, the cycle counter (pmccntr) on aarch64, which
# the tracer then uses too (KernelTracemarkClock=cycles).
util_opts=""
[ "$arch" = aarch64 ] && util_opts="-DKernelTracemarkClock=cycles -DKernelTracemarkCycleHz=1000000000"
SEL4_CMAKE_OPTS="$util_opts" "$here/build.sh" "$arch" util
"$here/run.sh" "$arch" util
python3 "$here/check_trace.py" "$tool" "$out/util/console.log" --dump-id=2 --truth=TRUTH2
python3 "$here/check_threads.py" "$tool" "$out/util/console.log" --dump-id=2 rootserver server

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

echo "== $arch: a snapshot checked against the other interval's truth is caught"
# Snapshot 2 holds interval 2 only: TRUTH1's counts (interval 1) must not match it.
if python3 "$here/check_trace.py" "$tool" "$out/console.log" --dump-id=2 --truth=TRUTH1 \
    2>"$out/wrong-interval.err"; then
    echo "check.sh: snapshot 2 passed against interval 1's truth" >&2
    exit 1
fi
grep -q "syscall Yield" "$out/wrong-interval.err"
echo "check.sh: rejected as expected: $(grep -m 1 'syscall Yield' "$out/wrong-interval.err")"

echo "== $arch: a ring fuller than allowed is caught"
# Snapshot 1 fills about 1% of its ring: a limit of 0.5% must fail, naming the fill.
if python3 "$here/check_trace.py" "$tool" "$out/console.log" --dump-id=1 --truth=TRUTH1 \
    --max-fill=0.005 2>"$out/full-ring.err"; then
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

if [ "$arch" = aarch64 ]; then
    echo "== aarch64: the cycle counter as the clock (KernelTracemarkClock=cycles)"
    # seL4's own tracking times with pmccntr; the tracer can too, a build-time choice.
    # QEMU's cycle counter runs at 1 GHz of emulated time: the same run must span the same
    # time in seconds as the generic-timer run (62.5 MHz), its ticks 16 times as many.
    OUT_NAME=cycles SEL4_CMAKE_OPTS="-DKernelTracemarkClock=cycles -DKernelTracemarkCycleHz=1000000000" \
        "$here/build.sh" aarch64 trace
    "$here/run.sh" aarch64 cycles
    if ! grep -aq 'tracemark: recording, .* clock 1000000000 Hz' "$out/cycles/console.log"; then
        echo "check.sh: the cycle-counter kernel does not say it records at 1000000000 Hz" >&2
        exit 1
    fi
    python3 "$here/check_trace.py" "$tool" "$out/cycles/console.log"
    # Snapshot 1 (boot to the first snapshot): the same work in both runs. (The whole
    # console also holds the shipping, whose length follows the images' sizes, which the
    # clock's tick counts change.)
    python3 - "$here" "$tool" "$out/console.log" "$out/cycles/console.log" <<'PY'
import json, os, subprocess, sys, tempfile
here, tool, timer_log, cycles_log = sys.argv[1:]
sys.path.insert(0, here)
from check_trace import one_dump
tmp = tempfile.TemporaryDirectory()
def span(log):
    log = one_dump(log, 1, os.path.join(tmp.name, os.path.basename(os.path.dirname(log)) + ".log"))
    out = subprocess.run([tool, "decode", "--format", "json", log], check=True,
                         capture_output=True, text=True).stdout.splitlines()
    first, last = json.loads(out[0]), json.loads(out[-1])
    return last["ts"] - first["ts"], float(last["time"]) - float(first["time"])
(timer_ticks, timer_s), (cycle_ticks, cycle_s) = span(timer_log), span(cycles_log)
ratio = cycle_s / timer_s
print(f"check.sh: first to last record: generic timer {timer_ticks} ticks = {timer_s:.6f} s, "
      f"cycle counter {cycle_ticks} ticks = {cycle_s:.6f} s (ratio {ratio:.4f})")
if not 0.99 <= ratio <= 1.01 or cycle_ticks < 10 * timer_ticks:
    sys.exit("check.sh: the cycle-counter run does not span the generic-timer run's time "
             "with more ticks: is pmccntr counting, at KernelTracemarkCycleHz?")
PY
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
