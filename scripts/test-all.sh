#!/usr/bin/env bash
# Runs every test of the project: formatting, lints and docs, the workspace tests (unit,
# property, stress, CLI integration, the C kernel), loom models, cross-target builds of
# the encoder, the C header check, the Cortex-M firmware under QEMU, miri over the ring
# tests, and short fuzz runs. Installs the Rust targets and cargo tools it needs.
#
# Usage: scripts/test-all.sh          (README's test command; .ci/run calls it)
# Env:   FUZZ_SECONDS   seconds per fuzz target (default 10)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TERM_COLOR=never
. "$root/scripts/lib.sh"

need_cargo_tool() { # binary crate
    command -v "$1" >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/$1" ] || cargo install --locked "$2"
}

step "toolchain: Rust targets and cargo tools"
rustup target add thumbv6m-none-eabi thumbv7m-none-eabi thumbv7em-none-eabihf \
    aarch64-unknown-none riscv32imac-unknown-none-elf >/dev/null
need_cargo_tool cbindgen cbindgen
need_cargo_tool defmt-print defmt-print
have_nightly=0
if rustup toolchain list | grep -q '^nightly'; then
    rustup component add --toolchain nightly miri rust-src >/dev/null 2>&1 && have_nightly=1
    need_cargo_tool cargo-fuzz cargo-fuzz
fi
need_pkg qemu-system-arm qemu-system-arm

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# Public items are documented, and the docs' links resolve.
RUSTDOCFLAGS="-D warnings" cargo doc -q --no-deps --workspace
# The encoder's optional embassy adapter (feature rtos-trace).
cargo clippy -p tracemark --features rtos-trace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc -q --no-deps -p tracemark --features rtos-trace
# The flash-first build (feature `compact`: one shared copy of the common path).
cargo clippy -p tracemark -p tracemark-c --features tracemark/compact --all-targets -- -D warnings

step "workspace tests (unit, property, stress, CLI, C kernel)"
cargo test --workspace
cargo test -p tracemark --features rtos-trace --test rtos_trace
# The encoder's tests through the `compact` build's shared common path: the same bytes
# (against record::encode), nesting at every preemption point, one clock read per record.
cargo test -p tracemark --features compact
# The C ABI's tests (C programs, rings decoded on the host) over the compact library.
cargo test -p tracemark-c --features compact

step "loom models of reserve/commit"
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR="$root/target/loom" \
    cargo test -p tracemark --release --lib loom

step "encoder builds for bare-metal targets"
for target in thumbv6m-none-eabi thumbv7m-none-eabi thumbv7em-none-eabihf \
    aarch64-unknown-none riscv32imac-unknown-none-elf; do
    cargo build -q --release -p tracemark -p tracemark-format --target "$target"
    cargo build -q --release -p tracemark-format --features defmt --target "$target"
    cargo build -q --release -p tracemark --features compact --target "$target"
    echo "ok   $target"
done
cargo build -q --release -p tracemark-c --target thumbv7em-none-eabihf --features panic-handler
echo "ok   tracemark-c staticlib for thumbv7em-none-eabihf"

step "C header is what cbindgen generates"
encoder/c-api/check-header.sh

step "C library as shipped: lean build, global symbols, link with --gc-sections"; scripts/test-capi.sh

step "Cortex-M firmware under QEMU, decoded on the host"
examples/firmware-qemu/check.sh

step "FreeRTOS traced under QEMU (mps2-an385) against its own truth and QEMU's -d int log (issue 17)"
examples/freertos/check.sh
# The same firmware and checks with the flash-first library (tracemark-c feature compact).
TM_FEATURES=compact examples/freertos/check.sh

step "embassy firmware under QEMU, traced through rtos-trace: task and poll counts, names (issue 17)"
examples/firmware-qemu/check-embassy.sh

step "tracemark import qemu: real qemu-arm logs against qemu-arm -strace"; scripts/test-import.sh
step "tracemark capture: the QEMU firmware under --exec and over --tcp"; scripts/test-capture.sh
step "tracemark capture --gdb: live capture of a running QEMU firmware against truth"; examples/firmware-qemu/check-live.sh
scripts/test-sel4.sh # the seL4 kernel traced under QEMU (x86_64, aarch64): examples/sel4
scripts/test-export.sh  # export formats read back by independent readers, --elf names, seL4's SWITCH records (issue 10)
scripts/test-encoder-speed.sh # the recording path: no panic, no division (issue 9)

if [ "$have_nightly" = 1 ]; then
    step "miri over the ring tests"
    # The library tests (nesting at every preemption point, sampled) and the round trips;
    # the property tests take ~6 minutes under miri and run natively above.
    MIRIFLAGS="-Zmiri-ignore-leaks -Zmiri-disable-isolation" CARGO_TARGET_DIR="$root/target/miri" \
        cargo +nightly miri test -p tracemark --lib --test roundtrip

    step "fuzz targets build and run (${FUZZ_SECONDS:-10} s each)"
    (cd fuzz && cargo +nightly fuzz build -O -s none >/dev/null)
    for t in roundtrip record_decoder dump_reader index_reader; do
        (cd fuzz && cargo +nightly fuzz run -O -s none "$t" -- \
            -max_total_time="${FUZZ_SECONDS:-10}" 2>&1 | grep -E '^Done|ERROR|panicked') 
    done
else
    echo "note: no nightly toolchain; miri and fuzz steps skipped" >&2
fi


step "all tests passed"
