#!/usr/bin/env bash
# The real seL4 kernel traced by tracemark under QEMU: installs what the seL4 build needs
# (examples/sel4/setup.sh: Debian packages, the Python modules of seL4's build in a venv
# under target/, Rust targets; check.sh calls it too) and runs examples/sel4/check.sh
# for each configuration.
#
# Usage: scripts/test-sel4.sh [ARCH[:CORES][:release]...]   (default: x86_64 aarch64 x86_64:2)
#   ARCH:CORES runs check.sh ARCH --cores CORES (a multicore kernel); a :release suffix
#   adds --release (a release kernel: ARCH:release on one core, ARCH:CORES:release on
#   2 to 4). CI runs the default: both architectures on one core, and x86_64 on two; the
#   other configurations (aarch64:2, x86_64:4, aarch64:4, and the release ones, e.g.
#   x86_64:release x86_64:2:release aarch64:2:release) run on demand (README, Tracing
#   seL4).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(x86_64 aarch64 x86_64:2)

. "$root/scripts/lib.sh"

step "seL4 build dependencies"
examples/sel4/setup.sh

for config in "${archs[@]}"; do
    IFS=: read -ra parts <<<"$config"
    arch="${parts[0]}"
    cores=1
    release=()
    for p in "${parts[@]:1}"; do
        case "$p" in
        release) release=(--release) ;;
        [1-8]) cores="$p" ;;
        *) echo "test-sel4.sh: $config: give ARCH[:CORES][:release]" >&2; exit 2 ;;
        esac
    done
    step "seL4 $arch, $cores core(s)${release:+, release kernel}, under QEMU, traced"
    examples/sel4/check.sh "$arch" --cores "$cores" "${release[@]}"
done
