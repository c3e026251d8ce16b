#!/usr/bin/env bash
# Builds the seL4 kernel from the pinned snapshots (shared/third-party beside the
# checkout, or $SEL4_THIRD_PARTY) with tracemark linked in, and the root task of this example.
#
# Usage: examples/sel4/build.sh ARCH VARIANT [--release]
#   ARCH     x86_64 (pc99, standalone kernel + root task as a multiboot module) or
#            aarch64 (qemu-arm-virt, kernel and root task in one elfloader image)
#   VARIANT  trace   KernelBenchmarksTracemark=ON: entries, exits, interrupts, thread switches
#            ftrace  trace + KernelTracemarkFunctions=ON (-finstrument-functions)
#            off     the same kernel and root task with tracing compiled out
#            track   off + seL4's own KernelBenchmarks=track_kernel_entries (aarch64)
#            util    trace + seL4's own KernelBenchmarks=track_utilisation (per-thread
#                    utilisation, for check.sh's cross-check of tracemark stats)
#   --release  a release kernel (KernelDebugBuild=OFF, KernelPrinting=OFF), in
#            target/ARCH/VARIANT-release: the tracer dumps at seL4_BenchmarkFinalizeLog
#            over the serial port itself, the root task ships its TRUTH line in the trace
# Env:     ROOT_CFLAGS  extra C flags for the root task (e.g. -DTM_BENCH for the
#                       Yield benchmark of examples/sel4/bench.sh)
#          OUT_NAME     build folder name under target/ARCH/ (default: VARIANT, or
#                       VARIANT-release)
#          SEL4_VANILLA=1  the snapshots as they are, without the patch and the new files
#                       (VARIANT off; check.sh compares it with the patched off build)
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
arch="${1:?usage: build.sh x86_64|aarch64 trace|ftrace|off|track|util [--release]}"
variant="${2:?usage: build.sh x86_64|aarch64 trace|ftrace|off|track|util [--release]}"
release=""
case "${3:-}" in
"") ;;
--release) release=1 ;;
*) echo "build.sh: unknown option $3" >&2; exit 2 ;;
esac
third="${SEL4_THIRD_PARTY:-$root/../shared/third-party}"
if [ ! -d "$third" ]; then
    echo "build.sh: no seL4 snapshots at $third: set SEL4_THIRD_PARTY to the folder holding seL4-*.tar.gz" >&2
    exit 1
fi
out="$here/target/$arch/${OUT_NAME:-$variant${release:+-release}}"
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
    if [ "${SEL4_VANILLA:-0}" != 1 ]; then
        (cd "$src/seL4" && patch -s -p1 <"$patch_file")
        cp -R "$new_files/." "$src/seL4/"
    fi
    touch "$stamp"
fi

# 2. The tracemark C ABI as a static library for the kernel's target, installed where the
#    kernel's CMake finds it: TRACEMARK_DIR (include/tracemark.h and tracemark_inline.h,
#    lib/libtracemark_c.a),
#    here tracemark/ in the kernel build folder, given relative to it.
tm_dir="$out/kernel/tracemark"
tm_dir_used=""
if [ "$variant" = trace ] || [ "$variant" = ftrace ] || [ "$variant" = util ]; then
    tm_dir_used=1
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
    full="$rust_dir/$rust_target/release/libtracemark_c.a"
    mkdir -p "$tm_dir/include" "$tm_dir/lib"
    # Copied only when it changed, so that the kernel is not recompiled for nothing.
    for h in tracemark.h tracemark_inline.h; do
        cmp -s "$root/encoder/include/$h" "$tm_dir/include/$h" ||
            cp "$root/encoder/include/$h" "$tm_dir/include/"
    done
    # The kernel's CMake needs the library to exist when it configures; lean_tracemark
    # below replaces it with what the kernel calls before the kernel is linked.
    [ -f "$tm_dir/lib/libtracemark_c.a" ] || cp "$full" "$tm_dir/lib/libtracemark_c.a"
fi

