"""What every report writer shares: atomic writes, status words, source links, safe text.

Everything a host said (banners, evidence, error text, even summaries that quote
them) is untrusted: each writer escapes it for its own format, and `xml_safe`
drops the characters no XML or HTML document may carry.
"""
from __future__ import annotations

import os
import re
import tempfile
from typing import Any, Iterator

SCHEMA = "mailflow.audit/1"
STATUSES = ("present", "absent", "not_applicable", "unknown")
STATUS_LABELS = {"present": "present", "absent": "absent", "not_applicable": "n/a", "unknown": "unknown"}
STATUS_MEANINGS = {
    "present": "the cause is there; the evidence shows it",
    "absent": "the data was read and the cause is not there",
    "not_applicable": "the cause cannot occur on this kind of host",
    "unknown": "the data needed is missing; the reason says which",
}
SYMPTOM_LABELS = {
    "event_4006": "Event 4006 (semaphore timeout)",
    "queue_retry_semaphore": "SMTP queues in Retry",
    "stale_queue_messages": "Old messages in the queue folders",
}

_KB = re.compile(r"^(?:KB|Q)\s*(\d{4,7})$", re.I)
_TECHNET = re.compile(r"^TechNet\s+([a-z]{2}\d{6})$", re.I)
# XML 1.0 Char production; HTML forbids the same controls.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class ReportError(ValueError):
    pass


def check_schema(doc: dict) -> None:
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise ReportError(f"not a {SCHEMA} document (schema {found!r})")


def source_url(source: str) -> str | None:
    """'KB919091', 'KB 295725', 'Q175982' -> the Microsoft KB article; 'TechNet aa998772' -> the TechNet archive; else None."""
    s = str(source).strip()
    m = _KB.match(s)
    if m:
        return f"https://support.microsoft.com/kb/{m.group(1)}"
    m = _TECHNET.match(s)
    if m:
        return f"https://learn.microsoft.com/en-us/previous-versions/tn-archive/{m.group(1).lower()}"
    return None


def xml_safe(value: Any) -> str:
    """str(value) without the control characters (and lone surrogates) XML 1.0 cannot hold; each becomes U+FFFD."""
    return _NOT_XML.sub("\ufffd", "" if value is None else str(value))


def one_line(value: Any) -> str:
    return " ".join(xml_safe(value).split())


def yes_no(value: bool | None) -> str:
    return {True: "yes", False: "no"}.get(value, "not recorded")


def cause_ids(doc: dict) -> list[str]:
    return [c["id"] for c in doc["causes"]]


def finding_map(host: dict) -> dict[str, dict]:
    return {f["cause"]: f for f in host["findings"]}


def present_ranked(host: dict) -> list[dict]:
    """The present findings of one host, most likely first (rank 1 first)."""
    present = [f for f in host["findings"] if f["status"] == "present"]
    return sorted(present, key=lambda f: (f["rank"] is None, f["rank"] or 0))


def cells(doc: dict) -> Iterator[tuple[str, dict, str, dict | None]]:
    """(host name, host, cause id, finding or None) for every host x cause, inventory then catalog order."""
    ids = cause_ids(doc)
    for name, host in doc["hosts"].items():
        by_cause = finding_map(host)
        for cid in ids:
            yield name, host, cid, by_cause.get(cid)


def counts_line(doc: dict) -> str:
    s = doc["summary"]
    statuses = ", ".join(f"{s['statuses'].get(k, 0)} {STATUS_LABELS[k]}" for k in STATUSES)
    unreachable = s["unreachable"]
    hosts = f"{s['hosts']} hosts" + (f" ({len(unreachable)} without a snapshot: {', '.join(unreachable)})" if unreachable else "")
    return f"{hosts}; {len(doc['causes'])} causes; findings: {statuses}"


def atomic_write(path: str, text: str) -> str:
    """Write text (UTF-8) to path through a temporary file in the same folder and os.replace: readers never see half a report."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8", "replace"))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path
