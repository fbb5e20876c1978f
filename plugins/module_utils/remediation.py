"""Fixes as data: what a fix will change on a host, how to apply it, how to undo it, what the backup holds.

A cause module's plan(view, params) returns Changes; the fix action applies
them (one WinRM command), records the values it replaced, verifies with a
fresh read, and restores from the backup when verification fails. Pure: this
module builds runner operations and backup documents, it runs nothing.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from ansible_collections.mailflow.exchange.plugins.module_utils.psrunner import REG_KIND_TO_TYPE, Op

BACKUP_SCHEMA = "mailflow.backup/1"
REG_TYPE_TO_KIND = {v: k for k, v in REG_KIND_TO_TYPE.items()}  # "REG_DWORD" -> "DWord" (RegistryValueKind)
_START_MODE_ACTION = {"auto": "auto", "automatic": "auto", "manual": "manual", "disabled": "disabled"}
SERVICE_WAIT_SECONDS = "60"


class FixError(ValueError):
    """Bad fix input; the message names the variable."""


@dataclass
class Change:
    kind: str                 # registry_value | service_start_mode | service_state
    target: dict[str, str]    # {"path", "name"} for registry; {"service"} for services
    before: Any               # registry: {"exists", "type", "data"}; services: "Disabled" / "Stopped"
    after: Any
    restart: list[str] = field(default_factory=list)  # services that must restart for it to take effect

    def describe(self) -> str:
        if self.kind == "registry_value":
            b = self.before
            was = f"{b['data']!r} ({b['type']})" if b.get("exists") else "absent"
            return f"{self.target['path']}\\{self.target['name']}: {was} -> {self.after['data']!r} ({self.after['type']})"
        return f"service {self.target['service']} {self.kind.split('_', 1)[1].replace('_', ' ')}: {self.before} -> {self.after}"

    def apply_ops(self) -> list[Op]:
        if self.kind == "registry_value":
            return [Op("reg_write", (self.target["path"], self.target["name"], REG_TYPE_TO_KIND[self.after["type"]], _reg_text(self.after)))]
        if self.kind == "service_start_mode":
            return [Op("service_control", (self.target["service"], _START_MODE_ACTION[str(self.after).lower()], SERVICE_WAIT_SECONDS))]
        if self.kind == "service_state":
            return [Op("service_control", (self.target["service"], "start" if str(self.after).lower() == "running" else "stop",
                                           SERVICE_WAIT_SECONDS))]
        raise FixError(f"unknown change kind {self.kind}")

    def restore_ops(self) -> list[Op]:
        """Operations that put `before` back (`before` is what the apply step found, not what the plan assumed)."""
        if self.kind == "registry_value":
            if not self.before.get("exists"):
                return [Op("reg_delete", (self.target["path"], self.target["name"]))]
            return [Op("reg_write", (self.target["path"], self.target["name"], REG_TYPE_TO_KIND[self.before["type"]], _reg_text(self.before)))]
        return Change(self.kind, self.target, self.after, self.before).apply_ops()

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Change":
        return cls(d["kind"], d["target"], d["before"], d["after"], list(d.get("restart") or []))


def _reg_text(value: dict) -> str:
    """The runner's wire form of registry data: decimal for DWORD/QWORD, NUL-joined multi-strings, hex binary."""
    data = value["data"]
    if value["type"] == "REG_MULTI_SZ":
        return "\0".join(data)
    return str(data)


def restore_plan(changes: list[Change]) -> list[Op]:
    """Undo in reverse order (a service is stopped before its start mode is put back)."""
    return [op for c in reversed(changes) for op in c.restore_ops()]


def record_prev(change: Change, rows: list[tuple[str, dict]]) -> None:
    """Replace the plan's `before` with what the host reported it replaced (the authoritative prior value)."""
    prev = next((r for k, r in rows if k == "prev"), None)
    if prev is None:
        return
    if change.kind == "registry_value":
        if prev.get("existed") in (1, True):
            rtype = REG_KIND_TO_TYPE.get(prev.get("type"), prev.get("type"))
            data = prev.get("data")
            if rtype == "REG_DWORD" and isinstance(data, int):
                data &= 0xFFFFFFFF
            change.before = {"exists": True, "type": rtype, "data": data}
        else:
            change.before = {"exists": False}
    elif change.kind == "service_start_mode":
        change.before = prev.get("start_mode")
    elif change.kind == "service_state":
        change.before = prev.get("state")


def diff(changes: list[Change]) -> dict[str, str]:
    """Ansible's --diff: before and after, one line per changed item."""
    return {"before": "".join(_side(c, c.before) + "\n" for c in changes),
            "after": "".join(_side(c, c.after) + "\n" for c in changes)}


def _side(c: Change, value: Any) -> str:
    if c.kind == "registry_value":
        shown = f"{value['type']} {value['data']!r}" if value.get("exists", True) and "data" in value else "(absent)"
        return f"{c.target['path']}\\{c.target['name']} = {shown}"
    return f"{c.target['service']} {c.kind.split('_', 1)[1]} = {value}"


# -- backups on the controller: backups/<change id or UTC timestamp>/<host>/<cause>.json (+ .reg)

def backup_document(host: str, cause: str, change_id: str, changes: list[Change], state: str, **extra) -> dict:
    return {"schema": BACKUP_SCHEMA, "host": host, "cause": cause, "change_id": change_id, "state": state,
            "changes": [c.to_dict() for c in changes], **extra}


def write_backup(folder: str, doc: dict) -> str:
    """Write (or rewrite) the backup JSON, and a .reg export of the prior registry values beside it."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{doc['cause']}.json")
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
        elif b["type"] == "REG_DWORD":
            lines.append(f'"{name}"=dword:{int(b["data"]) & 0xFFFFFFFF:08x}')
        elif b["type"] == "REG_SZ":
            lines.append('"{}"="{}"'.format(name, str(b["data"]).replace("\\", "\\\\").replace('"', '\\"')))
        else:
            lines.append(f"; {name}: {b['type']} {b['data']!r} (restore with the JSON backup)")
        lines.append("")
    return "\r\n".join(lines) + "\r\n"


def read_backup(path: str) -> tuple[dict, list[Change]]:
    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)
    if doc.get("schema") != BACKUP_SCHEMA:
        raise FixError(f"{path}: not a {BACKUP_SCHEMA} backup")
    return doc, [Change.from_dict(c) for c in doc["changes"]]
