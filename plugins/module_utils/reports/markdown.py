"""audit.md: a ticket-ready summary (CommonMark / GitHub tables).

Present causes per host, most likely first; what could not be decided and why;
the symptoms; the SMTP probes that did not get a banner. Host-supplied text is
escaped so it cannot turn into links, HTML or table columns.
"""
from __future__ import annotations

import re

from ansible_collections.mailflow.exchange.plugins.module_utils.reports.common import (
    SYMPTOM_LABELS, cells, check_schema, counts_line, one_line, present_ranked, source_url, yes_no)

FILENAME = "audit.md"
_SPECIAL = re.compile(r"([\\`*_\[\]<>|#!~&])")


def esc(value) -> str:
    """Plain text for a Markdown table cell or line: backslash-escaped punctuation, one line."""
    return _SPECIAL.sub(r"\\\1", one_line(value))


def code(value) -> str:
    """A code span for a table cell: literal text, except that ` becomes ' and | is escaped for the table."""
    text = one_line(value).replace("`", "'").replace("|", "\\|")
    return f"`{text}`" if text else ""


def source_md(source: str) -> str:
    url = source_url(source)
    return f"[{esc(source)}]({url})" if url else esc(source)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _unused in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _present(doc: dict) -> list[str]:
    rows, clean = [], []
    for name, host in doc["hosts"].items():
        ranked = present_ranked(host)
        if not ranked:
            if host["reachable"]:
                clean.append(name)
            continue
        for f in ranked:
            rows.append([esc(name), str(f["rank"] or ""), f"{code(f['cause'])} {esc(f['title'])}", esc(f["severity"]),
                         esc(f["confidence"]), esc(f["summary"]), code(f["fix"]) or "report only",
                         ", ".join(source_md(s) for s in f["sources"])])
    out = ["## Present causes, by host (most likely first)", ""]
    if rows:
        out += _table(["Host", "Rank", "Cause", "Severity", "Confidence", "Summary", "Fix role", "Sources"], rows)
    else:
        out.append("No cause was found present on any host.")
    if clean:
        out += ["", "No cause present: " + ", ".join(esc(n) for n in clean) + "."]
    return out


def _unknown(doc: dict) -> list[str]:
    rows = []
    for name, host, cid, f in cells(doc):
        if f is None:
            rows.append([esc(name), code(cid), "no finding in the document"])
        elif f["status"] == "unknown":
            rows.append([esc(name), code(cid), esc(f["reason"] or f["summary"])])
    out = ["## Not decided (unknown)", ""]
    if not rows:
        return out + ["Every host x cause was decided."]
    unreachable = [esc(n) + (f" ({esc(h['error'])})" if h["error"] else "") for n, h in doc["hosts"].items() if not h["reachable"]]
    if unreachable:
        out += ["Hosts without a snapshot (every cause there is unknown or n/a): " + ", ".join(unreachable) + ".", ""]
    return out + _table(["Host", "Cause", "Reason"], rows)


def _symptom_cell(s: dict | None) -> str:
    if s is None:
        return ""
    if s.get("observed") is None:
        return "unknown: " + esc(s.get("reason") or "not collected")
    if not s["observed"]:
        return "no"
    remotes = s.get("remote_hosts") or []
    return f"**yes** ({s.get('count')})" + (" → " + ", ".join(esc(r) for r in remotes) if remotes else "")


def _symptoms(doc: dict) -> list[str]:
    names = list(SYMPTOM_LABELS)
    rows = []
    for name, host in doc["hosts"].items():
        if not host["symptoms"]:
            continue
        by = {s["symptom"]: s for s in host["symptoms"]}
        rows.append([esc(name)] + [_symptom_cell(by.get(n)) for n in names])
    if not rows:
        return []
    return ["## Symptoms", ""] + _table(["Host"] + [SYMPTOM_LABELS[n] for n in names], rows)


def _peers(doc: dict) -> list[str]:
    """The probes that did not get a clean banner, one row per server probed and result."""
    if not doc["peers"]:
        return []
    bad = [p for p in doc["peers"] if p["result"] != "banner"]
    groups: dict[tuple[str, str], list[dict]] = {}
    for p in bad:
        groups.setdefault((p["to"], p["result"]), []).append(p)
    out = ["## SMTP between servers", "",
           f"{len(doc['peers'])} probes, {len(doc['peers']) - len(bad)} got a 220 banner and answers to EHLO, MAIL and RCPT."]
    if groups:
        rows = []
        for (to, result), ps in groups.items():
            seen = next((p for p in ps if p["banner"] or p["error"]), ps[0])
            rows.append([esc(to), code(result), ", ".join(esc(p["from"]) for p in ps), code(seen["banner"]), esc(seen["error"] or "")])
        out += ["", *_table(["Server probed", "Result", "Seen from", "Banner", "Error"], rows)]
    return out


def _pending(doc: dict) -> list[str]:
    out = []
    rows = [[esc(h), esc(p["cause"]), esc(", ".join(p["services"])), code(p["backup"])]
            for h, d in doc["hosts"].items() for p in d.get("pending_restart") or []]
    if rows:
        out += ["## Fixes waiting for a service restart", ""] + _table(["Host", "Cause", "Restart", "Backup"], rows)
    rows = [[esc(h), esc(u["cause"]), esc(u["state"]), code(u["backup"])]
            for h, d in doc["hosts"].items() for u in d.get("unfinished_changes") or []]
    if rows:
        out += ["", ""] if out else []
        out += ["## Changes left unfinished by a lost run", "",
                "The next fix or remediation of the host finishes or restores each.", ""]
        out += _table(["Host", "Cause", "Left", "Backup"], rows)
    return out


def _firewalls(doc: dict) -> list[str]:
    """For the network team: each firewall read, its SMTP inspections, and the lines that remove them."""
    if not doc.get("firewalls"):
        return []
    rows = []
    for fw in doc["firewalls"]:
        if fw["error"]:
            rows.append([esc(fw["name"]), esc(fw["platform"] or "?"), esc(fw["source"]), esc(f"not read: {fw['error']}"), "", ""])
        for i in fw["inspections"]:
            where = ", ".join(f"{b['interface']} {b['direction']}" for b in i["bindings"]) or "not applied"
            rows.append([esc(fw["name"]), esc(fw["platform"]), esc(fw["source"]), code(i["line"]), esc(where),
                         " / ".join(code(line.strip()) for line in i["remediation"])])
        if not fw["error"] and not fw["inspections"]:
            rows.append([esc(fw["name"]), esc(fw["platform"]), esc(fw["source"]), "no SMTP inspection", "", ""])
    return ["## Firewalls", ""] + _table(["Firewall", "Platform", "Config from", "SMTP inspection", "Applied", "To remove it"], rows)


def render(doc: dict) -> str:
    check_schema(doc)
    lines = ["# Exchange 2003 mail-flow audit", "",
             f"Report generated {esc(doc['generated'])} · check mode: {yes_no(doc['check_mode'])} · {esc(counts_line(doc))}", ""]
    for part in (_present(doc), _pending(doc), _firewalls(doc), _unknown(doc), _symptoms(doc), _peers(doc)):
        if part:
            lines += part + [""]
    lines += ["Every host x cause, with its evidence: audit.html (people), audit.json (scripts).", ""]
    return "\n".join(lines)
