"""Backups on the controller: backups/<change id or UTC timestamp>/<host>/<cause>.json (+ .reg).

A backup is written before a change and rewritten as the change moves on
(planned -> applied -> verified | restored | interrupted), so a run that dies
mid-change leaves behind what the next run needs to finish or undo it.
"""
from __future__ import annotations

import json
import os
import time

from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import Change, FixError

BACKUP_SCHEMA = "mailflow.backup/1"


def backup_document(host: str, cause: str, change_id: str, changes: list[Change], state: str, **extra) -> dict:
    return {"schema": BACKUP_SCHEMA, "host": host, "cause": cause, "change_id": change_id, "state": state,
            "changes": [c.to_dict() for c in changes], **extra}


def _created(path: str) -> float:
    """When the backup was first written (kept across rewrites; a rewrite's mtime would reorder history)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return float(json.load(fh).get("created") or os.path.getmtime(path))
    except (OSError, ValueError):
        return os.path.getmtime(path)


def write_backup(folder: str, doc: dict) -> str:
    """Write (or rewrite) the backup JSON, and a .reg export of the prior registry values beside it."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{doc['cause']}.json")
    if "created" not in doc:
        try:
            with open(path, encoding="utf-8") as fh:
                doc = {**doc, "created": json.load(fh)["created"]}
        except (OSError, ValueError, KeyError):
            doc = {**doc, "created": time.time()}
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    reg = reg_export([Change.from_dict(c) for c in doc["changes"]])
    if reg:
        with open(os.path.join(folder, f"{doc['cause']}.reg"), "w", encoding="utf-16") as fh:
            fh.write(reg)
    return path


def reg_export(changes: list[Change]) -> str:
    """The prior registry values in regedit's format (REGEDIT5, UTF-16), so an admin can restore by hand too."""
    lines = ["Windows Registry Editor Version 5.00", ""]
    regs = [c for c in changes if c.kind == "registry_value"]
    if not regs:
        return ""
    for c in regs:
        path = c.target["path"].replace("HKLM\\", "HKEY_LOCAL_MACHINE\\", 1)
        name = c.target["name"].replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f"[{path}]")
        b = c.before
        if not b.get("exists"):
            lines.append(f'"{name}"=-')
            if b.get("created"):  # regedit can delete a key only with all it holds ([-key]): by hand, once empty
                lines.append(f"; {b['created'].replace('HKLM', 'HKEY_LOCAL_MACHINE', 1)} did not exist before the change")
        elif b["type"] == "REG_DWORD":
            lines.append(f'"{name}"=dword:{int(b["data"]) & 0xFFFFFFFF:08x}')
        elif b["type"] == "REG_SZ":
            lines.append('"{}"="{}"'.format(name, str(b["data"]).replace("\\", "\\\\").replace('"', '\\"')))
        else:
            lines.append(f"; {name}: {b['type']} {b['data']!r} (restore with the JSON backup)")
        lines.append("")
    return "\r\n".join(lines) + "\r\n"


INCOMPLETE_STATES = ("planned", "applied", "interrupted")


def change_key(c: Change) -> str:
    return c.kind + json.dumps(c.target, sort_keys=True)


def host_backups(backup_dir: str, host: str, cause: str) -> list[str]:
    """This host's backups for this cause, oldest first (backup_dir/<change id or ts>/<host>/<cause>.json)."""
    if not os.path.isdir(backup_dir):
        return []
    found = [os.path.join(backup_dir, d, host, f"{cause}.json") for d in os.listdir(backup_dir)]
    return sorted((p for p in found if os.path.isfile(p)), key=_created)


def causes_with_backups(backup_dir: str, host: str) -> list[str]:
    """The causes this host has backups for, in any change folder."""
    if not os.path.isdir(backup_dir):
        return []
    found = set()
    for d in os.listdir(backup_dir):
        folder = os.path.join(backup_dir, d, host)
        if os.path.isdir(folder):
            found.update(f[:-5] for f in os.listdir(folder) if f.endswith(".json"))
    return sorted(found)


def incomplete_backup(backup_dir: str, host: str, cause: str) -> tuple[str, dict, list[Change]] | None:
    """The newest backup a run left unfinished (its host dropped mid-change): its `before` values are the originals."""
    for path in reversed(host_backups(backup_dir, host, cause)):
        doc, changes = read_backup(path)
        if doc.get("state") in INCOMPLETE_STATES:
            return path, doc, changes
        if doc.get("state") in ("verified", "restored", "rolled_back", "not_restored", "restore_failed"):
            return None  # a later run finished (or an admin must look); older leftovers are history
    return None


def pending_restarts(backup_dir: str, host: str, cause: str) -> list[tuple[str, dict]]:
    """Verified changes still waiting for a service restart to take effect."""
    out = []
    for path in host_backups(backup_dir, host, cause):
        doc, _unused = read_backup(path)
        if doc.get("state") == "verified" and doc.get("pending_restart"):
            out.append((path, doc))
    return out


def update_backup(path: str, **fields) -> None:
    doc, _unused = read_backup(path)
    doc.update(fields)
    write_backup(os.path.dirname(path), doc)


def read_backup(path: str) -> tuple[dict, list[Change]]:
    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)
    if doc.get("schema") != BACKUP_SCHEMA:
        raise FixError(f"{path}: not a {BACKUP_SCHEMA} backup")
    return doc, [Change.from_dict(c) for c in doc["changes"]]


def fleet_unfinished(backup_dir: str, hosts: list[str], causes: list[str]) -> dict[str, list[dict]]:
    """{host: [{cause, state, backup, change_id, interrupted}]}: changes a run left unfinished (its host dropped
    mid-change). The next fix or remediation of the host resumes them whatever the audit says, and the audit
    lists them until then."""
    out: dict[str, list[dict]] = {}
    for host in hosts:
        for cause in causes:
            found = incomplete_backup(backup_dir, host, cause)
            if found:
                path, doc, _unused = found
                out.setdefault(host, []).append({"cause": cause, "state": doc.get("state"), "backup": path,
                                                 "change_id": doc.get("change_id"), "interrupted": doc.get("interrupted")})
    return out


def fleet_pending_restarts(backup_dir: str, hosts: list[str], causes: list[str]) -> dict[str, list[dict]]:
    """{host: [{cause, services, backup, change_id}]} for the audit report."""
    out: dict[str, list[dict]] = {}
    for host in hosts:
        for cause in causes:
            for path, doc in pending_restarts(backup_dir, host, cause):
                out.setdefault(host, []).append({"cause": cause, "services": list(doc["pending_restart"]), "backup": path,
                                                 "change_id": doc.get("change_id")})
    return out
