#!/usr/bin/env bash
# Tests `tracemark export --format ctf` and `--format parquet` on kernel-sim dumps:
# - CTF: babeltrace2 reads each trace with nothing on stderr but its reports of
#   discarded events, and those add up to the records the dump lost; with python3-bt2,
#   the events equal `tracemark decode` record for record (scripts/export/check_ctf.py).
# - Parquet: several dumps exported in one call; DuckDB reads the directory with
#   hive_partitioning=true and per-kind, per-CPU, per-syscall counts and duration sums,
#   IRQs, unmatched exits and lost records from SQL equal `tracemark stats --json` of
#   each dump (scripts/export/check_parquet.py).
# Installs babeltrace2 and python3-bt2 (Debian) if missing, and DuckDB (PyPI) into a
# virtual environment under target/.
#
# Usage: scripts/test-export-ctf-parquet.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

need_deb() { # command-or-path package
    if ! { command -v "$1" >/dev/null 2>&1 || [ -e "$1" ]; }; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            [ -n "${apt_updated:-}" ] || { apt-get update -qq; apt_updated=1; }
            apt-get install -y -qq "$2" >/dev/null
        else
            echo "$2 is missing: install it (Debian: apt-get install $2)" >&2
            exit 1
        fi
    fi
}
need_deb babeltrace2 babeltrace2
need_deb /usr/lib/python3/dist-packages/bt2/__init__.py python3-bt2
venv="$root/target/export-venv"
if ! "$venv/bin/python" -c 'import duckdb' 2>/dev/null; then
    rm -rf "$venv"
    if ! python3 -m venv "$venv" 2>/dev/null; then
        # Debian's python3 makes virtual environments only with python3-venv.
        rm -rf "$venv"
        need_deb /nonexistent-python3-venv python3-venv
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q duckdb
fi

cargo build -q -p tracemark-decoder -p tracemark-examples --bin tracemark --bin kernel-sim
bin="${CARGO_TARGET_DIR:-$root/target}/debug"
tm="$bin/tracemark"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Three workloads: overwrite (records lost before the oldest block), drop with a small
# ring (records dropped), three CPUs with image records and nothing lost.
"$bin/kernel-sim" --events 200000 --cpus 2 --buffer 256K --mode overwrite \
    -o "$tmp/over.bin" --truth "$tmp/over.json" 2>/dev/null
"$bin/kernel-sim" --events 100000 --cpus 2 --buffer 64K --block-size 1024 --mode drop \
    --seed 7 -o "$tmp/drop.bin" --truth "$tmp/drop.json" 2>/dev/null
"$bin/kernel-sim" --events 100000 --cpus 3 --buffer 1M --mode drop --seed 3 \
    -o "$tmp/three.bin" --truth "$tmp/three.json" 2>/dev/null

# Time steps of 2^32 ticks and more (CTF extended headers, wrapping 32-bit times), a
# full drop-mode ring: written by the real encoder in decoder/tests/export.rs.
TRACEMARK_EXPORT_FIXTURES="$tmp" cargo test -q -p tracemark-decoder --test export >/dev/null

for d in over drop three gaps; do
    "$tm" export "$tmp/$d.bin" --format ctf -o "$tmp/ctf-$d" >/dev/null
    babeltrace2 "$tmp/ctf-$d" >"$tmp/bt.out" 2>"$tmp/bt.err"
    # babeltrace2 prints its discarded-event reports on stderr; nothing else may be there.
    if grep -v 'WARNING: Tracer discarded [0-9]* events between' "$tmp/bt.err" | grep -q .; then
        echo "babeltrace2 warned on $d:" >&2
        cat "$tmp/bt.err" >&2
        exit 1
    fi
    reported=$(sed -n 's/.*Tracer discarded \([0-9]*\) events.*/\1/p' "$tmp/bt.err" |
        awk '{s += $1} END {print s + 0}')
    lost=$("$tm" stats --json "$tmp/$d.bin" | python3 -c 'import json,sys; print(json.load(sys.stdin)["lost"])')
    [ "$reported" = "$lost" ] || { echo "$d: babeltrace2 reports $reported discarded, dump lost $lost" >&2; exit 1; }
    events=$(wc -l <"$tmp/bt.out")
    records=$("$tm" stats --json "$tmp/$d.bin" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_records"])')
    [ "$events" = "$records" ] || { echo "$d: babeltrace2 printed $events events, dump has $records" >&2; exit 1; }
    echo "ok   babeltrace2 $d: $events events, no warning, $reported discarded reported (= lost)"
    /usr/bin/python3 scripts/export/check_ctf.py "$tm" "$tmp/$d.bin" "$tmp/ctf-$d"
done

# Refused with one line: two files to one CTF trace; rings with different clocks.
if "$tm" export "$tmp/over.bin" "$tmp/drop.bin" --format ctf -o "$tmp/ctf-two" 2>"$tmp/err"; then
    echo "ctf export of two files should fail" >&2
    exit 1
fi
grep -q 'takes one input file' "$tmp/err"
"$bin/kernel-sim" --events 1000 --buffer 64K --mode drop --clock-hz 1000000 \
    -o "$tmp/mhz.bin" --truth "$tmp/mhz.json" 2>/dev/null
cat "$tmp/three.bin" "$tmp/mhz.bin" >"$tmp/mixed.bin"
if "$tm" export "$tmp/mixed.bin" --format ctf -o "$tmp/ctf-mixed" 2>"$tmp/err"; then
    echo "ctf export of rings with different clocks should fail" >&2
    exit 1
fi
grep -q 'different clock frequencies' "$tmp/err" && [ "$(wc -l <"$tmp/err")" = 1 ]

"$tm" export "$tmp/over.bin" "$tmp/drop.bin" "$tmp/three.bin" "$tmp/gaps.bin" \
    --format parquet -o "$tmp/pq"
"$venv/bin/python" scripts/export/check_parquet.py "$tm" "$tmp/pq" \
    "$tmp/over.bin" "$tmp/drop.bin" "$tmp/three.bin" "$tmp/gaps.bin"
echo "ok   export: CTF and Parquet"
