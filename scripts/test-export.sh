#!/usr/bin/env bash
# Tests of `tracemark export` (issue 10) without a browser: each format's output is read
# back by an independent reader and compared with `tracemark stats --json` on kernel-sim
# dumps (overwrite and drop mode, 1 to 3 CPUs) and on the C kernel example's dump.
# Symbols (`--elf`): the C kernel's function slices, `stats` hottest functions and the Parquet
# `symbol` column are named as `nm` names their addresses (DWARF, and symbol table only).
#
#   perfetto:    scripts/validate_export.py parses it with the official schema
#                (`perfetto_trace_pb2` from PyPI `perfetto`, in a venv under target/)
#   chrome-json: the same script, with Python's json module
#   ctf:         babeltrace2 reads each trace with nothing on stderr but its reports of
#                discarded events, and those add up to the records the dump lost; with
#                python3-bt2, the events equal `tracemark decode` record for record
#                (scripts/export/check_ctf.py)
#   parquet:     several dumps exported in one call; DuckDB reads the directory with
#                hive_partitioning=true and per-kind, per-CPU, per-syscall counts and
#                duration sums, IRQs, unmatched exits and lost records from SQL equal
#                `tracemark stats --json` of each dump (scripts/export/check_parquet.py)
#
# Installs babeltrace2 and python3-bt2 (Debian) if missing, and perfetto, protobuf and
# duckdb (PyPI) into a virtual environment under target/.
#
# Usage: scripts/test-export.sh     (scripts/test-all.sh calls it)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TERM_COLOR=never
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/export-venv"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

. "$root/scripts/lib.sh"

step "export: babeltrace2, python3-bt2; Python venv with the perfetto schema and DuckDB ($venv)"
need_pkg babeltrace2 babeltrace2
need_pkg /usr/lib/python3/dist-packages/bt2/__init__.py python3-bt2
if ! "$venv/bin/python" -c 'import perfetto.protos.perfetto.trace.perfetto_trace_pb2, duckdb' 2>/dev/null; then
    if ! [ -x "$venv/bin/pip" ] && ! python3 -m venv "$venv" 2>/dev/null; then
        # Debian's python3 needs python3-venv for ensurepip.
        rm -rf "$venv"
        need_pkg /nonexistent-python3-venv python3-venv
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q perfetto protobuf duckdb
fi
py="$venv/bin/python"

step "export: build tracemark and kernel-sim"
cargo build -q -p tracemark-cli -p tracemark-examples --bins
tm="$target/debug/tracemark"
sim="$target/debug/kernel-sim"

