#!/usr/bin/env bash
# Instructions per event of the barectf comparison's encoders, counted by callgrind
# (exact whatever the machine's load): each binary run with N events minus the same run
# with 0 events, divided by N. Run benches/peers/barectf/run.sh first (it builds the
# barectf harnesses and peer_workload).
# Usage: benches/peers/barectf/callgrind.sh [N]   (default 1000000; about a minute)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
n="${1:-1000000}"
target="${CARGO_TARGET_DIR:-$root/target}"
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
per_event() { # NAME CMD...
    local name="$1"; shift
    local a b
    a="$(count "$@" "$n")"
    b="$(count "$@" 0)"
    python3 -c "print(f'  {\"$name\":16} {($a - $b) / $n:7.1f} instructions/event')"
}
echo "$n events, callgrind, per event (run minus the empty run)"
for w in tracemark tracemark-owned plain_store none; do
    per_event "$w" "$target/release/examples/peer_workload" "$w"
done
for bits in 64 32; do
    per_event "barectf-ts$bits" "$root/target/peers/barectf/ts$bits/harness"
done
