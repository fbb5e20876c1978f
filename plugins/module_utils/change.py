# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Change control for remediation: the change id, the approved window, and the change record.

The record is reports/changes/<change id>/record.json (schema mailflow.change/1, docs/change.schema.json)
plus record.md, rewritten on every event so an interrupted run still leaves an accurate record. Ansible runs
controller-side tasks of many hosts in parallel forks, so every append takes an exclusive lock first.
"""
from __future__ import annotations

import fcntl
import getpass
import json
import os
import re
import socket
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from ansible_collections.mailflow.exchange.plugins.module_utils.reports import changemd
from ansible_collections.mailflow.exchange.plugins.module_utils.reports.common import atomic_write

SCHEMA = "mailflow.change/1"
DEFAULT_ID_PATTERN = r"^CHG\d+$"
# The id names a folder: no separators, no leading dot (so never "." or ".."), bounded length.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# A window longer than this is far more likely a mistyped date than an approved change window.
MAX_WINDOW = timedelta(days=7)
EXAMPLE_TIME = "2026-11-23T22:00:00+01:00 (or 2026-11-23T21:00:00Z)"
HEADER_FIELDS = ("operator", "controller", "window", "override_reason", "started")
# Event types and the fields each must carry (docs/change.schema.json says the same; further fields are kept).
REQUIRED = {
    "run_started": ("playbook", "check_mode"),
    "refused": ("reason",),
    "plan": ("host", "causes", "changes"),
    "fix": ("host", "cause", "status"),
    "restart": ("host", "services", "ok"),
    "verify": ("host", "ok"),
    "rollback": ("host", "ok"),
    "drain": ("host", "links", "drained"),
    "not_reached": ("host", "reason"),
    "run_finished": ("done", "not_reached"),
}
EVENT_TYPES = tuple(REQUIRED)
HOST_EVENTS = tuple(t for t, fields in REQUIRED.items() if "host" in fields)
# As fix_report words a fix role's result (reports/fixrun.status_of): ok = nothing to change.
FIX_STATUSES = ("changed", "ok", "needs_input", "failed", "interrupted", "unreachable", "skipped")
HOST_STATUSES = ("planned", "changed", "unchanged", "failed", "rolled_back", "not_reached")


class ChangeError(ValueError):
    """Bad change input; the message names the variable to fix."""


# -- the change id

def check_change_id(change_id: Any, pattern: Any = DEFAULT_ID_PATTERN) -> str:
    """The change id when it matches `pattern` (whole id) and is safe as a folder name; else ChangeError."""
    pattern = pattern or DEFAULT_ID_PATTERN
    if not isinstance(pattern, str):
        raise ChangeError(f"mailflow_change_id_pattern must be a regular expression string, not {type(pattern).__name__}")
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise ChangeError(f"mailflow_change_id_pattern {pattern!r} is not a valid regular expression: {e}") from None
    if change_id is None or (isinstance(change_id, str) and not change_id.strip()):
        raise ChangeError(f"mailflow_change_id is required: the approved change ticket, matching {pattern} "
                          "(set mailflow_change_id_pattern for another scheme), e.g. -e mailflow_change_id=CHG0012345")
    if not isinstance(change_id, str):
        kind = "the number" if isinstance(change_id, (int, float)) and not isinstance(change_id, bool) else "the value"
        raise ChangeError(f"mailflow_change_id must be text, not {kind} {change_id!r} (quote it in YAML)")
    if len(change_id) > 256 or not bounded_fullmatch(rx, change_id):
        raise ChangeError(f"mailflow_change_id {change_id[:80]!r} does not match mailflow_change_id_pattern {pattern}")
    return safe_id(change_id)


PATTERN_SECONDS = 2.0


def bounded_fullmatch(rx: "re.Pattern", text: str, seconds: float = PATTERN_SECONDS) -> bool:
    """rx.fullmatch(text), in a child Python given `seconds`: an operator's pattern such as ^CHG(\\d+)+$
    backtracks exponentially on a near miss, and Python's re cannot be interrupted. ChangeError when it runs out.
    (A child process, not a thread or a multiprocessing pool: Ansible runs this inside a forked worker.)"""
    import subprocess
    import sys

    code = ("import json, re, sys; p, f, t = json.load(sys.stdin); "
            "sys.exit(0 if re.compile(p, f).fullmatch(t) else 1)")
    try:
        done = subprocess.run([sys.executable, "-I", "-c", code], input=json.dumps([rx.pattern, rx.flags, text]),
                              text=True, capture_output=True, timeout=seconds, check=False)
    except subprocess.TimeoutExpired:
        raise ChangeError(f"mailflow_change_id_pattern {rx.pattern!r} took more than {seconds:g} s to match "
                          f"{text[:80]!r} (nested repetition such as (\\d+)+ backtracks without end): simplify it") from None
    if done.returncode not in (0, 1):
        raise ChangeError(f"mailflow_change_id_pattern {rx.pattern!r} could not be matched: {done.stderr.strip()[-200:]}")
    return done.returncode == 0


def safe_id(change_id: Any) -> str:
    """The id when it can name a folder: letters, digits, . _ -, starting with a letter or digit, 1-64 characters."""
    if not isinstance(change_id, str) or not SAFE_ID.fullmatch(change_id):
        raise ChangeError(f"mailflow_change_id {change_id!r} cannot name the record folder: use 1-64 letters, digits, "
                          "'.', '_' or '-', starting with a letter or digit")
    return change_id


# -- the window

@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    name: str | None = None

    def state(self, now: datetime | None = None) -> str:
        """'before' the start, 'open' from start (inclusive) to end (exclusive), 'closed' after."""
        now = _now(now)
        if now < self.start:
            return "before"
        return "open" if now < self.end else "closed"

    def to_dict(self) -> dict:
        return {"name": self.name, "start": self.start.isoformat(), "end": self.end.isoformat(),
                "start_utc": _utc(self.start), "end_utc": _utc(self.end)}


def parse_time(value: Any, variable: str) -> datetime:
    """An ISO 8601 time with a time zone (a datetime object from YAML is accepted when it has one)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        raise ChangeError(f"{variable} {value.isoformat()} is a date without a time and time zone; write e.g. {EXAMPLE_TIME}")
    elif isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ChangeError(f"{variable} {value!r} is not an ISO 8601 time; write e.g. {EXAMPLE_TIME}") from None
    else:
        raise ChangeError(f"{variable} must be an ISO 8601 time with a time zone, e.g. {EXAMPLE_TIME}; got {value!r}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ChangeError(f"{variable} {value!s} has no time zone, so the window would depend on the controller's clock "
                          f"setting; write e.g. {EXAMPLE_TIME}")
    return parsed


