"""Microsoft Graph directoryAudit record -> one row of the Sentinel `AuditLogs` table.

Shared by kql_replay.py and sigma_replay.py (each runs in its own venv; this module uses only
the standard library). Column names, order and types are `AuditLogs | getschema`
(https://learn.microsoft.com/azure/azure-monitor/reference/tables/auditlogs); the Graph
properties behind them are those of directoryAudit
(https://learn.microsoft.com/graph/api/resources/directoryaudit).
"""

import argparse
import datetime as dt
import json
from pathlib import Path

# (column, Kusto type) in getschema order: the 30 columns of the table.
COLUMNS = [
    ("TenantId", "string"), ("SourceSystem", "string"), ("TimeGenerated", "datetime"),
    ("ResourceId", "string"), ("OperationName", "string"), ("OperationVersion", "string"),
    ("Category", "string"), ("ResultType", "string"), ("ResultSignature", "string"),
    ("ResultDescription", "string"), ("DurationMs", "long"), ("CorrelationId", "string"),
    ("Resource", "string"), ("ResourceGroup", "string"), ("ResourceProvider", "string"),
    ("Identity", "string"), ("Level", "string"), ("Location", "string"),
    ("AdditionalDetails", "dynamic"), ("Id", "string"), ("InitiatedBy", "dynamic"),
    ("LoggedByService", "string"), ("Result", "string"), ("ResultReason", "string"),
    ("TargetResources", "dynamic"), ("AADTenantId", "string"), ("ActivityDisplayName", "string"),
    ("ActivityDateTime", "datetime"), ("AADOperationType", "string"), ("Type", "string"),
]


def parse_time(text):
    """ISO-8601 with `Z` or an offset and up to 7 fraction digits -> naive UTC datetime."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def _initiator_name(initiated_by):
    # Identity holds the initiator's name as presented in the token: the user's display name,
    # or the app's for app-only calls. Graph records rarely carry either, so it is often null.
    for side in ("user", "app"):
        name = ((initiated_by or {}).get(side) or {}).get("displayName")
        if name:
            return name
    return None


def to_row(event):
    """Column -> value. Datetimes are naive UTC; dynamic columns stay Python values (the caller
    serialises them); columns that a Graph record cannot fill are None (SQL NULL)."""
    when = parse_time(event["activityDateTime"])
    activity = event.get("activityDisplayName")
    row = {name: None for name, _ in COLUMNS}
    row.update(
        SourceSystem="Azure AD",
        Type="AuditLogs",
        OperationVersion="1.0",
        TimeGenerated=when,
        ActivityDateTime=when,
        OperationName=activity,
        ActivityDisplayName=activity,
        Category=event.get("category"),
        Result=event.get("result"),
        ResultReason=event.get("resultReason"),
        CorrelationId=event.get("correlationId"),
        Id=event.get("id"),
        LoggedByService=event.get("loggedByService"),
        AADOperationType=event.get("operationType"),
        InitiatedBy=event.get("initiatedBy"),
        TargetResources=event.get("targetResources"),
        AdditionalDetails=event.get("additionalDetails"),
        Identity=_initiator_name(event.get("initiatedBy")),
    )
    return row


def replay_args(doc):
    """The command line both harnesses share: MANIFEST OUT_DIR.

    Returns (args, manifest) with the export-tests manifest already read.
    """
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    return args, json.loads(args.manifest.read_text(encoding="utf-8"))


def verdict(rule, test, ok, message, executable=True):
    """One JSON line per judged test (or per rule when `test` is None), read by `rulepack verify`,
    which counts, positions and prints them. `executable=False`: the engine cannot run the rule
    at all; verify fails it unless the pack's manifest declares it."""
    print(json.dumps({
        "rule": rule["name"],
        "test": test["name"] if test else None,
        "line": test["line"] if test else None,
        "ok": ok,
        "executable": executable,
        "message": message,
    }), flush=True)
