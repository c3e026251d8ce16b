#!/usr/bin/env bash
# The real seL4 kernel traced by tracemark under QEMU: installs what the seL4 build needs
# (Debian packages, the Python modules of seL4's build in a venv under target/, Rust
# targets) and runs examples/sel4/check.sh for each architecture.
#
# Usage: scripts/test-sel4.sh [ARCH...]     (default: x86_64 aarch64)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(x86_64 aarch64)

. "$root/scripts/lib.sh"

step "seL4 build dependencies"
# One package per apt-get call: some combinations fail with "Resolve generated breaks".
pkgs=(cmake ninja-build gcc python3 python3-venv python3-jinja2 python3-ply python3-yaml
    python3-lxml libxml2-utils cpio device-tree-compiler qemu-system-x86 qemu-system-arm
    gcc-aarch64-linux-gnu patch libarchive13 binutils)
missing=()
for p in "${pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "test-sel4.sh: missing Debian packages: ${missing[*]}" >&2
        exit 1
    fi
    apt-get update -qq
    for p in "${missing[@]}"; do
        apt-get install -y -qq "$p" >/dev/null
    done
fi
venv="$root/target/sel4-venv"
if ! "$venv/bin/python3" -c 'import pyfdt, jsonschema, six, future, typing_extensions, guardonce, elftools, libarchive' 2>/dev/null; then
    /usr/bin/python3 -m venv --system-site-packages "$venv"
    "$venv/bin/pip" install -q pyfdt jsonschema six future typing_extensions guardonce \
        pyelftools libarchive-c
fi
rustup target add x86_64-unknown-none aarch64-unknown-none-softfloat >/dev/null

for arch in "${archs[@]}"; do
    step "seL4 $arch under QEMU, traced"
    examples/sel4/check.sh "$arch"
done
