#!/usr/bin/env bash
# tracemark import qemu on real QEMU logs: builds tests/qemu-import/prog.c as a static
# ARM Linux program (ARM and Thumb code), runs it under qemu-arm -d
# exec,cpu,in_asm[,nochain] and qemu-arm -strace, and checks the imported syscall table
# against strace (tests/tests/qemu_import.rs, whose tests that need those tools are
# #[ignore]d in a plain `cargo test` and run here with --include-ignored). Installs the
# cross compiler and qemu-user when missing; never skips.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

need_pkg() { # command debian-package
    command -v "$1" >/dev/null 2>&1 && return
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        # One package per apt-get call (combinations can fail with "Resolve generated breaks").
        apt-get install -y -qq "$2" >/dev/null
    else
        echo "test-import: $1 is missing: install $2 (Debian: apt-get install $2)" >&2
        exit 1
    fi
}
need_pkg arm-linux-gnueabihf-gcc gcc-arm-linux-gnueabihf
need_pkg qemu-arm qemu-user

cargo build -q -p tracemark-cli --bin tracemark
cargo test -q -p tracemark-tests --test qemu_import -- --include-ignored
cargo test -q -p tracemark-import --lib
