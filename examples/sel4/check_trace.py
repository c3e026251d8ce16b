#!/usr/bin/env python3
"""Checks a traced seL4 boot against the root task's truth.

Usage: check_trace.py TRACEMARK CONSOLE_LOG [--functions] [--max-fill=F] [--release]
                      [--cores=N] [--dump-id=HEX --truth=LABEL]

--release: a release kernel without KernelPrinting. The root task has no console there:
its TRUTH line (and with --cores=N its TRUTH_CORE lines, before it) comes from the trace
(the note of seL4_BenchmarkFinalizeLog, USER records 0x4e4f54 "NOT"), the kernel keeps no
thread names (switches are checked by TCB: the root task's threads are distinct TCBs, the
first is the one that finalises the log; with --cores=N each core switches to at least
as many distinct threads as its TRUTH_CORE line names), and there is no DebugPutChar.

Reads everything through the `tracemark` tool (`stats --json` and `decode --format json`
on the console log itself) and the root task's `TRUTH` line from the log. With
--dump-id, only that dump of the log is read (the root task's snapshots are dumps 1 and
2, the kernel's halt dump is 73654c34) and the truth is the line that starts with LABEL
(TRUTH1, TRUTH2: the snapshots' intervals); by default the halt dump and `TRUTH`.
Thread names come from the trace's THREAD records (the kernel writes them when a thread
is named, and at every reset and dump); the kernel's `tracemark: thread 0x... "name"`
lines at the halt must agree with them. Asserts:

* the ring was dumped completely: no lost records, no corrupt or torn blocks;
* the ring is at most half full (MAX_FILL, or F of --max-fill=F): the run could record
  twice as much before the ring wraps. run.sh runs QEMU under -icount, so the fill is
  the same on every host; the margin is for changes to the kernel, the hooks or the
  workload, which then fail here, with the fill, before they lose records;
* per syscall, the kernel entries named in the trace equal the root task's counts, once
  the entries the kernel preempted (an interrupt handled inside the entry: seL4 restarts
  the syscall, so user space made one syscall and the kernel was entered twice) are
  taken out; the same for Calls per invoked cap type;
* the IPC fastpath is traced (its entries carry the fastpath flag), if the interval
  made ReplyRecvs;
* every kernel exit has a duration, not 0, equal to the time between its entry record
  and itself (the entry's real span), and every record in between lies inside that span;
* records are in time order;
* interrupts appear (IRQ records and Interrupt entries) if the interval spun (its truth's
  `spins`), and the faults (VMFault entries, its truth's `faults`);
* the snapshot syscalls the interval made (its truth's `snapshots`) are the UnknownSyscall
  entries of seL4_TracemarkSnapshot's number, the last of them the interval's last entry;
* every thread switch names a thread a THREAD record names (with the kernel's name for
  it), and the truth's threads are all switched to;
* the trace says which thread runs first: a switch to the root task before the first
  kernel entry (the kernel's first exit to user level, which ends no entry), and no
  switch names the thread that was already running;
* seL4_DebugPutChar entries carry no cap and the character as their label: the
  characters, in order, are the lines the root task printed, TRUTH line included, as
  the console shows them;
* with --cores=N (a kernel of N cores, N > 1; the checks above then hold per CPU: each
  core's entries, exits, interrupts and switches are checked in its own ring): the dump
  has one ring per core, CPU ids 0..N-1; per core, the syscalls its threads made (the
  root task's `TRUTH_CORE c` lines for cores c > 0, the TRUTH line minus those for core
  0; on the console, or with --release in the note), the thread switches (cores c > 0),
  the reschedule and remote-call IPIs (IRQ records with the numbers the kernel printed;
  `ipi.resched_extra` allows IPIs seL4 may or may not send) and the core's threads
  switched to (with --release: as many distinct TCBs); and
  that `decode` merged the cores in time order (records in time order across CPUs,
  each ring's records in its own order, and the CPUs alternating at least twice per
  cross-core round trip);
* with --functions: function entries and exits balance: every exit closes the innermost
  open entry, and at the dump only the halt path (handleUnknownSyscall) is open; the
  function records outside every kernel entry are the ones the kernel says it made
  there (its USER record 0x4f5554 "OUT": the rest of the boot, and between an exit
  record and the next entry), no more, no fewer.

Exits 1 with one line per failed check.
"""
import collections
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

