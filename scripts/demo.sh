#!/usr/bin/env bash
# The end-to-end demo: kernel-sim runs the real encoder on 4 simulated CPUs (a seL4-like
# kernel: syscalls with measured kernel-exit durations, nested interrupts, function
# traces) into flight-recorder rings; then the host tool decodes, summarises, indexes
# and queries the dump. Everything it writes goes to target/demo/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out=target/demo
mkdir -p "$out"
cargo build -q --release -p tracemark-examples -p tracemark-cli
bin="${CARGO_TARGET_DIR:-$root/target}/release"
set -x
"$bin/kernel-sim" --events 2000000 --cpus 4 --buffer 1M --mode overwrite \
    -o "$out/dump.bin" --truth "$out/truth.json"
"$bin/tracemark" decode "$out/dump.bin" | head -n 12
"$bin/tracemark" stats "$out/dump.bin"
"$bin/tracemark" index "$out/dump.bin" -o "$out/dump.idx"
"$bin/tracemark" query "$out/dump.idx" --kind KEXIT --limit 5
