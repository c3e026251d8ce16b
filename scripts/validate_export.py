#!/usr/bin/env python3
"""Checks a `tracemark export` output without a browser, against `tracemark stats --json`.

Usage:
    validate_export.py perfetto    TRACE STATS_JSON [--nm NM_OUTPUT [--sources]]
    validate_export.py chrome-json TRACE STATS_JSON [--nm NM_OUTPUT [--sources]]
    validate_export.py hot         STATS_JSON FENTRY_JSONL NM_OUTPUT

With --nm (the output of `nm` on the ELF given to `export --elf`): every function
slice's name is the nm symbol at its `func` address; with --sources too, it has a
`source` (C file:line) from the ELF's DWARF.
hot: `stats --json --elf` ranks functions with the calls that the FENTRY records of
`decode --format json --kind FENTRY --elf` count, named as nm names them; and decode
names every record as nm does.

perfetto: parses TRACE with the official schema (`perfetto_trace_pb2` of the PyPI
package `perfetto`) and checks that
  - every packet has a trusted_packet_sequence_id, and the first packet of each sequence
    sets SEQ_INCREMENTAL_STATE_CLEARED;
  - every track is described (TrackDescriptor) before an event uses it (by track_uuid
    or the sequence's packet defaults), and its parent before it;
  - interned ids (event names, categories, debug-annotation names, interned strings)
    are defined on the sequence, since its last clear, before they are used, and no
    packet uses them between a previous_packet_dropped and the next clear;
  - timestamps never go backwards on a sequence;
  - slices are balanced and nested per track (every END closes an open BEGIN at or
    after its time, nothing is left open);
  - the counts equal stats: kernel slices per syscall name and their summed durations,
    kernel slices in all, function slices, IRQ / user / image / lost instants, kernel
    exits without an entry, and an "Overwritten records" instant per ring that lost
    records to overwriting; a thread-switch instant and a running slice (category
    `thread`) per SWITCH record, each slice on a thread track named as the slice
    ("Thread 0x...", a child of a CPU track; a thread named by THREAD records: slices
    "name" on a track "name (0x...)"); a "Thread named" instant per THREAD record; a
    `clock` instant per CLOCKBACK record.
chrome-json: the same counts from the JSON, B/E balanced per tid, times monotonic per
tid, running slices on a tid named "Thread 0x... (CPU n)" (a thread named by THREAD
records: slices "name" on a tid named "name (0x...) (CPU n)"; a "Thread named" instant
per THREAD record).

Prints one line per check group and exits non-zero on the first failure.
"""

import collections
import json
import sys


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


class Counts:
    """What a trace holds, in the terms `tracemark stats` counts."""

    def __init__(self):
        self.begins = collections.Counter()  # category -> BEGIN count
        self.instants = collections.Counter()  # (category, name) -> count
        self.syscall_begins = collections.Counter()  # name -> count (kernel BEGINs)
        self.syscall_duration = collections.Counter()  # name -> summed duration_ticks
        self.exit_ends = 0  # ENDs that carry a kernel exit's duration (or note)


def read_nm(path):
    """Address -> name from `nm` output (text symbols)."""
    names = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            # ARM mapping symbols ($t, $d) mark code and data, not functions.
            if len(parts) == 3 and parts[1] in "tTwW" and not parts[2].startswith("$"):
                names.setdefault(int(parts[0], 16), parts[2])
    return names


class NameCheck:
    """Function slices named as nm names their address."""

    def __init__(self, nm, sources):
        self.nm = nm
        self.sources = sources
        self.checked = 0

    def slice(self, where, name, args):
        if self.nm is None or "func" not in args:
            return
        want = self.nm.get(args["func"])
        if want is not None:
            check(name == want, f"{where}: function {args['func']:#x} named {name!r}, nm says {want!r}")
            if self.sources:
                src = args.get("source", "")
                file, _, line = src.rpartition(":")
                check(file.endswith(".c") and line.isdigit(), f"{where}: function {name} has no source file:line ({src!r})")
            self.checked += 1

    def done(self):
        if self.nm is not None:
            check(self.checked > 0, "no function slice could be checked against nm")
            print(f"ok   {self.checked} function slices named as nm names them")


