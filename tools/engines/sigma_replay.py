#!/usr/bin/env python3
"""Replays every rule's test events against its BUILT Sigma rule with pySigma's SQLite backend
(https://pypi.org/project/pysigma-backend-sqlite/), an engine rulepack does not control.

  sigma_replay.py MANIFEST OUT_DIR

MANIFEST is the JSON of `rulepack export-tests`; OUT_DIR the build folder its artifact paths are
relative to. The Sigma rule is converted to SQL unchanged and run over the test's events:

- Events become AuditLogs rows (auditlogs.py), read through dotted field names
  (`InitiatedBy.user.userPrincipalName`). A path through an array (`TargetResources.displayName`,
  `TargetResources.modifiedProperties.newValue`) holds every value its elements hold, and each
  field test of the rule holds when ANY of the field's values passes it: the backend's own SQL for
  the test runs over a table of (event, field, value) rows inside EXISTS. So every test may be met
  by a different element (the documented Sigma approximation, whose over-matches therefore show),
  and `not` over a test means "no element passes", as in SIEMs with multi-valued fields. An absent
  field has one NULL value. Values compare case-insensitively (collate_nocase), and `regexp` is
  registered for `|re`; `%name%` placeholders take the values of the rule's parameters (read
  from the rule file that the manifest names).
- Correlation rules (event_count, ...) run through the backend's own correlation SQL over all the
  events of the test, counted per event (`rp_event`), timed by TimeGenerated.

A rule with no sigma_approximations must give exactly the expected verdict. An approximate rule
must match every expected match (its approximations only over-match); an over-match on a
no_match test passes as a "documented approximation". One JSON line per verdict
(auditlogs.verdict); `rulepack verify` runs this script and counts them.
"""

import json
import re
import sqlite3
import sys
from pathlib import Path

import yaml
from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import ValueListPlaceholderTransformation
from sigma.rule import SigmaDetection

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from auditlogs import replay_args, to_row, verdict  # noqa: E402

ENGINE = "sigma-sqlite"
EVENT, TIME, VALUE = "rp_event", "TimeGenerated", "rp_value"


class CannotJudge(Exception):
    """The harness cannot give this rule Sigma's semantics; reported, never passed."""


class AnyValueBackend(sqliteBackend):
    """The SQLite backend unchanged, except that each field test it emits is evaluated over all
    the values the field holds in the event (table `vals`) rather than over one column."""

    def convert_condition_field_eq_val(self, cond, state):
        # The backend writes its test against the value column; the field name selects the rows.
        field, cond.field = cond.field, VALUE
        try:
            test = super().convert_condition_field_eq_val(cond, state)
        finally:
            cond.field = field
        name = field.replace("'", "''")
        return (
            f"EXISTS (SELECT 1 FROM vals WHERE vals.{EVENT} = logs.{EVENT} "
            f"AND vals.field = '{name}' AND ({test}))"
        )


def placeholders(rule_file):
    """The rule's parameters as the values of its `%name%` placeholders (docs/rule-format.md).
    A relative rule file path is read from the current directory, as export-tests printed it."""
    # BaseLoader keeps every scalar a string, as the rule loader reads parameter values.
    text = Path(rule_file).read_text(encoding="utf-8")
    params = yaml.load(text, Loader=yaml.BaseLoader).get("parameters") or {}
    return ProcessingPipeline(
        items=[ProcessingItem(ValueListPlaceholderTransformation())],
        vars={name: p["values"] for name, p in params.items()},
    )


def named_fields(collection):
    """(fields the detections test, correlation group-by fields)."""
    tested, grouped = set(), set()

    def walk(detection):
        for item in detection.detection_items:
            if isinstance(item, SigmaDetection):
                walk(item)
            elif item.field:
                tested.add(item.field)

    for rule in collection.rules:
        if isinstance(rule, SigmaCorrelationRule):
            grouped.update(rule.group_by or [])
        else:
            for detection in rule.detection.detections.values():
                walk(detection)
    return tested, grouped


def leaves(value, path, out):
    """Dotted path -> every scalar under it; lists contribute all their elements."""
    if isinstance(value, dict):
        for key, child in value.items():
            leaves(child, f"{path}.{key}", out)
    elif isinstance(value, list):
        for child in value:
            leaves(child, path, out)
    else:
        out.setdefault(path, []).append(value)


def field_values(event):
    values = {}
    for column, value in to_row(event).items():
        if isinstance(value, (dict, list)):
            values[column] = [json.dumps(value)]  # the whole dynamic column, as JSON text
        leaves(value, column, values)
    return values


def regexp(pattern, value):
    return value is not None and re.search(pattern, str(value)) is not None


def sigma_matches(query, tested, grouped, events):
    con = sqlite3.connect(":memory:")
    con.create_function("regexp", 2, regexp, deterministic=True)
    columns = [EVENT, TIME, *sorted(grouped)]
    con.execute(f"CREATE TABLE logs ({', '.join(f'`{c}`' for c in columns)})")
    con.execute(f"CREATE TABLE vals ({EVENT}, field, {VALUE})")
    for index, event in enumerate(events):
        values = field_values(event)
        row = [index, to_row(event)[TIME].isoformat(sep=" ")]
        for field in sorted(grouped):
            found = values.get(field) or [None]
            if len(found) > 1:
                raise CannotJudge(f"correlation groups by {field}, which has several values")
            row.append(found[0])
        con.execute(f"INSERT INTO logs VALUES ({', '.join('?' * len(columns))})", row)
        con.executemany(
            "INSERT INTO vals VALUES (?, ?, ?)",
            [(index, f, v) for f in tested for v in dict.fromkeys(values.get(f) or [None])],
        )
    return bool(con.execute(query).fetchall())


def main():
    args, manifest = replay_args(__doc__)
    for rule in manifest["rules"]:
        if "sigma" not in rule["artifacts"]:
            # Only a rule the build reported as left out of the Sigma pack may lack a file; it
            # has nothing to judge.
            if not any("no sigma output" in m for m in rule["omitted"]):
                verdict(rule, None, False, "no Sigma file and no omission notice")
            continue
        text = (args.out_dir / rule["artifacts"]["sigma"]).read_text(encoding="utf-8")
        try:
            collection = SigmaCollection.from_yaml(text)
            tested, grouped = named_fields(collection)
            backend = AnyValueBackend(
                placeholders(rule["file"]), collate_nocase=True, timestamp_field=TIME,
                event_id_field=EVENT,
            )
            # A correlation hides the rule it references, so one query is left either way.
            (query,) = backend.convert(collection)
        except Exception as e:  # pySigma refuses the rule: none of its tests can run
            verdict(rule, None, False, f"pySigma cannot convert the rule: {type(e).__name__}: {e}")
            continue
        for test in rule["tests"]:
            try:
                got = sigma_matches(query, tested, grouped, test["events"])
            except CannotJudge as e:
                verdict(rule, None, False, f"not executable offline by {ENGINE}: {e}")
                break
            got_text = "match" if got else "no_match"
            wanted = "match" if test["expect_match"] else "no_match"
            if got == test["expect_match"]:
                verdict(rule, test, True, got_text)
            elif got and rule["sigma_approximations"]:
                verdict(rule, test, True, f"documented approximation: {got_text}, expected {wanted}")
            else:
                verdict(rule, test, False, f"expected {wanted}, got {got_text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
