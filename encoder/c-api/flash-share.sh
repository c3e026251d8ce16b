#!/usr/bin/env bash
# Flash and RAM share of tracemark in a Cortex-M3 firmware, from the linker map, by
# symbol (issue 15, goal 2). Links encoder/c-api/tests/c/flash_share.c (the calls an
# RTOS's trace hooks make: tm_init, kernel entry and exit, interrupt, thread switch, user
# event) with the lean thumbv7m library, with arm-none-eabi-gcc -Os and --gc-sections,
# twice: without and with tm_dump_uart. Prints each of tracemark's symbols with its
# size, the totals (.text + .rodata: flash; .data + .bss: RAM, the ring excluded), and
# any Rust panic, formatting or 64-bit division code linked. A measurement: it fails
# only if the firmware does not build (the goals are not met yet: BENCHMARKS.md).
#
# Usage: encoder/c-api/flash-share.sh [LIB]   (LIB: a thumbv7m libtracemark_c.a;
#        default: built by build-lean.sh for thumbv7m-none-eabi)
# Env:   FEATURES  more tracemark-c features for the default library, e.g. FEATURES=compact
#        (one shared copy of the recording calls' common path: less flash, more
#        instructions per record; BENCHMARKS.md, "Target cost (issue 15): the `compact` build")
# Goals (BENCHMARKS.md, "Target cost"): at most 3 KiB without the dump, at most 1.5 KiB
# more with it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
lib="${1:-$("$here/build-lean.sh" --target thumbv7m-none-eabi --no-default-features \
    --features "panic-handler${FEATURES:+,$FEATURES}")}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for variant in hooks hooks+dump; do
    defs=()
    [ "$variant" = hooks+dump ] && defs=(-DTM_FLASH_DUMP)
    arm-none-eabi-gcc -mcpu=cortex-m3 -mthumb -Os -ffreestanding -nostdlib -nostartfiles \
        -ffunction-sections -fdata-sections "${defs[@]}" -I "$repo/encoder/include" \
        "$repo/encoder/c-api/tests/c/flash_share.c" "$lib" -lgcc \
        -Wl,--gc-sections -Wl,-z,noexecstack -Wl,-Ttext=0x0 -Wl,-Tdata=0x20000000 -Wl,-e,Reset_Handler \
        -Wl,-Map="$work/$variant.map" -o "$work/$variant.elf"
    python3 - "$work/$variant.map" "$variant" <<'PY'
import re, sys
path, variant = sys.argv[1:]
lines = open(path).read().split("\n")
# The map's "Linker script and memory map" part: an input section line, maybe wrapped
# (its name alone, then address, size and file on the next line).
start = next(i for i, l in enumerate(lines) if l.startswith("Linker script and memory map"))
sizes = {}
pending = None
for l in lines[start:]:
    m = re.match(r"^ (\.[\w.$]+)\s*$", l)
    if m:
        pending = m.group(1)
        continue
    m = re.match(r"^ (\.[\w.$]+)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)$", l)
    if m:
        name = m.group(1) or pending
        pending = None
        size, obj = int(m.group(3), 16), m.group(4)
        if name and size and "libtracemark_c" in obj:
            sizes[name] = sizes.get(name, 0) + size
        continue
    pending = None
flash = {n: s for n, s in sizes.items() if n.startswith((".text", ".rodata"))}
ram = {n: s for n, s in sizes.items() if n.startswith((".data", ".bss"))}
print(f"== {variant}: tracemark's input sections in the firmware, by size")
for n, s in sorted(flash.items(), key=lambda x: -x[1]):
    print(f"  {s:6d}  {n}")
print(f"  flash (.text + .rodata): {sum(flash.values())} bytes; RAM (.data + .bss): {sum(ram.values())} bytes")
bad = [n for n in flash if re.search(r"panic|slice_index_fail|fmt|core\.\.fmt|u64_div_rem|udivmoddi|aeabi_uldivmod|divdi3", n)]
if bad:
    print(f"  panic, formatting or 64-bit division code linked: {len(bad)} sections, {sum(flash[n] for n in bad)} bytes")
PY
done
