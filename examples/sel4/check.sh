#!/usr/bin/env bash
# The real seL4 kernel traced by tracemark under QEMU, checked end to end.
#
# Usage: examples/sel4/check.sh ARCH [--cores N] [--release]
#   ARCH       x86_64 or aarch64
#   --cores N  1 to 8 (default 1): with N > 1, the multicore checks below instead
#   --release  instead of the checks below: a release kernel (KernelDebugBuild=OFF,
#              KernelPrinting=OFF) traced, its trace checked against the TRUTH the root
#              task ships in it, that truth against the debug run's (README, Tracing
#              seL4, Release kernels); with --cores N (2 to 4: the truth of more cores
#              does not fit in the note) as the multicore check below, each core against
#              the TRUTH_CORE lines the root task ships in the trace too, those against
#              the debug multicore run's, and a wrong per-core truth in the note caught
#
# With --cores N > 1 (a multicore kernel, below), else:
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
#    that a wrong truth and a ring fuller than allowed are caught, that function tracing
#    on a multicore kernel (KernelMaxNumNodes=2) is refused by the kernel's CMake, on x86_64 that
#    the TSC is calibrated once (one tsc_init call) and that 8 ns timestamps
#    (KernelTracemarkClockShift=3) time the run alike in fewer bytes, on aarch64 that the cycle-counter
#    clock (KernelTracemarkClock=cycles) times the run as the generic timer does, that
#    with tracing compiled out the patched kernel equals the unpatched snapshot (the
#    same functions of the same sizes, the same .text and .boot), and checks the format
#    crate's seL4 tables against the kernel build.
#
# With --cores N > 1: builds the "trace" kernel with N nodes (build.sh SEL4_CORES=N, into
# target/ARCH/trace-smpN/), boots it with N cores (run.sh: -smp N, -icount), and checks
# with check_trace.py --cores=N: one ring per core, every core's syscalls, thread
# switches and IPIs against the root task's per-core truth (its TRUTH_CORE lines), and
# decode's merge of the cores in time order; then that a second run gives the same
# console byte for byte (x86_64: -icount with several cores is still deterministic, QEMU
# runs the cores one after the other, in turns of a fixed number of instructions;
# aarch64 SMP runs on host time, see run.sh, and is not compared), and that a wrong
# per-core truth is caught.
# Exits non-zero on any mismatch. Installs what it needs first (setup.sh: Debian
# packages when run as root, a Python environment under target/, Rust targets).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
usage="usage: check.sh x86_64|aarch64 [--cores N] [--release]"
arch="${1:?$usage}"
shift
cores=1
release=""
while [ $# -gt 0 ]; do
    case "$1" in
    --cores) cores="${2:?$usage}"; shift 2 ;;
    --release) release=1; shift ;;
    *) echo "check.sh: unknown argument $1; $usage" >&2; exit 2 ;;
    esac
done
if ! [[ "$cores" =~ ^[1-8]$ ]]; then
    echo "check.sh: --cores $cores: give 1 to 8" >&2
    exit 2
fi
if [ -n "$release" ] && [ "$cores" -gt 4 ]; then
    # The release root task ships its truth in the note of seL4_BenchmarkFinalizeLog, at
    # most 952 bytes: 945 on 4 cores (README, known limits).
    echo "check.sh: --release with --cores $cores: the truth of more than 4 cores does not fit in the note the release root task ships it in" >&2
    exit 2
fi
out="$here/target/$arch"
mkdir -p "$out"

"$here/setup.sh"

. "$root/scripts/lib.sh"
tool="$(tracemark_bin)"

# Runs check_trace.py on "$@" and requires it to fail for the reason `pattern` (grep's
# basic regular expression) matches in its error output, written to `err`; `what` names
# the wrong input when it passes. Prints the reason.
expect_rejected() {
    local what="$1" err="$2" pattern="$3"
    shift 3
    if python3 "$here/check_trace.py" "$tool" "$@" 2>"$err"; then
        echo "check.sh: check_trace.py accepted $what" >&2
        exit 1
    fi
    if ! grep -q -- "$pattern" "$err"; then
        echo "check.sh: check_trace.py rejected $what, but not for the expected reason ($pattern):" >&2
        cat "$err" >&2
        exit 1
    fi
    echo "check.sh: rejected as expected: $(grep -m 1 -o -- "$pattern.*" "$err")"
}

