#!/usr/bin/env bash
# Builds the seL4 kernel from the pinned snapshots (shared/third-party beside the
# checkout, or $SEL4_THIRD_PARTY) with tracemark linked in, and the root task of this example.
#
# Usage: examples/sel4/build.sh ARCH VARIANT
#   ARCH     x86_64 (pc99, standalone kernel + root task as a multiboot module) or
#            aarch64 (qemu-arm-virt, kernel and root task in one elfloader image)
#   VARIANT  trace   KernelTracemark=ON: entries, exits, interrupts, thread switches
#            ftrace  trace + KernelTracemarkFunctions=ON (-finstrument-functions)
#            off     the same kernel and root task with tracing compiled out
#            track   off + seL4's own KernelBenchmarks=track_kernel_entries (aarch64)
# Env:     ROOT_CFLAGS  extra C flags for the root task (e.g. -DTM_BENCH for the
#                       Yield benchmark of examples/sel4/bench.sh)
#          OUT_NAME     build folder name under target/ARCH/ (default: VARIANT)
#          SEL4_CORES   number of cores (default 1): KernelMaxNumNodes, and on aarch64 the
#                       device tree of a QEMU virt machine with that many cores and PSCI
#                       through HVC (virtualization=on, which run.sh then boots); written
#                       to the build folder's `cores` file, which run.sh reads for -smp.
#                       Read when the build folder is configured: give it its own OUT_NAME
#          SEL4_CMAKE_OPTS  extra kernel CMake options, split at spaces (e.g.
#                       -DKernelTracemarkClock=cycles; for several cores use SEL4_CORES);
#                       read when the build folder is configured, so give such a build
#                       its own OUT_NAME
#
# Everything goes under examples/sel4/target/ARCH/VARIANT/: the unpacked and patched
# sources (src/), the kernel build (kernel/), the root task (root.elf) and the image QEMU
# boots (image.elf; on x86_64 also root.elf as -initrd). The snapshots are never copied
# into the project tree.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
arch="${1:?usage: build.sh x86_64|aarch64 trace|ftrace|off|track}"
variant="${2:?usage: build.sh x86_64|aarch64 trace|ftrace|off|track}"
third="${SEL4_THIRD_PARTY:-$root/../shared/third-party}"
if [ ! -d "$third" ]; then
    echo "build.sh: no seL4 snapshots at $third: set SEL4_THIRD_PARTY to the folder holding seL4-*.tar.gz" >&2
    exit 1
fi
out="$here/target/$arch/${OUT_NAME:-$variant}"
src="$out/src"
venv="$root/target/sel4-venv"
export PATH="$venv/bin:$PATH"

case "$arch" in
x86_64) rust_target=x86_64-unknown-none ;;
aarch64) rust_target=aarch64-unknown-none-softfloat ;;
*) echo "build.sh: unknown ARCH $arch" >&2; exit 2 ;;
esac

# 1. Sources: unpack the snapshots (once per build folder), apply our patch to the
#    kernel's own files and add our new ones (kernel/files/, laid out as in the seL4 tree).
stamp="$src/.tracemark-patched"
patch_file="$here/kernel/tracemark.patch"
new_files="$here/kernel/files"
if [ ! -f "$stamp" ] || [ "$patch_file" -nt "$stamp" ] ||
    [ -n "$(find "$new_files" -newer "$stamp" -print -quit)" ]; then
    rm -rf "$src"
    mkdir -p "$src"
    tar xzf "$third"/seL4-*.tar.gz -C "$src"
    tar xzf "$third"/seL4_tools-*.tar.gz -C "$src"
    tar xzf "$third"/util_libs-libcpio-*.tar.gz -C "$src"
    (cd "$src/seL4" && patch -s -p1 <"$patch_file")
    cp -R "$new_files/." "$src/seL4/"
    touch "$stamp"
fi

# 2. The tracemark C ABI as a static library for the kernel's target.
lib=""
if [ "$variant" = trace ] || [ "$variant" = ftrace ]; then
    rust_dir="$root/target/sel4-rust"
    # Fat LTO, with the static library as the only crate type (the package also builds
    # an rlib, and rustc skips LTO when it does): the library then holds only what the
    # exported tm_* functions reach. Without it whole codegen units of the format crate
    # (UART parser, float formatting, ...) come along, and the kernel's linker, which
    # does not use --gc-sections, keeps them: 170 KB of code instead of 12 KB. Abort on
    # panic: the panic handler loops, nothing unwinds in a kernel.
    RUSTFLAGS="-C relocation-model=static" CARGO_TARGET_DIR="$rust_dir" \
        CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_PANIC=abort \
        CARGO_PROFILE_RELEASE_DEBUG=0 cargo rustc -q --release \
        --manifest-path "$root/Cargo.toml" -p tracemark-c --no-default-features \
        --features panic-handler --target "$rust_target" --crate-type staticlib
    lib="$rust_dir/$rust_target/release/libtracemark_c.a"
fi

# 3. Kernel configuration.
opts=(-DKernelDebugBuild=ON -DKernelPrinting=ON -DKernelVerificationBuild=OFF
    -DLibSel4UseThreadLocals=OFF)
case "$variant" in
trace) opts+=(-DKernelTracemark=ON "-DKernelTracemarkLibrary=$lib"
    "-DKernelTracemarkInclude=$root/encoder/include") ;;
