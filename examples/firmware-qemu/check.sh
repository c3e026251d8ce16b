#!/usr/bin/env bash
# Runs the trace_demo firmware under QEMU (run.sh), decodes the ring it dumped and checks
# it against the truth file the firmware wrote:
#   - the ring framed over UART0 is byte-identical to the semihosting dump;
#   - every record decodes, no block is torn, nothing was dropped or overwritten;
#   - the count of every kind equals what the firmware recorded (Outcome::Written);
#   - every kernel-exit duration equals the duration the firmware measured from the same
#     clock readings (it records it in a USER event right after the exit), and their sum
#     equals the truth file's;
#   - SysTick interrupts landed inside other records (between reservation and commit)
#     and the ring is still intact.
#
# Usage: examples/firmware-qemu/check.sh
# Env:   DECODE  command that prints a ring image as text (default: the tracemark-c
#                decode_ring example, built in the root workspace).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$here/../.."

log="$here/target/trace-uart.log"
mkdir -p "$here/target" # a fresh checkout has none until the first build
"$here/run.sh" trace_demo | tee "$log" | grep -v '^@TM:'
ring="$here/target/trace-ring.bin"
truth="$here/target/trace-truth.txt"

if [ -z "${DECODE:-}" ]; then
    (cd "$root" && cargo build -q -p tracemark-c --example decode_ring 2>/dev/null)
    target_dir="${CARGO_TARGET_DIR:-$root/target}"
    DECODE="$target_dir/debug/examples/decode_ring"
fi
decoded="$here/target/trace-decoded.txt"
# The ring framed over UART0 (QEMU's stdout, between log lines) must be byte-identical
# to the one written through semihosting.
$DECODE --from-log "$log" --save "$here/target/trace-ring-uart.bin" > "$decoded"
cmp "$ring" "$here/target/trace-ring-uart.bin"
echo "ok   the UART-framed dump equals the semihosting dump ($(stat -c %s "$ring") bytes)"

python3 - "$truth" "$decoded" <<'PY'
import sys
truth = dict(l.strip().split("=", 1) for l in open(sys.argv[1]) if "=" in l)
lines = open(sys.argv[2]).read().splitlines()
header = dict(f.split("=", 1) for f in lines[0].split()[1:])
fail = []
def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond: fail.append(what)

check(truth["result"] == "PASS", "firmware reports PASS")
check(header["dropped"] == "0" and header["overwritten"] == "0", "nothing dropped or overwritten")
check(header["clock_hz"] == truth["clock_hz"], f"clock_hz {header['clock_hz']}")
counts = {}
exits, pending, durations_ok = [], None, 0
last_ts = 0
for l in lines[1:]:
    ts, kind, *rest = l.split()
    if int(ts) < last_ts:
        check(False, f"time goes back at: {l}")
    last_ts = int(ts)
    counts[kind] = counts.get(kind, 0) + 1
    if kind == "KEXIT":
        if not rest[0].startswith("ticks=") or rest[0] == "ticks=0":
            check(False, f"exit has a non-zero duration: {l}")
        pending = int(rest[0].split("=")[1])
        exits.append(pending)
    elif kind == "USER" and rest[0] == "id=1":
        measured = int.from_bytes(bytes.fromhex(rest[1].split("=")[1]), "little")
        if pending is None or pending != measured:
            check(False, f"exit duration {pending} == measured {measured}")
        else:
            durations_ok += 1
        pending = None
for kind in ["KENTRY", "KEXIT", "IRQ", "FENTRY", "FEXIT", "USER", "IMAGE"]:
    check(counts.get(kind, 0) == int(truth[kind]), f"{kind}: decoded {counts.get(kind, 0)}, recorded {truth[kind]}")
check(counts.get("LOST", 0) == 0, "no LOST records")
check(durations_ok == int(truth["kexit_measured"]), f"{durations_ok} exit durations equal the firmware's measurements")
check(sum(exits) == int(truth["kexit_duration_sum"]), f"sum of exit durations {sum(exits)} == {truth['kexit_duration_sum']}")
check(int(truth["irq_preempted_record"]) > 0,
      f"{truth['irq_preempted_record']} of {truth['irq_hook_calls']} interrupts landed inside a record in progress")
if fail:
    print(f"check.sh: {len(fail)} check(s) failed"); sys.exit(1)
print("check.sh: trace_demo PASS")
PY

