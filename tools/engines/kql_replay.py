#!/usr/bin/env python3
"""Replays every rule's test events against its BUILT Sentinel query with duckdb-kql
(shared/docs/validators.md §2), an engine rulepack does not control.

  kql_replay.py MANIFEST OUT_DIR [--invert-expectations]

MANIFEST is the JSON of `rulepack export-tests`; OUT_DIR is the build folder its artifact paths
are relative to. Each test's events become AuditLogs rows (auditlogs.py), each ingested at its
event time, and the .kql file runs as Sentinel schedules it (scheduled.py): every frequency up to
one run at the newest record + the tolerated delay (the test's "now"), each seeing the rows
ingested by then. "Some run returned a row" must equal the test's expect_match. duckdb-kql fails closed (KqlUnsupportedError) on constructs it does not
know: such a rule is reported as "not executable offline", never as passed. Exit status: 0 when
every executed test agrees, 1 otherwise. --invert-expectations flips every expectation, so a run
that still exits 0 would prove the gate cannot fail.
"""

import sys
from pathlib import Path

from duckdb_kql import KqlUnsupportedError

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from auditlogs import replay_args, to_row  # noqa: E402
from scheduled import connect, run_scheduled, test_runs  # noqa: E402

ENGINE = "duckdb-kql"


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
            rows = [to_row(e) for e in test["events"]]
            times = [r["TimeGenerated"] for r in rows]
            try:
                runs = run_scheduled(
                    connect([(r, r["TimeGenerated"]) for r in rows]),
                    kql,
                    test_runs(times, rule["schedule"]),
                )
            except KqlUnsupportedError as e:
                # Translation is static: no other test of this rule can run either.
                print(f"{ENGINE} NOT EXECUTABLE {rule['name']}: {str(e).splitlines()[0]}")
                not_executable.append(rule["name"])
                break
            except Exception as e:  # a query the engine rejects is a failure, not a skip
                print(f"{ENGINE} FAIL {where}: {type(e).__name__}: {str(e).splitlines()[0][:300]}")
                failed += 1
                continue
            verdict = "match" if runs else "no_match"
            count = sum(len(r) for _, r in runs)
            if bool(runs) == expect:
                passed += 1
                print(f"{ENGINE} ok   {where}: {verdict} ({count} rows in {len(runs)} runs)")
            else:
                failed += 1
                wanted = "match" if expect else "no_match"
                print(f"{ENGINE} FAIL {where}: expected {wanted}, got {verdict} ({count} rows)")
    listed = ", ".join(not_executable)
    print(f"{ENGINE}: {passed} passed, {failed} failed, not executable offline: [{listed}]")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
