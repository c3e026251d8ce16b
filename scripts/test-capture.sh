#!/usr/bin/env bash
# `tracemark capture` on the Cortex-M firmware under QEMU (examples/firmware-qemu):
#   1. --exec: run.sh runs under the capture with slots far smaller than the firmware's
#      output, so the framed dump's text rotates away; the dump saved live in dumps/ must
#      be byte-identical to the ring the firmware wrote through semihosting, decode with
#      the counts of the firmware's truth file, and the firmware's exit status must pass
#      through;
#   2. --tcp: QEMU's UART on a TCP server socket (-serial tcp:...,server=on); the capture
#      connects, saves the dump, sees QEMU go away, and stops cleanly on SIGINT.
# The cargo integration tests (decoder/cli/tests/capture.rs) cover the rest without QEMU.
#
# Usage: scripts/test-capture.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
fw="$root/examples/firmware-qemu"
. "$root/scripts/lib.sh"

need_pkg qemu-system-arm qemu-system-arm
need_pkg python3 python3
rustup target add thumbv7m-none-eabi >/dev/null
tm="$(tracemark_bin)"
work="$(cargo_target_dir)/test-capture"
rm -rf "$work"
mkdir -p "$work"

fail() { echo "FAIL $*" >&2; exit 1; }

check_dump() { # dump.bin label
    cmp "$1" "$fw/target/trace-ring.bin" || fail "$2: the saved dump differs from the semihosting dump"
    echo "ok   $2: dump saved live, equal to the semihosting dump ($(stat -c %s "$1") bytes)"
    "$tm" stats --json "$1" > "$work/stats.json"
    python3 - "$fw/target/trace-truth.txt" "$work/stats.json" "$2" <<'PY'
import json, sys
truth = dict(l.strip().split("=", 1) for l in open(sys.argv[1]) if "=" in l)
stats = json.load(open(sys.argv[2]))
per_kind = stats["records_per_kind"]
bad = [k for k in ["KENTRY", "KEXIT", "IRQ", "FENTRY", "FEXIT", "USER", "IMAGE"]
       if per_kind.get(k, 0) != int(truth[k])]
if bad or stats["lost"] != 0 or truth["result"] != "PASS":
    sys.exit(f"FAIL {sys.argv[3]}: counts differ from the firmware's truth file for {bad}")
print(f"ok   {sys.argv[3]}: the saved dump decodes with the firmware's counts")
PY
}

# 1. --exec, with 2 slots of 16 KiB: the firmware prints ~85 KB (the framed dump ~60 KB).
dir="$work/exec"
set +e
"$tm" capture --dir "$dir" --slot-size 16K --slots 2 --heartbeat 2s \
    --exec "$fw/run.sh trace_demo" 2> "$work/exec.stderr"
rc=$?
set -e
[ "$rc" = 0 ] || { cat "$work/exec.stderr" >&2; fail "--exec: exit status $rc, the firmware's was 0"; }
grep -q "producer exit status: 0" "$work/exec.stderr" || fail "--exec: no final status line"
echo "ok   --exec: the firmware's exit status (0) passed through"
size=$(cat "$dir"/capture.0 "$dir"/capture.1 | wc -c)
[ "$size" -le 32768 ] || fail "--exec: $size bytes on disk, more than 2 x 16K"
grep -q '^@TM:B' "$dir"/capture.[01] && fail "--exec: the begin line should have rotated away"
echo "ok   --exec: $size bytes on disk (quota 32768), the dump's begin line rotated away"
dumps=("$dir"/dumps/*.bin)
[ "${#dumps[@]}" = 1 ] || fail "--exec: expected one dump, found ${dumps[*]}"
check_dump "${dumps[0]}" "--exec"

# 2. --tcp: QEMU serves its UART on a TCP port and waits for the capture to connect.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir="$work/tcp"
(cd "$fw" && exec timeout 120 qemu-system-arm -cpu cortex-m3 -machine lm3s6965evb -nographic \
    -semihosting-config enable=on,target=native -icount shift=4 \
    -serial "tcp:127.0.0.1:$port,server=on,wait=on" \
    -kernel target/thumbv7m-none-eabi/release/trace_demo) > "$work/qemu.out" 2>&1 &
qemu=$!
"$tm" capture --dir "$dir" --tcp "127.0.0.1:$port" --heartbeat 2s 2> "$work/tcp.stderr" &
capture=$!
wait "$qemu" || fail "--tcp: QEMU failed: $(cat "$work/qemu.out")"
# QEMU has exited: wait for the capture to say so. The capture reports the
# disconnection after everything it read before it (the dump included); the bound, 60 s,
# only turns a hang into a failure (it takes milliseconds, even on a loaded machine).
deadline=$((SECONDS + 60))
until grep -q "disconnected" "$work/tcp.stderr"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "--tcp: the capture did not see QEMU go away within 60 s: $(cat "$work/tcp.stderr")"
    sleep 0.1
done
kill -INT "$capture"
wait "$capture" || fail "--tcp: capture exit status $? after SIGINT"
grep -q "127.0.0.1:$port: connected" "$work/tcp.stderr" || fail "--tcp: never connected"
grep -q "disconnected" "$work/tcp.stderr" || fail "--tcp: QEMU's exit not seen"
echo "ok   --tcp: connected to QEMU's UART, saw it go away, stopped cleanly on SIGINT"
dumps=("$dir"/dumps/*.bin)
check_dump "${dumps[0]}" "--tcp"
echo "test-capture.sh: PASS"
