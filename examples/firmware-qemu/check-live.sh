#!/usr/bin/env bash
# Live capture against truth (issue 18): runs the live_demo firmware under QEMU with
# its GDB stub (`-gdb tcp::PORT -S`), captures its ring with
# `tracemark capture --gdb ... --elf ... --symbol TRACEMARK_LIVE_RING` while it runs,
# then checks on the host:
#   1. every captured USER record's number is the one its sequence counter gives (the
#      counters are consecutive except at gaps, and no kept block holds a jump), and
#      every deferred kernel entry (filled in after its block may have closed and been
#      polled) holds its own information, never the placeholder;
#   2. the gaps add up exactly to the losses capture reported, and to what
#      `tracemark stats` says the capture lost (minus what was lost before the first
#      poll, which the first image's numbers say);
#   3. the records both the capture and the firmware's final UART dump hold are
#      identical (number, time stamp, payload), and there are some.
# Then the same with a racy back end: QEMU's QMP `pmemsave` reading guest memory while
# the guest runs, polled about a ring's worth of writing apart, where blocks
# are reclaimed under the copy: the same checks hold (no kept block holds a counter
# jump), and the rejected blocks are reported.
#
# Usage: examples/firmware-qemu/check-live.sh   (needs qemu-system-arm, python3)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$here/target/live-check"
fail() { echo "check-live.sh: $*" >&2; exit 1; }

(cd "$here" && unset CARGO_TARGET_DIR &&
    cargo build --quiet --release --target thumbv7m-none-eabi --bin live_demo)
(cd "$root" && cargo build --quiet -p tracemark-cli --bin tracemark)
tm="${CARGO_TARGET_DIR:-$root/target}/debug/tracemark"
elf="$here/target/thumbv7m-none-eabi/release/live_demo"

