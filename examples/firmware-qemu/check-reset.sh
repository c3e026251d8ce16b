#!/usr/bin/env bash
# Warm reset with the trace ring kept (issue 7, point 12): runs the reset_demo firmware
# under QEMU (boot 1 records, resets with SYSRESETREQ; QEMU keeps RAM across it; boot 2
# recovers boot 1's ring from the .uninit section, sends it over UART0, records its own
# session in the same memory and sends that), then checks on the host with `tracemark`
# that both boots' records are there, complete and each in its own dump.
#
# Usage: examples/firmware-qemu/check-reset.sh   (needs qemu-system-arm)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
log="$here/target/reset-uart.log"
mkdir -p "$here/target"

"$here/run.sh" reset_demo > "$log"
(cd "$root" && cargo build --quiet -p tracemark-cli --bin tracemark)
tm="${CARGO_TARGET_DIR:-$root/target}/debug/tracemark"

fail() { echo "check-reset.sh: $*" >&2; exit 1; }
grep -q '^reset_demo: boot 2: the ring of boot 1 follows' "$log" ||
    fail "boot 2 did not find boot 1's ring (does QEMU still keep RAM across SYSRESETREQ?)"

# Two complete dumps: 0x101 (boot 1's ring, recovered by boot 2) and 0x202 (boot 2's).
extract="$("$tm" extract "$log" -o "$here/target/reset-rings.bin" 2>&1)"
for id in 0x00000101 0x00000202; do
    echo "$extract" | grep -q "dump $id of .*: complete" || fail "dump $id missing: $extract"
done

# Every event of both boots, each boot's in its own time range (boot N's clock starts
# at N * 1000000): 400 USER id=N and 400 IRQ in 100N..100N+9 per boot.
csv="$("$tm" decode "$log" --format csv | tail -n +2)"
for boot in 1 2; do
    lo=$((boot * 1000000)); hi=$(((boot + 1) * 1000000))
    users="$(echo "$csv" | awk -F, -v lo=$lo -v hi=$hi -v id="id=$boot" \
        '$5 == "USER" && $3 > lo && $3 < hi && index($6, id " ") == 1' | wc -l)"
    irqs="$(echo "$csv" | awk -F, -v lo=$lo -v hi=$hi -v b=$boot \
        '$5 == "IRQ" && $3 > lo && $3 < hi && int($6 / 100) == b' | wc -l)"
    [ "$users" = 400 ] && [ "$irqs" = 400 ] ||
        fail "boot $boot: $users USER and $irqs IRQ records decoded, 400 of each written"
    echo "ok   boot $boot: 400 USER and 400 IRQ records decoded"
done
total="$(echo "$csv" | wc -l)"
[ "$total" = 1600 ] || fail "$total records decoded, 1600 written by the two boots"
echo "check-reset.sh: PASS (boot 1's ring recovered after SYSRESETREQ, boot 2's new session)"
