#!/usr/bin/env bash
# Times `tracemark export` (CTF, Parquet, Perfetto) against `cat` of the same dump in the
# same run, with peak memory (/usr/bin/time %M), for BENCHMARKS.md.
#
# Usage: scripts/bench-export.sh DUMP [OUT_DIR]   (OUT_DIR default: /tmp/tracemark-bench-export)
# Build first: cargo build --release -p tracemark-cli --bin tracemark
# TM=path/to/tracemark times another build (an older commit's, for a before/after).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dump="$1"
out="${2:-/tmp/tracemark-bench-export}"
tm="${TM:-${CARGO_TARGET_DIR:-$root/target}/release/tracemark}"
mkdir -p "$out"
records=$("$tm" stats --json "$dump" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_records"])')
size=$(stat -c %s "$dump")
cat "$dump" >/dev/null # into the page cache
row() { # name command...
    local name="$1"
    shift
    /usr/bin/time -f "%e %U %S %M" -o "$out/time" "$@" >/dev/null
    read -r wall user sys kb <"$out/time"
    python3 -c "
import sys
wall, user, sys_, kb, n, size = map(float, sys.argv[1:7])
cpu = max(user + sys_, 0.01)
wall = max(wall, 0.01)
print(f'| {sys.argv[7]} | {wall:.2f} s | {cpu:.2f} s | {n / wall / 1e6:.1f} M/s | {n / cpu / 1e6:.1f} M/s | {max(kb * 1024 - size, 0) / 1e6:.1f} MB |')
" "$wall" "$user" "$sys" "$kb" "$records" "$size" "$name"
}
echo "dump: $dump ($records records, $size bytes); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| command | wall | CPU (user+sys) | records/s (wall) | records/s per CPU-second | peak RSS minus dump size |"
echo "|---|---|---|---|---|---|"
row "cat" cat "$dump"
rm -rf "$out/ctf" "$out/pq" "$out/trace.perfetto"
row "export --format ctf" "$tm" export "$dump" --format ctf -o "$out/ctf"
row "export --format parquet" "$tm" export "$dump" --format parquet -o "$out/pq"
row "export --format perfetto" "$tm" export "$dump" --format perfetto -o "$out/trace.perfetto"
echo "output: CTF $(du -sb "$out/ctf" | cut -f1) bytes, Parquet $(du -sb "$out/pq" | cut -f1) bytes, Perfetto $(stat -c %s "$out/trace.perfetto") bytes"
rm -rf "$out/ctf" "$out/pq" "$out/trace.perfetto"