# Only what the kernel calls: every exported tm_* function stays in a static library (the
# whole C ABI, 65 functions, 31.8 KB of code on x86_64), and the kernel's linker does not
# collect garbage. A relocatable link with --gc-sections, rooted at the tm_* functions the
# compiled kernel (its single object, $1) leaves undefined, keeps those and what they
# reach; the kernel links against that. Called between compiling and linking the kernel.
lean_tracemark() {
    local obj="$1" binutils="" roots
    [ "$arch" = aarch64 ] && binutils=aarch64-linux-gnu-
    mapfile -t roots < <(nm -u "$obj" | awk '$2 ~ /^tm_/ { print $2 }')
    if [ "${#roots[@]}" = 0 ]; then
        echo "build.sh: the kernel object $obj calls no tm_* function" >&2
        exit 1
    fi
    # No debug information, and not the LLVM bitcode that compiler_builtins' objects embed
    # (.llvmbc: binutils' ar would hand it to the LLVM plugin, which rejects it).
    "${binutils}ld" -r --gc-sections --strip-debug "${roots[@]/#/-u}" \
        -o "$tm_dir/lib/tracemark.o" "$full"
    "${binutils}objcopy" -R .llvmbc -R .llvmcmd "$tm_dir/lib/tracemark.o"
    rm -f "$tm_dir/lib/libtracemark_c.a.new"
    "${binutils}ar" rcs "$tm_dir/lib/libtracemark_c.a.new" "$tm_dir/lib/tracemark.o"
    # Replaced only when it changed: the kernel relinks when the library is newer.
    if ! cmp -s "$tm_dir/lib/libtracemark_c.a.new" "$tm_dir/lib/libtracemark_c.a"; then
        mv "$tm_dir/lib/libtracemark_c.a.new" "$tm_dir/lib/libtracemark_c.a"
    fi
    rm -f "$tm_dir/lib/tracemark.o" "$tm_dir/lib/libtracemark_c.a.new"
}

# The root task of the trace variant ships snapshots of the ring itself (root.c,
# TM_SNAPSHOTS): it links the same library for tm_frame_uart, which only reads memory.
root_lib=""
case "$variant" in trace | util) root_lib="$full" ;; esac

# 3. Kernel configuration.
if [ -n "$release" ]; then
    # A release kernel: no debug build, no printing (SEL4_CMAKE_OPTS may turn printing
    # back on, as bench.sh does for the root task's BENCH lines).
    opts=(-DKernelDebugBuild=OFF -DKernelPrinting=OFF)
else
    opts=(-DKernelDebugBuild=ON -DKernelPrinting=ON)
fi
opts+=(-DKernelVerificationBuild=OFF -DLibSel4UseThreadLocals=OFF)
case "$variant" in
trace) opts+=(-DKernelBenchmarksTracemark=ON -DTRACEMARK_DIR=tracemark) ;;
# A 2 MiB ring: the counted workload's function records fill 45% of it (x86_64) under
# run.sh's -icount, below the half that check_trace.py --functions allows.
ftrace) opts+=(-DKernelBenchmarksTracemark=ON -DTRACEMARK_DIR=tracemark -DKernelTracemarkFunctions=ON
    -DKernelTracemarkRingBytes=2097152) ;;
util) opts+=(-DKernelBenchmarksTracemark=ON -DTRACEMARK_DIR=tracemark -DKernelBenchmarks=track_utilisation) ;;
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
    if [ -n "$tm_dir_used" ]; then
        ninja -C "$kbuild" CMakeFiles/kernel.elf.dir/kernel_all.c.obj >"$kbuild/ninja.log" ||
            { tail -n 40 "$kbuild/ninja.log"; exit 1; }
        lean_tracemark "$kbuild/CMakeFiles/kernel.elf.dir/kernel_all.c.obj"
    fi
    ninja -C "$kbuild" kernel.elf sel4_generated >>"$kbuild/ninja.log" ||
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
        -I"$root/encoder/include" \
        -o "$out/root.elf" "$here/roottask/start_x86_64.S" "$here/roottask/root.c" ${root_lib}
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
            "-DROOT_CFLAGS=${ROOT_CFLAGS:-}" "-DROOT_LIBS=$root_lib" \
            "-DROOT_INCLUDE=$root/encoder/include" "${opts[@]}" "$here/aarch64" >cmake.log) ||
            { cat "$kbuild/cmake.log"; exit 1; }
    fi
    if [ -n "$tm_dir_used" ]; then
        ninja -C "$kbuild" kernel/CMakeFiles/kernel.elf.dir/kernel_all.c.obj >"$kbuild/ninja.log" ||
            { tail -n 40 "$kbuild/ninja.log"; exit 1; }
        lean_tracemark "$kbuild/kernel/CMakeFiles/kernel.elf.dir/kernel_all.c.obj"
    fi
    ninja -C "$kbuild" >>"$kbuild/ninja.log" || { tail -n 40 "$kbuild/ninja.log"; exit 1; }
    cp "$kbuild/images/root-image-arm-qemu-arm-virt" "$out/image.elf"
    cp "$kbuild/root" "$out/root.elf"
fi
# run.sh stops QEMU at the end of the run: "halting..." of seL4_DebugHalt on a debug kernel;
# a release kernel has none (release-run marks it).
if [ -n "$release" ]; then touch "$out/release-run"; else rm -f "$out/release-run"; fi
echo "$cores" >"$out/cores"
echo "build.sh: $arch $variant${release:+ (release)} ($cores core(s)) -> $out"
