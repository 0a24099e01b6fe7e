#!/usr/bin/env python3
"""Replays every rule's test events against its BUILT Sentinel query with duckdb-kql
(shared/docs/validators.md §2), an engine rulepack does not control.

  kql_replay.py MANIFEST OUT_DIR [--invert-expectations]

MANIFEST is the JSON of `rulepack export-tests`; OUT_DIR is the build folder its artifact paths
are relative to. Each test's events become AuditLogs rows (auditlogs.py) in a fresh in-memory
database, the .kql file runs unchanged, and "returned at least one row" must equal the test's
expect_match. duckdb-kql fails closed (KqlUnsupportedError) on constructs it does not know: such
a rule is reported as "not executable offline", never as passed. Exit status: 0 when every
executed test agrees, 1 otherwise. --invert-expectations flips every expectation, so a run that
still exits 0 would prove the gate cannot fail.
"""

import datetime as dt
import json
import sys
from pathlib import Path

import duckdb_kql
from duckdb_kql import KqlUnsupportedError

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from auditlogs import COLUMNS, replay_args, to_row  # noqa: E402

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
    passed, failed, not_executable = 0, 0, []
    for rule in manifest["rules"]:
        artifact = rule["artifacts"]["sentinel"]
        if not artifact.endswith(".kql"):
            sys.exit(f"{rule['name']}: artifacts.sentinel must be the .kql query, got {artifact}")
        kql = (args.out_dir / artifact).read_text(encoding="utf-8")
        for test in rule["tests"]:
            expect = test["expect_match"] != args.invert_expectations
            where = f"{rule['name']} / {test['name']} (line {test['line']})"
            try:
                rows = duckdb_kql.query(
                    load(test["events"]), kql, query_now=query_now(test["events"])
                ).fetchall()
            except KqlUnsupportedError as e:
                # Translation is static: no other test of this rule can run either.
                print(f"{ENGINE} NOT EXECUTABLE {rule['name']}: {str(e).splitlines()[0]}")
                not_executable.append(rule["name"])
                break
            except Exception as e:  # a query the engine rejects is a failure, not a skip
                print(f"{ENGINE} FAIL {where}: {type(e).__name__}: {str(e).splitlines()[0][:300]}")
                failed += 1
                continue
            verdict = "match" if rows else "no_match"
            if bool(rows) == expect:
                passed += 1
                print(f"{ENGINE} ok   {where}: {verdict} ({len(rows)} rows)")
            else:
                failed += 1
                wanted = "match" if expect else "no_match"
                print(f"{ENGINE} FAIL {where}: expected {wanted}, got {verdict} ({len(rows)} rows)")
    listed = ", ".join(not_executable)
    print(f"{ENGINE}: {passed} passed, {failed} failed, not executable offline: [{listed}]")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