def compare(counts, stats):
    kinds = stats["records_per_kind"]

    def instants(cat, name=None):
        return sum(
            n for (c, nm), n in counts.instants.items() if c == cat and (name is None or nm == name)
        )

    kernel_orphans = instants("kernel", "Kernel exit without entry")
    expected = {
        "kernel slices (+ too-deep instants) = KENTRY": (
            counts.begins["kernel"] + instants("kernel") - kernel_orphans,
            kinds["KENTRY"],
        ),
        "function slices (+ too-deep instants) = FENTRY": (
            counts.begins["function"]
            + instants("function")
            - instants("function", "Function exit without entry"),
            kinds["FENTRY"],
        ),
        "kernel exits (ENDs with a duration + orphans) = KEXIT": (
            counts.exit_ends + kernel_orphans,
            kinds["KEXIT"],
        ),
        "kernel exits without entry = unmatched_exits": (kernel_orphans, stats["unmatched_exits"]),
        "IRQ instants = IRQ": (instants("irq"), kinds["IRQ"]),
        "user instants = USER": (instants("user"), kinds["USER"]),
        "image instants = IMAGE": (instants("image"), kinds["IMAGE"]),
        "lost-record instants = LOST": (instants("lost", "Lost records"), kinds["LOST"]),
        "thread-switch instants = SWITCH": (instants("thread", "Thread switch"), kinds.get("SWITCH", 0)),
        "thread-named instants = THREAD": (instants("thread", "Thread named"), kinds.get("THREAD", 0)),
        "running slices on thread tracks = SWITCH": (counts.begins["thread"], kinds.get("SWITCH", 0)),
        "clock-back instants = CLOCKBACK": (instants("clock"), kinds.get("CLOCKBACK", 0)),
        "overwritten instants = rings with overwritten records": (
            instants("lost", "Overwritten records"),
            sum(1 for c in stats["cpus"] if c["overwritten"] > 0 and c["records"] > 0),
        ),
    }
    for what, (got, want) in expected.items():
        check(got == want, f"{what}: trace has {got}, stats says {want}")
    for s in stats["syscalls"]:
        name = s["name"]
        check(
            counts.syscall_begins[name] == s["count"],
            f"syscall {name}: {counts.syscall_begins[name]} slices, stats says {s['count']}",
        )
        check(
            counts.syscall_duration[name] == s["duration_sum_ticks"],
            f"syscall {name}: durations sum to {counts.syscall_duration[name]}, "
            f"stats says {s['duration_sum_ticks']}",
        )
    print(
        f"ok   counts equal stats: {sum(counts.begins.values())} slices, "
        f"{sum(counts.instants.values())} instants, {len(stats['syscalls'])} syscalls"
    )


