"""Runs a built Sentinel query the way Sentinel schedules it (docs/semantics.md, "Running on a
schedule"): at every multiple of the rule's frequency, over only the rows ingested by then.

Shared by kql_replay.py (the rules' tests) and schedule_proof.py (the generated stream).

duckdb-kql has no ingestion_time(). The one substitution this harness makes in the built query:
the call `ingestion_time()` becomes the column `IngestionTime`, which the AuditLogs table here
carries (Log Analytics keeps it as hidden metadata of every row). Nothing else in the query is
changed.
"""

import datetime as dt
import json

import duckdb_kql
from duckdb_kql import engine
from duckdb_kql.translate import CLOCK_SLOT

from auditlogs import COLUMNS

SQL_TYPES = {"string": "VARCHAR", "datetime": "TIMESTAMP", "long": "BIGINT", "dynamic": "JSON"}
EPOCH = dt.datetime(1970, 1, 1)


def substitute_ingestion_time(kql):
    """The harness's only change to a built query (see the module docstring)."""
    return kql.replace("ingestion_time()", "IngestionTime")


def connect(rows):
    """rows: (AuditLogs row dict, ingestion datetime). All rows go into AllLogs; each run sees
    the AuditLogs view of the rows ingested by its time."""
    con = duckdb_kql.connect()  # in memory, TimeZone=UTC
    columns = COLUMNS + [("IngestionTime", "datetime")]
    con.execute(
        "CREATE TABLE AllLogs ("
        + ", ".join(f'"{name}" {SQL_TYPES[kind]}' for name, kind in columns)
        + ")"
    )
    values = []
    for row, ingested in rows:
        values.append([
            json.dumps(row[name]) if kind == "dynamic" and row[name] is not None else row[name]
            for name, kind in COLUMNS
        ] + [ingested])
    if values:
        con.executemany(f"INSERT INTO AllLogs VALUES ({', '.join('?' * len(columns))})", values)
    return con


def stream_runs(ingested, schedule):
    """The run grid of `rulepack simulate`: every multiple of the frequency (epoch-aligned) from
    the first ingestion to the last ingestion + window + delay + frequency, after which no run
    can report anything new."""
    step = dt.timedelta(minutes=schedule["frequency_minutes"])
    tail = dt.timedelta(minutes=schedule["window_minutes"] + schedule["delay_minutes"]) + step
    first, last = min(ingested), max(ingested) + tail
    run = EPOCH + ((first - EPOCH) // step) * step
    runs = []
    while run <= last:
        if run >= first:
            runs.append(run)
        run += step
    return runs


def test_runs(times, schedule):
    """Runs for a rule's test, whose records are ingested at their event time and whose "now"
    is the newest record (the evaluator's view, docs/semantics.md): one run at newest + delay,
    the others every frequency before it down to the first record, and for an aggregation also
    after it until the newest record's window has been reported (the evaluator reports it at
    the end of the input)."""
    step = dt.timedelta(minutes=schedule["frequency_minutes"])
    delay = dt.timedelta(minutes=schedule["delay_minutes"])
    anchor = max(times) + delay
    runs = [anchor]
    while runs[0] - step >= min(times):
        runs.insert(0, runs[0] - step)
    if schedule["kind"] == "aggregation":
        until = anchor + dt.timedelta(minutes=schedule["window_minutes"])
        while runs[-1] < until:
            runs.append(runs[-1] + step)
    return runs


def hunt_time(times, schedule):
    """When a test's hunting query runs: once, at the newest record + the tolerated delay (the
    evaluator's "now" plus the wait for late records, as the last scheduled run of test_runs)."""
    return max(times) + dt.timedelta(minutes=schedule["delay_minutes"])


def run_scheduled(con, kql, runs, columns=False):
    """[(run time, rows)] for every run (ascending times) that returned rows; with `columns`,
    rows is (column names, rows).

    The query is translated once, with the engine's own translator; each run binds its time to
    the clock slot duckdb-kql reserves for now() (`query_now`), as duckdb_kql.query would."""
    con.execute("SET TimeZone='UTC'")
    con.execute("CREATE OR REPLACE TABLE Visible (cutoff TIMESTAMP)")
    con.execute("INSERT INTO Visible VALUES (TIMESTAMP '1970-01-01')")
    con.execute(
        "CREATE OR REPLACE VIEW AuditLogs AS SELECT AllLogs.* FROM AllLogs, Visible "
        "WHERE IngestionTime <= Visible.cutoff"
    )
    translated = duckdb_kql.to_sql(
        substitute_ingestion_time(kql), schema=engine.schema(con), query_now=runs[0]
    )
    if translated.unbound:
        raise ValueError(f"unbound query parameters: {translated.unbound}")
    sql, params = str(translated), dict(translated.parameters)
    if CLOCK_SLOT not in params:
        raise ValueError("the query never reads the clock: it cannot run on a schedule")
    out = []
    for run in runs:
        con.execute("UPDATE Visible SET cutoff = ?", [run])
        params[CLOCK_SLOT] = run
        relation = con.sql(sql, params=params)
        rows = relation.fetchall()
        if rows:
            out.append((run, (relation.columns, rows) if columns else rows))
    return out
