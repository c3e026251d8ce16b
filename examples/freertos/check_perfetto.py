#!/usr/bin/env python3
"""Checks the FreeRTOS example's Perfetto export (check.sh runs this with the Python of
the venv that has PyPI `perfetto`, the official trace schema).

Usage: check_perfetto.py TRACE UART_LOG STATS_JSON

Against the firmware's own truth (its TASK and TRUTH lines) and `tracemark stats`:
* every task of the firmware has a thread track named `<name> (0x<tcb>)`, whose running
  slices (named `<name>`) number its switch-ins in stats;
* the producer/consumer queue's `freertos:QUEUE_SEND` and `freertos:QUEUE_RECEIVE`
  instants (its address as `object`) number the items sent and received.
"""
import collections
import json
import re
import sys

from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb

trace_path, uart_path, stats_path = sys.argv[1:4]
trace = pb.Trace()
trace.ParseFromString(open(trace_path, "rb").read())
uart = open(uart_path, encoding="latin-1").read()
stats = json.load(open(stats_path))
truth = dict(kv.split("=", 1) for kv in re.search(r"^TRUTH (.*)$", uart, re.M).group(1).split())
tasks = {int(m.group(1), 16): m.group(2)
         for m in re.finditer(r"^TASK tcb=(\S+) prio=\d+ runtime=\d+ running=\d name=(.*)$", uart, re.M)}
switched_in = {t["thread"]: t["switched_in"] for t in stats["threads"]["threads"]}
queue = int(truth["queue"], 16)

TE = pb.TrackEvent
tracks = {}
slices = collections.Counter()  # (track name, slice name) -> begins
instants = collections.Counter()  # (name, object) -> count
names, args = {}, {}  # interned per sequence: (seq, iid) -> string
for p in trace.packet:
    seq = p.trusted_packet_sequence_id
    if p.sequence_flags & pb.TracePacket.SEQ_INCREMENTAL_STATE_CLEARED:
        names = {k: v for k, v in names.items() if k[0] != seq}
        args = {k: v for k, v in args.items() if k[0] != seq}
    if p.HasField("interned_data"):
        for n in p.interned_data.event_names:
            names[(seq, n.iid)] = n.name
        for n in p.interned_data.debug_annotation_names:
            args[(seq, n.iid)] = n.name
    if p.HasField("track_descriptor"):
        tracks[p.track_descriptor.uuid] = p.track_descriptor.name
    if not p.HasField("track_event"):
        continue
    e = p.track_event
    name = e.name if e.HasField("name") else names.get((seq, e.name_iid))
    if e.type == TE.TYPE_SLICE_BEGIN and e.HasField("track_uuid"):
        slices[(tracks.get(e.track_uuid), name)] += 1
    elif e.type == TE.TYPE_INSTANT and name and name.startswith("freertos:"):
        obj = next((a.uint_value for a in e.debug_annotations
                    if args.get((seq, a.name_iid)) == "object"), None)
        instants[(name, obj)] += 1

fail = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        fail.append(what)


for tcb, name in sorted(tasks.items()):
    track = f"{name} ({tcb:#x})"
    got = slices[(track, name)]
    want = switched_in.get(tcb, 0)
    check(track in tracks.values() and got == want,
          f"perfetto: task {name}: track {track!r} with {got} running slices {name!r} "
          f"(stats: switched in {want})")
for kind, key in [("QUEUE_SEND", "sent"), ("QUEUE_RECEIVE", "received")]:
    got = instants[(f"freertos:{kind}", queue)]
    check(got == int(truth[key]),
          f"perfetto: freertos:{kind} instants on the queue {got}, firmware {key} {truth[key]}")
if fail:
    sys.exit(f"check_perfetto.py: {len(fail)} check(s) failed")
