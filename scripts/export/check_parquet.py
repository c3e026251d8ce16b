#!/usr/bin/env python3
"""Checks Parquet tables written by `tracemark export --format parquet` with DuckDB.

Usage: check_parquet.py TRACEMARK DIR DUMP...   (DIR exported from exactly these DUMPs)

For each dump, reads DIR with hive_partitioning=true, finds the dump's partition by
its id (printed by the export), and checks that per-kind counts, per-CPU counts,
per-syscall entry and exit counts and duration sums, per-IRQ counts, unmatched exits,
the function-call counts and the lost records computed with SQL equal
`tracemark stats --json` of the dump; that the SWITCH rows' `thread` column equals
`tracemark decode` (CPU, time, thread) and the CLOCKBACK rows' `back` equals the step
from the previous row; and that each CPU's rows are sorted by time within every file
(except where the clock stepped back: a CLOCKBACK row).
"""
import json
import subprocess
import sys

import duckdb


def main():
    tracemark, out_dir, dumps = sys.argv[1], sys.argv[2], sys.argv[3:]
    ids = {}
    for d in dumps:
        # The id is the producer id and content hash: the same for the same bytes.
        line = subprocess.run([tracemark, "export", "--format", "parquet", "-o",
                               out_dir + "/.ids", d], check=True, capture_output=True,
                              text=True).stdout
        ids[d] = line.split("dump=")[1].split()[0]
    con = duckdb.connect()
    con.execute(f"""CREATE VIEW records AS SELECT * FROM read_parquet(
        '{out_dir}/records/*/*/*.parquet', hive_partitioning=true)""")
    con.execute(f"""CREATE VIEW rings AS SELECT * FROM read_parquet(
        '{out_dir}/rings/*/*.parquet', hive_partitioning=true)""")
    n_dumps = con.execute("SELECT count(DISTINCT dump) FROM records").fetchone()[0]
    assert n_dumps == len(dumps), (n_dumps, len(dumps))
    for d in dumps:
        dump_id = ids[d]
        st = json.loads(subprocess.run([tracemark, "stats", "--json", d], check=True,
                                       capture_output=True, text=True).stdout)
        q = lambda sql: con.execute(sql, [dump_id]).fetchall()
        kinds = dict(q("SELECT kind, count(*) FROM records WHERE dump = ? GROUP BY kind"))
        want = {k: v for k, v in st["records_per_kind"].items() if v}
        assert kinds == want, f"{d}: kinds {kinds} != stats {want}"
        cpus = dict(q("SELECT cpu, count(*) FROM records WHERE dump = ? GROUP BY cpu"))
        # stats lists every ring; a CPU may have several (a console with the seL4 root
        # task's snapshots and the halt dump holds three rings of CPU 0).
        want_cpus = {}
        for c in st["cpus"]:
            if c["records"]:
                want_cpus[c["cpu"]] = want_cpus.get(c["cpu"], 0) + c["records"]
        assert cpus == want_cpus, f"{d}: per-CPU {cpus} != stats {want_cpus}"
        sys_rows = q("""SELECT syscall,
                count(*) FILTER (WHERE kind = 'KENTRY'),
                count(*) FILTER (WHERE kind = 'KEXIT'),
                coalesce(sum(duration_ticks) FILTER (WHERE kind = 'KEXIT'), 0),
                coalesce(max(duration_ticks) FILTER (WHERE kind = 'KEXIT'), 0)
            FROM records WHERE dump = ? AND syscall IS NOT NULL
            GROUP BY syscall ORDER BY syscall""")
        got = [tuple(int(x) for x in r) for r in sys_rows]
        want = [(s["syscall"], s["count"], s["exits"], s["duration_sum_ticks"],
                 s["max_ticks"]) for s in st["syscalls"]]
        assert got == want, f"{d}: syscalls\n SQL   {got}\n stats {want}"
        names = dict(q("""SELECT syscall, any_value(syscall_name) FROM records
                          WHERE dump = ? AND kind = 'KENTRY' AND syscall IS NOT NULL
                          GROUP BY syscall"""))
        for s in st["syscalls"]:
            if s["count"] and not s["name"].startswith("#"):
                assert names[s["syscall"]] == s["name"], (names, s)
        irqs = q("SELECT irq, count(*) FROM records WHERE dump = ? AND kind = 'IRQ' "
                 "GROUP BY irq ORDER BY irq")
        assert irqs == [(i["irq"], i["count"]) for i in st["irqs"]], f"{d}: irqs"
        unmatched = q("SELECT count(*) FROM records WHERE dump = ? AND kind = 'KEXIT' "
                      "AND path IS NULL")[0][0]
        assert unmatched == st["unmatched_exits"], (unmatched, st["unmatched_exits"])
        distinct = q("SELECT count(DISTINCT func) FROM records WHERE dump = ?")[0][0]
        assert distinct == st["functions"]["distinct"], (distinct, st["functions"])
        lost = q("SELECT sum(overwritten + dropped) FROM rings WHERE dump = ?")[0][0]
        assert lost == st["lost"], (lost, st["lost"])
        # Thread switches: the thread column only on SWITCH rows, equal to decode's.
        switches = q("""SELECT cpu, ts, thread FROM records
                        WHERE dump = ? AND (kind = 'SWITCH' OR (thread IS NOT NULL AND kind <> 'THREAD'))
                        ORDER BY cpu, n""")
        out = subprocess.run([tracemark, "decode", "--format", "json", "--kind", "SWITCH", d],
                             check=True, capture_output=True, text=True).stdout
        dec = sorted(((r["cpu"], r["ts"], r["thread"]) for r in map(json.loads, out.splitlines())),
                     key=lambda r: r[:2])
        got = sorted(((int(c), t, th) for c, t, th in switches), key=lambda r: r[:2])
        assert got == dec, f"{d}: SWITCH rows differ from decode ({len(got)} vs {len(dec)})"
        # Threads: one `threads` row per (CPU, thread) named by THREAD records, with the
        # latest name and priority, the first record's time and the count, as decode
        # shows the THREAD records; and the README's join by id names the SWITCH rows.
        out = subprocess.run([tracemark, "decode", "--format", "json", "--kind", "THREAD", d],
                             check=True, capture_output=True, text=True).stdout
        want_threads = {}
        for r in map(json.loads, out.splitlines()):
            key = (r["cpu"], r["thread"])
            first, _, _, n = want_threads.get(key, (r["ts"], None, None, 0))
            want_threads[key] = (first, r["name"], r["prio"], n + 1)
        got_threads = {(int(c), t): (f, nm, p, n) for c, t, f, nm, p, n in q(
            """SELECT cpu, thread, first_ts, name, prio, thread_records FROM read_parquet(
                   '""" + out_dir + """/threads/*/*/*.parquet', hive_partitioning=true)
               WHERE dump = ?""")}
        assert got_threads == want_threads, f"{d}: threads\n SQL    {got_threads}\n decode {want_threads}"
        named = q("""SELECT count(*) FROM records r JOIN read_parquet(
                         '""" + out_dir + """/threads/*/*/*.parquet', hive_partitioning=true) t
                       ON r.dump = t.dump AND r.cpu = t.cpu AND r.thread = t.thread
                     WHERE r.dump = ? AND r.kind = 'SWITCH'""")[0][0]
        want_named = sum(1 for c, _, th in dec if (c, th) in want_threads)
        assert named == want_named, f"{d}: {named} SWITCH rows join a thread, want {want_named}"
        # Clock steps back: `back` only on CLOCKBACK rows, the previous row's time minus
        # this one's.
        backs = q("""SELECT count(*), count(*) FILTER (WHERE back = prev - ts OR prev IS NULL)
            FROM (SELECT kind, ts, back, lag(ts) OVER w AS prev
                  FROM (SELECT *, filename FROM read_parquet(
                      '""" + out_dir + """/records/*/*/*.parquet',
                      hive_partitioning=true, filename=true, file_row_number=true))
                  WHERE dump = ?
                  WINDOW w AS (PARTITION BY filename ORDER BY file_row_number))
            WHERE kind = 'CLOCKBACK' OR back IS NOT NULL""")[0]
        assert backs[0] == st["records_per_kind"].get("CLOCKBACK", 0), (d, backs)
        # (The first row of a part file has no previous row in its file.)
        assert backs[1] == backs[0], (d, backs)
        # Rows of each file are in time order (but at a clock step back), and row
        # numbers count up.
        bad = q("""SELECT count(*) FROM (
                SELECT ts < lag(ts) OVER w AND kind <> 'CLOCKBACK' AS back,
                    n <= lag(n) OVER w AS nback
                FROM (SELECT *, filename FROM read_parquet(
                    '""" + out_dir + """/records/*/*/*.parquet',
                    hive_partitioning=true, filename=true, file_row_number=true))
                WHERE dump = ?
                WINDOW w AS (PARTITION BY filename ORDER BY file_row_number))
            WHERE back OR nback""")[0][0]
        assert bad == 0, f"{d}: {bad} rows out of time order"
        span = q("SELECT max(time_ns) - min(time_ns) FROM records WHERE dump = ?")[0][0]
        hz = st["clock_hz"]
        if hz == 1_000_000_000 and not st["records_per_kind"].get("CLOCKBACK"):
            assert span == st["time_span_ticks"], (span, st["time_span_ticks"])
        print(f"ok   Parquet dump={dump_id} ({d}): {sum(kinds.values())} rows; kinds, "
              f"CPUs, {len(want)} syscalls (counts, exits, duration sums), IRQs, lost "
              f"= stats; {len(got)} SWITCH threads = decode, {len(got_threads)} threads "
              f"(= decode's THREAD records, {named} switches named by join), "
              f"{backs[0]} CLOCKBACK steps")


if __name__ == "__main__":
    main()
