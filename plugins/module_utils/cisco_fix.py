"""The IOS fix for cisco_smtp_inspection, as pure steps: plan, back up, verify, roll back.

The role (roles/fix_cisco_smtp_inspection) does the device I/O with
cisco.ios.ios_command and cisco.ios.ios_config; everything it decides is here:
which lines to send (ciscoconf.ios_plan), the backup written before they are
sent (backups/<change>/<firewall>/cisco_smtp_inspection.json with the running
config beside it), what a re-read must show, and which lines put a rule back.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import time
from typing import Any

from ansible_collections.mailflow.exchange.plugins.module_utils import ciscoconf
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import FixError

# A device backup holds a running config and the lines to send back, not Changes: its own schema, so neither
# store ever reads the other's documents (backups.py holds the servers').
DEVICE_BACKUP_SCHEMA = "mailflow.device-backup/1"

CAUSE = "cisco_smtp_inspection"
# planned -> applied (the lines are being sent: the device may hold them from here on) -> verified |
# restored | restore_failed. A backup in these states may hold lines the device still has; rollback
# checks the device and puts the originals back where the change's lines are still there.
ROLLBACK_STATES = ("verified", "applied", "restore_failed")


def plan(name: str, text: str, rules: list[str] | None, use_esmtp: bool) -> "ciscoconf.IosPlan":
    try:
        cfg = ciscoconf.parse(text)
    except ciscoconf.ConfigError as exc:
        raise FixError(f"{name}: cannot read its running config: {exc}")
    if cfg.platform != "ios":
        raise FixError(f"{name}: its running config is {cfg.platform}, not IOS; paste the audit's lines for it instead")
    result = ciscoconf.ios_plan(text, rules, use_esmtp)
    if result.unknown_rules:
        raise FixError(f"{name}: mailflow_cisco_rules names rule(s) its config does not define: {', '.join(result.unknown_rules)}")
    return result


# Lines IOS writes about the config rather than config lines (netcommon's NetworkConfig skips the same).
_NOT_CONFIG = ("!", "Building configuration", "Current configuration", "Using ", "end")


def unsaved(running: str, startup: str) -> bool:
    """Does the running config hold changes nobody saved? `save_when: modified` would save them with ours."""
    def lines(text: str) -> list[str]:
        return [x.rstrip() for x in text.replace("\r\n", "\n").splitlines() if x.strip() and not x.startswith(_NOT_CONFIG)]
    return lines(running) != lines(startup)


def check_unsaved(name: str, running: str, startup: str | None, allowed: bool) -> None:
    if startup is not None and not allowed and unsaved(running, startup):
        raise FixError(f"{name}: its running config differs from its startup config (unsaved changes); saving ours "
                       "would save those too. Save or discard them first, or set mailflow_cisco_save_unsaved_changes: true")


def diff(name: str, text: str, p: "ciscoconf.IosPlan") -> dict[str, str]:
    """The --diff view: the touched rules' SMTP inspect lines before, and after the commands."""
    before = [i.line for i in ciscoconf.parse(text).smtp_inspections() if i.rule in p.rules]
    removed = {c[3:] for c in p.commands if c.startswith("no ")}
    after = [line for line in before if not any(line.startswith(r) for r in removed)]
    after += [c for c in p.commands if not c.startswith("no ")]
    return {"before_header": f"{name} running-config", "after_header": f"{name} running-config",
            "before": "".join(f"{line}\n" for line in before), "after": "".join(f"{line}\n" for line in after)}