def validate_perfetto(path, stats, names):
    from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb

    trace = pb.Trace()
    with open(path, "rb") as f:
        trace.ParseFromString(f.read())
    P = pb.TracePacket
    CLEARED = P.SEQ_INCREMENTAL_STATE_CLEARED
    NEEDS = P.SEQ_NEEDS_INCREMENTAL_STATE
    TE = pb.TrackEvent
    tracks = {}  # uuid -> name
    track_parent = {}  # uuid -> parent uuid
    cpu_tracks = set()
    seqs = {}  # id -> state
    stacks = collections.defaultdict(list)  # track uuid -> [(name, category, ts)]
    counts = Counts()
    packets = 0
    for i, p in enumerate(trace.packet):
        packets += 1
        where = f"packet {i}"
        check(p.trusted_packet_sequence_id != 0, f"{where}: no trusted_packet_sequence_id")
        sid = p.trusted_packet_sequence_id
        st = seqs.get(sid)
        if st is None:
            check(p.sequence_flags & CLEARED, f"{where}: first packet of sequence {sid} does not clear its state")
            st = seqs[sid] = {"ts": 0}
        if p.sequence_flags & CLEARED:
            st.update(valid=True, names={}, cats={}, args={}, strings={}, track=None)
        if p.HasField("trace_packet_defaults"):
            check(p.sequence_flags & CLEARED, f"{where}: packet defaults without clearing the state")
            d = p.trace_packet_defaults.track_event_defaults
            st["track"] = d.track_uuid if d.HasField("track_uuid") else None
        if p.previous_packet_dropped:
            st["valid"] = False
        if p.HasField("interned_data"):
            d = p.interned_data
            for table, entries, field in (
                ("names", d.event_names, "name"),
                ("cats", d.event_categories, "name"),
                ("args", d.debug_annotation_names, "name"),
                ("strings", d.debug_annotation_string_values, "str"),
            ):
                for e in entries:
                    check(e.iid != 0, f"{where}: interned {table} entry with iid 0")
                    st[table][e.iid] = getattr(e, field)
        if p.HasField("timestamp"):
            check(p.timestamp >= st["ts"], f"{where}: time goes back on sequence {sid} ({p.timestamp} < {st['ts']})")
            st["ts"] = p.timestamp
        if p.HasField("track_descriptor"):
            t = p.track_descriptor
            check(t.uuid not in tracks, f"{where}: track {t.uuid} described twice")
            if t.HasField("parent_uuid"):
                check(t.parent_uuid in tracks, f"{where}: track {t.uuid}'s parent {t.parent_uuid} not described before")
            tracks[t.uuid] = t.name
            track_parent[t.uuid] = t.parent_uuid if t.HasField("parent_uuid") else None
            if t.name.startswith("CPU "):
                cpu_tracks.add(t.uuid)
        if not p.HasField("track_event"):
            continue
        e = p.track_event
        check(p.HasField("timestamp"), f"{where}: track event without timestamp")
        if e.HasField("track_uuid"):
            track = e.track_uuid
        else:
            check(st["valid"] and st["track"] is not None, f"{where}: no track_uuid and no valid default")
            track = st["track"]
        check(track in tracks, f"{where}: track {track} used before it is described")

        def lookup(table, iid):
            check(p.sequence_flags & NEEDS, f"{where}: uses interned ids without SEQ_NEEDS_INCREMENTAL_STATE")
            check(st["valid"], f"{where}: uses interned ids while the state of sequence {sid} is not valid")
            check(iid in st[table], f"{where}: {table} iid {iid} not defined before use on sequence {sid}")
            return st[table][iid]

        name = lookup("names", e.name_iid) if e.HasField("name_iid") else e.name
        cats = [lookup("cats", c) for c in e.category_iids] + list(e.categories)
        cat = cats[0] if cats else ""
        args = {}
        for a in e.debug_annotations:
            an = lookup("args", a.name_iid) if a.HasField("name_iid") else a.name
            if a.HasField("string_value_iid"):
                args[an] = lookup("strings", a.string_value_iid).decode()
            else:
                kind = a.WhichOneof("value")
                args[an] = getattr(a, kind) if kind else None
        stack = stacks[track]
        if e.type == TE.TYPE_SLICE_BEGIN:
            check(name, f"{where}: slice without a name")
            stack.append((name, cat, p.timestamp))
            counts.begins[cat] += 1
            if cat == "function":
                names.slice(where, name, args)
            if cat == "kernel":
                counts.syscall_begins[name] += 1
            if cat == "thread":
                # A named thread's track is "name (0x...)", its slices "name".
                check(
                    tracks[track] == name or tracks[track].startswith(name + " (0x"),
                    f"{where}: running slice {name} on track {tracks[track]}",
                )
                check(track_parent.get(track) in cpu_tracks, f"{where}: thread track {track} not under a CPU")
        elif e.type == TE.TYPE_SLICE_END:
            check(stack, f"{where}: END with no open slice on track {track}")
            bname, bcat, bts = stack.pop()
            check(p.timestamp >= bts, f"{where}: slice {bname} ends before it begins")
            if "duration_ticks" in args or "note" in args:
                check(bcat == "kernel", f"{where}: a kernel exit closes {bcat} slice {bname}")
                counts.exit_ends += 1
                counts.syscall_duration[bname] += args.get("duration_ticks", 0)
        elif e.type == TE.TYPE_INSTANT:
            check(name, f"{where}: instant without a name")
            counts.instants[(cat, name)] += 1
        else:
            fail(f"{where}: unexpected event type {e.type}")
    check(packets > 0, "no packet")
    for uuid, stack in stacks.items():
        check(not stack, f"track {uuid} ({tracks.get(uuid)}): {len(stack)} slices left open")
    print(
        f"ok   perfetto structure: {packets} packets on {len(seqs)} sequences, "
        f"{len(tracks)} tracks described before use, interned ids defined before use, "
        f"times monotonic per sequence, slices balanced and nested per track"
    )
    compare(counts, stats)