check() {
mode="$1"
work="$here/target/live-check-$mode"
rm -rf "$work"
mkdir -p "$work"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
if [ "$mode" = gdb ]; then
    # -S: the firmware waits for the debugger (capture lets it run when it connects).
    timeout 60 qemu-system-arm -cpu cortex-m3 -machine lm3s6965evb -nographic \
        -semihosting-config enable=on,target=native -icount shift=4 \
        -gdb "tcp:127.0.0.1:$port" -S -kernel "$elf" > "$work/uart.log" 2> "$work/qemu.err" &
    qemu=$!
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    backend=(--gdb "127.0.0.1:$port" --interval 20ms)
else
    # Stopped (-S) until the capture is connected, which lets it run (`cont`).
    timeout 60 qemu-system-arm -cpu cortex-m3 -machine lm3s6965evb -nographic \
        -semihosting-config enable=on,target=native -icount shift=4 -S \
        -qmp "unix:$work/qmp.sock,server,wait=off" -kernel "$elf" > "$work/uart.log" 2> "$work/qemu.err" &
    qemu=$!
    for _ in $(seq 50); do [ -S "$work/qmp.sock" ] && break; sleep 0.1; done
    # Polls about a ring's worth of writing apart: the oldest blocks of the window are
    # being reclaimed while they are copied.
    backend=(--qmp "$work/qmp.sock" --interval 30ms)
fi
"$tm" capture "${backend[@]}" --elf "$elf" --symbol TRACEMARK_LIVE_RING \
    --heartbeat 0 --slot-size 50M --slots 2 --dir "$work/cap" 2> "$work/capture.err" ||
    fail "capture failed: $(cat "$work/capture.err")"
wait "$qemu" || fail "QEMU failed: $(cat "$work/qemu.err")"
grep -q '^live_demo: done' "$work/uart.log" || fail "the firmware did not finish"
# Every poll is a dump already in the slots: none is saved again in dumps/ (bounded disk).
[ ! -e "$work/cap/dumps" ] || fail "a live capture saved files in dumps/"
reported="$(grep -o 'closed the connection; .*' "$work/capture.err" | grep -o 'lost [0-9]* records' | grep -o '[0-9]*')"
[ -n "$reported" ] || fail "capture did not report its losses: $(cat "$work/capture.err")"

"$tm" decode --format json "$work/cap/capture.0" > "$work/capture.jsonl"
"$tm" decode --format json "$work/uart.log" > "$work/final.jsonl"
stats_lost="$("$tm" stats "$work/cap/capture.0" | sed -n 's/^lost: \([0-9]*\) records.*/\1/p')"

python3 - "$work/capture.jsonl" "$work/final.jsonl" "$reported" "$stats_lost" "$mode" <<'PY'
import json, sys
cap_path, final_path, reported, stats_lost = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def number(c):
    # The firmware's records: KENTRY, IRQ before event 40k; KEXIT after event 40k + 30.
    return c + 2 * (c // 40 + 1) + (0 if c < 31 else (c - 31) // 40 + 1)
def load(path):
    out = {}
    entries = 0
    for line in open(path):
        r = json.loads(line)
        n = r["n"]
        if n in out:
            sys.exit(f"{path}: record #{n} twice")
        if r["kind"] == "USER":
            counter = int.from_bytes(bytes.fromhex(r["data"]), "little")
            if n != number(counter):
                sys.exit(f"{path}: record #{n} holds counter {counter}")
        elif r["kind"] == "KENTRY":
            # Deferred, filled in after its block may have closed: never the
            # placeholder, always its own syscall (label 40k, just before event 40k).
            if r.get("path") != "Syscall" or r["label"] % 40 or n != number(r["label"]) - 2:
                sys.exit(f"{path}: record #{n} is not the entry filled in for it: {line.strip()}")
            entries += 1
        if r["kind"] == "KEXIT":
            # Named by the decoder after the entry it closes, when that entry is in
            # the same dump: not part of the record.
            r = {k: v for k, v in r.items() if k in ("cpu", "n", "ts", "kind", "duration_ticks")}
        out[n] = json.dumps(r, sort_keys=True)
    return out, entries
cap, cap_entries = load(cap_path)
final, _ = load(final_path)
seen = sorted(cap)
gaps = sum(b - a - 1 for a, b in zip(seen, seen[1:]))
if gaps != reported:
    sys.exit(f"the gaps in the record numbers add up to {gaps}, capture reported {reported} lost")
if stats_lost != seen[0] + gaps:
    sys.exit(f"stats says {stats_lost} lost, the numbers say {seen[0]} before the first poll + {gaps}")
overlap = sorted(set(cap) & set(final))
if not overlap:
    sys.exit("no record is both in the capture and in the final dump")
bad = [n for n in overlap if cap[n] != final[n]]
if bad:
    sys.exit(f"{len(bad)} records differ from the final dump, first #{bad[0]}")
print(f"ok   {sys.argv[5]}: {len(cap)} records captured live, numbers {seen[0]}..{seen[-1]}, "
      f"{gaps} lost in {sum(1 for a, b in zip(seen, seen[1:]) if b != a + 1)} reported gaps; "
      f"{cap_entries} deferred entries with their information; "
      f"{len(overlap)} identical to the firmware's final dump")
PY
grep -o 'closed the connection; .*' "$work/capture.err" | sed "s/^/ok   $mode: /"
}

check gdb
check qmp

# --probe (probe-rs, the `probe` feature): there is no probe here, and building
# probe-rs's tree for tests costs CI about 1.5 minutes more than checking it, so CI
# checks and lints the feature only (about 70 s of CPU, BENCHMARKS.md "Live capture").
# Its tests, run by hand: cargo test -p tracemark-capture --features probe --lib probe
# and cargo test -p tracemark-cli --features probe --test capture probe_ (a build
# without the feature is tested by cargo test --workspace).
(cd "$root" && cargo clippy --quiet -p tracemark-capture -p tracemark-cli \
    --features tracemark-cli/probe,tracemark-capture/probe -- -D warnings)
echo "ok   --probe: the probe feature builds (cargo check) and is lint-clean"