def write_backup(backup_dir: str, change_id: str | None, name: str, text: str, p: "ciscoconf.IosPlan") -> str:
    """Before any line is sent: the running config (owner-only: it carries secrets) and what will be sent."""
    folder = os.path.join(backup_dir, change_id or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()), name)
    earlier = os.path.join(folder, f"{CAUSE}.json")
    if os.path.exists(earlier) and read_backup(earlier).get("state") in ROLLBACK_STATES:
        # Its restore lines are what a rollback of this change needs: never overwrite them.
        raise FixError(f"{name}: change {change_id} already changed this device ({earlier}); use a new mailflow_change_id "
                       "for a further change, or roll that one back first")
    os.makedirs(folder, exist_ok=True)
    config_path = os.path.join(folder, "running-config.cfg")
    fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    doc = {"schema": DEVICE_BACKUP_SCHEMA, "host": name, "cause": CAUSE, "change_id": change_id, "state": "planned",
           "created": time.time(), "changes": [], "device": {
               "platform": "ios", "rules": list(p.rules), "commands": list(p.commands), "restore": list(p.restore),
               "running_config": os.path.basename(config_path),
               "config_sha256": hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()}}
    path = os.path.join(folder, f"{CAUSE}.json")
    _write(path, doc)
    return path


def read_backup(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)
    if doc.get("schema") != DEVICE_BACKUP_SCHEMA or doc.get("cause") != CAUSE or "device" not in doc:
        raise FixError(f"{path}: not a {CAUSE} device backup")
    return doc


def mark(path: str, state: str, **fields) -> None:
    doc = read_backup(path)
    doc.update(state=state, **fields)
    _write(path, doc)


def _write(path: str, doc: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)
    os.replace(tmp, path)


def change_backups(backup_dir: str, change_id: str, name: str) -> list[str]:
    return sorted(glob.glob(os.path.join(backup_dir, change_id, name, f"{CAUSE}.json")))


def rollback_plan(name: str, text: str, backup: dict) -> tuple[list[str], list[str]]:
    """(lines to send, rules left alone). A rule is put back only while it still holds what the change
    set (its smtp line gone; the esmtp line there if the change added one); one changed since is left
    to its owner, as rollback.yml does for server settings."""
    if backup.get("state") not in ROLLBACK_STATES:
        return [], []
    # Holding the change's state means every restore line of the rule is still needed.
    needed = set(restore_lines(text, backup))
    send: list[str] = []
    left: list[str] = []
    for rule in backup["device"]["rules"]:
        mine = [line for line in backup["device"]["restore"] if _rule_of(line) == rule]
        (send.extend(mine) if needed.issuperset(mine) else left.append(rule))
    return send, left


def check_after(name: str, text: str, backup: dict, rules: list[str] | None, use_esmtp: bool) -> list[str]:
    """What a re-read must show: no planned line left, and esmtp on each changed rule when it was asked for."""
    problems = [f"still needs `{c}`" for c in plan(name, text, rules, use_esmtp).commands]
    if use_esmtp:
        present = {(i.rule, i.protocol) for i in ciscoconf.parse(text).smtp_inspections()}
        problems += [f"rule {r} has no esmtp inspection" for r in backup["device"]["rules"] if (r, "esmtp") not in present]
    return problems


def restore_lines(text: str, backup: dict) -> list[str]:
    """From what the device holds now, the lines back to the original: drop an esmtp line the change added
    (only if it is there: an image without esmtp refused it, and refuses its `no` too), then the original
    smtp line (only if it is gone: the failure may have come before it was removed)."""
    cfg = ciscoconf.parse(text)
    present = {(i.rule, i.protocol) for i in cfg.smtp_inspections()}
    out = []
    for line in backup["device"]["restore"]:
        rule = _rule_of(line)
        added_esmtp = line.startswith("no ") and line.endswith(" esmtp")
        if added_esmtp and (rule, "esmtp") in present:
            out.append(line)
        elif not line.startswith("no ") and (rule, "smtp") not in present:
            out.append(line)
    return out


def _rule_of(line: str) -> str | None:
    words = line.split()
    if words[:1] == ["no"]:
        words = words[1:]
    return words[3] if words[:3] == ["ip", "inspect", "name"] and len(words) > 3 else None
