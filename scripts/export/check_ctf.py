#!/usr/bin/env python3
"""Checks a CTF trace written by `tracemark export --format ctf` against the dump.

Usage: check_ctf.py TRACEMARK DUMP CTF_DIR

Reads the trace with babeltrace2's Python bindings (python3-bt2) and checks, CPU by
CPU, that its events equal `tracemark decode --format json` record for record (kind,
time in ticks, fields), that the events come out in time order, and that the
discarded-event counts babeltrace2 reports add up to the records lost in the dump
(`tracemark stats --json`: overwritten plus dropped, per CPU). CTF cannot go back in
time within a stream: where the dump's clock stepped back (a CLOCKBACK record and those
after it, until the clock passes its earlier reading), the event keeps the previous
time, so the expected time is the running maximum of the CPU's times.
"""
import collections
import json
import subprocess
import sys

import bt2


def decoded(tracemark, dump):
    out = subprocess.run([tracemark, "decode", "--format", "json", dump],
                         check=True, capture_output=True, text=True).stdout
    per_cpu = collections.defaultdict(list)
    last = collections.defaultdict(int)
    for line in out.splitlines():
        r = json.loads(line)
        last[r["cpu"]] = r["ts"] = max(last[r["cpu"]], r["ts"])
        per_cpu[r["cpu"]].append(expected(r))
    return per_cpu


def expected(r):
    """The (kind, ts, fields) the CTF event of decode record `r` must have."""
    k = r["kind"]
    f = {}
    if k == "KENTRY":
        f["path"] = r["path"]
        if "syscall" in r:
            f.update(syscall=r["syscall"], cap=r["cap"], label=r["label"],
                     fastpath=int(r["fastpath"]))
        else:
            f.update(core=r["core"], word=r["word"])
    elif k == "KEXIT":
        note = r.get("note")
        f["status"] = {None: "Ticks", "no entry": "NoEntry",
                       "nesting overflow": "NestingOverflow"}[note]
        f["duration"] = r["duration_ticks"] or 0
        f["entry_path"] = r.get("path", "None")
        f["entry_syscall"] = r.get("syscall", 0)
    elif k == "IRQ":
        f["irq"] = r["irq"]
    elif k in ("FENTRY", "FEXIT"):
        f["func"] = r["func"]
    elif k == "USER":
        f.update(id=r["id"], data=r["data"])
    elif k == "IMAGE":
        f.update(base=r["base"], size=r["size"], id=r["id"])
    elif k == "LOST":
        f.update(count=r["count"], since=r["since"])
    elif k == "SWITCH":
        f["thread"] = r["thread"]
    elif k == "THREAD":
        f.update(thread=r["thread"], prio=r["prio"], name=r["name"])
    elif k == "CLOCKBACK":
        f["back"] = r["back"]
    return (k, r["ts"], f)


def label(enum_field):
    labels = list(enum_field.labels)
    return labels[0] if labels else None


def actual(ev, ts):
    """The (kind, ts, fields) of a babeltrace2 event, in the shape of `expected`."""
    p = ev.payload_field
    k = ev.name
    f = {}
    if k == "KENTRY":
        f["path"] = label(p["path"])
        if f["path"] == "Syscall":
            f.update(syscall=int(p["syscall"]), cap=int(p["cap"]), label=int(p["label"]),
                     fastpath=int(p["fastpath"]))
        else:
            f.update(core=int(p["core"]), word=int(p["word"]))
    elif k == "KEXIT":
        f["status"] = label(p["status"])
        f["duration"] = int(p["duration"])
        f["entry_path"] = label(p["entry_path"])
        if f["entry_path"] != "None":
            # decode names the syscall only for syscall entries
            if f["entry_path"] == "Syscall":
                f["entry_syscall"] = int(p["entry_syscall"])
            else:
                f["entry_syscall"] = 0
        else:
            f["entry_syscall"] = 0
    elif k == "IRQ":
        f["irq"] = int(p["irq"])
    elif k in ("FENTRY", "FEXIT"):
        f["func"] = int(p["func"])
    elif k == "USER":
        f.update(id=int(p["id"]), data=bytes(int(b) for b in p["data"]).hex())
        assert int(p["len"]) == len(p["data"])
    elif k == "IMAGE":
        f.update(base=int(p["base"]), size=int(p["size"]), id=int(p["id"]))
    elif k == "LOST":
        f.update(count=int(p["count"]), since=int(p["since"]))
    elif k == "SWITCH":
        f["thread"] = int(p["thread"])
    elif k == "THREAD":
        f.update(thread=int(p["thread"]), prio=int(p["prio"]), name=str(p["name"]))
    elif k == "CLOCKBACK":
        f["back"] = int(p["back"])
    return (k, ts, f)


def main():
    tracemark, dump, ctf = sys.argv[1:4]
    want = decoded(tracemark, dump)
    stats = json.loads(subprocess.run([tracemark, "stats", "--json", dump], check=True,
                                      capture_output=True, text=True).stdout)
    got = collections.defaultdict(list)
    discarded = collections.Counter()
    last = -1
    it = bt2.TraceCollectionMessageIterator(ctf)
    for msg in it:
        if type(msg) is bt2._EventMessageConst:
            ev = msg.event
            ts = msg.default_clock_snapshot.value
            assert ts >= last, f"events out of time order at {ts}"
            last = ts
            cpu = int(ev.packet.context_field["cpu_id"])
            got[cpu].append(actual(ev, ts))
        elif type(msg) is bt2._DiscardedEventsMessageConst:
            cpu = int(msg.stream.name.rsplit("stream_cpu", 1)[1].split("_")[0])
            discarded[cpu] += msg.count
    assert sorted(got) == sorted(want), f"CPUs {sorted(got)} != {sorted(want)}"
    n = 0
    for cpu, w in want.items():
        g = got[cpu]
        assert len(g) == len(w), f"cpu{cpu}: {len(g)} events, decode has {len(w)}"
        for i, (a, b) in enumerate(zip(g, w)):
            assert a == b, f"cpu{cpu} record {i}: CTF {a} != decode {b}"
        n += len(g)
    # stats lists every ring; a CPU may have several (snapshots and a halt dump).
    lost = {}
    for c in stats["cpus"]:
        lost[c["cpu"]] = lost.get(c["cpu"], 0) + c["overwritten"] + c["dropped"]
    for cpu, n_lost in lost.items():
        assert discarded[cpu] == n_lost, \
            f"cpu{cpu}: babeltrace2 reports {discarded[cpu]} discarded, dump lost {n_lost}"
    assert n == stats["total_records"], (n, stats["total_records"])
    print(f"ok   CTF {ctf}: {n} events equal decode on {len(want)} CPUs, "
          f"{sum(discarded.values())} discarded reported (= stats lost {stats['lost']})")


if __name__ == "__main__":
    main()