# The most of the ring a run may fill (see the docstring).
MAX_FILL = 0.5
# The USER record id of the kernel's count of function records outside kernel entries
# (TRACEMARK_SEL4_OUTSIDE_ID in the patch's include/benchmark/tracemark.h).
OUTSIDE_ID = 0x4F5554
# The USER record id of the note of seL4_BenchmarkFinalizeLog's caller
# (TRACEMARK_SEL4_NOTE_ID): its bytes, 32 per record, in order.
NOTE_ID = 0x4E4F54


def ring_fills(tool, log):
    """Per dumped ring (one per CPU, laid end to end, each whole or its used part): its
    CPU id, the bytes it holds and its capacity, from its header (FORMAT.md 4.1, 6.1, 7.3).

    The writer opens blocks in sequence order from 0, so until the ring wraps the bytes
    written are commit_pos's block sequence times the block size plus its offset; a
    wrapped ring gives more than the capacity.
    """
    with tempfile.TemporaryDirectory() as d:
        ring = os.path.join(d, "ring.bin")
        subprocess.run([tool, "extract", log, "-o", ring], check=True, capture_output=True)
        with open(ring, "rb") as f:
            dump = f.read()
    rings = []
    off = 0
    while off + 64 <= len(dump):
        (header_len,) = struct.unpack_from("<H", dump, off + 10)
        block_size, block_count = struct.unpack_from("<II", dump, off + 12)
        (cpu,) = struct.unpack_from("<I", dump, off + 40)
        (commit_pos,) = struct.unpack_from("<I", dump, off + 60)
        shift = block_size.bit_length() - 1
        used = (commit_pos >> shift) * block_size + (commit_pos & (block_size - 1))
        rings.append((cpu, used, block_count * block_size))
        # A dump sends a ring not yet round its slots only up to its used part
        # (FORMAT.md 7.3): the next ring then starts at end_of(write_pos), where its
        # header's magic is; else after the whole ring.
        (write_pos,) = struct.unpack_from("<I", dump, off + 56)
        seq = write_pos >> shift
        end = header_len + (seq % block_count) * block_size + (write_pos & (block_size - 1))
        whole = header_len + block_count * block_size
        if end < whole and dump[off + end:off + end + 8] == b"TRACEMRK":
            off += end
        else:
            off += whole
    return rings


def note_text(tool, log):
    """The note of seL4_BenchmarkFinalizeLog's caller in the dump(s) of `log`: the bytes
    of its USER records (NOTE_ID), in order, as text."""
    out = subprocess.run([tool, "decode", "--format", "json", log], check=True,
                         capture_output=True, text=True).stdout.splitlines()
    note = b"".join(bytes.fromhex(r["data"]) for r in map(json.loads, out)
                    if r["kind"] == "USER" and r["id"] == NOTE_ID)
    return note.decode("utf-8", "replace")


def truth_lines(text, label="TRUTH"):
    """The `label` line's key=value pairs and the TRUTH_CORE lines' (core -> pairs) in
    `text`, or None for a missing `label` line."""
    m = re.search(rf"^{re.escape(label)} (.*)$", text, re.M)
    if not m:
        return None, {}
    per_core = {int(c): dict(kv.split("=", 1) for kv in fields.split())
                for c, fields in re.findall(r"^TRUTH_CORE (\d+) (.*)$", text, re.M)}
    return dict(kv.split("=", 1) for kv in m.group(1).split()), per_core