# A 2 MiB ring: the counted workload's function records fill 45% of it (x86_64) under
# run.sh's -icount, below the half that check_trace.py --functions allows.
ftrace) opts+=(-DKernelTracemark=ON -DKernelTracemarkFunctions=ON "-DKernelTracemarkLibrary=$lib"
    "-DKernelTracemarkInclude=$root/encoder/include" -DKernelTracemarkRingBytes=2097152) ;;
off) ;;
track) opts+=(-DKernelBenchmarks=track_kernel_entries) ;;
*) echo "build.sh: unknown VARIANT $variant" >&2; exit 2 ;;
esac
cores="${SEL4_CORES:-1}"
if ! [[ "$cores" =~ ^[1-8]$ ]]; then
    echo "build.sh: SEL4_CORES=$cores: give 1 to 8 (tracemark's C ABI has 8 CPU slots)" >&2
    exit 2
fi
if [ "$cores" != 1 ]; then
    opts+=("-DKernelMaxNumNodes=$cores")
fi
if [ -n "${SEL4_CMAKE_OPTS:-}" ]; then
    read -ra extra <<<"$SEL4_CMAKE_OPTS"
    opts+=("${extra[@]}")
fi

kbuild="$out/kernel"
mkdir -p "$kbuild"
# A build folder configured for another number of cores is configured again.
if [ -f "$out/cores" ] && [ "$(cat "$out/cores")" != "$cores" ]; then
    rm -f "$kbuild/build.ninja" "$kbuild/CMakeCache.txt"
fi
# Configure again when the sources were patched anew (the options may have changed).
if [ -f "$kbuild/build.ninja" ] && [ "$stamp" -nt "$kbuild/build.ninja" ]; then
    rm -f "$kbuild/build.ninja" "$kbuild/CMakeCache.txt"
fi
if [ "$arch" = x86_64 ]; then
    if [ ! -f "$kbuild/build.ninja" ]; then
        (cd "$kbuild" && cmake -G Ninja -DCMAKE_TOOLCHAIN_FILE="$src/seL4/gcc.cmake" \
            -DKernelPlatform=pc99 -DKernelSel4Arch=x86_64 -DKernelSupportPCID=OFF \
            -DKernelIOMMU=OFF -DKernelFPU=FXSAVE -DKernelFSGSBase=msr "${opts[@]}" \
            "$src/seL4" >cmake.log) || { cat "$kbuild/cmake.log"; exit 1; }
    fi
    ninja -C "$kbuild" kernel.elf sel4_generated >"$kbuild/ninja.log" ||
        { tail -n 40 "$kbuild/ninja.log"; exit 1; }
    objcopy -O elf32-i386 "$kbuild/kernel.elf" "$out/image.elf"
    k="$src/seL4"
    b="$kbuild"
    inc=(-I"$k/libsel4/include" -I"$k/libsel4/arch_include/x86"
        -I"$k/libsel4/sel4_arch_include/x86_64" -I"$k/libsel4/sel4_plat_include/pc99"
        -I"$k/libsel4/mode_include/64" -I"$b/libsel4/include" -I"$b/libsel4/arch_include/x86"
        -I"$b/libsel4/sel4_arch_include/x86_64" -I"$b/libsel4/autoconf"
        -I"$b/libsel4/gen_config" -I"$b/gen_config")
    # shellcheck disable=SC2086
    gcc -O2 -Wall -Werror -ffreestanding -fno-builtin -nostdlib -static -fno-pic -no-pie \
        -fno-stack-protector -mno-red-zone -mgeneral-regs-only "${inc[@]}" ${ROOT_CFLAGS:-} \
        -Wl,--build-id=none -Wl,-Ttext-segment=0x400000 -Wl,-z,noexecstack \
        -o "$out/root.elf" "$here/roottask/start_x86_64.S" "$here/roottask/root.c"
else
    if [ "$cores" != 1 ]; then
        # seL4 boots the other cores through PSCI, which the elfloader calls with HVC:
        # QEMU's virt machine takes it only with virtualization=on (run.sh), and the
        # device tree must be that machine's (else "HVC is not supported for PSCI!").
        opts+=("-DQEMU_MACHINE=virt,secure=off,virtualization=on,gic-version=2,dumpdtb=$kbuild/qemu-arm-virt.dtb")
    fi
    if [ ! -f "$kbuild/build.ninja" ]; then
        (cd "$kbuild" && cmake -G Ninja -DCMAKE_TOOLCHAIN_FILE="$src/seL4/gcc.cmake" \
            -DCROSS_COMPILER_PREFIX=aarch64-linux-gnu- -DKernelPlatform=qemu-arm-virt \
            -DKernelSel4Arch=aarch64 -DKernelArmCPU=cortex-a53 -DQEMU_MEMORY=1024 \
            -DKernelArmExportVCNTUser=ON \
            -DElfloaderImage=elf "-DSEL4_SRC=$src" "-DROOT_DIR=$here/roottask" \
            "-DROOT_CFLAGS=${ROOT_CFLAGS:-}" "${opts[@]}" "$here/aarch64" >cmake.log) ||
            { cat "$kbuild/cmake.log"; exit 1; }
    fi
    ninja -C "$kbuild" >"$kbuild/ninja.log" || { tail -n 40 "$kbuild/ninja.log"; exit 1; }
    cp "$kbuild/images/root-image-arm-qemu-arm-virt" "$out/image.elf"
    cp "$kbuild/root" "$out/root.elf"
fi
echo "$cores" >"$out/cores"
echo "build.sh: $arch $variant ($cores core(s)) -> $out"
