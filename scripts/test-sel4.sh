#!/usr/bin/env bash
# The real seL4 kernel traced by tracemark under QEMU: installs what the seL4 build needs
# (examples/sel4/setup.sh: Debian packages, the Python modules of seL4's build in a venv
# under target/, Rust targets; check.sh calls it too) and runs examples/sel4/check.sh
# for each architecture.
#
# Usage: scripts/test-sel4.sh [ARCH...]     (default: x86_64 aarch64)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(x86_64 aarch64)

. "$root/scripts/lib.sh"

step "seL4 build dependencies"
examples/sel4/setup.sh

for arch in "${archs[@]}"; do
    step "seL4 $arch under QEMU, traced"
    examples/sel4/check.sh "$arch"
done