def check_cores(check, text, per_core, truth, cores, cpu_entries, cpu_preempted, cpu_switches,
                cpu_irqs, cpu_switched_to, cpu_changes, release):
    """The per-core truth of a multicore run (see the docstring, --cores): `text` the
    console (the kernel's lines), `per_core` the TRUTH_CORE lines (from the console, or
    on a release kernel from the note)."""
    m = re.search(r"^tracemark: (\d+) nodes, one ring each; IPI irqs: remote call (\d+), "
                  r"reschedule (\d+)", text, re.M)
    if not check(m is not None, "no 'tracemark: N nodes ... IPI irqs' line from the kernel"):
        return
    nodes, ipi_call, ipi_resched = (int(g) for g in m.groups())
    check(nodes == cores, f"the kernel has {nodes} nodes, not {cores}")
    if not check(sorted(per_core) == list(range(cores)),
                 f"TRUTH_CORE lines for cores {sorted(per_core)}, not 0..{cores - 1}"):
        return
    # Core 0's syscalls: the TRUTH line's minus the other cores'.
    sys_names = [k[4:] for k in truth if k.startswith("sys.")]
    want = {c: collections.Counter() for c in range(cores)}
    for c in range(1, cores):
        for k, v in per_core[c].items():
            if k.startswith("sys."):
                want[c][k[4:]] = int(v)
    for name in sys_names:
        want[0][name] = int(truth["sys." + name]) - sum(want[c][name] for c in range(1, cores))
    for c in range(cores):
        for name in set(sys_names) | set(want[c]):
            got = cpu_entries[c, name] - cpu_preempted[c, name]
            check(got == want[c][name], f"CPU {c}: syscall {name}: trace {cpu_entries[c, name]} entries"
                  f" - {cpu_preempted[c, name]} preempted = {got}, its threads made {want[c][name]}")
        t = per_core[c]
        if "switches" in t:
            check(cpu_switches[c] == int(t["switches"]),
                  f"CPU {c}: {cpu_switches[c]} thread switches, the root task counts {int(t['switches'])}")
        for key, irq in (("ipi.resched", ipi_resched), ("ipi.call", ipi_call)):
            got = cpu_irqs[c, irq]
            # IPIs seL4 may or may not send (see root.c, ipi.resched_extra).
            extra = int(t.get(key + "_extra", 0))
            check(int(t[key]) <= got <= int(t[key]) + extra,
                  f"CPU {c}: {got} IRQ records of IPI {irq} ({key}), the root task counts "
                  f"{int(t[key])}" + (f" (and at most {extra} more)" if extra else ""))
        threads = [n for n in t.get("threads", "").split(",") if n]
        if release:
            # No names: as many distinct TCBs switched to on the core (its idle thread
            # may be one more).
            check(len(cpu_switched_to[c]) >= len(threads),
                  f"CPU {c}: switches to {len(cpu_switched_to[c])} distinct threads, its "
                  f"threads are {len(threads)}")
        else:
            for name in threads:
                check(name in cpu_switched_to[c], f"CPU {c}: no switch to its thread {name}")
    # decode's merge: each cross-core round trip (a Call from core 0, answered on core
    # c) shows in the merged output as core 0, core c, core 0 again.
    round_trips = int(per_core[0]["ipi.resched"])
    check(cpu_changes >= 2 * round_trips,
          f"the merged records change CPU {cpu_changes} times, fewer than twice the "
          f"{round_trips} cross-core round trips: decode did not interleave the cores")


# The dump id of the kernel's own dump at seL4_DebugHalt ("seL4").
KERNEL_DUMP_ID = 0x73654C34


def one_dump(log, dump_ids, out):
    """Writes `log` to `out` without the framed lines (FORMAT.md 17.2) of dumps whose id
    is not among `dump_ids`."""
    keep = []
    with open(log, "rb") as f:
        for line in f:
            if line.startswith(b"@TM:"):
                fields = line[4:].split(b",")
                at = 2 if fields[0] in (b"B", b"E") else 1
                try:
                    if int(fields[at], 16) not in dump_ids:
                        continue
                except (IndexError, ValueError):
                    pass
            keep.append(line)
    with open(out, "wb") as f:
        f.writelines(keep)
    return out


