#!/usr/bin/env python3
"""Proof that the BUILT Sentinel queries run right on a schedule (issue 12, docs/semantics.md
"Running on a schedule"): every alert `rulepack simulate` expects is raised by exactly the run
it names, none twice, none lost within the tolerated delay, on every rule.

  schedule_proof.py MANIFEST OUT_DIR RULEPACK RULES [--seed N] [--double-report] [--only R1,R2]

MANIFEST is `rulepack export-tests`; OUT_DIR the build; RULEPACK the binary; RULES the rules
folder. A deterministic stream (seeded) is made from the rules' own test scenarios, copied many
times: re-timed across run and bucket edges, burst copies straddling the top of an hour,
correlation keys in changed case, every record ingested with a random delay (most within the
tolerated delay, some beyond it), and written in shuffled order (out-of-order ingestion).
`rulepack simulate` reads the stream; the .kql of every rule runs on duckdb-kql at every run time
of the simulator's grid, seeing only the rows ingested by then (scheduled.py; `ingestion_time()`
becomes the row's IngestionTime column, the harness's only change to a query). A run whose query
period holds no visible record is not executed: every query starts with
`TimeGenerated > ago(period)`, so it cannot return a row.

--double-report runs a deliberately wrong variant of the queries (the ingestion-time bounds and
the aggregation's closing bound removed, as the pack shipped before issue 12): the proof must
then fail, which shows it can.

Rules Sentinel ships as hunting queries (the manifest's `hunting` names "sentinel"; declared by
`hunting_kinds` in templates/sentinel/fields.yml) are not scheduled, so there is no schedule to
prove: they are left out and named on the last line (tests/schedule_proof.rs holds them to the
declaration). Their query is checked on the rules' tests instead (kql_replay.py, one run).

Exit status 0 when the executed queries and the simulator agree on every scheduled rule that
duckdb-kql can translate, and the stream raises at least one alert of each, 1 otherwise. The
rules it cannot translate are named on the last line too (tests/schedule_proof.rs holds them to
the pack's `verify.not_executable`).
"""

import argparse
import bisect
import copy
import datetime as dt
import json
import random
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from auditlogs import to_row  # noqa: E402
from duckdb_kql import KqlUnsupportedError  # noqa: E402
from scheduled import connect, run_scheduled, stream_runs  # noqa: E402

START = dt.datetime(2026, 3, 2, 0, 0, 0)
SPAN = dt.timedelta(days=2)
COPIES = 2  # of each test scenario
# An aggregation's window alerts only when every record of it is on time and inside one bucket:
# more copies, so some bursts alert and some straddle a bucket edge.
AGGREGATION_COPIES = 6


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def ingestion_delay(rng, delay_minutes):
    """Most records arrive within a few minutes, some close to the tolerated delay, some beyond."""
    roll = rng.random()
    if roll < 0.75:
        return dt.timedelta(seconds=rng.randint(0, 300))
    if roll < 0.92:
        return dt.timedelta(seconds=rng.randint(300, delay_minutes * 60))
    return dt.timedelta(seconds=rng.randint(delay_minutes * 60 + 60, 3 * 3600))


def change_case(value, rng):
    if isinstance(value, str) and rng.random() < 0.5:
        return value.upper()
    return value


def scenario_copy(events, n, start, rng):
    """The test's events re-timed to begin at `start` (relative spacing kept), with fresh record
    ids, and target ids / UPNs made unique per copy, sometimes upper-cased (keys compare
    case-insensitively)."""
    times = [to_row(e)["TimeGenerated"] for e in events]
    base = min(times)
    out = []
    for e, t in zip(events, times):
        e = copy.deepcopy(e)
        e["id"] = f"{e.get('id') or 'rec'}-{n}"
        e["activityDateTime"] = start + (t - base)
        user = (e.get("initiatedBy") or {}).get("user") or {}
        if user.get("userPrincipalName"):
            user["userPrincipalName"] = change_case(user["userPrincipalName"], rng)
        for target in e.get("targetResources") or []:
            if isinstance(target, dict):
                if target.get("id"):
                    target["id"] = change_case(f"{target['id']}-{n}", rng)
        out.append(e)
    return out


