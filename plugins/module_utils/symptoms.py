"""Symptoms: what stalled mail looks like on a host. Evidence for ranking causes, never causes.

- event_4006: MSExchangeTransport 4006 "The connection was dropped by the remote
  host <ip>, <fqdn>; the semaphore timeout period has expired" (KB 919091),
  counted per remote host named in the text.
- queue_retry_semaphore: SMTP links in Retry (Exchange_Link StateFlags bit 0x4,
  domain-facts 11) and the error text when the link carries one.
- stale_queue_messages: .EML files in the queue folder older than a threshold;
  when no link is in retry either, they sit in no visible queue (KB 950757).
"""
from __future__ import annotations

import functools
import re
from datetime import datetime, timezone
from typing import Any

from ansible_collections.mailflow.exchange.plugins.module_utils.fleet import Fleet, HostEntry

_4006 = re.compile(r"dropped by the remote host\s+(?P<ip>[\d.]+)?,?\s*(?P<name>[^;\s]+)?\s*;", re.I)
STATE_RETRY = 0x4
SYMPTOMS = ("event_4006", "queue_retry_semaphore", "stale_queue_messages")


def parse_time(text: Any) -> datetime | None:
    """ISO 8601 'Z' times from the runner and WMI DMTF times ('20261123073508.000000+000')."""
    if not text:
        return None
    s = str(text)
    m = re.match(r"^(\d{14})\.\d+([+-]\d{3})$", s)
    try:
        if m:
            return datetime.strptime(m.group(1), "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
        return datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _iso(dt: datetime | None) -> str | None:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt else None


def _unknown(name: str, reason: str) -> dict:
    return {"symptom": name, "observed": None, "count": None, "reason": reason, "remote_hosts": []}


def _per_host(fn):
    """Computed once per host per fleet: every detector asks for the same symptoms (fleet.derived)."""
    @functools.wraps(fn)
    def cached(fleet: Fleet, entry: HostEntry) -> dict:
        return fleet.derived(fn.__name__, entry.name, lambda: fn(fleet, entry))
    return cached


@_per_host
def events_4006(fleet: Fleet, entry: HostEntry) -> dict:
    view = entry.view
    if "events_4006" in view.errors or "events_4006" not in view.items:
        return _unknown("event_4006", view.errors.get("events_4006", "events_4006 not collected"))
    per: dict[str, dict] = {}
    for ev in (view.items["events_4006"] or {}).get("events", []):
        m = _4006.search(ev.get("message") or "")
        ip, name = (m["ip"], m["name"]) if m else (None, None)
        key = (name or ip or "?").lower()
        slot = per.setdefault(key, {"remote": name or ip, "address": ip, "host": fleet.resolve(name) or fleet.resolve(ip),
                                    "count": 0, "last": None})
        slot["count"] += 1
        t = ev.get("time")
        if t and (slot["last"] is None or t > slot["last"]):
            slot["last"] = t
    remotes = sorted(per.values(), key=lambda r: -r["count"])
    count = sum(r["count"] for r in remotes)
    return {"symptom": "event_4006", "observed": count > 0, "count": count,
            "last": max((r["last"] for r in remotes if r["last"]), default=None),
            "per_remote": remotes, "remote_hosts": sorted({r["host"] for r in remotes if r["host"]}),
            "truncated": bool((view.items["events_4006"] or {}).get("truncated"))}


def _retry_links(view) -> list[dict]:
    out = []
    for link in view.items.get("smtp_links") or []:
        flags = link.get("StateFlags")
        retry = link.get("StateRetry")
        if (isinstance(flags, int) and flags & STATE_RETRY) or retry in (True, 1, "True", "true"):
            out.append(link)
    return out


@_per_host
def queue_retry(fleet: Fleet, entry: HostEntry) -> dict:
    view = entry.view
    if view.kind not in ("exchange2003", "exchange2000"):
        return {"symptom": "queue_retry_semaphore", "observed": False, "count": 0, "links": [], "remote_hosts": [],
                "reason": f"{view.kind}: no Exchange queue viewer (root\\MicrosoftExchangeV2)"}
    if "smtp_links" in view.errors:
        return _unknown("queue_retry_semaphore", view.errors["smtp_links"])
    links = []
    for link in _retry_links(view):
        name = link.get("LinkName")
        links.append({"link": name, "host": fleet.resolve(name), "virtual_server": link.get("VirtualServerName"),
                      "state_flags": link.get("StateFlags"), "messages": link.get("NumberOfMessages"),
                      "oldest": _iso(parse_time(link.get("OldestMessage"))),
                      # Exchange_Link's "Additional queue information" property is not confirmed (domain-facts 11).
                      "error_text": link.get("ExtendedStateInfo") or None})
    return {"symptom": "queue_retry_semaphore", "observed": bool(links), "count": len(links), "links": links,
            "semaphore_text": any("semaphore" in str(li["error_text"] or "").lower() for li in links),
            "remote_hosts": sorted({li["host"] for li in links if li["host"]})}


@_per_host
def stale_messages(fleet: Fleet, entry: HostEntry) -> dict:
    view = entry.view
    minutes = int(fleet.setting("stale_queue_minutes"))
    now = parse_time(entry.snapshot.get("collected_at")) or datetime.now(timezone.utc)
    folders, stale, reasons = [], [], []
    for item_id in ("queue_exchange", "queue_iis"):
        if item_id in view.errors:
            reasons.append(f"{item_id}: {view.errors[item_id]}")
            continue
        listing = view.items.get(item_id)
        if not listing:
            continue
        folders.append(listing["path"])
        for f in listing.get("files") or []:
            t = parse_time(f.get("mtime"))
            if t and (now - t).total_seconds() / 60 >= minutes:
                stale.append({"path": f["path"], "mtime": f.get("mtime"), "age_minutes": int((now - t).total_seconds() // 60)})
    if reasons and not folders:
        return _unknown("stale_queue_messages", "; ".join(reasons))
    stale.sort(key=lambda f: -f["age_minutes"])
    in_retry = bool(_retry_links(view))
    return {"symptom": "stale_queue_messages", "observed": bool(stale), "count": len(stale), "threshold_minutes": minutes,
            "folders": folders, "oldest_minutes": stale[0]["age_minutes"] if stale else None, "files": stale[:20],
            # With no link in retry, old files are in no queue the admin can see (KB 950757's signature).
            "seen_in_queues": in_retry, "remote_hosts": []}


def of_host(fleet: Fleet, entry: HostEntry) -> list[dict]:
    if entry.snapshot is None:
        return []
    return [events_4006(fleet, entry), queue_retry(fleet, entry), stale_messages(fleet, entry)]
