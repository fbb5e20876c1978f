# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""record.md: the change record as a summary to attach to the change ticket (see docs/change-record.md).

Who ran the change, from where, in which window (and the override, if any); per host its status, each change
(cause, before -> after), restarts with the queue counted before and after, verification, rollbacks, hosts not
reached and why; then every event in order. Host-supplied text is escaped (esc/code from the audit's Markdown).
"""
from __future__ import annotations

from typing import Any

from ansible_collections.mailflow.exchange.plugins.module_utils.reports.common import yes_no
from ansible_collections.mailflow.exchange.plugins.module_utils.reports.markdown import code, esc

STATUS_WORDS = {"planned": "planned, not changed yet", "changed": "**changed**", "unchanged": "nothing to change",
                "failed": "**FAILED**", "rolled_back": "**rolled back**", "not_reached": "not reached"}


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _unused in header) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def _codes(values: Any) -> str:
    values = [values] if isinstance(values, str) else list(values or [])
    return ", ".join(code(v) for v in values) or "none"


def _yes(value: Any) -> str:
    return {True: "yes", False: "**no**"}.get(value, "not recorded")


def _change(c: Any) -> str:
    """A change as the fix described it ("name: before -> after") or as {target, before, after}."""
    if isinstance(c, dict) and "before" in c and "after" in c:
        return f"{code(c.get('target') or c.get('kind') or '')}: {code(c['before'])} → {code(c['after'])}"
    return code(c)


def _window(w: dict | None) -> str:
    if not w:
        return "not recorded"
    name = f" (named window {code(w['name'])})" if w.get("name") else ""
    return f"{esc(w.get('start'))} → {esc(w.get('end'))}{name}"


def _queue(e: dict) -> str:
    before, after = e.get("queue_before"), e.get("queue_after")

    def show(n):
        return "not counted" if n is None else esc(n)
    return f"queue {show(before)} → {show(after)}"


def _restart(e: dict) -> str:
    return f"{_codes(e.get('services'))}: {_queue(e)}, {'ok' if e.get('ok') else '**failed**'}"


def _verify(e: dict) -> str:
    if e.get("ok"):
        return f"ok ({_codes(e.get('causes'))} no longer present)"
    return f"**failed**: still present {_codes(e.get('still_present'))}"


def _rollback(e: dict) -> str:
    parts = [f"{code(e.get('cause') or 'all')}: {'ok' if e.get('ok', True) else '**failed**'}"]
    for key, words in (("restored", "restored"), ("changed_since", "changed by someone since, **not overwritten**"),
                       ("already", "already back"), ("not_reversible", "cannot be undone, left as changed")):
        if e.get(key):
            parts.append(f"{words}: " + "; ".join(_change(c) for c in e[key]))
    if e.get("reason"):
        parts.append(esc(e["reason"]))
    return " — ".join(parts)


def _drain(e: dict) -> list[str]:
    """The stuck links after the change: drained or still stuck, messages and oldest message before and after."""
    if not e.get("links"):
        return [f"- Mail: no link was stuck; queue folders {esc(e.get('queued_before'))} → {esc(e.get('queued_after'))}"]
    verdict = "**all stuck links drained**" if e.get("drained") else "**still stuck**: " + _codes(e.get("stuck_after"))
    head = (f"- Mail after {esc(e.get('waited_seconds'))} s: {verdict}; "
            f"{esc(e.get('delivered'))} message(s) left the queue folders ({esc(e.get('queued_before'))} → {esc(e.get('queued_after'))})")
    return [head] + [f"  - {code(l.get('link'))}{' (' + esc(l['peer']) + ')' if l.get('peer') else ''}: "
                     f"{'drained' if l.get('drained') else '**still stuck**'}; messages {esc(l.get('messages_before'))} → "
                     f"{esc(l.get('messages_after'))}, oldest {esc(l.get('oldest_before'))} → {esc(l.get('oldest_after'))}"
                     for l in e["links"]]


def _fix(e: dict) -> list[str]:
    head = (f"- {code(e.get('cause'))}: {esc(e.get('status'))}, verified {_yes(e.get('verified'))}"
            + (f", backup {code(e['backup'])}" if e.get("backup") else ""))
    return [head] + [f"  - {_change(c)}" for c in e.get("changes") or []]


def _host(name: str, h: dict) -> list[str]:
    out = [f"### {esc(name)}: {STATUS_WORDS.get(h['status'], esc(h['status']))}", ""]
    plan = h.get("plan")
    if plan:
        out.append(f"- Planned: causes {_codes(plan.get('causes'))}; restart {_codes(plan.get('restart'))}; "
                   f"reboot possible {yes_no(plan.get('reboot'))}")
    for f in h["fixes"]:
        out += _fix(f)
    out += [f"- Restart {_restart(r)}" for r in h["restarts"]]
    out += [f"- Verification {_verify(v)}" for v in h["verifications"]]
    out += [f"- Rollback {_rollback(r)}" for r in h["rollbacks"]]
    for d in h.get("drains") or []:
        out += _drain(d)
    if h.get("not_reached"):
        out.append(f"- Not reached: {esc(h['not_reached'])}")
    if len(out) == 2:
        out.append("- Nothing recorded beyond the status.")
    return out + [""]


def describe(e: dict) -> str:
    """One event as a table cell."""
    kind = e.get("type")
    if kind == "run_started":
        over = f"; **override**: {esc(e['override_reason'])}" if e.get("override_reason") else ""
        return (f"{code(e.get('playbook') or '')} by {esc(e.get('operator') or '?')}, check mode {yes_no(e.get('check_mode'))}, "
                f"window {_window(e.get('window'))}{over}")
    if kind == "refused":
        return esc(e.get("reason"))
    if kind == "plan":
        return f"causes {_codes(e.get('causes'))}; " + ("; ".join(_change(c) for c in e.get("changes") or []) or "no change")
    if kind == "fix":
        return (f"{code(e.get('cause'))} {esc(e.get('status'))}, verified {_yes(e.get('verified'))}: "
                + ("; ".join(_change(c) for c in e.get("changes") or []) or "no change"))
    if kind == "restart":
        return _restart(e)
    if kind == "verify":
        return _verify(e)
    if kind == "rollback":
        return _rollback(e)
    if kind == "drain":
        return " ".join(_drain(e)).lstrip("- ")
    if kind == "not_reached":
        return esc(e.get("reason"))
    if kind == "run_finished":
        return f"done: {', '.join(esc(h) for h in e.get('done') or []) or 'none'}; " \
               f"not reached: {', '.join(esc(h) for h in e.get('not_reached') or []) or 'none'}"
    return esc(e)


def render(doc: dict) -> str:
    events = doc.get("events") or []
    refused = [e for e in events if e.get("type") == "refused"]
    runs = [e for e in events if e.get("type") == "run_started"]
    lines = [f"# Change {esc(doc['change_id'])}", "",
             *_table(["", ""], [
                 ["Change", code(doc["change_id"])],
                 ["Operator (controller user)", esc(doc.get("operator"))],
                 ["Controller", esc(doc.get("controller"))],
                 ["Window", _window(doc.get("window"))],
                 ["Window override", f"**{esc(doc['override_reason'])}**" if doc.get("override_reason") else "none"],
                 ["Started (UTC)", esc(doc.get("started"))],
                 ["Last update (UTC)", esc(doc.get("updated"))],
                 ["Runs", f"{len(runs)} started, {len(refused)} refused"],
             ]), ""]
    hosts = doc.get("hosts") or {}
    if hosts:
        rows = [[esc(n), STATUS_WORDS.get(h["status"], esc(h["status"])), _codes(h.get("causes")),
                 str(sum(len(f.get("changes") or []) for f in h["fixes"])),
                 "; ".join(_queue(r) for r in h["restarts"]) or "none",
                 "; ".join("ok" if v.get("ok") else "**failed**" for v in h["verifications"]) or "none",
                 str(len(h["rollbacks"])) if h["rollbacks"] else "none"] for n, h in hosts.items()]
        lines += ["## Hosts", "", *_table(["Host", "Status", "Causes", "Changes", "Restarts", "Verification", "Rollbacks"],
                                          rows), ""]
        for name, h in hosts.items():
            lines += _host(name, h)
        missed = [(n, h) for n, h in hosts.items() if h.get("not_reached")]
        if missed:
            lines += ["## Hosts not reached", ""] + [f"- {esc(n)}: {esc(h['not_reached'])}" for n, h in missed] + [""]
    else:
        lines += ["No host was planned or changed under this change.", ""]
    if refused:
        lines += ["## Refused runs", ""] + [f"- {esc(e.get('time'))}: {esc(e.get('reason'))}" for e in refused] + [""]
    lines += ["## Event log", "", *_table(["Time (UTC)", "Host", "Event", "Details"],
                                          [[esc(e.get("time")), esc(e.get("host") or ""), code(e.get("type")), describe(e)]
                                           for e in events]), "",
              "The whole record, for scripts: record.json (schema mailflow.change/1).", ""]
    return "\n".join(lines)
