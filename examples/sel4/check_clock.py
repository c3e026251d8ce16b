#!/usr/bin/env python3
"""Checks that two runs of the same seL4 workload with different tracemark clocks time
it alike (check.sh): over snapshot 1 (the boot to the root task's first snapshot, dump
1; the later intervals ship earlier images over the traced console, whose sizes depend
on the clock's deltas, so the runs' workloads differ after it), the first-to-last record
span must be the same in seconds within 1%, and `TICKS` times as many ticks in the
second run as in the first (within 2%). With --fewer-bytes, the second run's snapshot 1
must also take fewer bytes per kernel entry than the first's.

Usage: check_clock.py TOOL REFERENCE_LOG OTHER_LOG TICKS [--fewer-bytes]
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_trace import one_dump  # noqa: E402


def main():
    tool, ref_log, other_log, ticks = sys.argv[1:5]
    fewer_bytes = "--fewer-bytes" in sys.argv[5:]
    ticks = float(ticks)
    tmp = tempfile.TemporaryDirectory()

    def snapshot1(log):
        name = os.path.basename(os.path.dirname(log)) or "trace"
        return one_dump(log, {1}, os.path.join(tmp.name, f"{name}-{len(os.listdir(tmp.name))}.log"))

    def span(log):
        out = subprocess.run([tool, "decode", "--format", "json", log], check=True,
                             capture_output=True, text=True).stdout.splitlines()
        first, last = json.loads(out[0]), json.loads(out[-1])
        return last["ts"] - first["ts"], float(last["time"]) - float(first["time"])

    def bytes_per_entry(log):
        stats = json.loads(subprocess.run([tool, "stats", "--json", log], check=True,
                                          capture_output=True, text=True).stdout)
        return stats["bytes"] / stats["records_per_kind"]["KENTRY"]

    ref, other = snapshot1(ref_log), snapshot1(other_log)
    (ref_ticks, ref_s), (other_ticks, other_s) = span(ref), span(other)
    seconds, tick_ratio = other_s / ref_s, other_ticks / ref_ticks
    print(f"check_clock.py: snapshot 1, first to last record: {ref_ticks} ticks = {ref_s:.6f} s, "
          f"then {other_ticks} ticks = {other_s:.6f} s (seconds ratio {seconds:.4f}, "
          f"ticks ratio {tick_ratio:.4f}, expected {ticks:g})")
    if not 0.99 <= seconds <= 1.01:
        sys.exit("check_clock.py: the two clocks do not time the run alike (seconds differ by more "
                 "than 1%): is the second clock counting at the frequency the ring states?")
    if not 0.98 <= tick_ratio / ticks <= 1.02:
        sys.exit(f"check_clock.py: {tick_ratio:.4f} times as many ticks, not {ticks:g}")
    if fewer_bytes:
        a, b = bytes_per_entry(ref), bytes_per_entry(other)
        print(f"check_clock.py: snapshot 1, bytes per kernel entry {a:.2f}, then {b:.2f}")
        if not b < a:
            sys.exit("check_clock.py: the coarser clock does not save bytes per kernel entry")


if __name__ == "__main__":
    main()
