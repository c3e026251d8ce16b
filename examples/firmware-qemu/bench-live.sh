#!/usr/bin/env bash
# Live capture speed (issue 18, point 6): how fast a target may write while
# `tracemark capture --gdb` follows it without losing a record, and what each poll
# costs the target (QEMU's stub halts it) and the host.
#
# The live_demo firmware (64,500 records: 60,000 user events and 1,500 deferred kernel
# entries with an interrupt and an exit each, time-stamped by SysTick at 12.5 MHz) runs
# under QEMU with `-icount shift=S,align=on`: S sets the emulated core's speed
# (2^-S G instructions per second of target time, so S-1 doubles the write rate) and
# align=on paces target time to host time, so the target writes at its exact target
# rate in host time as long as QEMU keeps up (the "host/target time" column says
# whether it did: 1.0 when it did). For every S and every --interval it reports:
#   - the target's write rate in records per second of target time (exact: from the
#     firmware's SysTick count over its event loop, under -icount);
#   - records kept and lost (counted by capture, every loss is a gap in the record
#     numbers: check-live.sh checks that);
#   - the pause per poll (the target halted while capture reads), avg / max;
#   - capture's own CPU time and records kept per CPU second of capture.
#
# Usage: examples/firmware-qemu/bench-live.sh [SHIFTS] [INTERVALS]
#        (defaults "5 4 3 2 1" and "50ms 20ms 5ms"; 10 s to 3 min per pair: the halting
#        stub slows the target down, most at slow targets polled often)
# Not in CI (figures, not checks): BENCHMARKS.md, "Live capture", has a run.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
shifts="${1:-5 4 3 2 1}"
intervals="${2:-50ms 20ms 5ms}"

(cd "$here" && unset CARGO_TARGET_DIR &&
    cargo build --quiet --release --target thumbv7m-none-eabi --bin live_demo)
(cd "$root" && cargo build --quiet -p tracemark-cli --bin tracemark)
tm="${CARGO_TARGET_DIR:-$root/target}/debug/tracemark"
elf="$here/target/thumbv7m-none-eabi/release/live_demo"
work="$here/target/live-bench"
rm -rf "$work"
mkdir -p "$work"

echo "| -icount shift | target rate (records/s of target time) | host/target time | --interval | polls | records kept | lost | pause per poll avg / max (ms) | capture CPU (s) | records per capture CPU second |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for shift in $shifts; do
    for interval in $intervals; do
        run="$work/s$shift-$interval"
        mkdir -p "$run"
        port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
        # QEMU's UART lines are stamped with host time as they arrive: the event loop
        # runs from the first line to the "events in" line.
        timeout 180 qemu-system-arm -cpu cortex-m3 -machine lm3s6965evb -nographic \
            -semihosting-config enable=on,target=native -icount "shift=$shift,align=on,sleep=on" \
            -gdb "tcp:127.0.0.1:$port" -S -kernel "$elf" 2> "$run/qemu.err" |
            python3 -c '
import sys, time
out = open(sys.argv[1], "w")
for line in sys.stdin.buffer:
    if line.startswith(b"live_demo"):
        out.write("%.6f %s" % (time.monotonic(), line.decode("ascii", "replace")))
        out.flush()
' "$run/uart-times" &
        qemu=$!
        for _ in $(seq 50); do
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
            sleep 0.1
        done
        /usr/bin/time -f "%U %S" -o "$run/capture.time" \
            "$tm" capture --gdb "127.0.0.1:$port" --interval "$interval" --elf "$elf" \
            --symbol TRACEMARK_LIVE_RING --heartbeat 0 --slot-size 50M --slots 2 \
            --dir "$run/cap" 2> "$run/capture.err" ||
            { echo "bench-live.sh: capture failed: $(cat "$run/capture.err")" >&2; exit 1; }
        # QEMU is stopped after 180 s (a halting stub polled very often slows the target
        # down that much): the row then says so.
        wait "$qemu" || echo "(QEMU stopped: $(cat "$run/qemu.err"))" >> "$run/uart-times"
        python3 - "$run" "$shift" "$interval" <<'PY'
import re, sys
run, shift, interval = sys.argv[1:]
times = open(f"{run}/uart-times").read().splitlines()
start = float(times[0].split()[0])
end_line = next((l for l in times if " events in " in l), None)
if end_line is None:
    print(f"| {shift} | | | {interval} | did not finish in 180 s | | | | | |")
    sys.exit(0)
m = re.search(r"(\d+) events in (\d+) ticks of (\d+) Hz", end_line)
events, ticks, hz = map(int, m.groups())
host = float(end_line.split()[0]) - start
target = ticks / hz
records = events + 3 * (events // 40)  # KENTRY, IRQ, KEXIT per 40 events
err = open(f"{run}/capture.err").read()
err = err[err.rfind("closed the connection"):]
s = re.search(r"(\d+) polls, (\d+) blocks, (\d+) records kept; lost (\d+) records.*"
              r"pause per poll ([\d.]+) ms avg, ([\d.]+) ms max", err)
if not s:
    sys.exit(f"no summary in {run}/capture.err: {err}")
polls, _, kept, lost, avg, mx = s.groups()
user, sys_ = map(float, open(f"{run}/capture.time").read().split()[-2:])
cpu = user + sys_
print(f"| {shift} | {records / target:,.0f} | {host / target:.2f} | {interval} | {polls} | "
      f"{int(kept):,} | {int(lost):,} | {float(avg):.2f} / {float(mx):.1f} | {cpu:.2f} | "
      f"{int(kept) / cpu:,.0f} |")
PY
    done
done
