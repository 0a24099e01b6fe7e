#!/usr/bin/env python3
"""Converts every built Sigma rule with pySigma's own Kusto and Splunk backends and the pack's
shipped pipelines (out/sigma/pipelines/), as `sigma convert -t <target> -p <pipeline> <file>`
does, and checks every field the SPL names against the azure:monitor:aad paths of the Splunk
backend's field table.

  convert.py SIGMA_DIR TEMPLATES_DIR DEST

Runs in the sigma-cli venv (tools/bench/requirements.txt: pySigma 1.5.1, -backend-kusto 1.0.1,
-backend-splunk 2.1.0). Writes DEST/kusto/<file stem>.kql for each file the Kusto backend
converts (the queries tools/sigma-pipelines/replay.py executes), DEST/kusto-stages/ for the base
rules of correlation files (which that backend refuses: they are converted one by one, for the
parser check only), and DEST/summary.json (per file: each target's query or refusal, the
SPL's fields, each document's description). Prints one line per file and target. Exit status 0
when every file converts or is refused for a documented reason and no SPL field is outside the
mapping; 1 otherwise.
"""

import json
import re
import sys
from pathlib import Path

import yaml
from sigma.backends.kusto import KustoBackend
from sigma.backends.splunk import SplunkBackend
from sigma.collection import SigmaCollection
from sigma.processing.pipeline import ProcessingPipeline

sys.dont_write_bytecode = True

# What each backend refuses, by its own words: the Kusto backend has no correlations at all, the
# Splunk backend no temporal_ordered. Any other failure is a defect.
REFUSALS = {
    "kusto": "Backend does not support correlation rules",
    "splunk": "Correlation type 'temporal_ordered' is not supported by backend",
}


def splunk_paths(templates):
    """Every raw event path the Splunk backend's field table reaches (the azure:monitor:aad
    mapping), derived here independently of rulepack's Rust code."""
    fields = yaml.safe_load((templates / "splunk" / "fields.yml").read_text(encoding="utf-8"))
    ls_name = fields["logsource"]
    ls = yaml.safe_load((templates / "logsources" / f"{ls_name}.yml").read_text(encoding="utf-8"))
    paths = set()
    for neutral, expr in fields["fields"].items():
        array = ls["fields"][neutral].get("array")
        if array is None:
            paths.add(expr.strip("'"))
            continue
        key = re.fullmatch(r'spath\(\{element\}, "([^"]+)"\)', expr)
        if not key:
            sys.exit(f"splunk fields.yml: {neutral}: unexpected array field expression {expr}")
        chain = []
        while array is not None:
            chain.insert(0, fields["arrays"][array]["source"])
            array = ls["arrays"][array].get("parent")
        paths.add(".".join(chain + [key.group(1)]))
    for name, value in (p.split("=", 1) for p in fields["constants"]["macro_definition"].split()):
        paths.add(name)
    return paths


TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[^\s()"=<>!]+|\S')


def compared(text):
    """The left side of each comparison or IN in a search expression."""
    named = set()
    tokens = TOKEN.findall(text)
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if nxt in ("=", "!", "<", ">") or nxt.upper() == "IN":
            if not (tok.startswith('"') or re.fullmatch(r"[\w.{}]+", tok)):
                continue
            if i > 0 and tokens[i - 1] in ("=", "<", ">"):
                continue  # a value, not a field
            named.add(tok.strip('"'))
    return named


def spl_fields(spl):
    """The field names a converted SPL search names: the left side of each comparison or IN in
    the search and in a later `search`, the fields of `bin` and `stats … by`, and the field a `rex`
    reads; names an earlier command creates (`stats … as`, a `rex` capture group, an `eval`
    assignment: pySigma writes a regex test as `rex` + `eval` + `search`) are returned as
    defined."""
    named, defined = set(), set()
    search, *commands = [part.strip() for part in spl.split("\n|")]
    named |= compared(search)
    for command in commands:
        words = command.split()
        if words[0] == "rex" and len(words) > 1 and words[1].startswith("field="):
            named.add(words[1][len("field="):])
            defined.update(re.findall(r"\(\?<(\w+)>", command))
        elif flag := re.fullmatch(r'eval (\w+)=if\(isnotnull\((\w+)\), "true", "false"\)', command):
            defined.add(flag.group(1))
            named.add(flag.group(2))
        elif words[0] == "search":
            named |= compared(command[len("search"):])
        elif words[0] == "bin":
            named.add(words[1])
        elif words[0] == "stats":
            for a, b in zip(words, words[1:]):
                if a == "as":
                    defined.add(b)
            if "by" in words:
                named.update(w for w in words[words.index("by") + 1:] if "=" not in w)
        elif words[0] == "where":
            named.update(w for w in re.findall(r"[A-Za-z_][\w.{}]*", command)[1:]
                         if not w.isdigit() and w not in ("AND", "OR", "NOT"))
        else:
            named.add(f"<unknown command {words[0]}>")
    return named, defined


def convert(backend, text):
    """(queries, None) or (None, error text)."""
    try:
        return backend.convert(SigmaCollection.from_yaml(text)), None
    except Exception as e:  # pySigma reports refusals as exceptions
        return None, f"{type(e).__name__}: {e}"


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sigma_dir, templates, dest = (Path(a) for a in sys.argv[1:])
    pipelines = {
        t: (sigma_dir / "pipelines" / f"{t}.yml").read_text(encoding="utf-8")
        for t in ("kusto", "splunk")
    }
    backends = {"kusto": KustoBackend, "splunk": SplunkBackend}
    allowed = splunk_paths(templates)
    for sub in ("kusto", "kusto-stages", "splunk"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    summary, failed = {}, 0
    for path in sorted(sigma_dir.glob("azure_*.yml")):
        text = path.read_text(encoding="utf-8")
        entry = summary.setdefault(path.stem, {})
        # Each document's description by id: replay.py reads which over-matches it names.
        entry["descriptions"] = {
            d["id"]: d.get("description", "") for d in yaml.safe_load_all(text)
        }
        for target, cls in backends.items():
            # A fresh backend per file, as one `sigma convert` run per file would have.
            backend = cls(processing_pipeline=ProcessingPipeline.from_yaml(pipelines[target]))
            queries, error = convert(backend, text)
            if error is not None:
                refused = REFUSALS[target] in error
                entry[target] = {"refused": error}
                print(f"{target} {'REFUSED' if refused else 'FAIL'} {path.name}: {error}")
                failed += 0 if refused else 1
                if refused and target == "kusto":
                    # The base rules of the correlation, one by one: still real KQL to parse.
                    for doc in text.split("\n---\n"):
                        base = yaml.safe_load(doc)
                        if "correlation" in base:
                            continue
                        stage = cls(processing_pipeline=ProcessingPipeline.from_yaml(pipelines[target]))
                        queries, error = convert(stage, doc)
                        if error is not None:
                            failed += 1
                            print(f"kusto FAIL {path.name} {base.get('name')}: {error}")
                            continue
                        out = dest / "kusto-stages" / f"{path.stem}.{base.get('name')}.kql"
                        out.write_text("\n".join(queries) + "\n", encoding="utf-8")
                        print(f"kusto stage {path.name} {base.get('name')}: converted alone")
                continue
            query = "\n".join(queries)
            entry[target] = {"query": query}
            (dest / target / f"{path.stem}.{'kql' if target == 'kusto' else 'spl'}").write_text(
                query + "\n", encoding="utf-8")
            if target == "splunk":
                named, defined = spl_fields(query)
                outside = sorted(named - allowed - defined)
                entry["spl_fields"] = sorted(named)
                if outside:
                    failed += 1
                    print(f"splunk FAIL {path.name}: fields outside the azure:monitor:aad mapping: {outside}")
                else:
                    print(f"splunk ok   {path.name}: {len(named)} fields, all in the mapping")
            else:
                print(f"kusto ok   {path.name}: converted")
    (dest / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True), encoding="utf-8")
    print(f"convert: {len(summary)} files, {failed} failures")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
