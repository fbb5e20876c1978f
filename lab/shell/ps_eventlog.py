"""The dispatcher's event log read in the lab: newest first, an early stop, a log that wraps while it is read.

A host's `events` are the entries a scenario names; `event_logs` adds the rest
of a busy log (tens of thousands of entries from another source, evenly spread
from `oldest` to now) and another program writing to it (`writes_per_second`).
The log is full, so each new entry overwrites the oldest one. Reading it takes
time: READ_RATE entries a second (a lab assumption; nothing published gives the
rate of EventLogEntryCollection on a 2003 server), and what is written
meanwhile overwrites that many of the oldest entries. A reader that reaches an
overwritten entry gets the ArgumentException EventLogEntryCollection throws,
which is where the dispatcher stops with what it has; one that stops at its
time bound first never sees it. Time is computed, not slept.
"""
from __future__ import annotations

import heapq
from datetime import datetime, timezone

READ_RATE = 2000  # entries a second; lab assumption


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(iso: str) -> datetime:
    return datetime.strptime(iso.replace("Z", "")[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)


def newest_first(host, log: str):
    """(entries in the log, iterator of its entries newest first); filler entries generated as needed."""
    named = sorted((e for e in host.events if e.get("log", "Application").lower() == log.lower()),
                   key=lambda e: e["time"], reverse=True)
    spec = next((v for k, v in (host.event_logs or {}).items() if k.lower() == log.lower()), None) or {}
    count = int(spec.get("entries", 0) or 0)

    def filler():
        if not count:
            return
        now = datetime.now(timezone.utc)
        oldest = _parse(spec["oldest"])
        step = (now - oldest) / count
        for j in range(count):
            yield {"log": log, "source": spec.get("source", "Userenv"), "event_id": int(spec.get("event_id", 1517)),
                   "type": "Information", "category": "None", "message": spec.get("message", ""),
                   "time": _iso(now - step * j)}
    merged = heapq.merge(named, filler(), key=lambda e: e["time"].replace("Z", ""), reverse=True)
    return len(named) + count, float(spec.get("writes_per_second", 0) or 0), merged


class EventLogOps:
    """Mixin for DispatcherEmulation."""

    def op_eventlog(self, index: int, log: str, source: str, ids: tuple, since: str, max_rows: str) -> None:
        total, writes, entries = newest_first(self.host, log)
        since = since.replace("Z", "")
        n = 0
        for scanned, e in enumerate(entries):
            overwritten = writes * scanned / READ_RATE  # oldest entries gone by the time this one is read
            if total - 1 - scanned < overwritten:
                self.row(index, "overwritten", "scanned", scanned,
                         "message", f'Exception getting "Item": "Index {total - 1 - scanned} is out of bounds."')
                return
            if e["time"].replace("Z", "") < since:
                return
            if (source and e.get("source") != source) or (ids and str(e.get("event_id")) not in ids):
                continue
            if n >= int(max_rows):
                self.row(index, "truncated", "max", int(max_rows))
                return
            n += 1
            self.row(index, "event", "time", self.win_time(e["time"]), "id", int(e["event_id"]), "source", e.get("source"),
                     "type", e.get("type", "Warning"), "category", e.get("category", ""), "message", e.get("message", ""))

