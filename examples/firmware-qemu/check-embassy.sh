#!/usr/bin/env bash
# Runs the embassy_demo firmware (embassy-executor traced through its `rtos-trace`
# feature by tracemark::rtos_trace::Embassy) under QEMU and checks, with the `tracemark`
# tool reading the raw serial log, against the truth the firmware printed:
#   - `stats --json`: nothing lost; exactly the firmware's four tasks, by name, plus the
#     `executor` and `IDLE` pseudo-threads; each task switched in as often as it counted
#     its own polls; the executor's switch-ins equal all polls (one per poll end);
#   - `decode`: one THREAD record per task at least, naming it;
#   - `export --format perfetto`, read back with Perfetto's own schema (PyPI `perfetto`,
#     the venv scripts/test-export.sh uses): a thread track per task with as many
#     running slices as polls, the track named `<task> (0x<id>)` (see PERFETTO_NAMES);
#   - the cost on the target: flash and RAM of tracemark's symbols in the image, and the
#     whole image against the same firmware built without tracing (`embassy-untraced`).
#
# Usage: examples/firmware-qemu/check-embassy.sh
# Env:   PERFETTO_NAMES  `require` (the default): fail if the Perfetto thread tracks
#                        are not named after the tasks (the export names them from
#                        THREAD records); `report` only prints how many are.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$here/../.."
mkdir -p "$here/target"
log="$here/target/embassy-uart.log"
elf="$here/target/thumbv7m-none-eabi/release/embassy_demo"
# The same firmware without tracing, for the cost (the traced build below overwrites the
# ELF: keep a copy).
(cd "$here" && unset CARGO_TARGET_DIR && cargo build -q --release --bin embassy_demo --features embassy-untraced)
cp "$elf" "$elf-untraced"
FEATURES=embassy "$here/run.sh" embassy_demo > "$log"
grep -v '^@TM:' "$log"

(cd "$root" && cargo build -q -p tracemark-cli --bin tracemark)
target_dir="${CARGO_TARGET_DIR:-$root/target}"
TRACEMARK="${TRACEMARK:-$target_dir/debug/tracemark}"
"$TRACEMARK" stats --json "$log" > "$here/target/embassy-stats.json"
"$TRACEMARK" decode --kind THREAD "$log" > "$here/target/embassy-threads.txt"

python3 - "$log" "$here/target/embassy-stats.json" "$here/target/embassy-threads.txt" <<'PY'
import json, sys
truth = dict(l.split("truth: ", 1)[1].strip().split("=", 1)
             for l in open(sys.argv[1], errors="replace") if l.startswith("truth: "))
stats = json.load(open(sys.argv[2]))
thread_lines = open(sys.argv[3]).read()
fail = []
def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond: fail.append(what)

check(truth.get("result") == "PASS", "firmware reports PASS (items sent = received, ticks seen)")
check(stats["lost"] == 0 and stats["torn_blocks"] == 0, "nothing lost, no torn block")
tasks = {k.split(".", 1)[1]: int(v) for k, v in truth.items() if k.startswith("polls.")}
check(len(tasks) == int(truth["tasks"]), f"truth names {len(tasks)} tasks")
threads = {t["name"]: t for t in stats["threads"]["threads"]}
named_tasks = set(threads) - {"executor", "IDLE"}
check(named_tasks == set(tasks), f"stats names the tasks {sorted(named_tasks)} (truth: {sorted(tasks)})")
check(set(threads) >= {"executor", "IDLE"} and threads["IDLE"]["idle"], "stats has the executor and IDLE (as idle)")
for name, polls in sorted(tasks.items()):
    got = threads.get(name, {}).get("switched_in")
    check(got == polls, f"{name}: switched in {got} times == {polls} polls the task counted")
    check(threads.get(name, {}).get("running_ticks", 0) > 0, f"{name}: running time {threads.get(name, {}).get('running_ticks')} ticks")
all_polls = sum(tasks.values())
# Every poll ends with a switch to the executor, except the last one (`finish` stops
# tracing in it).
got = threads["executor"]["switched_in"]
check(got == all_polls - 1, f"executor: switched in {got} times == {all_polls} polls - 1")
share = sum(t["cpu_percent"] for t in stats["threads"]["threads"])
check(abs(share + 100.0 * stats["threads"]["unknown_ticks"] / stats["threads"]["observed_ticks"] - 100.0) < 1e-6,
      f"CPU shares add up to 100% (with {stats['threads']['unknown_ticks']} ticks before the first switch)")