def validate_chrome(path, stats, fnames):
    with open(path) as f:
        doc = json.load(f)
    events = doc["traceEvents"]
    counts = Counts()
    stacks = collections.defaultdict(list)
    last = collections.defaultdict(float)
    names = {}
    for i, e in enumerate(events):
        where = f"event {i}"
        ph = e["ph"]
        if ph == "M":
            if e["name"] == "thread_name":
                names[e["tid"]] = e["args"]["name"]
            continue
        tid = e["tid"]
        check(tid in names, f"{where}: thread {tid} has no thread_name before use")
        ts = e["ts"]
        check(ts >= last[tid], f"{where}: time goes back on thread {tid}")
        last[tid] = ts
        args = e.get("args", {})
        if ph == "B":
            stacks[tid].append((e["name"], e["cat"], ts))
            counts.begins[e["cat"]] += 1
            if e["cat"] == "function":
                fnames.slice(where, e["name"], args)
            if e["cat"] == "kernel":
                counts.syscall_begins[e["name"]] += 1
            if e["cat"] == "thread":
                # A named thread's tid is "name (0x...) (CPU n)", its slices "name".
                check(
                    names[tid].startswith(e["name"] + " (CPU ") or names[tid].startswith(e["name"] + " (0x"),
                    f"{where}: running slice {e['name']} on {names[tid]}",
                )
        elif ph == "E":
            check(stacks[tid], f"{where}: E with no open B on thread {tid}")
            bname, bcat, _ = stacks[tid].pop()
            if "duration_ticks" in args or "note" in args:
                check(bcat == "kernel", f"{where}: a kernel exit closes {bcat} slice {bname}")
                counts.exit_ends += 1
                counts.syscall_duration[bname] += args.get("duration_ticks", 0)
        elif ph == "i":
            check(e.get("s") == "t", f"{where}: instant not thread-scoped")
            counts.instants[(e["cat"], e["name"])] += 1
        else:
            fail(f"{where}: unexpected phase {ph}")
    for tid, stack in stacks.items():
        check(not stack, f"thread {tid}: {len(stack)} slices left open")
    print(f"ok   chrome-json structure: {len(events)} events, B/E balanced per thread, times monotonic")
    compare(counts, stats)


def validate_hot(stats_path, fentry_path, nm_path):
    with open(stats_path) as f:
        stats = json.load(f)
    nm = read_nm(nm_path)
    calls = collections.Counter()
    with open(fentry_path) as f:
        for line in f:
            r = json.loads(line)
            calls[r["func"]] += 1
            want = nm.get(r["func"])
            if want is not None:
                check(r.get("symbol") == want, f"decode: {r['func']:#x} named {r.get('symbol')!r}, nm says {want!r}")
    hot = stats["hot_functions"]
    check(hot["by_calls"], "no hot function listed")
    check(len(hot["by_calls"]) == min(10, len(calls)), "by_calls does not list the top 10")
    for h in hot["by_calls"] + hot["by_inclusive_time"]:
        check(h["calls"] == calls[h["func"]], f"{h['func']:#x}: {h['calls']} calls, decode has {calls[h['func']]}")
        check(h["name"] == nm.get(h["func"]), f"{h['func']:#x}: named {h['name']!r}, nm says {nm.get(h['func'])!r}")
    ranked = [h["calls"] for h in hot["by_calls"]]
    check(ranked == sorted(ranked, reverse=True), "by_calls is not sorted")
    check(ranked[0] == max(calls.values()), "the first function is not the most called")
    times = [h["inclusive_ns"] for h in hot["by_inclusive_time"]]
    check(times == sorted(times, reverse=True), "by_inclusive_time is not sorted")
    print(
        f"ok   decode --elf: {sum(calls.values())} FENTRY records named as nm names them; "
        f"hot functions: {len(hot['by_calls'])} ranked, calls equal decode, names equal nm"
    )


def main():
    args = sys.argv[1:]
    nm = None
    sources = "--sources" in args
    if sources:
        args.remove("--sources")
    if "--nm" in args:
        i = args.index("--nm")
        nm = read_nm(args[i + 1])
        del args[i : i + 2]
    if len(args) != (4 if args[:1] == ["hot"] else 3) or args[0] not in ("perfetto", "chrome-json", "hot"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    if args[0] == "hot":
        validate_hot(*args[1:])
        return
    with open(args[2]) as f:
        stats = json.load(f)
    names = NameCheck(nm, sources)
    if args[0] == "perfetto":
        validate_perfetto(args[1], stats, names)
    else:
        validate_chrome(args[1], stats, names)
    names.done()


if __name__ == "__main__":
    main()
