# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restart services once for several fixes, counting the queued mail around it (see plugins/modules/restart_services.py)."""
from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.mailflow.exchange.plugins.module_utils import backups, hostlock, knowledge
from ansible_collections.mailflow.exchange.plugins.plugin_utils.fix_lifecycle import QUEUE_ITEMS, failed, queued, restart_operations
from ansible_collections.mailflow.exchange.plugins.plugin_utils.host_session import HostLost, HostSession


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=dict(
            services=dict(type="list", elements="str", default=[]),
            backup_dir=dict(type="path", default="backups"),
            knowledge=dict(type="dict", default={}),
            lock_wait=dict(type="int", default=0),
        ))
        host = task_vars.get("inventory_hostname", "")
        services = sorted(set(args["services"]))
        result.update(changed=False, services=services)
        if not services:
            return result
        if self._task.check_mode:
            result.update(changed=True, msg=f"would restart {', '.join(services)}")
            return result
        try:
            facts = knowledge.load(args["knowledge"])
        except knowledge.KnowledgeError as exc:
            raise AnsibleActionFail(f"{host}: mailflow_knowledge: {exc}")
        try:
            hostlock.hold(args["backup_dir"], host, wait=args["lock_wait"], what=f"restart {', '.join(services)}")
        except hostlock.HostBusy as exc:
            raise AnsibleActionFail(f"{host}: not restarted: {exc}") from exc
        # One command: queue count, restarts, queue count again.
        try:
            before, results, after = HostSession(self, host, task_vars).read_around(facts, list(QUEUE_ITEMS), restart_operations(services))
        except HostLost as exc:
            # Not known whether the services came back: a restart changes no setting, so there is no backup to keep.
            result.update(failed=True, interrupted=True, unreachable=False,
                          msg=f"{host}: lost the connection while restarting {', '.join(services)} ({exc}); check the services")
            return result
        bad = [s for s, r in zip(services, results) if failed(r)]
        result.update(changed=True, restarted=[s for s in services if s not in bad],
                      queue_before=queued(before), queue_after=queued(after))
        # The restart completes what the fixes left pending.
        for cause in backups.causes_with_backups(args["backup_dir"], host):
            for path, doc in backups.pending_restarts(args["backup_dir"], host, cause):
                backups.update_backup(path, pending_restart=[s for s in doc["pending_restart"] if s not in result["restarted"]])
        if bad:
            result.update(failed=True, msg=f"{host}: restarting {', '.join(bad)} failed")
        elif result["queue_before"] is not None and result["queue_after"] is not None and result["queue_after"] < result["queue_before"]:
            # SMTP may have delivered some meanwhile; a drop is worth a look, not a failure.
            result.setdefault("warnings", []).append(
                f"{host}: {result['queue_before']} queued message(s) before the restart, {result['queue_after']} after")
        return result
