"""Symptoms: what stalled mail looks like on a host. Evidence for ranking causes, never causes.

- event_4006: MSExchangeTransport 4006, counted per remote host the text names.
  KB 919091 quotes one wording ("The connection was dropped by the remote host
  <ip>, <fqdn>; the semaphore timeout period has expired"); the Exchange Server
  Analyzer rule for 4006 (TechNet aa996281) lists the others it is logged for:
  the remote SMTP service rejected AUTH negotiation, the message delivery
  information cannot be accessed, an SMTP error, the remote server cannot be
  connected to, a smart host is unreachable. Every 4006 counts; its reason is
  classified by those conditions' words (_4006_REASONS), and the remote host is
  the first IPv4 address or host name in the text that names an inventory host
  (else the first one named). The exact wordings beyond KB 919091's are not
  published verbatim, so the classification is by keywords, not by template.
- queue_retry_semaphore: SMTP links in Retry (Exchange_Link StateFlags bit 0x4,
  domain-facts 11). The link's error text ("Additional queue information") has
  no documented Exchange_SMTPLink property (the Exchange 2003 SDK's Exchange_Link
  lists none), so it is not read; Event 4006 carries that text instead.
- stale_queue_messages: .EML files in the queue folder older than a threshold;
  whether any link is in retry (seen_in_queues).
"""
from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from ansible_collections.mailflow.exchange.plugins.module_utils.fleet import Fleet, HostEntry

_4006_DROPPED = re.compile(r"dropped by the remote host\s+(?P<ip>[\d.]+)?,?\s*(?P<name>[^;\s]+)?\s*;", re.I)
_IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])")
# Names an event text gives a remote host or domain: quoted ('host.example' / "host"), after "host"/"server",
# or in brackets.
_NAMED = re.compile(r"(?:'|\"|\[)(?P<q>[A-Za-z0-9][A-Za-z0-9.-]*)(?:'|\"|\])|"
                    r"\b(?:host|server|domain)\s+(?P<w>[A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)+)", re.I)
_DOTTED = re.compile(r"\b[A-Za-z][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)+\b")
# (reason, words that show it): the conditions of the Exchange Server Analyzer's 4006 rule (TechNet aa996281).
_4006_REASONS = (
    ("connection_dropped", ("dropped by the remote host",)),
    ("auth_rejected", ("rejected auth", "auth negotiation")),
    ("smart_host_unreachable", ("smart host",)),
    ("no_delivery_information", ("delivery information",)),
    ("cannot_connect", ("cannot connect", "could not connect", "unable to connect", "did not respond to a connection",
                        "unable to bind", "connection attempt")),
    ("smtp_error", ("smtp protocol error", "smtp error", "protocol error")),
)
STATE_RETRY = 0x4
SYMPTOMS = ("event_4006", "queue_retry_semaphore", "stale_queue_messages")
_DMTF = re.compile(r"^(\d{14})\.\d{6}([+-])(\d{3})$")


def parse_time(text: Any) -> datetime | None:
    """ISO 8601 'Z' times from the runner, and WMI DMTF times ('yyyymmddHHMMSS.mmmmmmsUUU': local time, then the
    offset from UTC in minutes, so '20261123083508.000000+060' is 07:35:08 UTC)."""
    if not text:
        return None
    s = str(text)
    m = _DMTF.match(s)
    try:
        if m:
            local = datetime.strptime(m.group(1), "%Y%m%d%H%M%S")
            offset = int(m.group(3)) * (1 if m.group(2) == "+" else -1)
            return (local - timedelta(minutes=offset)).replace(tzinfo=timezone.utc)
        return datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def reason_4006(message: str) -> str:
    """Which of the analyzer's 4006 conditions an event text shows ("other" when none)."""
    text = (message or "").lower()
    return next((reason for reason, words in _4006_REASONS if any(w in text for w in words)), "other")


def remote_4006(fleet: Fleet, message: str) -> tuple[str | None, str | None, str | None]:
    """(remote as named, its address when the text gives one, the inventory host) of one 4006 text."""
    m = _4006_DROPPED.search(message or "")
    if m and (m["ip"] or m["name"]):
        name, ip = m["name"], m["ip"]
        return name or ip, ip, fleet.resolve(name) or fleet.resolve(ip)
    ips = _IPV4.findall(message or "")
    names = [n.group("q") or n.group("w") for n in _NAMED.finditer(message or "")]
    dotted = _DOTTED.findall(message or "")  # any other dotted name, last: the wording may name the host anywhere
    candidates = [c for c in names + ips + dotted if c]
    host = next((h for h in map(fleet.resolve, candidates) if h), None)
    named = next((c for c in candidates if fleet.resolve(c) == host), None) if host else (candidates or [None])[0]
    return named, (ips[0] if ips else None), host


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
        message = ev.get("message") or ""
        remote, ip, host = remote_4006(fleet, message)
        key = (host or remote or "?").lower()
        slot = per.setdefault(key, {"remote": remote, "address": ip, "host": host, "count": 0, "last": None, "reasons": {}})
        slot["count"] += 1
        reason = reason_4006(message)
        slot["reasons"][reason] = slot["reasons"].get(reason, 0) + 1
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
                      "oldest": _iso(parse_time(link.get("OldestMessage")))})
    return {"symptom": "queue_retry_semaphore", "observed": bool(links), "count": len(links), "links": links,
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
            # With no link in retry, old files are in no queue the admin can see (on a relay, KB 934709's symptom).
            "seen_in_queues": in_retry, "remote_hosts": []}


def of_host(fleet: Fleet, entry: HostEntry) -> list[dict]:
    if entry.snapshot is None:
        return []
    return [events_4006(fleet, entry), queue_retry(fleet, entry), stale_messages(fleet, entry)]
