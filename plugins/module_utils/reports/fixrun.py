"""fix.json and fix.md: what a fix run changed, host by host (mailflow.fix/1).

Built from the results the fix roles registered (mailflow_fix_<cause>), so the
record says what the hosts answered, not what was planned: before and after,
the verify result, the backup, restarts done or pending, and what failed.
"""
from __future__ import annotations

import json
import os

from ansible_collections.mailflow.exchange.plugins.module_utils.summary import wrapped
from ansible_collections.mailflow.exchange.plugins.module_utils.reports.common import atomic_write
from ansible_collections.mailflow.exchange.plugins.module_utils.reports.markdown import code, esc

SCHEMA = "mailflow.fix/1"
STATUSES = ("changed", "ok", "needs_input", "failed", "interrupted", "unreachable", "skipped")
_KEEP = ("changes", "diff", "backup", "verified", "pending_restart", "restarted", "pending_reboot", "advice",
         "queue_before", "queue_after", "resumed_from", "needs_input", "msg")


def status_of(res: dict) -> str:
    if res.get("unreachable") or res.get("lost"):
        return "unreachable"
    if res.get("interrupted"):
        return "interrupted"
    if res.get("failed"):
        return "failed"
    if res.get("skipped"):
        return "skipped"
    if res.get("needs_input"):
        return "needs_input"
    return "changed" if res.get("changed") else "ok"


def build(registered: dict[str, dict[str, dict]], *, generated: str, change_id: str, check_mode: bool,
          audit_report: str | None = None) -> dict:
    """registered: {host: {cause: the task result registered by fix_<cause>}} (skipped tasks included)."""
    hosts = {}
    for host in sorted(registered):
        rows = []
        for cause, res in registered[host].items():
            if not isinstance(res, dict) or (res.get("skipped") and res.get("false_condition") is not None):
                continue  # not selected for this host (the audit did not find it, or mailflow_fix left it out)
            row = {"cause": cause, "status": status_of(res)}
            row.update({k: res[k] for k in _KEEP if res.get(k) not in (None, [], {}, "")})
            rows.append(row)
        hosts[host] = rows
    counts = {s: sum(1 for rows in hosts.values() for r in rows if r["status"] == s) for s in STATUSES}
    return {"schema": SCHEMA, "generated": generated, "change_id": change_id, "check_mode": check_mode,
            "audit_report": audit_report, "summary": counts, "hosts": hosts}


def notes(row: dict) -> list[str]:
    """What a fix did (or why it did not), then restarts, reboots and advice."""
    out = list(row.get("changes") or []) or [row.get("msg") or ""]
    if row.get("verified"):
        out.append("verified")
    if row.get("pending_restart"):
        out.append("pending restart of " + ", ".join(row["pending_restart"]))
    if row.get("restarted"):
        out.append("restarted " + ", ".join(row["restarted"]))
    if row.get("pending_reboot"):
        out.append("reboot pending")
    return [x for x in out + (row.get("advice") or []) if x]


def render_md(doc: dict) -> str:
    mode = " (check mode: nothing was changed)" if doc["check_mode"] else ""
    out = [f"# mailflow fix run {esc(doc['generated'])}{mode}", ""]
    if doc.get("change_id"):
        out += [f"Change: {code(doc['change_id'])}", ""]
    out += [", ".join(f"{n} {s}" for s, n in doc["summary"].items() if n) or "nothing to do", ""]
    out += ["| host | cause | result | what | backup |", "|---|---|---|---|---|"]
    for host, rows in doc["hosts"].items():
        if not rows:
            out.append(f"| {esc(host)} | | nothing selected | | |")
        for r in rows:
            cell = "; ".join(notes(r))
            out.append(f"| {esc(host)} | {esc(r['cause'])} | {esc(r['status'])} | {esc(cell)} | {code(r.get('backup', ''))} |")
    out.append("")
    return "\n".join(out)


def render_text(doc: dict) -> str:
    """The run as the play prints it: plain text (no Markdown), a line per host and cause with its result and,
    indented beneath it, what changed or why not, restarts, advice and the backup, within summary.WIDTH."""
    mode = " (check mode: nothing was changed)" if doc["check_mode"] else ""
    out = [f"mailflow fix run {doc['generated']}{mode}"]
    if doc.get("change_id"):
        out.append(f"change: {doc['change_id']}")
    out += [", ".join(f"{n} {s}" for s, n in doc["summary"].items() if n) or "nothing to do", ""]
    rows = [(h, r["cause"]) for h, rs in doc["hosts"].items() for r in rs]
    hw, cw = (max(len(x[i]) for x in [("host", "cause"), *rows]) for i in (0, 1))
    out += [f"{'host'.ljust(hw)}  {'cause'.ljust(cw)}  result", f"{'-' * hw}  {'-' * cw}  {'-' * 16}"]
    for host, rs in doc["hosts"].items():
        if not rs:
            out.append(f"{host.ljust(hw)}  {'-'.ljust(cw)}  nothing selected")
        for r in rs:
            out.append(f"{host.ljust(hw)}  {r['cause'].ljust(cw)}  {r['status']}")
            for note in notes(r) + ([f"backup: {r['backup']}"] if r.get("backup") else []):
                out += wrapped(note, hw + 4)
    return "\n".join(out)


def write(doc: dict, out_dir: str) -> dict[str, str]:
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    paths = {"json": os.path.join(out_dir, "fix.json"), "md": os.path.join(out_dir, "fix.md")}
    atomic_write(paths["json"], json.dumps(doc, indent=1, sort_keys=True) + "\n")
    atomic_write(paths["md"], render_md(doc))
    return paths
