#!/usr/bin/env bash
# Installs what the seL4 example needs, and only what is missing, so that it is quick
# (about a second) when everything is there. check.sh and scripts/test-sel4.sh call it.
#
# Usage: examples/sel4/setup.sh
#
# * Debian packages: the kernel build (CMake, Ninja, gcc and the aarch64 cross gcc, the
#   Python modules seL4's build imports that Debian packages, dtc, cpio, xmllint) and
#   QEMU. Installed with apt-get when running as root; otherwise the missing ones are
#   named and the script fails.
# * A Python virtual environment, target/sel4-venv (under the workspace's target/, not
#   $CARGO_TARGET_DIR: build.sh looks for it there), with the modules of seL4's build
#   that Debian does not package, from PyPI. It sees the system's site packages.
# * The Rust targets the kernel's copy of the C ABI is built for.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

. "$root/scripts/lib.sh"
need_debs cmake ninja-build gcc python3 python3-venv python3-jinja2 python3-ply python3-yaml \
    python3-lxml libxml2-utils cpio device-tree-compiler qemu-system-x86 qemu-system-arm \
    gcc-aarch64-linux-gnu patch libarchive13 binutils

# The Python modules of seL4's build (kernel and elfloader) that Debian does not package.
venv="$root/target/sel4-venv"
modules="import pyfdt, jsonschema, six, future, typing_extensions, guardonce, elftools, libarchive"
if ! "$venv/bin/python3" -c "$modules" 2>/dev/null; then
    echo "setup.sh: creating the Python environment $venv"
    rm -rf "$venv"
    mkdir -p "$root/target"
    /usr/bin/python3 -m venv --system-site-packages "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check pyfdt jsonschema six future \
        typing_extensions guardonce pyelftools libarchive-c
    "$venv/bin/python3" -c "$modules"
fi

# The kernel's copy of the C ABI (build.sh): x86_64 and aarch64 bare-metal targets.
installed="$(rustup target list --installed)"
for t in x86_64-unknown-none aarch64-unknown-none-softfloat; do
    if ! grep -qx "$t" <<<"$installed"; then
        echo "setup.sh: adding the Rust target $t"
        rustup target add "$t" >/dev/null
    fi
done