def snapshot_syscall_number(text):
    """seL4_TracemarkSnapshot's number as the trace records it (-seL4_SysTracemarkSnapshot),
    from the root task's `snapshot syscall N` line, or None."""
    m = re.search(r"^root: snapshot syscall ([0-9]+)\r?$", text, re.M)
    return int(m.group(1)) if m else None


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    functions = "--functions" in sys.argv
    release = "--release" in sys.argv
    max_fill = MAX_FILL
    cores = 1
    dump_id = None
    label = "TRUTH"
    for a in sys.argv[1:]:
        if a.startswith("--max-fill="):
            max_fill = float(a.split("=", 1)[1])
        elif a.startswith("--cores="):
            cores = int(a.split("=", 1)[1])
        elif a.startswith("--dump-id="):
            dump_id = int(a.split("=", 1)[1], 16)
        elif a.startswith("--truth="):
            label = a.split("=", 1)[1]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    tool, log = args
    failures = []
    tmp = tempfile.TemporaryDirectory()
    # The kernel's halt dump: one UART dump per node, ids KERNEL_DUMP_ID + node.
    dump_ids = {dump_id} if dump_id is not None else {KERNEL_DUMP_ID + n for n in range(cores)}
    # The whole console, for the lines the root task printed (shipped dumps included).
    console_lines = set(open(log, "rb").read().decode("utf-8", "replace").splitlines())
    log = one_dump(log, dump_ids, os.path.join(tmp.name, "console.log"))

    def check(ok, what):
        if not ok:
            failures.append(what)
        return ok

    text = open(log, "rb").read().decode("utf-8", "replace")
    if release:
        # The root task's last lines, shipped in the trace (no console without KernelPrinting).
        truth_text = note_text(tool, log)
        if re.search(r"^TRUTH(_CORE [0-9]+)? ", text, re.M):
            print(f"{log}: a TRUTH line on the console of a release run (is the kernel built "
                  f"with KernelPrinting?)", file=sys.stderr)
            return 1
    else:
        truth_text = text
    truth, per_core = truth_lines(truth_text, label)
    if truth is None:
        where = "in the trace's note (USER 0x4e4f54)" if release else "on the console"
        failed = re.search(r"^root: FAILED.*$", truth_text, re.M)
        print(f"{log}: no {label} line {where} (did the root task finish?"
              + (f" It says: {failed.group(0)}" if failed else "") + ")", file=sys.stderr)
        return 1
    m = re.search(rf"^{re.escape(label)} (.*)$", truth_text, re.M)
    kernel_names = {int(a, 16): n for a, n in re.findall(r'^tracemark: thread 0x([0-9a-f]+) "([^"]*)"', text, re.M)}
    if release:
        check(not kernel_names, "thread names listed by a release kernel")
    snapshot_no = snapshot_syscall_number(text)

    stats = json.loads(subprocess.run([tool, "stats", "--json", log], check=True,
                                      capture_output=True, text=True).stdout)
    rings = ring_fills(tool, log)
    check([r[0] for r in rings] == list(range(cores)),
          f"the dump has rings for CPUs {[r[0] for r in rings]}, not one for each of the {cores} cores")
    _, used, capacity = max(rings, key=lambda r: r[1] / r[2])
    fill = used / capacity
    check(stats["lost"] == 0, f"lost records: {stats['lost']} (the ring of {capacity} bytes wrapped)")
    check(fill <= max_fill,
          f"the ring is {fill:.1%} full ({used} of {capacity} bytes), more than the {max_fill:.1%} "
          f"this check allows (the margin for the run to grow before the ring wraps and loses records): "
          f"give the kernel a larger ring (build.sh, KernelTracemarkRingBytes; a build folder "
          f"configured before a change of it keeps the old size: remove its kernel/ folder)")
    check(stats["corrupt_blocks"] == 0 and stats["torn_blocks"] == 0,
          f"corrupt/torn blocks: {stats['corrupt_blocks']}/{stats['torn_blocks']}")
    check(stats["unmatched_exits"] == 0, f"unmatched kernel exits: {stats['unmatched_exits']}")

    decoded = subprocess.run([tool, "decode", "--format", "json", log], check=True,
                             capture_output=True, text=True).stdout.splitlines()
    records = [json.loads(line) for line in decoded]
    check(len(records) == stats["total_records"],
          f"decode gave {len(records)} records, stats counted {stats['total_records']}")

    names = {r["thread"]: r["name"] for r in records if r["kind"] == "THREAD"}
    for t, n in kernel_names.items():
        if t in names:
            check(names[t] == n, f"thread {t:#x}: THREAD record names it {names[t]!r}, the kernel {n!r}")
    check(release or "rootserver" in names.values(), f"no THREAD record names the root task (names: {sorted(names.values())})")
    snapshot_entries = []                # (record, entries before it) of seL4_TracemarkSnapshot
    entries = collections.Counter()      # syscall name -> kernel entries
    preempted = collections.Counter()    # syscall name -> entries with an interrupt inside
    cpu_entries = collections.Counter()  # (cpu, syscall name) -> kernel entries
    cpu_preempted = collections.Counter()
    cpu_kentries = collections.Counter()  # cpu -> kernel entries (every path)
    cpu_switches = collections.Counter()  # cpu -> SWITCH records
    cpu_irqs = collections.Counter()      # (cpu, irq) -> IRQ records
    cpu_switched_to = collections.defaultdict(set)   # cpu -> names switched to
    last_n = {}                           # cpu -> its last record's number
    cpu_changes = 0                       # records whose CPU is not the previous one's
    prev_cpu = None
    call_caps = collections.Counter()    # cap name -> Call entries
    call_caps_preempted = collections.Counter()
    paths = collections.Counter()
    fastpath = 0
    switched_to = collections.Counter()
    running = {}                         # cpu -> the thread its last switch named
    first_switch = None                  # (record, kernel entries before it)
    putchars = []                        # DebugPutChar labels, in order
    outside = {"boot": 0, "after_exit": 0}   # function records outside kernel entries
    stated_outside = None                # what the kernel's USER record says
    irqs = 0
    open_entries = {}                    # cpu -> (record, saw an IRQ inside) or None
    prev_ts = None
    fstacks = collections.defaultdict(list)   # cpu -> open functions
    image_base = None
    exits = 0
    for r in records:
        ts = r["ts"]
        cpu = r["cpu"]
        if prev_ts is not None and ts < prev_ts:
            check(False, f"record #{r['n']} at {ts} is earlier than the one before ({prev_ts})")
        prev_ts = ts
        check(cpu < cores, f"record #{r['n']} of CPU {cpu}, on a kernel of {cores} cores")
        check(last_n.get(cpu, -1) < r["n"], f"CPU {cpu}'s record #{r['n']} comes after its #{last_n.get(cpu)}")
        last_n[cpu] = r["n"]
        cpu_changes += prev_cpu is not None and cpu != prev_cpu
        prev_cpu = cpu
        open_entry = open_entries.get(cpu)
        fstack = fstacks[cpu]
        kind = r["kind"]
        if kind == "KENTRY":
            check(open_entry is None, f"record #{r['n']}: kernel entry inside an open entry")
            open_entry = open_entries[cpu] = [r, False]
            cpu_kentries[cpu] += 1
            paths[r["path"]] += 1
            if r["path"] == "UnknownSyscall" and snapshot_no is not None and r.get("word") == snapshot_no:
                snapshot_entries.append(sum(paths.values()))
            if r["path"] == "Syscall":
                fastpath += bool(r.get("fastpath"))
                check("syscall_name" in r, f"record #{r['n']}: syscall {r.get('syscall')} has no name")
                entries[r.get("syscall_name", "?")] += 1
                cpu_entries[cpu, r.get("syscall_name", "?")] += 1
                if r.get("syscall_name") == "Call":
                    call_caps[r.get("cap_name", str(r.get("cap")))] += 1
                if r.get("syscall_name") == "DebugPutChar":
                    check(r.get("cap") == 0, f"record #{r['n']}: DebugPutChar with cap {r.get('cap')} "
                          f"({r.get('cap_name')}): its cap register holds the character, not a cap")
                    putchars.append(r.get("label", 0))
        elif kind == "KEXIT":
            exits += 1
            if not check(open_entry is not None, f"record #{r['n']}: kernel exit with no entry"):
                continue
            e, irq_inside = open_entry
            d = r.get("duration_ticks")
            span = ts - e["ts"]
            check(d is not None and d > 0, f"record #{r['n']}: exit duration {d}")
            check(d == span, f"record #{r['n']}: duration {d} != span of its entry #{e['n']} ({span} ticks)")
            check(r.get("path") == e["path"] and r.get("syscall_name") == e.get("syscall_name"),
                  f"record #{r['n']}: exit not named after its entry #{e['n']}")
            if irq_inside and e["path"] == "Syscall":
                preempted[e["syscall_name"]] += 1
                cpu_preempted[cpu, e["syscall_name"]] += 1
                if e["syscall_name"] == "Call":
                    call_caps_preempted[e.get("cap_name", str(e.get("cap")))] += 1
            open_entries[cpu] = None
        elif kind == "IRQ":
            irqs += 1
            cpu_irqs[cpu, r["irq"]] += 1
            check(open_entry is not None, f"record #{r['n']}: interrupt outside a kernel entry")
            if open_entry is not None:
                open_entry[1] = True
        elif kind == "SWITCH":
            t = r["thread"]
            check(release or t in names, f"record #{r['n']}: switch to unnamed thread {t:#x}")
            check(t != running.get(cpu), f"record #{r['n']}: switch to {names.get(t, hex(t))}, "
                  f"which was already running on CPU {cpu}")
            running[cpu] = t
            # The boot CPU's first thread is the root task; the other cores' first is
            # their idle thread, current since boot.
            if first_switch is None and cpu == 0:
                first_switch = (r, cpu_kentries[0])
            switched_to[names.get(t, hex(t))] += 1
            cpu_switches[cpu] += 1
            cpu_switched_to[cpu].add(names.get(t, hex(t)))
        elif kind == "IMAGE":
            image_base = r["base"]
        elif kind == "USER" and r["id"] == OUTSIDE_ID:
            data = bytes.fromhex(r["data"])
            if check(len(data) == 16, f"record #{r['n']}: USER {OUTSIDE_ID:#x} has {len(data)} bytes, not 16"):
                boot, after_exit = struct.unpack("<QQ", data)
                stated_outside = {"boot": boot, "after_exit": after_exit}
        if kind in ("FENTRY", "FEXIT") and open_entries.get(cpu) is None:
            outside["boot" if first_switch is None else "after_exit"] += 1
        if kind == "FENTRY":
            fstack.append(r["func"])
        elif kind == "FEXIT":
            if check(fstack and fstack[-1] == r["func"],
                     f"record #{r['n']}: function exit {r['func']:#x} does not close the innermost entry"):
                fstack.pop()
    for cpu, e in open_entries.items():
        check(e is None, f"a kernel entry of CPU {cpu} is still open at the end of the trace")
    fstack = fstacks[0]

    for key, want in truth.items():
        if key.startswith("sys."):
            name = key[4:]
            got = entries[name] - preempted[name]
            check(got == int(want), f"syscall {name}: trace {entries[name]} entries"
                  f" - {preempted[name]} preempted = {got}, root task made {int(want)}")
        elif key.startswith("call."):
            cap = key[5:]
            got = call_caps[cap] - call_caps_preempted[cap]
            check(got == int(want), f"Call on {cap}: trace {got} (after preemptions), root task made {int(want)}")
    extra = set(entries) - {k[4:] for k in truth if k.startswith("sys.")}
    check(not extra, f"syscalls in the trace the root task did not count: {sorted(extra)}")
    if int(truth.get("spins", "1")) > 0:
        check(irqs > 0 and paths["Interrupt"] > 0, f"interrupts: {irqs} IRQ records, {paths['Interrupt']} Interrupt entries")
    want_snaps = int(truth.get("snapshots", "0"))
    check(len(snapshot_entries) == want_snaps,
          f"seL4_TracemarkSnapshot entries: trace {len(snapshot_entries)}, root task made {want_snaps}")
    if want_snaps:
        check(snapshot_entries[-1] == sum(paths.values()),
              "the snapshot's image does not end with the entry of seL4_TracemarkSnapshot that took it")
    check(paths["VMFault"] == int(truth["faults"]), f"VMFault entries {paths['VMFault']}, faults handled {truth['faults']}")
    if release:
        # No names: the root task's threads are as many distinct TCBs switched to (the idle
        # thread may be one more), and the first switch is to the thread running at the
        # end, the root task that finalised the log.
        threads = truth["threads"].split(",")
        check(len(switched_to) >= len(threads),
              f"switches to {len(switched_to)} distinct threads, the root task ran {len(threads)}")
        if first_switch is not None:
            names[first_switch[0]["thread"]] = "rootserver" if running.get(0) == first_switch[0]["thread"] else "?"
    else:
        for t in truth["threads"].split(","):
            check(switched_to[t] > 0, f"no switch to thread {t}")
    if check(first_switch is not None, "no thread switch at all"):
        r, before = first_switch
        check(before == 0 and names.get(r["thread"]) == "rootserver",
              f"record #{r['n']}: the first switch is to {names.get(r['thread'], hex(r['thread']))} "
              f"after {before} kernel entries; the root task runs first, from the kernel's first "
              f"exit to user level, before any entry")

    if cores > 1:
        check_cores(check, text, per_core, truth, cores, cpu_entries, cpu_preempted,
                    cpu_switches, cpu_irqs, cpu_switched_to, cpu_changes, release)

    # What the root task printed, from the DebugPutChar entries' characters, against the
    # console (the kernel prints nothing of its own while the root task runs).
    printed = "".join(chr(c) for c in putchars)
    printed_lines = [ln for ln in printed.split("\n") if ln]
    if release:
        check(not putchars, f"{len(putchars)} DebugPutChar entries in a release run")
    else:
        check(f"{label} {m.group(1)}".rstrip("\r") in printed_lines,
              f"the {label} line is not among the DebugPutChar characters the trace recorded")
    missing = [ln for ln in printed_lines if ln not in console_lines]
    check(not missing, f"{len(missing)} lines spelled by DebugPutChar characters are not on the "
          f"console, the first: {missing[0][:60]!r}" if missing else "")
    check(exits == sum(paths.values()), f"{exits} exits for {sum(paths.values())} entries")
    # The Calls to the server and its ReplyRecvs go through seL4's IPC fastpath, whose
    # exit (fastpath_restore) has its own call of the exit hook.
    if int(truth["sys.ReplyRecv"]) > 0:
        check(fastpath > 0, "no fastpath entry traced")

    if functions:
        fentries = stats["records_per_kind"]["FENTRY"]
        check(fentries > 1000, f"only {fentries} function entries")
        check(image_base is not None, "no IMAGE record for the kernel")
        # At the dump the kernel is inside the halt path, handleUnknownSyscall; it is the
        # one function the trace cannot close.
        check(len(fstack) == 1, f"{len(fstack)} functions open at the dump (expected 1: the halt path)")
        check(stats["records_per_kind"]["FEXIT"] == fentries - len(fstack), "function entries and exits do not balance")
        check(stated_outside == outside,
              f"function records outside kernel entries: the trace has {outside}, the kernel "
              f"says it made {stated_outside} (USER record {OUTSIDE_ID:#x})")

    summary = (f"{len(records)} records, {sum(paths.values())} kernel entries "
               f"({', '.join(f'{k} {v}' for k, v in sorted(paths.items()))}), "
               f"{sum(preempted.values())} preempted, {fastpath} fastpath, {irqs} IRQs, "
               f"{sum(switched_to.values())} switches, "
               f"{stats['records_per_kind']['FENTRY']} function entries, "
               + (f"function records outside kernel entries: {outside['boot']} in the rest of "
                  f"the boot, {outside['after_exit']} between an exit and the next entry, "
                  if functions else "")
               + (f"per CPU (entries/switches/IRQs): "
                  + ", ".join(f"{c}: {cpu_kentries[c]}/{cpu_switches[c]}/"
                              f"{sum(v for (cc, _), v in cpu_irqs.items() if cc == c)}"
                              for c in range(cores))
                  + f", CPU changes in the merged records {cpu_changes}, " if cores > 1 else "")
               + f"{len(putchars)} DebugPutChar characters, "
               f"{stats['mean_bytes_per_record']:.2f} bytes/record, "
               f"ring {fill:.1%} full ({used} of {capacity} bytes, at most {max_fill:.1%} allowed)")
    if failures:
        for f in failures[:40]:
            print(f"check_trace: FAIL {f}", file=sys.stderr)
        print(f"check_trace: {len(failures)} checks failed ({summary})", file=sys.stderr)
        return 1
    print(f"check_trace: ok: {summary}; syscall counts match the root task's truth")
    return 0


if __name__ == "__main__":
    sys.exit(main())