def resolve_window(start: Any, end: Any, name: Any, windows: Any, max_length: timedelta = MAX_WINDOW) -> Window:
    """The approved window: mailflow_window_start/_end, or mailflow_window naming an entry of mailflow_windows."""
    if name:
        if start or end:
            raise ChangeError("give either mailflow_window (a named window from mailflow_windows) or mailflow_window_start "
                              f"and mailflow_window_end, not both (mailflow_window is {name!r})")
        if not isinstance(name, str):
            raise ChangeError(f"mailflow_window must be the name of a window in mailflow_windows, not {name!r}")
        if not isinstance(windows, dict) or name not in windows:
            known = ", ".join(sorted(map(str, windows))) if isinstance(windows, dict) and windows else "none defined"
            raise ChangeError(f"mailflow_window {name!r} is not in mailflow_windows (known: {known})")
        entry = windows[name]
        if not isinstance(entry, dict):
            raise ChangeError(f"mailflow_windows.{name} must be a mapping with start and end, not {entry!r}")
        unknown = sorted(set(map(str, entry)) - {"start", "end"})
        if unknown:
            raise ChangeError(f"mailflow_windows.{name} has unknown keys {unknown}: only start and end")
        variables = (f"mailflow_windows.{name}.start", f"mailflow_windows.{name}.end")
        start, end = entry.get("start"), entry.get("end")
    elif not start and not end:
        raise ChangeError("a change window is required: set mailflow_window_start and mailflow_window_end (ISO 8601 with a "
                          f"time zone, e.g. {EXAMPLE_TIME}), or mailflow_window naming an entry of mailflow_windows")
    else:
        variables = ("mailflow_window_start", "mailflow_window_end")
    for value, variable in zip((start, end), variables):
        if value is None or value == "":
            raise ChangeError(f"{variable} is missing: a window needs a start and an end, e.g. {EXAMPLE_TIME}")
    window = Window(parse_time(start, variables[0]), parse_time(end, variables[1]), name or None)
    if window.end <= window.start:
        raise ChangeError(f"{variables[1]} ({window.end.isoformat()}) must be after {variables[0]} ({window.start.isoformat()})")
    if window.end - window.start > max_length:
        raise ChangeError(f"the window {variables[0]} .. {variables[1]} ({window.start.isoformat()} to {window.end.isoformat()}) "
                          f"is {_length(window.end - window.start)} long; windows "
                          f"over {_length(max_length)} are refused as a likely mistyped date (split a longer change)")
    return window


