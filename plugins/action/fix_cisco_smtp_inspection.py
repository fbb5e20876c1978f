# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decisions of the IOS SMTP-inspection fix; the role does the device I/O (see plugins/modules/fix_cisco_smtp_inspection.py)."""
from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.mailflow.exchange.plugins.module_utils import cisco_fix, hostlock
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import FixError

STEPS = ("plan", "sending", "verify", "restore_plan", "restored", "restore_failed", "pending", "rollback", "rolled_back")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=dict(
            step=dict(type="str", required=True, choices=list(STEPS)),
            config=dict(type="str", no_log=True),
            startup_config=dict(type="str", no_log=True),
            save_unsaved_changes=dict(type="bool", default=False),
            rules=dict(type="list", elements="str"),
            use_esmtp=dict(type="bool", default=False),
            change_id=dict(type="str"),
            backup_dir=dict(type="path", default="backups"),
            backup=dict(type="path"),
            backups=dict(type="list", elements="path", default=[]),
            error=dict(type="str"),
        ))
        name = task_vars.get("inventory_hostname", "?")
        try:
            if args["step"] in ("plan", "rollback") and not self._task.check_mode:
                # One run at a time changes a device (and its backups), as for the servers.
                hostlock.hold(args["backup_dir"], name, what=f"{cisco_fix.CAUSE} {args['step']}")
            result.update(getattr(self, f"_{args['step']}")(name, args))
        except (FixError, hostlock.HostBusy) as exc:
            raise AnsibleActionFail(f"{name}: {exc}" if isinstance(exc, hostlock.HostBusy) else str(exc))
        return result

    def _need(self, args, *keys):
        for key in keys:
            if args.get(key) in (None, ""):
                raise FixError(f"step {args['step']} needs {key}")

    def _plan(self, name, args):
        self._need(args, "config")
        p = cisco_fix.plan(name, args["config"], args["rules"], args["use_esmtp"])
        if p.commands:
            cisco_fix.check_unsaved(name, args["config"], args["startup_config"], args["save_unsaved_changes"])
        out = {"changed": bool(p.commands), "commands": list(p.commands), "changes": list(p.commands), "restore": list(p.restore), "rules": list(p.rules)}
        if not p.commands:
            return out | {"msg": f"{name}: no IOS rule inspects SMTP"}
        if self._task.diff:
            out["diff"] = cisco_fix.diff(name, args["config"], p)
        if not self._task.check_mode:
            out["backup"] = cisco_fix.write_backup(args["backup_dir"], args["change_id"], name, args["config"], p)
        return out

    def _sending(self, name, args):
        self._need(args, "backup")
        cisco_fix.mark(args["backup"], "applied")  # from here on the device may hold the lines
        return {"changed": False}

    def _verify(self, name, args):
        self._need(args, "config", "backup")
        problems = cisco_fix.check_after(name, args["config"], cisco_fix.read_backup(args["backup"]), args["rules"], args["use_esmtp"])
        if problems:
            raise FixError(f"{name}: after the change its running config {'; '.join(problems)}")
        cisco_fix.mark(args["backup"], "verified")
        return {"changed": False, "verified": True}

    def _restore_plan(self, name, args):
        self._need(args, "config", "backup")
        return {"changed": False, "commands": cisco_fix.restore_lines(args["config"], cisco_fix.read_backup(args["backup"]))}

    def _restored(self, name, args):
        self._need(args, "backup")
        cisco_fix.mark(args["backup"], "restored", error=args["error"])
        return {"changed": False}

    def _restore_failed(self, name, args):
        self._need(args, "backup")
        cisco_fix.mark(args["backup"], "restore_failed", error=args["error"])
        return {"changed": False}

    def _pending(self, name, args):
        """Backups of the change that a rollback would act on (none: the device is not contacted)."""
        self._need(args, "change_id")
        paths = [p for p in cisco_fix.change_backups(args["backup_dir"], args["change_id"], name)
                 if cisco_fix.read_backup(p).get("state") in cisco_fix.ROLLBACK_STATES]
        return {"changed": False, "backups": paths}

    def _rollback(self, name, args):
        self._need(args, "config", "change_id")
        send, left, used = [], [], []
        for path in cisco_fix.change_backups(args["backup_dir"], args["change_id"], name):
            lines, changed_since = cisco_fix.rollback_plan(name, args["config"], cisco_fix.read_backup(path))
            send += lines
            left += changed_since
            if lines:
                used.append(path)
        return {"changed": bool(send), "commands": send, "changed_since": left, "backups": used}

    def _rolled_back(self, name, args):
        for path in args["backups"]:
            cisco_fix.mark(path, "rolled_back")
        return {"changed": False}
