"""Did the stuck mail leave? What a change window is for, read the way an Exchange admin reads it.

From one host's own reads (its Exchange_SMTPLink objects and its queue folders,
knowledge smtp_links / queue_exchange / queue_iis), taken at the start of the
watch and again until it ends: the links that were in Retry (StateFlags bit
0x4, the bit symptoms.py reads) and whether each has left Retry and emptied,
how many queued messages left the folders, and the oldest message before and
after. Pure: the drain_watch action does the reading.
"""
from __future__ import annotations

from typing import Any

from ansible_collections.mailflow.exchange.plugins.module_utils.symptoms import STATE_RETRY, parse_time

QUEUE_ITEMS = ("queue_exchange", "queue_iis")
READS = ("smtp_links",) + QUEUE_ITEMS


def links(view) -> dict[str, dict]:
    """{link name: {retry, messages, oldest}} from the host's smtp_links (empty when it has no Exchange queues)."""
    out = {}
    for link in view.items.get("smtp_links") or []:
        flags, retry = link.get("StateFlags"), link.get("StateRetry")
        out[str(link.get("LinkName"))] = {
            "retry": bool((isinstance(flags, int) and flags & STATE_RETRY) or retry in (True, 1, "True", "true")),
            "messages": link.get("NumberOfMessages"), "oldest": link.get("OldestMessage")}
    return out


def queue_files(view) -> dict[str, str | None]:
    """{queued file path: its mtime} across the queue folders."""
    return {f["path"]: f.get("mtime") for item in QUEUE_ITEMS for f in (view.items.get(item) or {}).get("files") or []}


def stuck(view) -> list[str]:
    """The links in Retry, or holding messages while in Retry."""
    return sorted(n for n, l in links(view).items() if l["retry"])


def drained(first, now) -> bool:
    """Every link that was stuck at the start has left Retry with nothing left on it (a link the host no longer
    lists has nothing queued: Exchange removes an empty link)."""
    current = links(now)
    return all(not current.get(n, {}).get("retry") and not current.get(n, {}).get("messages") for n in stuck(first))


def _oldest(files: dict[str, str | None]) -> str | None:
    times = sorted(t for t in files.values() if t and parse_time(t))
    return times[0] if times else None


def report(host: str, first, last, waited: float, resolve=lambda name: None) -> dict[str, Any]:
    """What the watch saw: per stuck link before and after, and the queue folders."""
    before_links, after_links = links(first), links(last)
    before_files, after_files = queue_files(first), queue_files(last)
    rows = []
    for name in stuck(first):
        b, a = before_links[name], after_links.get(name, {"retry": False, "messages": 0, "oldest": None})
        rows.append({"link": name, "peer": resolve(name), "messages_before": b["messages"], "messages_after": a["messages"],
                     "oldest_before": b["oldest"], "oldest_after": a["oldest"], "retry_after": a["retry"],
                     "drained": not a["retry"] and not a["messages"]})
    left = [p for p in before_files if p not in after_files]
    return {"host": host, "links": rows, "waited_seconds": round(waited, 1),
            "queued_before": len(before_files), "queued_after": len(after_files), "delivered": len(left),
            "oldest_before": _oldest(before_files), "oldest_after": _oldest(after_files),
            "drained": all(r["drained"] for r in rows), "stuck_after": [r["link"] for r in rows if not r["drained"]]}