for name in tasks:
    line = f"THREAD thread={threads[name]['thread']:#x} prio=0 name={name}"
    check(any(l.endswith(line) for l in thread_lines.splitlines()),
          f"decode prints a THREAD record naming {name}: {line}")
ids = {name: t["thread"] for name, t in threads.items()}
json.dump({"polls": tasks, "ids": ids}, open(sys.argv[2] + ".tasks", "w"))
if fail:
    print(f"check-embassy.sh: {len(fail)} check(s) failed"); sys.exit(1)
PY

# Perfetto, read back with its own schema.
venv="$target_dir/export-venv"
if ! "$venv/bin/python" -c 'import perfetto.protos.perfetto.trace.perfetto_trace_pb2' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q perfetto protobuf
fi
"$TRACEMARK" export --format perfetto -o "$here/target/embassy.perfetto-trace" "$log"
PERFETTO_NAMES="${PERFETTO_NAMES:-require}" "$venv/bin/python" - \
    "$here/target/embassy.perfetto-trace" "$here/target/embassy-stats.json.tasks" <<'PY'
import collections, json, os, sys
from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb
trace = pb.Trace()
trace.ParseFromString(open(sys.argv[1], "rb").read())
info = json.load(open(sys.argv[2]))
TE = pb.TrackEvent
tracks, slices = {}, collections.Counter()
for p in trace.packet:
    if p.HasField("track_descriptor"):
        tracks[p.track_descriptor.uuid] = p.track_descriptor.name
    if p.HasField("track_event") and p.track_event.type == TE.TYPE_SLICE_BEGIN:
        slices[p.track_event.track_uuid] += 1
by_name = collections.Counter()
for uuid, n in slices.items():
    by_name[tracks.get(uuid, "")] += n
fail = []
def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond: fail.append(what)
named = 0
for name, polls in sorted(info["polls"].items()):
    tid = info["ids"][name]
    track = next((t for t in (f"{name} ({tid:#x})", f"Thread {tid:#x}") if t in by_name), None)
    check(track is not None and by_name[track] == polls,
          f"perfetto: {polls} running slices of {name} on track {track!r}")
    named += track == f"{name} ({tid:#x})"
if named == len(info["polls"]):
    print(f"ok   perfetto: the {named} task tracks are named after the tasks")
elif os.environ["PERFETTO_NAMES"] == "require":
    check(False, f"perfetto: only {named} of {len(info['polls'])} task tracks named after the tasks")
else:
    print(f"NOTE perfetto: {named} of {len(info['polls'])} task tracks named after the tasks "
          "(PERFETTO_NAMES=report; the default, require, fails)")
if fail:
    print(f"check-embassy.sh: {len(fail)} Perfetto check(s) failed"); sys.exit(1)
PY

# The cost on the target, by symbol (`nm --size-sort`, release build with LTO): what
# tracemark's code and data take in the embassy image. With LTO, tracemark code inlined
# into embassy-executor's functions is not counted; the `_rtos_trace_*` entry points
# are what embassy calls.
nm -C --size-sort -S "$elf" | python3 -c '
import sys
flash = ram = 0
rows = []
for l in sys.stdin:
    p = l.split(maxsplit=3)
    if len(p) < 4: continue
    size, kind, name = int(p[1], 16), p[2], p[3].strip()
    if not ("tracemark" in name or name.startswith("_rtos_trace_") or name == "embassy_demo::RING"):
        continue
    rows.append((size, kind, name))
    if kind in "tTrR": flash += size
    elif kind in "bBdD": ram += size
    if kind in "dD": flash += size  # initialised data is also stored in flash
for size, kind, name in sorted(rows, reverse=True)[:12]:
    print(f"  {size:6} {kind} {name}")
print(f"check-embassy.sh: tracemark in embassy_demo: {flash} bytes of flash, {ram} bytes of RAM (by symbol, ring included)")
'
# The whole image with and without tracing: tracemark, embassy-executor's rtos-trace
# support (task names, the task list, the time driver it requires) and the demo's dump.
size "$elf" "$elf-untraced" | sed 's/^/  /'
size "$elf" "$elf-untraced" | awk 'NR == 2 { t = $1; d = $2; b = $3 } NR == 3 {
    printf "check-embassy.sh: tracing adds %d bytes of flash (text+data), %d bytes of RAM (data+bss) to embassy_demo\n", t + d - $1 - $2, d + b - $2 - $3 }'
echo "check-embassy.sh: embassy_demo PASS"
