#!/usr/bin/env python3
"""Checks the alertRules resources of ARM templates against Microsoft's own models of the
Security Insights API: the Python SDK azure-mgmt-securityinsight (pinned in requirements.txt
here), generated from the API's TypeSpec (https://github.com/Azure/azure-rest-api-specs,
specification/securityinsights). For each resource:

- `kind` is one of the SDK's alert-rule kinds (AlertRule's discriminator map);
- every key of `properties` is a field of that kind's properties model, recursively (a misspelt
  key fails: the service would ignore it); read-only fields are not set;
- every field the model types as required (not Optional) is present;
- values have the model's types: strings, integers, booleans, ISO-8601 durations, lists, maps,
  nested models, and enum fields hold one of the enum's documented values.

  check_arm_alertrules.py TEMPLATE.json...

Prints `FILE: resources[i] ok` or `FILE: resources[i].PATH: problem` per finding; exit 1 when a
problem was found, 2 when a file cannot be read.
"""

import datetime
import enum
import json
import sys
import typing

import isodate
from azure.mgmt.securityinsight import models
from azure.mgmt.securityinsight.models import _models

sys.dont_write_bytecode = True
NAMESPACE = {**vars(_models), "_models": models}
RULE_TYPES = (
    "Microsoft.SecurityInsights/alertRules",
    "Microsoft.OperationalInsights/workspaces/providers/alertRules",
)


def fields(cls):
    """rest name -> (type, read-only) of a model class."""
    cls({})  # the SDK builds a class's field table on its first instance
    hints = typing.get_type_hints(cls, globalns=NAMESPACE)
    out = {}
    for attr, rf in cls._attr_to_rest_field.items():
        readonly = list(rf._visibility or []) == ["read"]
        out[rf._rest_name] = (hints[attr], readonly)
    return out


def optional(tp):
    args = typing.get_args(tp)
    return typing.get_origin(tp) is typing.Union and type(None) in args


def check(value, tp, path, problems):
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union:
        choices = [a for a in args if a is not type(None)]
        enums = [a for a in choices if isinstance(a, type) and issubclass(a, enum.Enum)]
        if enums:
            allowed = [m.value for e in enums for m in e]
            if value not in allowed:
                problems.append(f"{path}: {value!r} is not one of {allowed}")
            return
        if len(choices) == 1:
            return check(value, choices[0], path, problems)
        return  # a union the SDK leaves open: nothing to hold it to
    if origin is list:
        if not isinstance(value, list):
            return problems.append(f"{path}: expected a list, got {type(value).__name__}")
        for i, item in enumerate(value):
            check(item, args[0], f"{path}[{i}]", problems)
        return
    if origin is dict:
        if not isinstance(value, dict):
            return problems.append(f"{path}: expected an object, got {type(value).__name__}")
        for k, item in value.items():
            check(item, args[1], f"{path}.{k}", problems)
        return
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        allowed = [m.value for m in tp]
        if value not in allowed:
            problems.append(f"{path}: {value!r} is not one of {allowed}")
        return
    if isinstance(tp, type) and tp.__module__ == _models.__name__:
        return check_model(value, tp, path, problems)
    if tp is datetime.timedelta:
        try:
            isodate.parse_duration(value)
        except Exception:
            problems.append(f"{path}: {value!r} is not an ISO-8601 duration")
        return
    expected = {str: str, int: int, bool: bool}.get(tp)
    if expected is not None and (
        not isinstance(value, expected) or (expected is int and isinstance(value, bool))
    ):
        problems.append(f"{path}: expected {expected.__name__}, got {value!r}")


def check_model(value, cls, path, problems):
    if not isinstance(value, dict):
        return problems.append(f"{path}: expected an object, got {type(value).__name__}")
    known = fields(cls)
    for key, item in value.items():
        if key not in known:
            problems.append(f"{path}.{key}: not a property of {cls.__name__}")
        elif known[key][1]:
            problems.append(f"{path}.{key}: read-only in {cls.__name__}")
        else:
            check(item, known[key][0], f"{path}.{key}", problems)
    for key, (tp, readonly) in known.items():
        if not readonly and not optional(tp) and key not in value:
            problems.append(f"{path}.{key}: required by {cls.__name__}")


def check_resource(res, path):
    problems = []
    kinds = models.AlertRule.__mapping__
    kind = res.get("kind")
    if kind not in kinds:
        return [f"{path}.kind: {kind!r} is not one of {sorted(kinds)}"]
    properties_type = typing.get_type_hints(kinds[kind], globalns=NAMESPACE)["properties"]
    (model,) = [a for a in typing.get_args(properties_type) if a is not type(None)]
    if "properties" not in res:
        return [f"{path}.properties: missing"]
    check_model(res["properties"], model, f"{path}.properties", problems)
    return problems


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    bad, unreadable = 0, 0
    for name in sys.argv[1:]:
        try:
            with open(name, encoding="utf-8") as f:
                template = json.load(f)
        except (OSError, ValueError) as e:
            print(f"{name}: cannot read: {e}", file=sys.stderr)
            unreadable += 1
            continue
        for i, res in enumerate(template.get("resources") or []):
            if not str(res.get("type", "")).endswith(RULE_TYPES):
                continue
            problems = check_resource(res, f"resources[{i}]")
            for p in problems:
                print(f"{name}: {p}")
            if problems:
                bad += 1
            else:
                print(f"{name}: resources[{i}] ok")
    return 2 if unreadable else 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
