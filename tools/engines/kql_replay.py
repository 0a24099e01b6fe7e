#!/usr/bin/env python3
"""Replays every rule's test events against its BUILT Sentinel query with duckdb-kql
(https://pypi.org/project/duckdb-kql/), an engine rulepack does not control.

  kql_replay.py MANIFEST OUT_DIR

MANIFEST is the JSON of `rulepack export-tests`; OUT_DIR is the build folder its artifact paths
are relative to. Each test's events become AuditLogs rows (auditlogs.py) in a fresh in-memory
database, the .kql file runs unchanged, and "returned at least one row" must equal the test's
expect_match. duckdb-kql fails closed (KqlUnsupportedError) on constructs it does not know: such
a rule is reported as "not executable offline", a failure, never as passed. One JSON line per
verdict (auditlogs.verdict); `rulepack verify` runs this script and counts them.
"""

import datetime as dt
import json
import sys
from pathlib import Path

import duckdb_kql
from duckdb_kql import KqlUnsupportedError

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from auditlogs import COLUMNS, replay_args, to_row, verdict  # noqa: E402

SQL_TYPES = {"string": "VARCHAR", "datetime": "TIMESTAMP", "long": "BIGINT", "dynamic": "JSON"}
ENGINE = "duckdb-kql"


def load(events):
    con = duckdb_kql.connect()  # in memory, TimeZone=UTC
    con.execute(
        "CREATE TABLE AuditLogs ("
        + ", ".join(f'"{name}" {SQL_TYPES[kind]}' for name, kind in COLUMNS)
        + ")"
    )
    rows = []
    for event in events:
        row = to_row(event)
        rows.append([
            json.dumps(row[name]) if kind == "dynamic" and row[name] is not None else row[name]
            for name, kind in COLUMNS
        ])
    con.executemany(f"INSERT INTO AuditLogs VALUES ({', '.join('?' * len(COLUMNS))})", rows)
    return con


def query_now(events):
    # The queries filter `TimeGenerated > ago(lookback)`. Rather than moving the events to the
    # wall clock, the query's clock is pinned to one minute after the newest event: the same
    # relative spacing as shifting the newest event to now - 1 min, but deterministic, and the
    # event times stay as written, so `bin(TimeGenerated, 1h)` buckets them exactly as the rule's
    # tests (and rulepack's reference evaluator, whose windows are epoch-aligned) intend.
    newest = max(to_row(e)["TimeGenerated"] for e in events)
    return newest + dt.timedelta(minutes=1)


def main():
    args, manifest = replay_args(__doc__)
    for rule in manifest["rules"]:
        artifact = rule["artifacts"]["sentinel"]
        if not artifact.endswith(".kql"):
            sys.exit(f"{rule['name']}: artifacts.sentinel must be the .kql query, got {artifact}")
        kql = (args.out_dir / artifact).read_text(encoding="utf-8")
        for test in rule["tests"]:
            try:
                rows = duckdb_kql.query(
                    load(test["events"]), kql, query_now=query_now(test["events"])
                ).fetchall()
            except KqlUnsupportedError as e:
                # Translation is static: no other test of this rule can run either. Unproven is
                # not passed, so it counts as a failure.
                first = str(e).splitlines()[0]
                verdict(rule, None, False, f"not executable offline by {ENGINE}: {first}")
                break
            except Exception as e:  # a query the engine rejects is a failure, not a skip
                detail = str(e).splitlines()[0][:300] if str(e) else ""
                verdict(rule, test, False, f"{ENGINE} rejects the query: {type(e).__name__}: {detail}")
                continue
            got = "match" if rows else "no_match"
            wanted = "match" if test["expect_match"] else "no_match"
            if got == wanted:
                verdict(rule, test, True, f"{got} ({len(rows)} rows)")
            else:
                verdict(rule, test, False, f"expected {wanted}, got {got} ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
