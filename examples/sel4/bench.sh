#!/usr/bin/env bash
# Measures what tracing costs the real seL4 kernel, in one run (BENCHMARKS.md):
#
# * cost per kernel entry: the root task (built with -DTM_BENCH) times 200 batches of 100 seL4_Yield
#   calls (the median batch counts) with the user-readable counter (x86_64: TSC; aarch64: the generic timer's
#   virtual counter), on the same kernel with tracing compiled out ("off"), with
#   tracemark ("trace"), and on aarch64 with seL4's own
#   KernelBenchmarks=track_kernel_entries ("track", with its log buffer set up), and on
#   x86_64 with KernelTracemarkClockShift=3 ("shift3": 8 ns timestamps, fewer bytes);
# * bytes per kernel entry: the ring of the traced Yield run, decoded;
# * bytes per record and records per second with function tracing on: the "ftrace" run
#   of examples/sel4/check.sh (the counted workload with -finstrument-functions);
# * code and data tracemark adds to the kernel image: `size` of kernel.elf, trace vs off.
#
# * the tracemark library's share of the traced kernel: the kernel's symbols that the
#   library build.sh links (kernel/tracemark/lib/libtracemark_c.a) defines, by size.
#
# Usage: examples/sel4/bench.sh [--release] [--cores N] [ARCH...]   (default: x86_64 aarch64)
#   --release  release kernels (build.sh --release: KernelDebugBuild=OFF), with
#              KernelPrinting=ON for the root task's BENCH lines (printing is not on the
#              Yield path), in target/ARCH/bench-VARIANT-release; the function-tracing
#              figures are the debug ftrace run's either way
#   --cores N  kernels of N nodes (build.sh SEL4_CORES=N), in
#              target/ARCH/bench-VARIANT-smpN[-release]: the Yield loop runs on core 0,
#              the others idle, and every entry takes the big kernel lock; no "track"
#              variant. aarch64 with several cores runs on host time (run.sh), so its
#              figures there are not instruction counts
# Every run uses QEMU's -icount shift=0 (run.sh's default): the emulated counters
# advance by 1 ns per guest instruction, so "ns" below are guest instructions,
# deterministic and independent of the host's load. They are not a real CPU's cycles
# (no caches, no pipeline); the comparison between the variants is what they are for.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
release=""
cores=1
while [ $# -gt 0 ]; do
    case "$1" in
    --release) release=1; shift ;;
    --cores) cores="${2:?bench.sh: --cores N}"; shift 2 ;;
    *) break ;;
    esac
done
suffix="${release:+-release}"
[ "$cores" = 1 ] || suffix="-smp$cores$suffix"
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(x86_64 aarch64)
cargo build -q --manifest-path "$root/Cargo.toml" -p tracemark-cli --bin tracemark
tool="${CARGO_TARGET_DIR:-$root/target}/debug/tracemark"

for arch in "${archs[@]}"; do
    variants=(off trace)
    [ "$arch" = aarch64 ] && [ "$cores" = 1 ] && variants+=(track)
    # The baseline of the inline pair writer: the pair through a library call.
    [ "$cores" = 1 ] && variants+=(call)
    # x86_64's 1 GHz TSC: the trace kernel again with 8 ns timestamps.
    [ "$arch" = x86_64 ] && [ "$cores" = 1 ] && variants+=(shift3)
    for v in "${variants[@]}"; do
        kind="$v" opts=""
        if [ "$v" = shift3 ]; then
            kind=trace opts=-DKernelTracemarkClockShift=3
        elif [ "$v" = call ]; then
            kind=trace opts=-DKernelTracemarkInlinePair=OFF
        fi
        if [ -n "$release" ]; then
            OUT_NAME="bench-$v$suffix" ROOT_CFLAGS=-DTM_BENCH SEL4_CMAKE_OPTS="-DKernelPrinting=ON $opts" \
                SEL4_CORES="$cores" "$here/build.sh" "$arch" "$kind" --release >/dev/null
        else
            OUT_NAME="bench-$v$suffix" ROOT_CFLAGS=-DTM_BENCH SEL4_CMAKE_OPTS="$opts" SEL4_CORES="$cores" \
                "$here/build.sh" "$arch" "$kind" >/dev/null
        fi
        "$here/run.sh" "$arch" "bench-$v$suffix" >/dev/null 2>&1
    done
    if [ ! -f "$here/target/$arch/ftrace/console.log" ]; then
        "$here/build.sh" "$arch" ftrace >/dev/null
        "$here/run.sh" "$arch" ftrace >/dev/null 2>&1
    fi
    python3 - "$tool" "$here/target/$arch" "$arch" "$suffix" "${variants[@]}" <<'EOF'
import json, re, subprocess, sys
tool, out, arch, suffix, *variants = sys.argv[1:]

def bench(v):
    text = open(f"{out}/bench-{v}{suffix}/console.log", errors="replace").read()
    yields = int(re.search(r"^BENCH yields=(\d+)", text, re.M).group(1))
    ticks = int(re.search(r"^BENCH ticks=(\d+)", text, re.M).group(1))
    hz = int(re.search(r"^BENCH counter_hz=(\d+)", text, re.M).group(1))
    if hz == 0:  # x86_64: the TSC rate the kernel measured
        hz = int(re.search(r"clock (\d+) Hz", open(f"{out}/bench-trace{suffix}/console.log").read()).group(1))
    return ticks / yields, hz

