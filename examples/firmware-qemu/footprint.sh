#!/usr/bin/env bash
# Footprint of tracemark's recording path, from the `footprint` probe firmware
# (src/bin/footprint.rs: each recording call in a non-inlined `fp_*` function, clock =
# one 32-bit load), for thumbv7m-none-eabi, thumbv7em-none-eabihf and thumbv6m-none-eabi:
#
#   - .text: every function reachable (by call graph in the disassembly) from the
#     recording entry points fp_kernel_entry, fp_kernel_exit, fp_interrupt,
#     fp_function_entry, fp_user (the encoder's writer, its slow paths, and the
#     compiler-builtins it calls), and the instructions in each; the same for the
#     single-context calls (fp_masked_*, Tracer::masked) on their own;
#   - .rodata: constants those functions load from .rodata;
#   - panics and divisions: the script fails (exit status 1) if a panic function, a
#     divide instruction (udiv/sdiv) or a compiler-builtins division routine is reachable
#     from a recording entry point (fp_masked_* included);
#   - RAM per CPU beyond the ring buffer: size_of::<Tracer<_>>() (printed by the probe);
#   - instructions executed per call, measured under QEMU with -icount shift=0 (one
#     instruction per virtual ns; 80 per SysTick tick at 12.5 MHz), averaged over
#     20000 calls, loop overhead subtracted: cortex-m3 for v7m, cortex-m4 for v7em,
#     cortex-m0 for v6m (the lm3s6965evb board with another CPU model).
#
# Usage: examples/firmware-qemu/footprint.sh     (needs llvm-nm/llvm-objdump and qemu-system-arm)
# Env:   LLVM_NM, LLVM_OBJDUMP  tools (default: llvm-nm, llvm-objdump on PATH, else rustup's
#        llvm-tools), RUN_QEMU=0 to skip the dynamic counts, FEATURES="tracemark/small" to
#        build with those cargo features (the default build has none), TARGETS="..." to
#        measure only those targets.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"

tool() {
    local name=$1
    if command -v "$name" >/dev/null; then command -v "$name"; return; fi
    local sysroot
    sysroot="$(rustc --print sysroot)"
    echo "$sysroot/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/$name"
}
NM="${LLVM_NM:-$(tool llvm-nm)}"
OBJDUMP="${LLVM_OBJDUMP:-$(tool llvm-objdump)}"

declare -A CPU=([thumbv7m-none-eabi]=cortex-m3 [thumbv7em-none-eabihf]=cortex-m4 [thumbv6m-none-eabi]=cortex-m0)
for target in ${TARGETS:-thumbv7m-none-eabi thumbv7em-none-eabihf thumbv6m-none-eabi}; do
    cargo build --quiet --release --target "$target" --bin footprint ${FEATURES:+--features "$FEATURES"} 2>/dev/null
    elf="target/$target/release/footprint"
    echo "== $target ($elf, profile.release: opt-level=s, lto, codegen-units=1)"
    python3 - "$elf" "$NM" "$OBJDUMP" <<'PY'
import re, subprocess, sys
elf, nm, objdump = sys.argv[1:4]
syms = {}  # name -> (addr, size, type)
for line in subprocess.run([nm, "--print-size", elf], capture_output=True, text=True, check=True).stdout.splitlines():
    f = line.split()
    if len(f) == 4:
        syms[f[3]] = (int(f[0], 16), int(f[1], 16), f[2])
demangled = {}
for line in subprocess.run([nm, "-C", "--print-size", elf], capture_output=True, text=True, check=True).stdout.splitlines():
    f = line.split(maxsplit=3)
    if len(f) == 4:
        demangled[(int(f[0], 16), int(f[1], 16))] = f[3]
sections = {}
for line in subprocess.run([objdump, "-h", elf], capture_output=True, text=True, check=True).stdout.splitlines():
    f = line.split()
    if len(f) >= 4 and f[1].startswith("."):
        sections[f[1]] = (int(f[3], 16), int(f[2], 16))
ro_lo, ro_len = sections[".rodata"]
dis = subprocess.run([objdump, "-d", "--no-show-raw-insn", elf], capture_output=True, text=True, check=True).stdout
funcs, cur = {}, None
for line in dis.splitlines():
    m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
    # `$t`/`$d` are ARM mapping symbols (code/data inside a function), not functions.
    if m and not m.group(1).startswith("$"):
        cur = m.group(1); funcs[cur] = {"insns": 0, "calls": set(), "words": [], "divides": False}
        continue
    if cur is None or not re.match(r"^\s+[0-9a-f]+:", line):
        continue
    body = line.split(":", 1)[1].strip()
    if body.startswith(".word"):
        funcs[cur]["words"].append(int(body.split()[1], 16)); continue
    if body.startswith((".short", ".byte")) or body.startswith("<unknown>"):
        continue
    funcs[cur]["insns"] += 1
    if re.match(r"[su]div(\.w)?\s", body):
        funcs[cur]["divides"] = True
    m = re.search(r"\b(bl|b|b\.w|blx)\s+0x[0-9a-f]+ <([^+>]+)>", body)
    if m and m.group(2) != cur:
        funcs[cur]["calls"].add(m.group(2))