# The host tool: `tracemark stats` reads the raw QEMU serial log (framed dump among the
# firmware's log lines) and must count exactly what the firmware recorded, with the same
# sum of kernel-exit durations.
(cd "$root" && cargo build -q -p tracemark-cli --bin tracemark)
TRACEMARK="${TRACEMARK:-${CARGO_TARGET_DIR:-$root/target}/debug/tracemark}"
"$TRACEMARK" stats --json "$log" > "$here/target/trace-stats.json"
python3 - "$truth" "$here/target/trace-stats.json" <<'PY'
import json, sys
truth = dict(l.strip().split("=", 1) for l in open(sys.argv[1]) if "=" in l)
stats = json.load(open(sys.argv[2]))
fail = []
def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond: fail.append(what)
per_kind = stats["records_per_kind"]
for kind in ["KENTRY", "KEXIT", "IRQ", "FENTRY", "FEXIT", "USER", "IMAGE"]:
    check(per_kind.get(kind, 0) == int(truth[kind]), f"tracemark stats {kind}: {per_kind.get(kind, 0)} == {truth[kind]}")
check(stats["lost"] == 0 and stats["torn_blocks"] == 0, "tracemark stats: nothing lost, no torn block")
total = sum(s["duration_sum_ticks"] for s in stats["syscalls"])
check(total == int(truth["kexit_duration_sum"]), f"tracemark stats: exit duration sum {total} == {truth['kexit_duration_sum']}")
if fail:
    print(f"check.sh: {len(fail)} tracemark check(s) failed"); sys.exit(1)
PY

# Symbols (issue 10): `tracemark decode --elf` names every function record (the
# addresses of the demo's step_* functions, Thumb bit set, which the decoder masks) as
# `nm` names them; `stats --elf` ranks the same names.
elf="$here/target/thumbv7m-none-eabi/release/trace_demo"
"$TRACEMARK" decode "$log" --elf "$elf" --kind FENTRY,FEXIT --format json > "$here/target/trace-functions.jsonl"
"$TRACEMARK" stats "$log" --elf "$elf" --json > "$here/target/trace-stats-elf.json"
nm -C "$elf" > "$here/target/trace-demo.nm"
python3 - "$here/target/trace-demo.nm" "$here/target/trace-functions.jsonl" "$here/target/trace-stats-elf.json" <<'PY'
import json, sys
nm = {}
for l in open(sys.argv[1]):
    p = l.split(maxsplit=2)
    # ARM mapping symbols ($t, $d) mark code and data, not functions.
    if len(p) == 3 and p[1] in "tT" and not p[2].startswith("$"):
        # nm prints Thumb functions with the Thumb bit set; key both ways.
        nm.setdefault(int(p[0], 16), p[2].strip())
        nm.setdefault(int(p[0], 16) & ~1, p[2].strip())
recs = [json.loads(l) for l in open(sys.argv[2])]
named = [r for r in recs if nm.get(r["func"] & ~1, "").endswith(("step_lookup", "step_decode", "step_invoke", "step_reply"))]
bad = [r for r in recs if r.get("symbol") != nm.get(r["func"] & ~1)]
hot = json.load(open(sys.argv[3]))["hot_functions"]["by_calls"]
hot_bad = [h for h in hot if h["name"] != nm.get(h["func"] & ~1)]
ok = recs and len(named) == len(recs) and not bad and len(hot) == 4 and not hot_bad
print(("ok   " if ok else "FAIL ") + f"{len(recs)} function records and {len(hot)} hot functions named from the ELF as nm names them")
if not ok:
    print(bad[:3], hot_bad[:3]); sys.exit(1)
PY

# defmt: the defmt_demo firmware prints records with defmt::println!("{}", record); its
# frames, decoded by defmt-print, must equal src/bin/defmt_demo.out.
DEFMT_PRINT="${DEFMT_PRINT:-$(command -v defmt-print || echo "$HOME/.cargo/bin/defmt-print")}"
if [ -x "$DEFMT_PRINT" ]; then
    FEATURES=defmt "$here/run.sh" defmt_demo >/dev/null
    "$DEFMT_PRINT" -e "$here/target/thumbv7m-none-eabi/release/defmt_demo" \
        < "$here/target/defmt-frames.bin" | diff -u "$here/src/bin/defmt_demo.out" -
    echo "check.sh: defmt_demo output matches src/bin/defmt_demo.out"
else
    echo "check.sh: defmt-print not installed (cargo install defmt-print); defmt demo not checked"
fi
