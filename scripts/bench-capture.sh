#!/usr/bin/env bash
# Throughput of `tracemark capture` from standard input to disk, against `cat > file`
# in the same run (hyperfine), on 1 GiB of numbered text lines:
#   - stdin is the file itself (what `tracemark capture < log` does);
#   - stdin is a pipe (`producer | tracemark capture`), the usual case.
# The capture writes 3 slots of 512 MiB (so it rotates), with its live framing and line
# counting on, and no heartbeat.
#
# Usage: scripts/bench-capture.sh        (figures go into BENCHMARKS.md by hand)
# Env:   SIZE_MB input size (default 1024), RUNS (default 5)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
command -v hyperfine >/dev/null || { echo "hyperfine is needed (apt-get install hyperfine)" >&2; exit 1; }
cargo build -q --release -p tracemark-cli --bin tracemark
target="${CARGO_TARGET_DIR:-$root/target}"
tm="$target/release/tracemark"
work="$target/bench-capture"
mkdir -p "$work"
size_mb="${SIZE_MB:-1024}"
input="$work/input-$size_mb.txt"
if [ ! -f "$input" ]; then
    python3 - "$input" "$size_mb" <<'PY'
import sys
path, mb = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    i, n = 0, 0
    while n < mb << 20:
        block = "".join(f"[{j:010d}] worker {j % 7}: processed item {j * 2654435761 % 1000003} ok\n" for j in range(i, i + 10000))
        f.write(block)
        n += len(block)
        i += 10000
PY
fi
echo "input: $(stat -c %s "$input") bytes, $(wc -l < "$input") lines"
cap="$tm capture --dir $work/cap --slot-size 512M --slots 3 --heartbeat 0"
hyperfine --warmup 1 --runs "${RUNS:-5}" --export-json "$work/bench.json" \
    -n "cat > file, stdin is the file" "cat < $input > $work/out" \
    -n "tracemark capture, stdin is the file" "$cap < $input" \
    -n "cat piped into cat > file" "cat $input | cat > $work/out" \
    -n "cat piped into tracemark capture" "cat $input | $cap"
python3 - "$work/bench.json" "$(stat -c %s "$input")" <<'PY'
import json, sys
n = int(sys.argv[2])
print(f"{'command':40s} {'MB/s (median)':>14s} {'MB/s (mean)':>12s} {'MB/s (best)':>12s}")
for r in json.load(open(sys.argv[1]))["results"]:
    mbs = lambda t: n / t / 1e6
    print(f"{r['command']:40s} {mbs(r['median']):14.0f} {mbs(r['mean']):12.0f} {mbs(r['min']):12.0f}")
PY
# Wall clock depends on the load of the machine and on writeback; the CPU time the
# consumer itself spends (perf stat task-clock of the capture or of the second cat) does
# much less.
if command -v perf >/dev/null 2>&1; then
    echo "CPU time of the consumer (perf stat task-clock, median of 5):"
    for consumer in "cat" "tracemark capture"; do
        for how in file pipe; do
            for _ in 1 2 3 4 5; do
                rm -rf "$work/cap" "$work/out"
                if [ "$consumer" = cat ]; then cmd=(cat); else cmd=($cap); fi
                if [ "$how" = file ]; then
                    perf stat -x, -e task-clock -o "$work/perf.txt" "${cmd[@]}" < "$input" > "$work/out"
                else
                    cat "$input" | perf stat -x, -e task-clock -o "$work/perf.txt" "${cmd[@]}" > "$work/out"
                fi
                grep task-clock "$work/perf.txt" | cut -d, -f1
            done | sort -n | sed -n 3p | python3 -c "import sys; ms = float(sys.stdin.read()); print(f'  {sys.argv[1]:20s} stdin is a {sys.argv[2]:4s}: {ms:7.0f} ms CPU, {int(sys.argv[3]) / ms / 1e3:6.0f} MB/s of CPU time')" "$consumer" "$how" "$(stat -c %s "$input")"
        done
    done
fi
rm -rf "$work/cap" "$work/out"
