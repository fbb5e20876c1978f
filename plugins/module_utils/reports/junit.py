"""junit.xml: the audit as test results, for CI dashboards.

One <testsuite> per host, one <testcase classname=host name=cause> per host x cause:
  present        -> <failure message=summary type=severity>
  unknown        -> <error message=reason type="unknown">
  not_applicable -> <skipped message=reason>
  absent         -> passes
Counts (tests, failures, errors, skipped) are on every suite and on <testsuites>.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from ansible_collections.mailflow.exchange.plugins.module_utils.reports.common import (
    cause_ids, check_schema, finding_map, one_line, xml_safe, yes_no)

FILENAME = "junit.xml"


def _s(value) -> str:
    return xml_safe(value)


def _details(f: dict) -> str:
    lines = [f"{f['title']}", f"status: {f['status']}  severity: {f['severity']}  confidence: {f['confidence']}"]
    if f["rank"] is not None:
        lines.append(f"rank: {f['rank']}")
    lines.append(f"summary: {f['summary']}")
    if f["reason"]:
        lines.append(f"reason: {f['reason']}")
    if f["fix"]:
        lines.append(f"fix: role {f['fix']}")
    if f["explains"]:
        lines.append(f"explains mail to/from: {', '.join(f['explains'])}")
    lines.append(f"sources: {'; '.join(f['sources'])}")
    if f["evidence"]:
        lines.append("evidence: " + json.dumps(f["evidence"], indent=1, ensure_ascii=False, default=str))
    return _s("\n".join(lines))


def _testcase(suite: ET.Element, host: str, cid: str, f: dict | None) -> str:
    case = ET.SubElement(suite, "testcase", {"classname": _s(host), "name": _s(cid), "time": "0"})
    if f is None:
        ET.SubElement(case, "error", {"message": "no finding in the document", "type": "missing"})
        return "unknown"
    status = f["status"]
    if status == "present":
        el = ET.SubElement(case, "failure", {"message": one_line(f["summary"]), "type": _s(f["severity"])})
        el.text = _details(f)
    elif status == "unknown":
        el = ET.SubElement(case, "error", {"message": one_line(f["reason"] or f["summary"]), "type": "unknown"})
        el.text = _details(f)
    elif status == "not_applicable":
        ET.SubElement(case, "skipped", {"message": one_line(f["reason"] or f["summary"])})
    else:
        out = ET.SubElement(case, "system-out")
        out.text = _s(f["summary"])
    return status


def _tally(element: ET.Element, counts: dict) -> None:
    for key in ("tests", "failures", "errors", "skipped"):
        element.set(key, str(counts[key]))


def build(doc: dict) -> ET.Element:
    check_schema(doc)
    ids = cause_ids(doc)
    timestamp = str(doc["generated"]).rstrip("Z")
    root = ET.Element("testsuites", {"name": "mailflow audit"})
    total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for name, host in doc["hosts"].items():
        suite = ET.SubElement(root, "testsuite", {"name": _s(name), "hostname": _s(name), "timestamp": _s(timestamp), "time": "0"})
        props = ET.SubElement(suite, "properties")
        platform = host.get("platform") or {}
        for key, value in (("managed", yes_no(host["managed"])), ("reachable", yes_no(host["reachable"])),
                           ("kind", platform.get("kind") or ""), ("collected_at", host["collected_at"] or ""),
                           ("error", host["error"] or ""), ("check_mode", yes_no(doc["check_mode"]))):
            ET.SubElement(props, "property", {"name": key, "value": one_line(value)})
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        by_cause = finding_map(host)
        for cid in ids:
            status = _testcase(suite, name, cid, by_cause.get(cid))
            counts["tests"] += 1
            key = {"present": "failures", "unknown": "errors", "not_applicable": "skipped"}.get(status)
            if key:
                counts[key] += 1
        _tally(suite, counts)
        for k in total:
            total[k] += counts[k]
    _tally(root, total)
    return root


def render(doc: dict) -> str:
    root = build(doc)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
