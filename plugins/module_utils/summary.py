"""A plain-text per-host summary of snapshots (what `make demo` and the play print)."""
from __future__ import annotations

import re
from typing import Any

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


def table(rows: list[tuple[str, ...]], columns: tuple[str, ...] = COLUMNS) -> str:
    widths = [max(len(str(r[i])) for r in [columns, *rows]) for i in range(len(columns))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(tuple("-" * w for w in widths)), *[line(r) for r in rows]])


AUDIT_COLUMNS = ("host", "kind", "snapshot", "unknown", "present causes (most likely first)")


def audit_rows(doc: dict) -> list[tuple[str, ...]]:
    rows = []
    for name, h in doc["hosts"].items():
        present = doc["summary"]["present"].get(name) or []
        unknown = sum(1 for f in h["findings"] if f["status"] == "unknown")
        state = "ok" if h["reachable"] else ("unmanaged" if not h["managed"] else "FAILED")
        rows.append((name, str((h.get("platform") or {}).get("kind") or "?"), state, str(unknown), ", ".join(present) or "-"))
    return rows


def audit_table(doc: dict) -> str:
    return table(audit_rows(doc), AUDIT_COLUMNS)
