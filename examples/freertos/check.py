#!/usr/bin/env python3
"""Checks the FreeRTOS example's trace (check.sh runs this after QEMU).

The firmware's truth (TRUTH/TASK lines of its UART output), QEMU's own log of the
exceptions it delivered (-d int) and what the `tracemark` tool reads from the ring dumped
over the same UART must agree:

* queue sends and receives of the producer/consumer queue = items sent and received;
* SysTick (exception 15) entries = the firmware's tick count = QEMU's count;
* SWITCH records = QEMU's PendSV count + 1 (the scheduler's first task);
* the user timer interrupt (CMSDK timer 0, exception 24) = the firmware's count = QEMU's;
* each task's running time = FreeRTOS's run-time statistics within BOUND clock ticks per
  switch-in (both read the same 25 MHz counter; the difference is the instructions
  between FreeRTOS's read in vTaskSwitchContext and the SWITCH record's);
* every task's name appears in `tracemark stats`.

Then prints the cost: flash and RAM tracemark adds (linker map symbols), with and without
the UART dump, and instructions per task-switch record.
"""
import argparse
import collections
import json
import re
import subprocess
import sys

# Clock ticks (25 MHz; 40 instructions each under -icount shift=0) allowed per switch-in.
BOUND = 4

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def run(*args):
    return subprocess.run(args, check=False, capture_output=True, text=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracemark", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--lib", required=True)
    a = ap.parse_args()
    out = a.out
    uart = open(f"{out}/uart.log", encoding="latin-1").read()
    truth_line = re.search(r"^TRUTH (.*)$", uart, re.M)
    if not truth_line:
        sys.exit("check.py: no TRUTH line in the firmware's output")
    truth = dict(kv.split("=", 1) for kv in truth_line.group(1).split())
    tasks = []
    for m in re.finditer(r"^TASK tcb=(\S+) prio=(\d+) runtime=(\d+) running=(\d) name=(.*)$", uart, re.M):
        tasks.append(dict(tcb=int(m.group(1), 16), prio=int(m.group(2)), runtime=int(m.group(3)),
                          running=m.group(4) == "1", name=m.group(5)))
    qemu = collections.Counter(
        int(n) for n in re.findall(r"taking pending \S+ exception (\d+)",
                                   open(f"{out}/int.log", encoding="latin-1").read()))

    st = run(a.tracemark, "stats", "--json", f"{out}/uart.log")
    check(st.returncode == 0, f"tracemark stats reads the UART log ({st.stderr.strip()})")
    stats = json.loads(st.stdout)
    text = run(a.tracemark, "stats", f"{out}/uart.log").stdout
    dec = run(a.tracemark, "decode", "--format", "json", f"{out}/uart.log")
    records = [json.loads(l) for l in dec.stdout.splitlines()]

    queue = int(truth["queue"], 16)
    def user_count(name, obj):
        n = 0
        for r in records:
            if r["kind"] == "USER" and r.get("freertos") == name:
                data = bytes.fromhex(r["data"].replace(" ", ""))
                if int.from_bytes(data[:4], "little") == obj:
                    n += 1
        return n
    sends, receives = user_count("QUEUE_SEND", queue), user_count("QUEUE_RECEIVE", queue)
    check(sends == int(truth["sent"]), f"queue sends: trace {sends}, firmware {truth['sent']}")
    check(receives == int(truth["received"]),
          f"queue receives: trace {receives}, firmware {truth['received']}")

    irqs = {i["irq"]: i for i in stats["threads"]["interrupts"]}
    systick = irqs.get(15, {}).get("count", 0)
    check(systick == int(truth["ticks"]) == qemu[15],
          f"SysTick: trace {systick}, firmware ticks {truth['ticks']}, QEMU {qemu[15]}")
    switches = stats["records_per_kind"]["SWITCH"]
    check(switches == qemu[14] + 1, f"switches: trace {switches}, QEMU PendSV {qemu[14]} + 1")
    timer = irqs.get(24, {}).get("count", 0)
    check(timer == int(truth["timer_irqs"]) == qemu[24],
          f"timer 0 interrupts: trace {timer}, firmware {truth['timer_irqs']}, QEMU {qemu[24]}")
    check(stats["records_per_kind"]["KENTRY"] == stats["records_per_kind"]["KEXIT"],
          "every interrupt entry has its exit")
    check(stats["threads"]["lost_ticks"] == 0 and stats["lost"] == 0, "nothing lost")

    by_id = {t["thread"]: t for t in stats["threads"]["threads"]}
    # FreeRTOS charges the first task it switches out with the counter's whole value
    # (its switched-in time starts at 0, and the counter runs from boot); the trace
    # starts that task at its SWITCH. And the running task's current slice, from its last
    # SWITCH to the moment the firmware read the statistics (its `clock=`), is in
    # FreeRTOS's figure (V11 adds it) but not in the trace, which ends before.
    switches_rec = [r for r in records if r["kind"] == "SWITCH"]
    first = switches_rec[0]
    last_ts = max(r["ts"] for r in records)
    extra = {first["thread"]: first["ts"]}
    for t in tasks:
        tr = by_id.get(t["tcb"])
        check(tr is not None and tr["name"] == t["name"] and tr["prio"] == t["prio"],
              f"task {t['name']}: named with its priority in stats")
        if tr is None:
            continue
        expected = tr["running_ticks"] + extra.get(t["tcb"], 0)
        bound = BOUND * tr["switched_in"]
        if t["running"]:
            bound += int(truth["clock"]) - last_ts
        diff = expected - t["runtime"]
        check(abs(diff) <= bound,
              f"task {t['name']}: trace {tr['running_ticks']}"
              + (f" + {extra[t['tcb']]} before the first switch" if t["tcb"] in extra else "")
              + f", FreeRTOS {t['runtime']} ticks (diff {diff}, bound {bound}: {BOUND} per "
              f"switch-in x {tr['switched_in']}" + (", + the current slice" if t["running"] else "")
              + ")")
        check(t["name"] in text, f"task {t['name']}: name in `tracemark stats`")

    cost(out, uart)
    if failures:
        sys.exit(f"check.py: {len(failures)} check(s) failed")
    print("check.py: all checks passed")


