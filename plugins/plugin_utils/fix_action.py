# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every fix action does: read fresh -> plan -> (check mode: stop) -> backup -> apply -> restart -> verify -> restore on failure.

Each plugins/action/fix_<cause>.py names its cause and its own arguments; the
cause module (plugins/module_utils/causes/<cause>.py) provides FIX_READS (the
knowledge items it needs), fix_params(args) (validation, naming the variable)
and plan(view, params) -> [Change]. A plan that comes back empty after the
change is what "verified" means.
"""
from __future__ import annotations

import importlib
import os
from datetime import datetime, timezone

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.mailflow.exchange.plugins.module_utils import knowledge, psrunner, remediation, snapshot
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import HostView

COMMON_ARGS = dict(
    allow_service_restart=dict(type="bool", default=False),
    change_id=dict(type="str"),
    backup_dir=dict(type="path", default="backups"),
    knowledge=dict(type="dict", default={}),
)
QUEUE_ITEMS = ("queue_exchange", "queue_iis")


class FixAction(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True
    _supports_check_mode = True
    _supports_diff = True
    CAUSE = ""
    ARGS: dict = {}

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec={**COMMON_ARGS, **self.ARGS})
        host = task_vars.get("inventory_hostname", "")
        cause = importlib.import_module(f"ansible_collections.mailflow.exchange.plugins.module_utils.causes.{self.CAUSE}")
        try:
            facts = knowledge.load(args["knowledge"])
            params = cause.fix_params(args, facts)
        except (remediation.FixError, knowledge.KnowledgeError) as exc:
            raise AnsibleActionFail(f"{host}: {exc}")

        reads = list(cause.FIX_READS) + [i for i in QUEUE_ITEMS if i not in cause.FIX_READS]
        view = self._read(host, facts, reads)
        changes = cause.plan(view, params)
        result.update(changed=bool(changes), cause=self.CAUSE, changes=[c.describe() for c in changes])
        if self._play_context.diff and changes:
            result["diff"] = remediation.diff(changes)
        if not changes or self._task.check_mode:
            return result

        stamp = args["change_id"] or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        folder = os.path.join(args["backup_dir"], stamp, host)
        backup = remediation.write_backup(folder, remediation.backup_document(host, self.CAUSE, stamp, changes, "planned"))
        result["backup"] = backup
        applied = self._apply(host, changes)
        remediation.write_backup(folder, remediation.backup_document(host, self.CAUSE, stamp, changes, "applied"))

        restart = sorted({s for c in changes for s in c.restart})
        queue_before = _queued(view)
        restart_ops = []
        if restart and args["allow_service_restart"]:
            # The restart runs first in the verifying read's own command: one round trip, not two.
            restart_ops = [psrunner.Op("service_control", (name, "restart", remediation.SERVICE_WAIT_SECONDS)) for name in restart]
            result["restarted"] = restart
        elif restart:
            result["pending_restart"] = restart
            result.setdefault("warnings", []).append(
                f"{host}: pending restart of {', '.join(restart)} for {self.CAUSE} to take effect (mailflow_allow_service_restart is false)")

        after = self._read(host, facts, reads, before=restart_ops)
        left = cause.plan(after, params)
        result.update(queue_before=queue_before, queue_after=_queued(after))
        if left or not applied:
            self._run_ops(host, remediation.restore_plan(changes))
            remediation.write_backup(folder, remediation.backup_document(host, self.CAUSE, stamp, changes, "restored"))
            what = "; ".join(c.describe() for c in left) or "the change was not applied"
            raise AnsibleActionFail(f"{host}: {self.CAUSE}: verification failed ({what}); restored from the backup {backup}")
        remediation.write_backup(folder, remediation.backup_document(host, self.CAUSE, stamp, changes, "verified"))
        result["verified"] = True
        return result

    # -- the host side: one command each

    def _run_ops(self, host, ops):
        cmd = psrunner.command_line()
        res = self._low_level_execute_command(cmd, in_data=psrunner.stdin_payload(ops), sudoable=False)
        try:
            return psrunner.decode_output(res.get("stdout", ""), ops)
        except psrunner.RunnerError as exc:
            raise AnsibleActionFail(f"{host}: {exc} (rc={res.get('rc')})")

    def _read(self, host, facts, items, before=()) -> HostView:
        """A fresh read of `items` in one command, after the operations in `before` (e.g. a service restart)."""
        subset = {"collect": {k: facts["collect"][k] for k in items}, "probe": facts["probe"]}
        plan = snapshot.build_plan(subset, [], helo=host, domain=host)
        results = self._run_ops(host, list(before) + [op for _, op in plan])[len(before):]
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        snap = snapshot.assemble(host, host.split(".")[0].upper(), plan, results, collected_at=now, duration_ms=0, transport={})
        return HostView(snap)

    def _apply(self, host, changes) -> bool:
        """Apply every change in one command; record what each replaced. False when any operation failed."""
        ops, owners = [], []
        for c in changes:
            for op in c.apply_ops():
                ops.append(op)
                owners.append(c)
        results = self._run_ops(host, ops)
        ok = True
        for c, res in zip(owners, results):
            remediation.record_prev(c, res.rows)
            if res.error is not None or res.first("failed") is not None:
                ok = False
        return ok


def _queued(view: HostView) -> int | None:
    total, seen = 0, False
    for item in QUEUE_ITEMS:
        listing = view.items.get(item)
        if listing:
            seen = True
            total += listing.get("truncated_total") or len(listing.get("files") or [])
    return total if seen else None
