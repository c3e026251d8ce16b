#!/usr/bin/env bash
# The real seL4 kernel traced by tracemark under QEMU: installs what the seL4 build needs
# (examples/sel4/setup.sh: Debian packages, the Python modules of seL4's build in a venv
# under target/, Rust targets; check.sh calls it too) and runs examples/sel4/check.sh
# for each configuration.
#
# Usage: scripts/test-sel4.sh [ARCH[:CORES]...]   (default: x86_64 aarch64 x86_64:2)
#   ARCH:CORES runs check.sh ARCH --cores CORES (a multicore kernel). CI runs the
#   default: both architectures on one core, and x86_64 on two; the other multicore
#   configurations (aarch64:2, x86_64:4, aarch64:4) run on demand (README, Tracing seL4).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(x86_64 aarch64 x86_64:2)

. "$root/scripts/lib.sh"

step "seL4 build dependencies"
examples/sel4/setup.sh

for config in "${archs[@]}"; do
    arch="${config%%:*}"
    if [ "$config" = "$arch" ]; then
        step "seL4 $arch under QEMU, traced"
        examples/sel4/check.sh "$arch"
    else
        step "seL4 $arch, ${config#*:} cores, under QEMU, traced"
        examples/sel4/check.sh "$arch" --cores "${config#*:}"
    fi
done