# Runs build `name` (a folder of target/ARCH) again and requires the console to equal its
# first run's byte for byte (run.sh's -icount: what the guest records does not depend on
# the host's speed or load); `what` names the image in the message.
expect_same_console() {
    local name="$1" what="$2" dir="$out/$1"
    "$here/run.sh" "$arch" "$name" "$dir/console-again.log"
    if ! cmp "$dir/console.log" "$dir/console-again.log"; then
        echo "check.sh: two runs of the same $what differ: the run depends on the host (is QEMU's -icount on in run.sh?)" >&2
        exit 1
    fi
    echo "check.sh: identical ($(stat -c %s "$dir/console.log") bytes)"
}

if [ -n "$release" ]; then
    # A release kernel (KernelDebugBuild=OFF, KernelPrinting=OFF): no debug syscalls, no
    # console for the root task, no thread names. The tracer dumps at
    # seL4_BenchmarkFinalizeLog over the serial port itself; the root task ships its TRUTH
    # line in the trace (the call's note; on N cores its TRUTH_CORE lines too, before
    # it), and it must be the truth of the debug run for every syscall both kernels have:
    # the same workload, traced the same.
    if [ "$cores" = 1 ]; then
        echo "== $arch release: kernel entries, exits, interrupts, thread switches"
        # The debug run, for its truth (below): the root task without its mid-run
        # snapshots (TM_NO_SNAPSHOTS), which a release kernel's root task does not take
        # (no console to ship them on), so that both TRUTH lines count the same whole run.
        dbg_name=trace-whole
        rel_name=trace-release
        if [ ! -f "$out/$dbg_name/console.log" ]; then
            ROOT_CFLAGS=-DTM_NO_SNAPSHOTS OUT_NAME="$dbg_name" "$here/build.sh" "$arch" trace
            "$here/run.sh" "$arch" "$dbg_name"
        fi
    else
        echo "== $arch release, $cores cores: per-core truth from the trace's note, one ring per core"
        # The debug run, for its truth: check.sh --cores N's (the multicore root task
        # takes no snapshots, on debug kernels either: its TRUTH and TRUTH_CORE lines
        # count the whole run, as the release root task's).
        dbg_name="trace-smp$cores"
        rel_name="trace-smp$cores-release"
        if [ ! -f "$out/$dbg_name/console.log" ]; then
            SEL4_CORES="$cores" OUT_NAME="$dbg_name" "$here/build.sh" "$arch" trace
            "$here/run.sh" "$arch" "$dbg_name"
        fi
    fi
    dbg="$out/$dbg_name"
    rel="$out/$rel_name"
    SEL4_CORES="$cores" OUT_NAME="$rel_name" "$here/build.sh" "$arch" trace --release
    "$here/run.sh" "$arch" "$rel_name"
    kelf="$rel/kernel/kernel.elf"
    gen="$rel/kernel/gen_config/kernel/gen_config.h"
    if [ "$arch" = aarch64 ]; then
        kelf="$rel/kernel/kernel/kernel.elf"
        gen="$rel/kernel/kernel/gen_config/kernel/gen_config.h"
    fi
    for c in CONFIG_DEBUG_BUILD CONFIG_PRINTING; do
        if ! grep -q "disabled: $c\b" "$gen"; then
            echo "check.sh: the release kernel is built with $c" >&2
            exit 1
        fi
    done
    if nm "$kelf" | grep -qw printf; then
        echo "check.sh: the release kernel has printf: it is not a kernel without printing" >&2
        exit 1
    fi
    python3 "$here/check_trace.py" "$tool" "$rel/console.log" --release --cores="$cores"
    # The release check reads the truth from the trace alone: a console with a TRUTH line
    # (the debug run's) is refused, not silently read instead.
    if python3 "$here/check_trace.py" "$tool" "$dbg/console.log" --release --cores="$cores" \
        2>"$rel/wrong-mode.err"; then
        echo "check.sh: check_trace.py --release accepted a debug run's console" >&2
        exit 1
    fi
    grep -q "a TRUTH line on the console of a release run" "$rel/wrong-mode.err"
    # The same truth as the debug kernel's run, for the syscalls both have, and on N cores
    # the same TRUTH_CORE lines.
    python3 - "$here" "$tool" "$dbg/console.log" "$rel/console.log" <<'PY'
import sys
here, tool, debug_log, release_log = sys.argv[1:]
sys.path.insert(0, here)
from check_trace import note_text, truth_lines
debug, debug_cores = truth_lines(open(debug_log, errors="replace").read().replace("\r", ""))
release, release_cores = truth_lines(note_text(tool, release_log))
if debug is None or release is None:
    sys.exit(f"check.sh: no TRUTH line in the debug run ({debug_log}) or the release run's note")