def size(path):
    line = subprocess.run(["size", "-A", path], capture_output=True, text=True).stdout
    secs = {}
    for l in line.splitlines():
        p = l.split()
        if len(p) >= 2 and p[1].isdigit():
            secs[p[0]] = int(p[1])
    return secs

print(f"### {arch}{' (release kernels)' if suffix.endswith('-release') else ''}"
      f"{', ' + suffix.split('-')[1][3:] + ' cores' if '-smp' in suffix else ''}\n")
print("| kernel | counter ticks per seL4_Yield (entry + exit) | instructions per Yield (icount ns) | added per kernel entry |")
print("| --- | --- | --- | --- |")
base = None
for v in variants:
    t, hz = bench(v)
    base = base if base is not None else t
    name = {"off": "tracing compiled out", "trace": "tracemark (KernelBenchmarksTracemark)",
            "track": "seL4 track_kernel_entries",
            "shift3": "tracemark, KernelTracemarkClockShift=3 (8 ns timestamps)",
            "call": "tracemark, the pair through a library call (KernelTracemarkInlinePair=OFF)"}[v]
    print(f"| {name} | {t:.2f} | {t * 1e9 / hz:.0f} | {(t - base) * 1e9 / hz:+.0f} instructions |")
print(f"\n(counter: {hz} Hz)\n")

for v in (v for v in variants if v in ("trace", "shift3")):
    stats = json.loads(subprocess.run([tool, "stats", "--json", f"{out}/bench-{v}{suffix}/console.log"],
                                      capture_output=True, text=True, check=True).stdout)
    k = stats["records_per_kind"]
    entries = k["KENTRY"]
    print(f"Traced Yield run{' (clock shift 3)' if v == 'shift3' else ''}: {stats['total_records']} "
          f"records ({entries} kernel entries, {k['IRQ']} IRQs, {k['SWITCH']} switches) in "
          f"{stats['bytes']} bytes: **{stats['bytes'] / entries:.2f} bytes per kernel entry** "
          f"({stats['mean_bytes_per_record']:.2f} bytes per record; seL4's track_kernel_entries "
          f"log entry is 24 bytes; clock {stats['clock_hz']} Hz).\n")

f = json.loads(subprocess.run([tool, "stats", "--json", f"{out}/ftrace/console.log"],
                              capture_output=True, text=True, check=True).stdout)
secs = f["time_span_ticks"] / f["clock_hz"]
print(f"Function tracing (ftrace run of check.sh, the counted workload): {f['total_records']} records "
      f"({f['records_per_kind']['FENTRY']} function entries) in {f['bytes']} bytes over "
      f"{secs * 1e3:.1f} ms of emulated time: **{f['mean_bytes_per_record']:.2f} bytes per record, "
      f"{f['total_records'] / secs / 1e6:.2f} M records/s**.\n")

def kelf(v): return f"{out}/bench-{v}{suffix}/kernel/" + ("kernel/" if arch == "aarch64" else "") + "kernel.elf"
off, tr = size(kelf("off")), size(kelf("trace"))
ring = 1048576
def tot(s, names): return sum(v for n, v in s.items() if any(n == x or n.startswith(x + ".") for x in names))
text = tot(tr, [".text", ".boot"]) - tot(off, [".text", ".boot"])
rodata = tot(tr, [".rodata"]) - tot(off, [".rodata"])
data = tot(tr, [".data"]) - tot(off, [".data"])
bss = tot(tr, [".bss"]) - tot(off, [".bss"])
print(f"Kernel image, trace vs off: code +{text} bytes, read-only data +{rodata} bytes, "
      f"data +{data} bytes, BSS +{bss} bytes (of which {ring} are the ring).\n")
if "call" in variants:
    call = size(kelf("call"))
    print(f"Kernel code, inline pair vs library call: "
          f"{tot(tr, ['.text', '.boot']) - tot(call, ['.text', '.boot']):+d} bytes.\n")

# The library's share: the traced kernel's symbols that the library build.sh linked defines.
lib = f"{out}/bench-trace{suffix}/kernel/tracemark/lib/libtracemark_c.a"
defined = {p[2] for p in (l.split() for l in subprocess.run(["nm", "--defined-only", lib],
           capture_output=True, text=True).stdout.splitlines()) if len(p) == 3}
code = rod = n = 0
for p in (l.split() for l in subprocess.run(["nm", "-S", "--defined-only", kelf("trace")],
                                            capture_output=True, text=True).stdout.splitlines()):
    if len(p) == 4 and p[3] in defined:
        n += 1
        code += int(p[1], 16) if p[2] in "tT" else 0
        rod += int(p[1], 16) if p[2] in "rR" else 0
print(f"tracemark library in the traced kernel: {n} symbols, **code {code} bytes**, read-only "
      f"data {rod} bytes (the tm_* functions the hooks call and what they reach).\n")
EOF
done