def override_reason(value: Any) -> str | None:
    """mailflow_window_override_reason as text, or None when not given (blank counts as not given)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ChangeError(f"mailflow_window_override_reason must be text saying why the run may go outside the window, "
                          f"not {value!r}")
    return " ".join(value.split()) or None


def admit(window: Window, reason: str | None, now: datetime | None = None) -> dict:
    """May the run (or its next batch) go ahead? {allowed, state, in_window, override, message}."""
    state = window.state(now)
    in_window = state == "open"
    used = bool(reason) and not in_window
    if in_window:
        message = f"the change window is open until {window.end.isoformat()}"
    elif used:
        message = (f"outside the change window ({_state_words(state, window)}), allowed by "
                   f"mailflow_window_override_reason: {reason}")
    else:
        message = (f"outside the change window ({_state_words(state, window)}): refused before touching any host. Check "
                   "mailflow_window_start/mailflow_window_end (or mailflow_window), or give "
                   "mailflow_window_override_reason to run anyway (it is recorded)")
    return {"allowed": in_window or used, "state": state, "in_window": in_window, "override": used, "message": message}


def _state_words(state: str, window: Window) -> str:
    return (f"it opens at {window.start.isoformat()}" if state == "before"
            else f"it closed at {window.end.isoformat()}")


def _length(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{round(hours / 24, 1):g} days" if hours >= 48 else f"{round(hours, 1):g} hours"


def _now(now: datetime | None) -> datetime:
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    return now


def _utc(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the change record

def record_paths(root: str, change_id: str) -> dict:
    folder = os.path.join(root, "changes", safe_id(change_id))
    return {"dir": folder, "json": os.path.join(folder, "record.json"), "md": os.path.join(folder, "record.md")}


def load(root: str, change_id: str) -> dict | None:
    """The record of this change, or None when there is none. Writers replace the file whole, so no lock is needed."""
    path = record_paths(root, change_id)["json"]
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise ChangeError(f"the change record {path} is not valid JSON ({e}); move it aside, it is not overwritten") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ChangeError(f"{path} is not a {SCHEMA} record; it is not overwritten")
    return doc


def append(root: str, change_id: str, event: dict, header: dict | None = None, now: datetime | None = None) -> dict:
    """Append one event (stamped with the UTC time) and rewrite record.json and record.md, under an exclusive lock.

    The header (operator, controller, window, override_reason, started) is set by the first append; later
    values only fill what is still empty, except that a run_started event's window and override_reason
    replace the header's (the header describes the latest run; each run_started keeps its own).
    """
    event = check_event(event)
    header = _plain(header or {})
    unknown = sorted(set(header) - set(HEADER_FIELDS))
    if unknown:
        raise ChangeError(f"unknown change record header field {unknown[0]!r} (known: {', '.join(HEADER_FIELDS)})")
    paths = record_paths(root, change_id)
    os.makedirs(paths["dir"], exist_ok=True)
    with open(paths["json"] + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also when this process dies
        stamp = _utc(_now(now))
        event["time"] = stamp  # taken under the lock: events are in append order, and so are their times
        doc = load(root, change_id) or new_record(change_id, stamp)
        for key, value in header.items():
            if doc.get(key) in (None, "") or (event["type"] == "run_started" and key in ("window", "override_reason")):
                doc[key] = value
        doc["events"].append(event)
        doc["updated"] = stamp
        doc["hosts"] = summarise(doc["events"])
        atomic_write(paths["json"], json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        atomic_write(paths["md"], changemd.render(doc))
        _fsync_dir(paths["dir"])
    return doc


def new_record(change_id: str, stamp: str) -> dict:
    return {"schema": SCHEMA, "change_id": safe_id(change_id), "operator": operator_name(), "controller": socket.gethostname(),
            "window": None, "override_reason": None, "started": stamp, "updated": stamp, "events": [], "hosts": {}}


def check_event(event: Any) -> dict:
    """A plain-JSON copy of the event, when it has a known type (and a host, for per-host events)."""
    if not isinstance(event, dict):
        raise ChangeError(f"a change record event must be a mapping, not {type(event).__name__}")
    event = _plain(event)
    if event.get("type") not in EVENT_TYPES:
        raise ChangeError(f"unknown change record event type {event.get('type')!r} (known: {', '.join(EVENT_TYPES)})")
    if event["type"] in HOST_EVENTS and not (isinstance(event.get("host"), str) and event["host"]):
        raise ChangeError(f"a {event['type']} event needs the host it is about")
    missing = [f for f in REQUIRED[event["type"]] if f not in event]
    if missing:
        raise ChangeError(f"a {event['type']} event needs {', '.join(missing)} (it has {', '.join(sorted(event))})")
    if event["type"] == "fix" and event["status"] not in FIX_STATUSES:
        raise ChangeError(f"a fix event's status is one of {', '.join(FIX_STATUSES)}, not {event['status']!r}")
    return event


def summarise(events: list[dict]) -> dict:
    """{host: {status, causes, plan, fixes, restarts, verifications, rollbacks, drains, not_reached}} from the events,
    in order.

    Status: planned -> changed | unchanged | failed | rolled_back | not_reached. A change wins over "nothing to
    change"; a failure (fix failed or interrupted, a failed restart or verification, a host that became
    unreachable after something was changed on it) wins within its run; a later
    run's change clears an earlier failure; a rollback after anything makes the host rolled_back (a failed
    rollback: failed). Not reached only marks hosts nothing has happened to yet; otherwise the reason is kept.
    """
    hosts: dict[str, dict] = {}
    run = 0

    def host(name: str) -> dict:
        return hosts.setdefault(name, {"status": None, "run": run, "causes": [], "plan": None, "fixes": [], "restarts": [],
                                       "verifications": [], "rollbacks": [], "drains": [], "not_reached": None})

    def mark(h: dict, status: str) -> None:
        h["status"], h["run"] = status, run

    for e in events:
        kind = e.get("type")
        if kind == "run_started":
            run += 1
            continue
        if kind == "run_finished":
            for name in e.get("not_reached") or []:
                h = host(name)
                h["not_reached"] = h["not_reached"] or "not reached before the run finished"
                if h["status"] in (None, "planned"):
                    mark(h, "not_reached")
            continue
        if kind not in HOST_EVENTS or not e.get("host"):
            continue
        h = host(e["host"])
        details = {k: v for k, v in e.items() if k not in ("type", "host")}
        if kind == "plan":
            h["plan"] = details
            h["causes"] = sorted(set(h["causes"]) | set(e.get("causes") or []))
            if h["status"] in (None, "not_reached"):
                mark(h, "planned" if e.get("causes") else "unchanged")  # an empty plan: nothing to change
        elif kind == "fix":
            h["fixes"].append(details)
            if e.get("cause") and e["cause"] not in h["causes"]:
                h["causes"].append(e["cause"])
            if e.get("status") == "unreachable" and h["status"] in (None, "planned", "not_reached"):
                h["not_reached"] = f"unreachable for the {e.get('cause')} fix" + (f": {e['msg']}" if e.get("msg") else "")
                mark(h, "not_reached")  # nothing was changed on it
            elif e.get("status") in ("failed", "interrupted", "unreachable"):
                mark(h, "failed")
            elif e.get("status") == "skipped":
                pass
            elif e.get("status") == "changed" and not (h["status"] == "failed" and h["run"] == run):
                mark(h, "changed")
            elif h["status"] in (None, "planned", "not_reached"):
                mark(h, "unchanged")
        elif kind in ("restart", "verify"):
            h["restarts" if kind == "restart" else "verifications"].append(details)
            if e.get("ok") is False:
                mark(h, "failed")
        elif kind == "drain":  # what the mail did after the change: a report, never a status
            h["drains"].append(details)
        elif kind == "rollback":
            h["rollbacks"].append(details)
            mark(h, "rolled_back" if e.get("ok", True) else "failed")
        elif kind == "not_reached":
            h["not_reached"] = e.get("reason") or "not reached"
            if h["status"] in (None, "planned", "not_reached"):
                mark(h, "not_reached")
    for h in hosts.values():
        del h["run"]
        h["status"] = h["status"] or "planned"
    return hosts


def _plain(value: Any) -> Any:
    """JSON-ready: Ansible's tagged strings and lazy containers become plain str/dict/list; times become ISO text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def operator_name() -> str:
    """The controller user running the change."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        return f"uid {os.getuid()}"


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
