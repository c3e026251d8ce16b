#!/usr/bin/env bash
# Side-by-side cost of tracemark and barectf 3.1.2 on the same workload (issue 9).
# On demand, not in CI:   benches/peers/barectf/run.sh [EVENTS] [RUNS]
#
#   - installs barectf 3.1.2 from PyPI into target/peers/venv (PyYAML 5.4.1, which
#     barectf needs, builds on current Python only with cython<3 and no build isolation);
#   - generates barectf's C tracer for the three event kinds (config.yaml.in): kernel
#     entry bit-packed 3+4+5+1+19 bits, kernel exit with a 32-bit duration, interrupt with
#     a 16-bit number; once with 64-bit and once with 32-bit event timestamps;
#   - builds harness.c (gcc -O2, one translation unit with the generated tracer) and
#     tracemark's encoder/examples/peer_workload.rs (cargo --release);
#   - runs the same workload on each: per 20 events 9 kernel entries, 9 kernel exits,
#     2 interrupts; a counter clock (+37 ticks per read); a 64 MiB overwrite ring of
#     4 KiB blocks/packets; EVENTS events (default 10M); RUNS runs of each (default 11),
#     the processes interleaved (one of each per round), and prints the median ns/event,
#     ring bytes/event, and the ratios. `plain_store` is the baseline: tracemark's
#     bytes for the same records stored into a plain array, no ring logic.
#     `tracemark-owned` is tracemark's single-owner writer (Tracer::owned: single
#     context, as barectf's tracer is; issue 15 goal 5).
#
# Env: TRACEMARK_BEFORE=PATH  a peer_workload binary built from another commit (for
#      example the one before a change), run interleaved with the others as
#      `tracemark-before`, to measure a change of the encoder in the same run.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
events="${1:-10000000}"
runs="${2:-11}"
out="$root/target/peers/barectf"
venv="$root/target/peers/venv"
mkdir -p "$out"

if ! "$venv/bin/barectf" --version 2>/dev/null | grep -q '3\.1\.2'; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'cython<3' wheel setuptools
    "$venv/bin/pip" install -q --no-build-isolation 'pyyaml==5.4.1'
    "$venv/bin/pip" install -q 'barectf==3.1.2'
fi

for bits in 64 32; do
    dir="$out/ts$bits"
    mkdir -p "$dir"
    sed "s/@TS_BITS@/$bits/" "$here/config.yaml.in" > "$dir/config.yaml"
    (cd "$dir" && "$venv/bin/barectf" generate --metadata-dir=. --code-dir=. --headers-dir=. config.yaml)
    gcc -O2 -DNDEBUG -std=c11 -I"$dir" -o "$dir/harness" "$here/harness.c" "$dir/bctf.c"
done
(cd "$root" && cargo build --quiet --release -p tracemark --example peer_workload)
tm="${CARGO_TARGET_DIR:-$root/target}/release/examples/peer_workload"

results="$out/results.txt"
: > "$results"
for ((r = 0; r < runs; r++)); do
    "$tm" tracemark "$events" | sed 's/^/tracemark /' >> "$results"
    "$tm" tracemark-owned "$events" | sed 's/^/tracemark-owned /' >> "$results"
    "$out/ts64/harness" "$events" | sed 's/^barectf/barectf-ts64 x/' >> "$results"
    "$out/ts32/harness" "$events" | sed 's/^barectf/barectf-ts32 x/' >> "$results"
    "$tm" plain_store "$events" | sed 's/^/plain_store /' >> "$results"
    if [ -n "${TRACEMARK_BEFORE:-}" ]; then
        "$TRACEMARK_BEFORE" tracemark "$events" | sed 's/^/tracemark-before /' >> "$results"
    fi
done

python3 - "$results" "$events" "$runs" <<'PY'
import statistics, sys
path, events, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ns, size = {}, {}
for line in open(path):
    name, _, t, b = line.split()
    ns.setdefault(name, []).append(float(t))
    size[name] = float(b)
med = {k: statistics.median(v) for k, v in ns.items()}
print(f"{events} events, median of {runs} interleaved runs (ns/event; min-max in brackets)")
for k in ("tracemark", "tracemark-owned", "tracemark-before", "barectf-ts64", "barectf-ts32", "plain_store"):
    if k not in med:
        continue
    print(f"  {k:16} {med[k]:6.2f} ns/event  [{min(ns[k]):.2f}-{max(ns[k]):.2f}]  {size[k]:5.2f} B/event")
t = med["tracemark"]
print(f"  barectf-ts64 / tracemark = {med['barectf-ts64'] / t:.2f}x")
print(f"  barectf-ts32 / tracemark = {med['barectf-ts32'] / t:.2f}x")
print(f"  tracemark / plain_store  = {t / med['plain_store']:.2f}x")
o = med["tracemark-owned"]
print(f"  tracemark-owned / barectf-ts64 = {o / med['barectf-ts64']:.2f}x")
print(f"  tracemark-owned / barectf-ts32 = {o / med['barectf-ts32']:.2f}x")
if "tracemark-before" in med:
    print(f"  tracemark-before / tracemark = {med['tracemark-before'] / t:.2f}x")
PY