differ = {k: (debug.get(k), v) for k, v in release.items() if debug.get(k) != v}
missing = set(debug) - set(release) - {"sys.DebugPutChar", "sys.DebugNameThread", "sys.DebugHalt"}
if differ or missing:
    sys.exit(f"check.sh: the release run's truth differs from the debug run's: {differ}, "
             f"missing {sorted(missing)}")
if release_cores != debug_cores:
    sys.exit(f"check.sh: the release run's TRUTH_CORE lines differ from the debug run's: "
             f"release {release_cores}, debug {debug_cores}")
print(f"check.sh: the release truth equals the debug run's in its {len(release)} counts "
      f"(the debug syscalls aside)"
      + (f" and its {len(release_cores)} TRUTH_CORE lines" if release_cores else ""))
PY
    if [ "$cores" != 1 ] && [ "$arch" = x86_64 ]; then
        echo "== $arch release, $cores cores: the same image run again gives the same console, byte for byte"
        expect_same_console "$rel_name" "$arch $cores-core release image"
    fi
    if [ "$cores" != 1 ]; then
        echo "== $arch release, $cores cores: a per-core truth the trace does not match is caught"
        # The note is in the trace: the console is framed again (FORMAT.md 17.7) with one
        # digit of core 1's ipi.resched in the note changed (31 reschedule IPIs become
        # 91), every CRC made anew, so that only the truth is wrong.
        python3 - "$here" "$tool" "$rel/console.log" "$rel/wrong-truth.log" <<'PY'
import base64, json, re, struct, subprocess, sys, zlib
here, tool, log, out = sys.argv[1:]
sys.path.insert(0, here)
from check_trace import KERNEL_DUMP_ID, NOTE_ID, note_text
text = note_text(tool, log)
# The tens digit of core 1's reschedule IPIs.
pos = re.search(r"^TRUTH_CORE 1 .*?ipi\.resched=[0-9]*?([0-8])[0-9] ", text, re.M).start(1)
# The note's USER records hold 32 bytes each, in order, in node 0's ring (the root task
# finalises the log on core 0): the digit is byte pos % 32 of record pos // 32.
records = [bytes.fromhex(r["data"]) for r in map(json.loads, subprocess.run(
    [tool, "decode", "--format", "json", log], check=True, capture_output=True,
    text=True).stdout.splitlines()) if r["kind"] == "USER" and r["id"] == NOTE_ID]