def generate(manifest, seed, delay_minutes):
    rng = random.Random(seed)
    records = []
    n = 0
    for rule in manifest["rules"]:
        for test in rule["tests"]:
            span = (max(to_row(e)["TimeGenerated"] for e in test["events"])
                    - min(to_row(e)["TimeGenerated"] for e in test["events"]))
            aggregation = rule["schedule"]["kind"] == "aggregation"
            for _ in range(AGGREGATION_COPIES if aggregation else COPIES):
                n += 1
                if aggregation and rng.random() < 1 / 3:
                    # A burst straddling the top of an hour.
                    hour = START + dt.timedelta(hours=rng.randint(1, int(SPAN.total_seconds() // 3600) - 2))
                    start = hour - span / 2
                else:
                    start = START + dt.timedelta(seconds=rng.randint(0, int(SPAN.total_seconds())))
                records.extend(scenario_copy(test["events"], n, start, rng))
    # Unique event times (to the second), so an alert is named by its rule, run and time.
    used = set()
    for r in sorted(records, key=lambda r: (r["activityDateTime"], r["id"])):
        t = r["activityDateTime"].replace(microsecond=0)
        while t in used:
            t += dt.timedelta(seconds=1)
        used.add(t)
        r["activityDateTime"] = t
        r["ingestionTime"] = t + ingestion_delay(rng, delay_minutes)
    rng.shuffle(records)
    return records


def double_report(kql):
    """The pack's queries without their schedule bounds: each run re-reads what the previous
    one read."""
    kql = re.sub(r"^\| where ingestion_time\(\) > ago\(rp_frequency\)\n", "", kql, flags=re.M)
    kql = re.sub(r"^\| where rp_then_ingest > ago\(rp_frequency\) or rp_pair_ingest > ago\(rp_frequency\)\n",
                 "", kql, flags=re.M)
    return kql.replace("<= ago(rp_window + rp_delay)", "<= now()")


def simulate(rulepack, rules, stream):
    done = subprocess.run(
        [rulepack, "simulate", "--rules", str(rules), "--events", str(stream)],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        sys.exit(f"rulepack simulate failed:\n{done.stderr}")
    alerts = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return alerts, done.stderr


def alert_key(rule, run, time, group):
    return (rule, run, time, tuple(group))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("rulepack")
    parser.add_argument("rules", type=Path)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--double-report", action="store_true")
    parser.add_argument("--only", help="comma-separated rule names: check only these queries")
    args = parser.parse_args()
    manifest = json.loads(args.manifest.read_text(encoding="utf-8"))
    delay = manifest["rules"][0]["schedule"]["delay_minutes"]
    records = generate(manifest, args.seed, delay)
    with tempfile.TemporaryDirectory() as tmp:
        stream = Path(tmp) / "stream.jsonl"
        with stream.open("w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps({**r, "activityDateTime": iso(r["activityDateTime"]),
                                    "ingestionTime": iso(r["ingestionTime"])}) + "\n")
        alerts, summary = simulate(args.rulepack, args.rules, stream)
    print(summary, end="")
    rows = [(to_row({**r, "activityDateTime": iso(r["activityDateTime"])}), r["ingestionTime"])
            for r in records]
    con = connect(rows)
    ingested = [i for _, i in rows]
    event_times = sorted(r["TimeGenerated"] for r, _ in rows)
    failed = False
    totals = Counter()
    not_executable = []
    hunting = []
    only = set(args.only.split(",")) if args.only else None
    for rule in manifest["rules"]:
        name, sched = rule["name"], rule["schedule"]
        if only is not None and name not in only:
            continue
        if "sentinel" in rule["hunting"]:
            hunting.append(name)
            print(f"HUNTING {name}: a hunting query on Sentinel, not scheduled")
            continue
        groups = []
        expected = Counter()
        for a in alerts:
            if a["rule"] == name:
                groups = [k for k in a["entities"] if k != "count"] if sched["kind"] == "aggregation" else []
                group = [a["entities"].get(k) for k in groups]
                expected[alert_key(name, a["run"], a["time"], group)] += 1
        kql = (args.out_dir / rule["artifacts"]["sentinel"]).read_text(encoding="utf-8")
        if args.double_report:
            kql = double_report(kql)
        period = dt.timedelta(minutes=sched["frequency_minutes"] + sched["delay_minutes"] + sched["window_minutes"])
        runs = [t for t in stream_runs(ingested, sched)
                if event_times_between(event_times, t - period, t)]
        got = Counter()
        try:
            results = run_scheduled(con, kql, runs, columns=True)
        except KqlUnsupportedError as e:
            # Translation is static: the rule cannot run at all. Listed, never counted as agreed.
            not_executable.append(name)
            print(f"NOT EXECUTABLE {name}: {str(e).splitlines()[0]}")
            continue
        for run, result in results:
            cols, values = result
            for v in values:
                row = dict(zip(cols, v))
                group = [row.get(k) for k in groups]
                got[alert_key(name, iso(run), iso(row["TimeGenerated"]), group)] += 1
        # The same record or window raised by more than one run, or twice by one.
        by_subject = Counter((k[0], k[2], k[3]) for k in got.elements())
        duplicates = sum(c - 1 for c in by_subject.values() if c > 1)
        missing = expected - got
        extra = got - expected
        agreed = sum((expected & got).values())
        totals.update(expected=sum(expected.values()), kql=sum(got.values()), agreed=agreed,
                      duplicates=duplicates, missing=sum(missing.values()), extra=sum(extra.values()))
        # A rule the stream never triggers proves nothing about its schedule.
        ok = not missing and not extra and duplicates == 0 and sum(expected.values()) > 0
        failed |= not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: simulate {sum(expected.values())}, kql "
              f"{sum(got.values())} in {len(runs)} runs, agreed {agreed}, missing "
              f"{sum(missing.values())}, extra {sum(extra.values())}, duplicates {duplicates}")
        for k in list(missing)[:3]:
            print(f"     missing {k}")
        for k in list(extra)[:3]:
            print(f"     extra   {k}")
    pct = 100.0 * totals["agreed"] / max(totals["expected"], 1)
    print(f"schedule proof: {len(records)} records, {totals['expected']} expected alerts, "
          f"{totals['kql']} from the queries, {totals['agreed']} agreed ({pct:.1f} %), "
          f"{totals['missing']} missing, {totals['extra']} extra, {totals['duplicates']} duplicates; "
          f"hunting queries, not scheduled: [{', '.join(hunting)}]; "
          f"not executable by duckdb-kql: [{', '.join(not_executable)}]")
    return 1 if failed else 0


def event_times_between(sorted_times, lo, hi):
    """The event times in (lo, hi] of a sorted list."""
    return sorted_times[bisect.bisect_right(sorted_times, lo):bisect.bisect_right(sorted_times, hi)]


if __name__ == "__main__":
    sys.exit(main())
