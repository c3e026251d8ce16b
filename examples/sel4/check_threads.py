#!/usr/bin/env python3
"""Checks the threads of a traced seL4 run: names, and per-thread time against seL4's own.

Usage: check_threads.py TRACEMARK CONSOLE_LOG --dump-id=HEX THREAD...

For the dump HEX of the log (the root task's snapshot 2 is dump 2):

* every THREAD named on the command line appears by name in `tracemark stats` (text and
  JSON, with running, kernel and user time) and as a named track in the Perfetto export
  (a string field of its protobuf, found by walking the protobuf wire format);
* if the log has the root task's `UTIL name util=U kernel=K schedules=S entries=E` lines
  (the `util` build: seL4's KernelBenchmarks=track_utilisation, read with
  seL4_BenchmarkGetThreadUtilisation over snapshot 2's interval), each thread's running
  and kernel time in `tracemark stats` agree with seL4's within the bound below.

The bound. Both count the same clock (x86_64: the TSC, seL4's timestamp() and the tracer
read rdtsc; aarch64: the cycle counter, pmccntr_el0, with KernelTracemarkClock=cycles)
over nearly the same interval, but they cut time differently:

* seL4 switches a thread's time at the *entry* (ksEnter) of the kernel entry that
  switches, tracemark at that entry's SWITCH record, inside it: each switching entry
  can move up to its duration between the two threads it involves. seL4 also gives an
  entry's kernel time to the thread it *exits* to; tracemark to the thread that entered.
  So each thread's figures may differ by the durations of the entries that switched to
  or from it (SWITCH records inside the entry; durations from the trace).
* seL4's window runs from the ResetLog entry to the FinalizeLog entry; the snapshot's
  from the previous snapshot's reset to its own entry: the time outside seL4's window
  (from the trace: first record to ResetLog's entry, FinalizeLog's entry to the last
  record) is the root task's, counted by tracemark only.
* seL4's kernel time of an entry runs from ksEnter, read after the tracer's entry hook,
  to its exit timestamp, read after the tracer's exit hook; tracemark's from its entry
  record's time to its exit record's, both read before anything is encoded: the
  single-owner hooks keep the entry's time and write the entry and the exit together
  after the exit's clock read. seL4 counts that write as kernel time: TRACER_TICKS per
  entry at most. Under QEMU's -icount the TSC advances about one tick per guest
  instruction; measured on the x86_64 run (BENCHMARKS.md), seL4's kernel time exceeds
  tracemark's by about 188 ticks per entry on average (the root task: 4,244,055 ticks
  over 22,509 entries, nearly all of them DebugPutChar entries whose records are alike)
  and 224 for the server's 31 entries (past the switching bound); 300 leaves a third
  of margin. (With the earlier single-context hooks, which wrote the entry at the
  entry, it was 144 to 151, bound 200.)

Exits 1 with one line per failed check.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_trace import one_dump, snapshot_syscall_number  # noqa: E402

# Ticks per kernel entry of the tracer's record writing that seL4's kernel time counts
# and tracemark's does not (see the docstring).
TRACER_TICKS = 300


def proto_strings(data, depth=0):
    """Every length-delimited field of a protobuf stream that is valid UTF-8 text, found
    by walking the wire format (nested messages too)."""
    out = set()
    i = 0

    def varint():
        nonlocal i
        v = shift = 0
        while True:
            if i >= len(data):
                raise ValueError("truncated varint")
            b = data[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return v

    try:
        while i < len(data):
            key = varint()
            wire = key & 7
            if wire == 0:
                varint()
            elif wire == 1:
                i += 8
            elif wire == 5:
                i += 4
            elif wire == 2:
                n = varint()
                chunk = data[i:i + n]
                if len(chunk) != n:
                    raise ValueError("truncated field")
                i += n
                try:
                    text = chunk.decode("utf-8")
                    if text.isprintable():
                        out.add(text)
                except UnicodeDecodeError:
                    pass
                if depth < 8:
                    out |= proto_strings(chunk, depth + 1)
            else:
                raise ValueError(f"wire type {wire}")
    except ValueError:
        pass
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    dump_id = None
    for a in sys.argv[1:]:
        if a.startswith("--dump-id="):
            dump_id = int(a.split("=", 1)[1], 16)
    if len(args) < 3 or dump_id is None:
        print(__doc__, file=sys.stderr)
        return 2
    tool, log, want = args[0], args[1], args[2:]
    failures = []

    def check(ok, what):
        if not ok:
            failures.append(what)
        return ok

    text = open(log, "rb").read().decode("utf-8", "replace")
    tmp = tempfile.TemporaryDirectory()
    one = one_dump(log, {dump_id}, os.path.join(tmp.name, "console.log"))

    def run(*a):
        return subprocess.run([tool, *a], check=True, capture_output=True, text=True).stdout

    stats = json.loads(run("stats", "--json", one))["threads"]
    stats_text = run("stats", one)
    threads = {t["name"]: t for t in stats["threads"] if t.get("name")}
    for name in want:
        if check(name in threads, f"stats --json has no thread named {name!r} ({sorted(threads)})"):
            t = threads[name]
            check(t["kernel_ticks"] + t["user_ticks"] == t["running_ticks"] and t["kernel_ticks"] > 0,
                  f"{name}: kernel {t['kernel_ticks']} + user {t['user_ticks']} != running {t['running_ticks']}")
        check(re.search(rf"^\s+0x[0-9a-f]+\s+{re.escape(name)}\s", stats_text, re.M) is not None,
              f"the stats text has no row for {name!r}")
    pf = os.path.join(tmp.name, "trace.perfetto")
    run("export", one, "--format", "perfetto", "-o", pf)
    strings = proto_strings(open(pf, "rb").read())
    for name in want:
        check(name in strings, f"the Perfetto export has no string field {name!r}")

    util = {m[0]: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m[1])}
            for m in re.findall(r"^UTIL (\S+) (.*?)\r?$", text, re.M)}
    report = []
    if util:
        records = [json.loads(line) for line in run("decode", "--format", "json", one).splitlines()]
        snap = snapshot_syscall_number(text)
        names = {r["thread"]: r["name"] for r in records if r["kind"] == "THREAD"}
        switching = {}   # name -> durations of entries that switched to or from it
        benchmark = []   # entries of the benchmark syscalls (ResetLog, FinalizeLog)
        running = None
        entry = None
        for r in records:
            if r["kind"] == "KENTRY":
                entry = [r, running, None]
                if r["path"] == "UnknownSyscall" and r.get("word") != snap:
                    benchmark.append(r)
            elif r["kind"] == "SWITCH":
                if entry is not None:
                    entry[2] = r["thread"]
                running = r["thread"]
            elif r["kind"] == "KEXIT" and entry is not None:
                e, before, after = entry
                if after is not None:
                    for t in (before, after):
                        n = names.get(t, hex(t) if t is not None else None)
                        switching[n] = switching.get(n, 0) + r["duration_ticks"]
                entry = None
        if check(len(benchmark) == 2, f"{len(benchmark)} benchmark syscall entries, not 2 (ResetLog, FinalizeLog)"):
            edge = (benchmark[0]["ts"] - records[0]["ts"]) + (records[-1]["ts"] - benchmark[1]["ts"])
        else:
            edge = 0
        for name in want:
            if name not in util or name not in threads:
                check(False, f"no UTIL line or no stats for {name!r}")
                continue
            u, t = util[name], threads[name]
            edges = edge if name == "rootserver" else 0
            sw = switching.get(name, 0)
            run_bound = sw + edges
            kern_bound = u["entries"] * TRACER_TICKS + sw + edges
            d_run = t["running_ticks"] - u["util"]
            d_kern = u["kernel"] - t["kernel_ticks"]
            report.append(f"{name}: running {t['running_ticks']} vs seL4 {u['util']} (diff {d_run}, "
                          f"bound {run_bound}); kernel {t['kernel_ticks']} vs seL4 {u['kernel']} "
                          f"(diff {d_kern}, bound {kern_bound} = {u['entries']} entries x "
                          f"{TRACER_TICKS} + switching {sw} + edges {edges})")
            check(abs(d_run) <= run_bound, f"{name}: running time {t['running_ticks']} and seL4's "
                  f"utilisation {u['util']} differ by {d_run}, more than {run_bound}")
            check(abs(d_kern) <= kern_bound, f"{name}: kernel time {t['kernel_ticks']} and seL4's "
                  f"{u['kernel']} differ by {d_kern}, more than {kern_bound}")
    for line in report:
        print(f"check_threads: {line}")
    if failures:
        for f in failures:
            print(f"check_threads: FAIL {f}", file=sys.stderr)
        return 1
    print(f"check_threads: ok: {', '.join(want)} named in stats and Perfetto"
          + ("; running and kernel time agree with seL4's track_utilisation" if util else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