roots = ["fp_kernel_entry", "fp_kernel_exit", "fp_interrupt", "fp_function_entry", "fp_user",
         "fp_masked_kernel_entry", "fp_masked_kernel_exit", "fp_masked_interrupt",
         "fp_owned_interrupt"]
def name(f):
    a = syms.get(f)
    return demangled.get((a[0], a[1]), f) if a else f
# Panics are leaves: what they call is the firmware's panic handler, not the encoder.
is_panic = lambda f: "panicking" in name(f) or "panic_" in name(f)
seen, todo, panics = set(), list(roots), set()
while todo:
    f = todo.pop()
    if f in seen or f not in funcs: continue
    if is_panic(f):
        panics.add(name(f)); continue
    seen.add(f); todo.extend(funcs[f]["calls"])
def reach(start):
    out, todo = set(), list(start)
    while todo:
        f = todo.pop()
        if f in out or f not in funcs or is_panic(f): continue
        out.add(f); todo.extend(funcs[f]["calls"])
    return out
def text(fs): return sum(syms[f][1] for f in fs if f in syms)
# The size figures count the five nesting-safe calls (the single-context ones are checked
# for panics and divisions above, and their core writer is reported on its own).
plain = reach(roots[:5])
print(f"  recording path .text: {text(plain)} bytes in {len(plain)} functions")
# The core writer: what a firmware that records only kernel entries, exits and
# interrupts links (issue 9's code-size goal: at most 2 KiB on thumbv7em).
core_seen = reach(["fp_kernel_entry", "fp_kernel_exit", "fp_interrupt"])
print(f"  core writer .text (kernel entry, exit, interrupt): {text(core_seen)} bytes in {len(core_seen)} functions")
masked = reach(["fp_masked_kernel_entry", "fp_masked_kernel_exit", "fp_masked_interrupt"])
print(f"  single-context core writer .text (Tracer::masked: kernel entry, exit, interrupt): {text(masked)} bytes in {len(masked)} functions")
for f in sorted(seen, key=lambda f: -syms.get(f, (0, 0))[1]):
    print(f"    {syms.get(f, (0, 0))[1]:6d} B {funcs[f]['insns']:5d} insns  {name(f)[:90]}")
print(f"  panics reachable from the recording path: {', '.join(sorted(panics)) or 'none'}")
# Divisions: a divide instruction in a reachable function, or a reachable division
# routine of compiler-builtins (thumbv6m has no divide instruction).
is_div = lambda f: re.search(r"div(mod)?[sd]i3|aeabi_u?l?i?div|div_rem|udivmod", name(f)) is not None
divisions = sorted({name(f) for f in seen if funcs[f]["divides"] or is_div(f)})
print(f"  divisions reachable from the recording path: {', '.join(divisions) or 'none'}")
if panics or divisions:
    print("  FAIL: the recording path must not panic or divide", file=sys.stderr)
    failed = True
else:
    failed = False
ro = set()
for f in seen:
    for w in funcs[f]["words"]:
        if ro_lo <= w < ro_lo + ro_len:
            ro.add(w)
ro_syms = {s: v for s, v in syms.items() if v[2] in "rR" and any(v[0] <= w < v[0] + max(v[1], 1) for w in ro)}
print(f"  recording path .rodata: {sum(v[1] for v in ro_syms.values())} bytes ({len(ro)} constant addresses referenced; symbols: {', '.join(ro_syms) or 'none'})")
# Static instruction counts of the entry points and what each calls on its common path
# (callees other than the cold slow paths open_block / report_drops / count_drop).
cold = ("open_block", "report_drops", "count_drop")
for r in roots:
    fs, todo2 = set(), [r]
    while todo2:
        f = todo2.pop()
        if f in fs or f not in funcs or is_panic(f) or any(c in name(f) for c in cold): continue
        fs.add(f); todo2.extend(funcs[f]["calls"])
    print(f"  {r}: {funcs[r]['insns']} static instructions in the function, {sum(funcs[f]['insns'] for f in fs)} in it and the whole functions it calls outside the cold paths ({', '.join(sorted(name(f)[:40] for f in fs if f != r)) or '-'})")
sys.exit(1 if failed else 0)
PY
    if [ "${RUN_QEMU:-1}" != 0 ]; then
        timeout 120 qemu-system-arm -cpu "${CPU[$target]}" -machine lm3s6965evb -nographic \
            -semihosting-config enable=on,target=native -icount shift=0 -kernel "$elf" 2>/dev/null \
            | sed -n 's/^footprint: /  qemu '"${CPU[$target]}"': /p'
    fi
done