def symbols(elf):
    """name -> (size, flash?) of the sized symbols of an ELF (nm)."""
    res = {}
    nm = run("arm-none-eabi-nm", "-S", "--size-sort", elf).stdout
    for line in nm.splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue
        size, kind, name = int(parts[1], 16), parts[2], parts[3]
        res[name] = (size, kind.lower() in "trv")
    return res


def sizes(elf):
    """(flash, ram) of an ELF: text + data, data + bss (arm-none-eabi-size)."""
    line = run("arm-none-eabi-size", elf).stdout.splitlines()[1].split()
    text, data, bss = int(line[0]), int(line[1]), int(line[2])
    return text + data, data + bss


def cost(out, uart):
    base = sizes(f"{out}/untraced.elf")
    print("\ncost of tracemark in this image (arm-none-eabi-size; the 64 KiB ring is RAM the "
          "application chooses, counted apart):")
    ring = 64 * 1024
    for name, label in (("nodump", "traced, no UART dump"), ("demo", "traced, with UART dump")):
        f, r = sizes(f"{out}/{name}.elf")
        print(f"  {label:24} flash +{f - base[0]} bytes, RAM +{r - base[1] - ring} bytes (+ ring {ring})")
    plain = symbols(f"{out}/untraced.elf")
    added = [(s, n, fl) for n, (s, fl) in symbols(f"{out}/demo.elf").items() if n not in plain]
    added.sort(reverse=True)
    print("  largest symbols added (demo.elf, not in untraced.elf):")
    for s, n, fl in added[:12]:
        print(f"    {s:6} {'flash' if fl else 'RAM  '} {n}")
    m = re.search(r"COST switch_record_clock_ticks_per_1000=(\d+)", uart)
    if m:
        ticks = int(m.group(1))
        print(f"  task-switch record (tm_freertos_task_switched_in, name check included): "
              f"{ticks * 40 / 1000:.0f} instructions (QEMU -icount shift=0: 1000 calls took "
              f"{ticks} ticks of 25 MHz = {ticks * 40} ns = instructions)")


if __name__ == "__main__":
    main()
