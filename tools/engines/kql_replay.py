#!/usr/bin/env python3
"""Replays every rule's test events against its BUILT Sentinel query with duckdb-kql
(https://pypi.org/project/duckdb-kql/), an engine rulepack does not control.

  kql_replay.py MANIFEST OUT_DIR

MANIFEST is the JSON of `rulepack export-tests`; OUT_DIR is the build folder its artifact paths
are relative to. Each test's events become AuditLogs rows (auditlogs.py), each ingested at its
event time, and the .kql file runs as Sentinel schedules it (scheduled.py): every frequency up to
one run at the newest record + the tolerated delay (the test's "now"), each seeing the rows
ingested by then. A rule Sentinel ships as a hunting query (the manifest's `hunting` names
"sentinel") is not scheduled: it runs once, at that "now", over every row, as a person running
it would. "Some run returned a row" must equal the test's expect_match. duckdb-kql fails
closed (KqlUnsupportedError) on constructs it does not know: such a rule is reported as "not
executable offline", never as passed; `rulepack verify` fails it unless the pack's manifest
declares it. One JSON line per verdict (auditlogs.verdict); `rulepack verify` runs this script
and counts them.
"""

import sys
from pathlib import Path

from duckdb_kql import KqlUnsupportedError

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from auditlogs import replay_args, to_row, verdict  # noqa: E402
from scheduled import connect, hunt_time, run_scheduled, test_runs  # noqa: E402

ENGINE = "duckdb-kql"


def main():
    args, manifest = replay_args(__doc__)
    for rule in manifest["rules"]:
        artifact = rule["artifacts"]["sentinel"]
        if not artifact.endswith(".kql"):
            sys.exit(f"{rule['name']}: artifacts.sentinel must be the .kql query, got {artifact}")
        kql = (args.out_dir / artifact).read_text(encoding="utf-8")
        for test in rule["tests"]:
            rows = [to_row(e) for e in test["events"]]
            times = [r["TimeGenerated"] for r in rows]
            if "sentinel" in rule["hunting"]:
                when = [hunt_time(times, rule["schedule"])]
            else:
                when = test_runs(times, rule["schedule"])
            try:
                runs = run_scheduled(connect([(r, r["TimeGenerated"]) for r in rows]), kql, when)
            except KqlUnsupportedError as e:
                # Translation is static: no other test of this rule can run either.
                first = str(e).splitlines()[0]
                verdict(rule, None, False, f"{ENGINE} cannot translate: {first}", executable=False)
                break
            except Exception as e:  # a query the engine rejects is a failure, not a skip
                detail = str(e).splitlines()[0][:300] if str(e) else ""
                verdict(rule, test, False, f"{ENGINE} rejects the query: {type(e).__name__}: {detail}")
                continue
            got = "match" if runs else "no_match"
            wanted = "match" if test["expect_match"] else "no_match"
            count = sum(len(r) for _, r in runs)
            detail = f"{got} ({count} rows in {len(runs)} runs)"
            if got == wanted:
                verdict(rule, test, True, detail)
            else:
                verdict(rule, test, False, f"expected {wanted}, got {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