record = records[pos // 32]
lines = open(log, "rb").read().split(b"\n")
dump_id = KERNEL_DUMP_ID
def fields(line):
    return line.decode().split(",")
begin = next(i for i, l in enumerate(lines) if l.startswith(b"@TM:B,") and int(fields(l)[2], 16) == dump_id)
end = next(i for i, l in enumerate(lines) if l.startswith(b"@TM:E,") and int(fields(l)[2], 16) == dump_id)
chunk_len = int(fields(lines[begin])[4])
payload = b"".join(base64.b64decode(f[3] + "=" * (-len(f[3]) % 4)) for f in
                   (fields(l) for l in lines[begin + 1:end] if l.startswith(b"@TM:D,")))
if payload.count(record) != 1:
    sys.exit(f"check.sh: the note's record {record!r} is {payload.count(record)} times in the ring")
at = payload.index(record) + pos % 32
payload = payload[:at] + b"9" + payload[at + 1:]
def with_line_crc(text):
    return (text + "%08x" % zlib.crc32(text.encode("ascii"))).encode()
crc = zlib.crc32(payload)
framed = [with_line_crc("@TM:B,1,%08x,%d,%d,%08x," % (dump_id, len(payload), chunk_len, crc))]
for seq, offset in enumerate(range(0, len(payload), chunk_len)):
    chunk = payload[offset:offset + chunk_len]
    b64 = base64.b64encode(chunk).decode("ascii").rstrip("=")
    chunk_crc = zlib.crc32(struct.pack("<IQ", dump_id, seq) + chunk)
    framed.append(b"@TM:D,%08x,%d,%s,%08x" % (dump_id, seq, b64.encode(), chunk_crc))
framed.append(with_line_crc("@TM:E,1,%08x,%d,%d,%d,%08x,"
                            % (dump_id, len(payload), chunk_len, len(framed) - 1, crc)))
open(out, "wb").write(b"\n".join(lines[:begin] + framed + lines[end + 1:]))
if note_text(tool, out) != text[:pos] + "9" + text[pos + 1:]:
    sys.exit("check.sh: the re-framed console's note is not the note with one digit changed")
PY
        expect_rejected "a wrong per-core truth (--release)" "$rel/wrong-truth.err" \
            "CPU 1: .* (ipi.resched), the root task counts 9[0-9]\b" \
            "$rel/wrong-truth.log" --release --cores="$cores"
    fi
    if [ "$cores" = 1 ]; then
        echo "check.sh: $arch release ok"
    else
        echo "check.sh: $arch release --cores $cores ok"
    fi
    exit 0
fi

if [ "$cores" != 1 ]; then
    name="trace-smp$cores"
    smp="$out/$name"
    SEL4_CORES="$cores" OUT_NAME="$name" "$here/build.sh" "$arch" trace
    "$here/run.sh" "$arch" "$name"
    echo "== $arch, $cores cores: per-core truth, one ring per core, merged in time order"
    python3 "$here/check_trace.py" "$tool" "$smp/console.log" --cores="$cores"

    if [ "$arch" = x86_64 ]; then
        echo "== $arch, $cores cores: the same image run again gives the same console, byte for byte"
        expect_same_console "$name" "$arch $cores-core image"
    else
        # aarch64 SMP runs on host time (run.sh: its boot does not progress under
        # -icount): two runs differ in their timer interrupts; the counts checked above
        # do not depend on them.
        echo "== $arch, $cores cores: on host time (run.sh), no byte-for-byte comparison of two runs"
    fi

    echo "== $arch, $cores cores: a per-core truth the trace does not match is caught"
    # 99999999 reschedule IPIs on core 1, which the trace does not show.
    sed -E 's/^(TRUTH_CORE 1 .*ipi\.resched=)([0-9]{8})/\199999999/' "$smp/console.log" >"$smp/wrong-truth.log"
    expect_rejected "a wrong per-core truth" "$smp/wrong-truth.err" \
        "CPU 1: .* (ipi.resched), the root task counts 99999999" \
        "$smp/wrong-truth.log" --cores="$cores"
    echo "check.sh: $arch --cores $cores ok"
    exit 0
fi

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
expect_same_console trace "$arch image"

echo "== $arch: a truth the trace does not match is caught"
sed -E 's/sys\.Yield=([0-9]{8})/sys.Yield=99999999/' "$out/console.log" >"$out/wrong-truth.log"
expect_rejected "a wrong truth" "$out/wrong-truth.err" "syscall Yield" "$out/wrong-truth.log"

echo "== $arch: a snapshot checked against the other interval's truth is caught"
# Snapshot 2 holds interval 2 only: TRUTH1's counts (interval 1) must not match it.
expect_rejected "snapshot 2 against interval 1's truth" "$out/wrong-interval.err" "syscall Yield" \
    "$out/console.log" --dump-id=2 --truth=TRUTH1

echo "== $arch: a ring fuller than allowed is caught"
# Snapshot 1 fills about 1% of its ring: a limit of 0.5% must fail, naming the fill.
expect_rejected "a ring fuller than its limit" "$out/full-ring.err" "the ring is .* full" \
    "$out/console.log" --dump-id=1 --truth=TRUTH1 --max-fill=0.005

echo "== $arch: function tracing on a multicore kernel is refused at configuration"
# The function hooks find their node with getCurrentCPUIndex, an instrumented function
# on SMP (README, Tracing seL4): CMake must stop a KernelTracemarkFunctions build with
# KernelMaxNumNodes=2 with a message saying so. (KernelBenchmarksTracemark alone is checked on
# several cores by check.sh --cores N.)
rm -rf "$out/smp-refused"
if OUT_NAME=smp-refused SEL4_CORES=2 "$here/build.sh" "$arch" ftrace \
    >"$out/smp-refused.log" 2>&1; then
    echo "check.sh: a KernelTracemarkFunctions kernel with KernelMaxNumNodes=2 was configured and built" >&2
    exit 1
fi
if ! grep -q "KernelTracemarkFunctions does not support SMP" "$out/smp-refused.log"; then
    echo "check.sh: the SMP function-tracing build failed, but not with KernelBenchmarksTracemark's message:" >&2
    tail -n 20 "$out/smp-refused.log" >&2
    exit 1
fi
echo "check.sh: refused as expected: $(grep -m 1 -o 'KernelTracemarkFunctions does not support SMP.*' "$out/smp-refused.log")"
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

    echo "== x86_64: timestamps in units of 8 TSC ticks (KernelTracemarkClockShift=3)"
    # The TSC's 1 GHz deltas take a byte more per entry than aarch64's 62.5 MHz timer's:
    # a coarser clock is a build-time choice. Its run must state an eighth of the TSC's
    # frequency, pass the same checks, span the same time as the TSC run with an eighth
    # of the ticks, and take fewer bytes per kernel entry (check_clock.py).
    OUT_NAME=shift3 SEL4_CMAKE_OPTS=-DKernelTracemarkClockShift=3 "$here/build.sh" x86_64 trace
    "$here/run.sh" x86_64 shift3
    if ! grep -aq "tracemark: recording, .* clock $((hz / 8)) Hz" "$out/shift3/console.log"; then
        echo "check.sh: the KernelTracemarkClockShift=3 kernel does not say it records at $((hz / 8)) Hz" >&2
        exit 1
    fi
    python3 "$here/check_trace.py" "$tool" "$out/shift3/console.log"
    python3 "$here/check_clock.py" "$tool" "$out/console.log" "$out/shift3/console.log" 0.125 --fewer-bytes
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
    # The same run must span the same time as the generic-timer run (62.5 MHz) with 16
    # times as many ticks, over snapshot 1 (check_clock.py).
    python3 "$here/check_clock.py" "$tool" "$out/console.log" "$out/cycles/console.log" 16
fi

echo "== $arch: compiled out, the patched kernel is the unpatched one"
# KernelBenchmarksTracemark off: every hook is an empty macro and c_entry_hook/c_exit_hook
# stay inlined as in the unpatched kernel. The patched kernel must have the unpatched
# snapshot's functions, each of the same size, and the same .text and .boot sizes
# (.rodata differs: assertion messages carry the build folder's paths).
"$here/build.sh" "$arch" off
SEL4_VANILLA=1 OUT_NAME=vanilla "$here/build.sh" "$arch" off
python3 - "$out/off" "$out/vanilla" "$arch" <<'PY'
import subprocess, sys
off, vanilla, arch = sys.argv[1:]
def kernel(d):
    return f"{d}/kernel/kernel/kernel.elf" if arch == "aarch64" else f"{d}/kernel/kernel.elf"
def functions(d):
    out = subprocess.run(["nm", "-S", kernel(d)], check=True, capture_output=True, text=True).stdout
    return sorted((p[3], p[1]) for p in (l.split() for l in out.splitlines()) if len(p) == 4 and p[2] in "tT")
def sections(d):
    out = subprocess.run(["size", "-A", kernel(d)], check=True, capture_output=True, text=True).stdout
    return {p[0]: p[1] for p in (l.split() for l in out.splitlines()) if len(p) == 3 and p[0] in (".text", ".boot")}
f_off, f_van = functions(off), functions(vanilla)
if f_off != f_van:
    diff = sorted(set(f_off) ^ set(f_van))[:10]
    sys.exit(f"check.sh: compiled out, the patched kernel's functions differ from the unpatched one's: {diff}")
if sections(off) != sections(vanilla) or not sections(off):
    sys.exit(f"check.sh: compiled out, sections differ: patched {sections(off)}, unpatched {sections(vanilla)}")
# c_entry_hook and c_exit_hook are then inlined exactly where the unpatched kernel inlines
# them (GCC outlines the debug kernel's c_exit_hook in both).
hooks = sorted(n for n, _ in f_off if n in ("c_entry_hook", "c_exit_hook"))
print(f"check.sh: identical: {len(f_off)} functions of the same sizes, {sections(off)}; "
      f"out of line in both: {hooks or 'none'}")
PY

echo "== $arch: the format crate's seL4 tables against this kernel build"
kernel_build="$out/trace/kernel"
libsel4_build="$kernel_build/libsel4"
# The aarch64 project build (elfloader) puts the kernel in a subfolder.
[ "$arch" = aarch64 ] && kernel_build="$out/trace/kernel/kernel"
TRACEMARK_SEL4_BUILD="$kernel_build" TRACEMARK_SEL4_LIBSEL4="$libsel4_build" \
    TRACEMARK_SEL4_SRC="$out/trace/src/seL4" cargo test -q --manifest-path "$root/Cargo.toml" -p tracemark-format --test sel4_abi \
    -- --include-ignored

echo "check.sh: $arch ok"
