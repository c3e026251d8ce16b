#!/usr/bin/env bash
# Throughput of `tracemark import qemu` on a real QEMU log, against `wc -l` and `cat`
# reading the same file in the same run (BENCHMARKS.md, "tracemark import qemu").
#
# Usage: scripts/bench-import.sh [ITERATIONS]   (default 400000: a log of about 1 GB)
# Needs arm-linux-gnueabihf-gcc, qemu-arm and hyperfine.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
iterations="${1:-400000}"
dir="$root/target/bench-import"
mkdir -p "$dir"

cargo build -q --release -p tracemark-cli --bin tracemark
arm-linux-gnueabihf-gcc -static -O1 -mthumb -o "$dir/loop" tests/qemu-import/loop.c
log="$dir/loop-$iterations.log"
[ -s "$log" ] || qemu-arm -d exec,cpu,in_asm,nochain -D "$log" "$dir/loop" "$iterations" || true
ls -l "$log"
tm="${CARGO_TARGET_DIR:-$root/target}/release/tracemark"
hyperfine --warmup 1 --runs 5 \
    "wc -l $log" \
    "cat $log > /dev/null" \
    "$tm import qemu $log --elf $dir/loop -o $dir/loop.dump --syscalls $dir/loop.csv --order-file $dir/loop.order"
/usr/bin/time -v "$tm" import qemu "$log" --elf "$dir/loop" -o "$dir/loop.dump" 2>&1 >/dev/null |
    grep -E "Maximum resident|Elapsed"
