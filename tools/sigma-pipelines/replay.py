#!/usr/bin/env python3
"""Executes the KQL that pySigma's Kusto backend made of each Sigma rule with the pack's
pipeline (convert.py) on duckdb-kql, over the rule's own test events as AuditLogs rows.

  replay.py MANIFEST CONVERTED [--invert-expectations]

MANIFEST is `rulepack export-tests`; CONVERTED is convert.py's DEST (kusto/<sigma file
stem>.kql and summary.json, which holds the Sigma files' descriptions). Verdicts: a rule without Sigma approximations must give
every test's expected verdict. An approximate rule (warning W100) must match every expected
match; it may match a no_match test only if its Sigma description names that test (in double
quotes), so every over-match a Sigma user will see is written down. A rule whose file the Kusto
backend refused (correlations) is listed as such, never counted as passed. Exit status 0 when
no test fails; --invert-expectations flips every expectation (the run must then fail).
"""

import sys
from pathlib import Path

import json

import duckdb_kql

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "engines"))
from auditlogs import to_row  # noqa: E402
from scheduled import connect  # noqa: E402


def load(events):
    """The events as an AuditLogs table. pySigma's KQL has no time filter and no
    ingestion_time(), so every event is visible, as in one run that sees them all."""
    con = connect([(to_row(event), None) for event in events])
    con.execute("CREATE VIEW AuditLogs AS SELECT * FROM AllLogs")
    return con

ENGINE = "pysigma-kusto+duckdb-kql"


def description(summary, stem, rule_id):
    try:
        return summary[stem]["descriptions"][rule_id]
    except KeyError:
        sys.exit(f"{stem}: no Sigma document with the rule's id {rule_id}")


def main():
    args = [a for a in sys.argv[1:] if a != "--invert-expectations"]
    invert = len(args) != len(sys.argv) - 1
    if len(args) != 2:
        sys.exit(__doc__)
    manifest = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    kql_dir = Path(args[1]) / "kusto"
    summary = json.loads((Path(args[1]) / "summary.json").read_text(encoding="utf-8"))
    counts = {"exact": [0, 0], "approximate": [0, 0]}  # [agreeing, total] tests
    failed, over, refused, missed = 0, [], [], 0
    for rule in manifest["rules"]:
        artifact = rule["artifacts"].get("sigma")
        if artifact is None:
            print(f"{ENGINE} OMITTED {rule['name']}: no Sigma file")
            continue
        kql_file = kql_dir / (Path(artifact).stem + ".kql")
        if not kql_file.exists():
            print(f"{ENGINE} REFUSED {rule['name']}: the Kusto backend did not convert {artifact}")
            refused.append(rule["name"])
            continue
        kql = kql_file.read_text(encoding="utf-8")
        approximate = bool(rule["sigma_approximations"])
        kind = "approximate" if approximate else "exact"
        desc = description(summary, Path(artifact).stem, rule["id"])
        for test in rule["tests"]:
            expect = test["expect_match"] != invert
            where = f"{rule['name']} / {test['name']} (line {test['line']})"
            try:
                got = bool(duckdb_kql.query(load(test["events"]), kql).fetchall())
            except Exception as e:  # an unsupported or rejected query is a failure
                print(f"{ENGINE} FAIL {where}: {type(e).__name__}: {str(e).splitlines()[0][:300]}")
                failed += 1
                counts[kind][1] += 1
                continue
            counts[kind][1] += 1
            if got == expect:
                counts[kind][0] += 1
                print(f"{ENGINE} ok   {where}")
            elif got and approximate and f'"{test["name"]}"' in desc:
                over.append(where)
                print(f"{ENGINE} over-match named in the description: {where}")
            else:
                failed += 1
                missed += 0 if got else 1
                wanted = "match" if expect else "no_match"
                print(f"{ENGINE} FAIL {where}: expected {wanted}, got {'match' if got else 'no_match'}")
    for kind, (ok, total) in counts.items():
        print(f"{ENGINE}: {kind} rules: {ok}/{total} tests agree")
    print(f"{ENGINE}: {failed} failed ({missed} missed matches), {len(over)} documented "
          f"over-matches, refused by the Kusto backend: [{', '.join(refused)}]")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
