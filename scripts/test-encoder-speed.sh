#!/usr/bin/env bash
# The encoder-speed checks (issue 9) that CI runs: no panic and no division reachable
# from any recording call on thumbv7m, thumbv7em and thumbv6m (footprint.sh's static
# analysis of the probe firmware fails otherwise). The instruction counts under QEMU and
# the barectf comparison (benches/peers/barectf/run.sh) are benchmarks, run on demand.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
printf '\n==> %s\n' "recording path: no panic, no division (issue 9)"
rustup target add thumbv6m-none-eabi thumbv7m-none-eabi thumbv7em-none-eabihf >/dev/null
if ! command -v llvm-nm >/dev/null || ! command -v llvm-objdump >/dev/null; then
    rustup component add llvm-tools >/dev/null
fi
RUN_QEMU=0 "$root/examples/firmware-qemu/footprint.sh" | grep -E '^==|reachable|recording path .text'
