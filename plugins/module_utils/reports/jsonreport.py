"""audit.json: the mailflow.audit/1 document itself, the one every other report is written from.

Its shape is docs/audit.schema.json (JSON Schema 2020-12); `problems` checks the
cross-references a schema cannot express (one finding per host x cause in
catalog order, ranks 1..n, a summary that adds up).
"""
from __future__ import annotations

import json

from ansible_collections.mailflow.exchange.plugins.module_utils.reports.common import STATUSES, check_schema

FILENAME = "audit.json"


def render(doc: dict) -> str:
    check_schema(doc)
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a host: \u-escapes keep it lossless
        text = json.dumps(doc, indent=2, ensure_ascii=True)
    return text + "\n"


def problems(doc: dict) -> list[str]:
    """What is inconsistent in a schema-valid document; empty when it is sound."""
    out = []
    ids = [c["id"] for c in doc["causes"]]
    if len(set(ids)) != len(ids):
        out.append(f"causes: duplicate ids in {ids}")
    counts = {s: 0 for s in STATUSES}
    for name, host in doc["hosts"].items():
        got = [f["cause"] for f in host["findings"]]
        if got != ids:
            out.append(f"{name}: findings are for {got}, not one per cause in catalog order {ids}")
        present = sorted((f for f in host["findings"] if f["status"] == "present"), key=lambda f: f["rank"] or 0)
        if [f["rank"] for f in present] != list(range(1, len(present) + 1)):
            out.append(f"{name}: ranks of present causes are {[f['rank'] for f in present]}, not 1..{len(present)}")
        if doc["summary"]["present"].get(name) != [f["cause"] for f in present]:
            out.append(f"{name}: summary.present is {doc['summary']['present'].get(name)}, findings say {[f['cause'] for f in present]}")
        if host["reachable"] == (host["collected_at"] is None):
            out.append(f"{name}: reachable={host['reachable']} but collected_at={host['collected_at']!r}")
        for f in host["findings"]:
            counts[f["status"]] += 1
            unknown_hosts = sorted(set(f["explains"]) - set(doc["hosts"]))
            if unknown_hosts:
                out.append(f"{name}/{f['cause']}: explains hosts not in the inventory {unknown_hosts}")
    summary = doc["summary"]
    if summary["hosts"] != len(doc["hosts"]):
        out.append(f"summary.hosts is {summary['hosts']}, there are {len(doc['hosts'])}")
    if summary["statuses"] != counts:
        out.append(f"summary.statuses is {summary['statuses']}, findings count {counts}")
    unreachable = sorted(n for n, h in doc["hosts"].items() if not h["reachable"])
    if sorted(summary["unreachable"]) != unreachable:
        out.append(f"summary.unreachable is {summary['unreachable']}, hosts say {unreachable}")
    if set(summary["present"]) != set(doc["hosts"]):
        out.append("summary.present does not list every host")
    for p in doc["peers"]:
        if p["from"] not in doc["hosts"]:
            out.append(f"peer probe from {p['from']!r}, which is not an inventory host")
    return out
