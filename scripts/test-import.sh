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

. "$root/scripts/lib.sh"
need_pkg arm-linux-gnueabihf-gcc gcc-arm-linux-gnueabihf
need_pkg qemu-arm qemu-user

cargo build -q -p tracemark-cli --bin tracemark
cargo test -q -p tracemark-tests --test qemu_import -- --include-ignored
cargo test -q -p tracemark-import --lib
