"""Plain-text summaries the plays print: snapshots per host, the audit per host (a fix run: reports.fixrun).

The plays print them through `debug` as one multi-line string, which the YAML result format shows as a literal
block indented by 8 columns and never re-wraps: lines of at most WIDTH characters fit a 100-column terminal.
"""
from __future__ import annotations

import re
import textwrap
from typing import Any

WIDTH = 92

COLUMNS = ("host", "kind", "os", "exchange", "banner seen by peers", "4006", "retry", "queue", "probes ok")


def _os(snap: dict) -> str:
    """'Microsoft(R) Windows(R) Server 2003, Enterprise Edition' + 'Service Pack 2' -> 'Server 2003 SP2'."""
    os_info = snap["platform"]["os"]
    caption = re.sub(r"\(R\)|Microsoft|Windows|,.*$", "", os_info.get("caption") or "?").strip()
    sp = (os_info.get("service_pack") or "").replace("Service Pack ", "SP")
    return f"{caption} {sp}".strip()


def _exchange(snap: dict) -> str:
    ex = snap["platform"].get("exchange")
    if not ex:
        return "-"
    return " ".join(x for x in (ex.get("version"), ex.get("build") and f"({ex['build']})") if x)


def banner_seen(host: str, snaps: dict[str, Any]) -> str:
    """What the other hosts' probes got from this host, in a few words."""
    seen = [p for s in snaps.values() if s for p in s.get("probes", []) if p.get("peer") == host]
    if not seen:
        return "(not probed)"
    for p in seen:
        if p.get("banner"):
            return p["banner"].split("\n")[0][:40]
    connects = sorted({p.get("connect") or "?" for p in seen})
    if connects == ["ok"]:
        return "(no banner)"
    return "(" + ", ".join(connects) + ")"


def _count_retry(snap: dict) -> int:
    links = snap["items"].get("smtp_links") or []
    return sum(1 for link in links if int(link.get("StateFlags") or 0) & 0x4)


def _count_queue(snap: dict) -> int:
    total = 0
    for item in ("queue_exchange", "queue_iis"):
        q = snap["items"].get(item)
        if q:
            total += q.get("truncated_total") or len(q["files"])
    return total


def snapshot_rows(snaps: dict[str, Any]) -> list[tuple[str, ...]]:
    rows = []
    for host in sorted(snaps):
        snap = snaps[host]
        if not snap:
            rows.append((host, "unreachable", "-", "-", banner_seen(host, snaps), "-", "-", "-", "-"))
            continue
        events = (snap["items"].get("events_4006") or {}).get("events", [])
        probes = snap.get("probes", [])
        ok = sum(1 for p in probes if (p.get("banner") or "").startswith("220") and (p.get("ehlo") or "").startswith("250"))
        rows.append((host, snap["platform"]["kind"], _os(snap), _exchange(snap), banner_seen(host, snaps),
                     str(len(events)), str(_count_retry(snap)), str(_count_queue(snap)), f"{ok}/{len(probes)}"))
    return rows


def table(rows: list[tuple[str, ...]], columns: tuple[str, ...] = COLUMNS, width: int | None = None) -> str:
    """Fixed-width columns; with `width`, the last column wraps (at spaces) onto lines of its own so that no
    line is longer than `width`."""
    widths = [max(len(str(r[i])) for r in [columns, *rows]) for i in range(len(columns))]
    if width:
        widths[-1] = max(16, min(widths[-1], width - sum(widths[:-1]) - 2 * (len(columns) - 1)))

    def lines(row):
        *head, last = (str(c) for c in row)
        parts = (textwrap.wrap(last, widths[-1], break_on_hyphens=False) or [""]) if width else [last]
        out = []
        for n, part in enumerate(parts):
            cells = head if n == 0 else [""] * len(head)
            out.append("  ".join(c.ljust(w) for c, w in zip([*cells, part], widths)).rstrip())
        return out

    rule = tuple("-" * w for w in widths)
    return "\n".join(line for r in [columns, rule, *rows] for line in lines(r))


# audit_fleet's error for a server outside the run's --limit (no snapshot asked for).
OUTSIDE_LIMIT = "outside this run's --limit"
AUDIT_COLUMNS = ("host", "kind", "snapshot", "unknown", "present causes (most likely first)")


def audit_rows(doc: dict) -> list[tuple[str, ...]]:
    rows = []
    for name, h in doc["hosts"].items():
        present = doc["summary"]["present"].get(name) or []
        unknown = sum(1 for f in h["findings"] if f["status"] == "unknown")
        if h["reachable"]:
            state = "ok"
        elif not h["managed"]:
            state = "unmanaged"
        else:  # a server this run was not asked to read (--limit) has not failed
            state = "not run" if str(h.get("error") or "").startswith(OUTSIDE_LIMIT) else "FAILED"
        rows.append((name, str((h.get("platform") or {}).get("kind") or "?"), state, str(unknown), ", ".join(present) or "-"))
    return rows


def audit_table(doc: dict) -> str:
    return table(audit_rows(doc), AUDIT_COLUMNS, width=WIDTH)


def wrapped(text: str, indent: int) -> list[str]:
    """Free text in lines of at most WIDTH, indented (a registry path, one long word, is cut)."""
    pad = " " * indent
    return textwrap.wrap(text, WIDTH, initial_indent=pad, subsequent_indent=pad, break_on_hyphens=False)