# validate NAME DUMP [ELF NM [--sources]]: exports DUMP in every format (with `--elf ELF`)
# and checks each against stats (and function names against NM, the output of nm on ELF;
# with --sources, that function slices carry their DWARF file:line).
validate() {
    local name="$1" dump="$2" elf=() nm=()
    if [ $# -ge 4 ]; then elf=(--elf "$3"); nm=(--nm "$4" "${@:5}"); fi
    "$tm" stats "$dump" --json >"$work/$name.stats.json"
    "$tm" export "$dump" "${elf[@]}" --format perfetto -o "$work/$name.perfetto-trace"
    echo "perfetto    $name"
    "$py" scripts/validate_export.py perfetto "$work/$name.perfetto-trace" "$work/$name.stats.json" "${nm[@]}"
    "$tm" export "$dump" "${elf[@]}" --format chrome-json -o "$work/$name.json"
    echo "chrome-json $name"
    "$py" scripts/validate_export.py chrome-json "$work/$name.json" "$work/$name.stats.json" "${nm[@]}"
}

step "export: perfetto + chrome-json: kernel-sim dumps"
"$sim" --events 200000 --cpus 2 --buffer 256K --mode overwrite -o "$work/sim-ow.bin" --truth "$work/t1.json" >/dev/null
validate sim-overwrite-2cpu "$work/sim-ow.bin"
"$sim" --events 300000 --cpus 3 --buffer 64K --block-size 256 --mode overwrite --seed 7 \
    -o "$work/sim-ow3.bin" --truth "$work/t2.json" >/dev/null
validate sim-overwrite-3cpu-small-blocks "$work/sim-ow3.bin"
"$sim" --events 300000 --cpus 1 --buffer 64K --block-size 256 --mode drop --seed 3 \
    -o "$work/sim-drop.bin" --truth "$work/t3.json" >/dev/null
validate sim-drop-1cpu "$work/sim-drop.bin"

step "export: perfetto + chrome-json: thread switches and clock steps (encoder-written, format 2)"
# gaps.bin (time steps of 2^32 ticks and more: CTF extended headers, wrapping 32-bit
# times; a full drop-mode ring) and threads.bin (SWITCH inside kernel entries on two
# CPUs, CLOCKBACK): written by the real encoder in decoder/cli/tests/export.rs.
TRACEMARK_EXPORT_FIXTURES="$work" cargo test -q -p tracemark-cli --test export >/dev/null
validate encoder-threads "$work/threads.bin"
# named.bin: THREAD records (format 3) naming three of four threads, one renamed, and
# FreeRTOS queue events: the tracks and slices carry the names (validate_export.py).
validate encoder-named "$work/named.bin"
"$py" - "$work/encoder-named.perfetto-trace" <<'PY'
import sys
from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb
t = pb.Trace()
t.ParseFromString(open(sys.argv[1], "rb").read())
names = {p.track_descriptor.name for p in t.packet if p.HasField("track_descriptor")}
want = {"producer (0x20000100)", "sink (0x20000200)", "IDLE (0x20000300)", "Thread 0x20000400"}
assert want <= names, f"thread tracks {sorted(names)} lack {sorted(want - names)}"
print(f"ok   Perfetto thread tracks named by THREAD records: {sorted(want)}")
PY

step "export: perfetto + chrome-json: a damaged dump (what decodes is exported, exit 1, one line)"
python3 - "$work/sim-ow.bin" "$work/damaged.bin" <<'PY'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
d[100000:100400] = b"\xff" * 400
open(sys.argv[2], "wb").write(d)
PY
"$tm" stats "$work/damaged.bin" --json >"$work/damaged.stats.json" 2>/dev/null || true
for f in perfetto chrome-json; do
    if "$tm" export "$work/damaged.bin" --format "$f" -o "$work/damaged.$f" 2>"$work/err.txt"; then
        echo "FAIL: export of a damaged dump exited 0" >&2; exit 1
    fi
    [ "$(wc -l <"$work/err.txt")" = 1 ] && grep -q "damaged.bin: at byte" "$work/err.txt" ||
        { echo "FAIL: not one line naming file and offset:" >&2; cat "$work/err.txt" >&2; exit 1; }
    echo "$f damaged: $(cat "$work/err.txt")"
    "$py" scripts/validate_export.py "$f" "$work/damaged.$f" "$work/damaged.stats.json"
done

step "export: perfetto + chrome-json: the C kernel example's dump"
# Linked at a fixed address (-no-pie) so that the function addresses it records
# (-finstrument-functions) are its ELF's own, and its IMAGE record (0x400000) matches
# the ELF by address. Linked without a build id: its IMAGE record carries a made-up id
# (0xfeedf00d), and an ELF whose build id no IMAGE record carries is refused (issue 20,
# point 12; `--elf-ignore-build-id` overrides, checked below).
cc_target="$target/c-kernel-export"
CARGO_TARGET_DIR="$cc_target" cargo build -q -p tracemark-c
flags=(-O2 -g -Wall -Wextra -std=c11 -fno-pie)
cc "${flags[@]}" -I encoder/include -c examples/c-kernel/kernel.c -o "$work/kernel.o"
cc "${flags[@]}" -finstrument-functions -c examples/c-kernel/instrumented.c -o "$work/instrumented.o"
cc -no-pie -Wl,--build-id=none "$work/kernel.o" "$work/instrumented.o" \
    "$cc_target/debug/libtracemark_c.a" -lpthread -ldl -lm -o "$work/c-kernel"
(cd "$work" && ./c-kernel truth.txt dump >/dev/null)
cat "$work"/dump.cpu*.bin >"$work/c-kernel.bin"
validate c-kernel "$work/c-kernel.bin"

step "export: symbols: the C kernel's functions named from its ELF (--elf: export, stats, decode), checked against nm"
nm "$work/c-kernel" >"$work/c-kernel.nm"
validate c-kernel-dwarf "$work/c-kernel.bin" "$work/c-kernel" "$work/c-kernel.nm" --sources
strip --strip-debug -o "$work/c-kernel.nodebug" "$work/c-kernel"
validate c-kernel-symtab-only "$work/c-kernel.bin" "$work/c-kernel.nodebug" "$work/c-kernel.nm"
# The same program with a GNU build id its IMAGE record does not carry: refused, with
# the override named; used by address with --elf-ignore-build-id.
cc -no-pie -Wl,--build-id "$work/kernel.o" "$work/instrumented.o" \
    "$cc_target/debug/libtracemark_c.a" -lpthread -ldl -lm -o "$work/c-kernel.id"
if "$tm" stats "$work/c-kernel.bin" --elf "$work/c-kernel.id" >/dev/null 2>"$work/id.err"; then
    echo "test-export.sh: an ELF with another build id was used" >&2
    exit 1
fi
grep -q -- '--elf-ignore-build-id' "$work/id.err"
"$tm" stats "$work/c-kernel.bin" --json --elf "$work/c-kernel.id" --elf-ignore-build-id \
    2>/dev/null >"$work/hot-id.json"
echo "ok   another build's ELF refused ($(head -c 120 "$work/id.err")...), used with --elf-ignore-build-id"
"$tm" stats "$work/c-kernel.bin" --json --elf "$work/c-kernel" >"$work/hot.json"
"$tm" decode "$work/c-kernel.bin" --format json --kind FENTRY --elf "$work/c-kernel" >"$work/fentry.jsonl"
"$py" scripts/validate_export.py hot "$work/hot.json" "$work/fentry.jsonl" "$work/c-kernel.nm"
# Parquet's symbol column, filled from --elf, against nm.
"$tm" export "$work/c-kernel.bin" --elf "$work/c-kernel" --format parquet -o "$work/pq-elf" >/dev/null
"$py" - "$work/pq-elf" "$work/c-kernel.nm" <<'PY'
import sys
import duckdb
sys.path.insert(0, "scripts")
from validate_export import read_nm
nm = read_nm(sys.argv[2])
rows = duckdb.sql(f"""SELECT func, symbol, count(*) FROM read_parquet(
    '{sys.argv[1]}/records/*/*/*.parquet', hive_partitioning = true)
    WHERE kind IN ('FENTRY', 'FEXIT') GROUP BY ALL""").fetchall()
assert rows, "no function rows"
bad = [(hex(f), s, nm.get(f)) for f, s, _ in rows if s is None or s != nm.get(f)]
assert not bad, f"symbol column differs from nm: {bad[:5]}"
print(f"ok   Parquet symbol column: {sum(n for _, _, n in rows)} function rows of "
      f"{len(rows)} functions named as nm names them")
PY

step "export: ctf + parquet: kernel-sim dumps and an encoder-written dump with long gaps"
# Three workloads: overwrite (records lost before the oldest block), drop with a small
# ring (records dropped), three CPUs with image records and nothing lost.
"$sim" --events 200000 --cpus 2 --buffer 256K --mode overwrite \
    -o "$work/over.bin" --truth "$work/over.json" 2>/dev/null
"$sim" --events 100000 --cpus 2 --buffer 64K --block-size 1024 --mode drop \
    --seed 7 -o "$work/drop.bin" --truth "$work/drop.json" 2>/dev/null
"$sim" --events 100000 --cpus 3 --buffer 1M --mode drop --seed 3 \
    -o "$work/three.bin" --truth "$work/three.json" 2>/dev/null

for d in over drop three gaps threads named; do
    "$tm" export "$work/$d.bin" --format ctf -o "$work/ctf-$d" >/dev/null
    babeltrace2 "$work/ctf-$d" >"$work/bt.out" 2>"$work/bt.err"
    # babeltrace2 prints its discarded-event reports on stderr; nothing else may be there.
    if grep -v 'WARNING: Tracer discarded [0-9]* events between' "$work/bt.err" | grep -q .; then
        echo "babeltrace2 warned on $d:" >&2
        cat "$work/bt.err" >&2
        exit 1
    fi
    reported=$(sed -n 's/.*Tracer discarded \([0-9]*\) events.*/\1/p' "$work/bt.err" |
        awk '{s += $1} END {print s + 0}')
    lost=$("$tm" stats --json "$work/$d.bin" | python3 -c 'import json,sys; print(json.load(sys.stdin)["lost"])')
    [ "$reported" = "$lost" ] || { echo "$d: babeltrace2 reports $reported discarded, dump lost $lost" >&2; exit 1; }
    events=$(wc -l <"$work/bt.out")
    records=$("$tm" stats --json "$work/$d.bin" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_records"])')
    [ "$events" = "$records" ] || { echo "$d: babeltrace2 printed $events events, dump has $records" >&2; exit 1; }
    echo "ok   babeltrace2 $d: $events events, no warning, $reported discarded reported (= lost)"
    /usr/bin/python3 scripts/export/check_ctf.py "$tm" "$work/$d.bin" "$work/ctf-$d"
done

# Refused with one line: two files to one CTF trace; rings with different clocks.
if "$tm" export "$work/over.bin" "$work/drop.bin" --format ctf -o "$work/ctf-two" 2>"$work/err"; then
    echo "ctf export of two files should fail" >&2
    exit 1
fi
grep -q 'takes one input file' "$work/err"
"$sim" --events 1000 --buffer 64K --mode drop --clock-hz 1000000 \
    -o "$work/mhz.bin" --truth "$work/mhz.json" 2>/dev/null
cat "$work/three.bin" "$work/mhz.bin" >"$work/mixed.bin"
if "$tm" export "$work/mixed.bin" --format ctf -o "$work/ctf-mixed" 2>"$work/err"; then
    echo "ctf export of rings with different clocks should fail" >&2
    exit 1
fi
grep -q 'different clock frequencies' "$work/err" && [ "$(wc -l <"$work/err")" = 1 ]

"$tm" export "$work/over.bin" "$work/drop.bin" "$work/three.bin" "$work/gaps.bin" \
    "$work/threads.bin" "$work/named.bin" --format parquet -o "$work/pq"
"$venv/bin/python" scripts/export/check_parquet.py "$tm" "$work/pq" \
    "$work/over.bin" "$work/drop.bin" "$work/three.bin" "$work/gaps.bin" "$work/threads.bin" \
    "$work/named.bin"

step "parquet: two dumps concatenated (a CPU with two rings), README's query, signed times, empty tables"
# Issue 20.10: the second ring of a CPU was under cpu=0/ring1/, which README's glob
# (records/*/*/*.parquet) missed; ts was UINT64 (ts - lag(ts) overflowed in DuckDB);
# the images and lost tables were missing when empty ("No files found").
cat "$work/three.bin" "$work/three.bin" >"$work/twice.bin"
"$tm" export "$work/twice.bin" --format parquet -o "$work/pq-twice" >/dev/null
rows=$("$tm" stats --json "$work/twice.bin" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_records"])')
"$py" - "$work/pq-twice" "$rows" <<'PY'
import sys
import duckdb
out, want = sys.argv[1], int(sys.argv[2])
con = duckdb.connect()
con.execute(f"""CREATE VIEW records AS SELECT * FROM read_parquet(
    '{out}/records/*/*/*.parquet', hive_partitioning = true, filename = true)""")
n, = con.execute("SELECT count(*) FROM records").fetchone()
assert n == want, f"README's query counts {n} rows of {want}"
types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE records)").fetchall())
for col in ["ts", "n", "duration_ticks", "time_ns"]:
    assert types[col] == "BIGINT", f"{col} is {types[col]}"
# Steps between consecutive records of a file: ts - lag(ts), no overflow error.
neg, = con.execute("""SELECT count(*) FILTER (WHERE step < 0) FROM (
    SELECT ts - lag(ts) OVER (PARTITION BY filename ORDER BY n) AS step
    FROM records WHERE n IS NOT NULL)""").fetchone()
for table in ["images", "lost"]:
    con.execute(f"SELECT count(*) FROM read_parquet('{out}/{table}/*/*/*.parquet', hive_partitioning = true)").fetchone()
print(f"ok   Parquet of two concatenated dumps: {n} rows (= stats), ts/n/durations BIGINT, "
      f"ts - lag(ts) computed ({neg} negative steps), images and lost tables readable")
PY

step "every format: the real seL4 kernel's trace under QEMU (SWITCH records)"
# Left by examples/sel4/check.sh x86_64 (scripts/test-sel4.sh, which test-all.sh runs
# before this script): a UART log with the framed dump, read directly.
sel4_log=examples/sel4/target/x86_64/console.log
if [ -f "$sel4_log" ]; then
    validate sel4-x86_64 "$sel4_log"
    "$tm" export "$sel4_log" --format ctf -o "$work/ctf-sel4" >/dev/null
    babeltrace2 "$work/ctf-sel4" >/dev/null 2>"$work/bt.err"
    if grep -v 'WARNING: Tracer discarded [0-9]* events between' "$work/bt.err" | grep -q .; then
        echo "babeltrace2 warned on the seL4 trace:" >&2; cat "$work/bt.err" >&2; exit 1
    fi
    /usr/bin/python3 scripts/export/check_ctf.py "$tm" "$sel4_log" "$work/ctf-sel4"
    "$tm" export "$sel4_log" --format parquet -o "$work/pq-sel4" >/dev/null
    "$venv/bin/python" scripts/export/check_parquet.py "$tm" "$work/pq-sel4" "$sel4_log"
else
    echo "note: $sel4_log missing (run scripts/test-sel4.sh x86_64 first): seL4 step skipped" >&2
fi

step "export: export tests passed"
