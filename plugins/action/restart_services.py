# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restart services once for several fixes, counting the queued mail around it (see plugins/modules/restart_services.py)."""
from __future__ import annotations

from ansible.errors import AnsibleActionFail

from ansible_collections.mailflow.exchange.plugins.module_utils import backups, knowledge, psrunner, remediation
from ansible_collections.mailflow.exchange.plugins.plugin_utils.fix_action import QUEUE_ITEMS, FixAction, HostLost, _failed, _queued


class ActionModule(FixAction):
    """Not a fix: it borrows FixAction's one-command reads and host-loss handling."""

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(FixAction, self).run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=dict(
            services=dict(type="list", elements="str", default=[]),
            backup_dir=dict(type="path", default="backups"),
            knowledge=dict(type="dict", default={}),
        ))
        host = task_vars.get("inventory_hostname", "")
        self._runner_for(task_vars)
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
        # One command: queue count, restarts, queue count again.
        restart_ops = [psrunner.Op("service_control", (s, "restart", remediation.SERVICE_WAIT_SECONDS)) for s in services]
        try:
            before, results, after = self._read_around(host, facts, list(QUEUE_ITEMS), restart_ops)
        except HostLost as exc:
            return self._lost(result, host, "(no backup: a restart changes no setting)", f"lost the connection around the restart ({exc})")
        failed = [s for s, r in zip(services, results) if _failed(r)]
        result.update(changed=True, restarted=[s for s in services if s not in failed],
                      queue_before=_queued(before), queue_after=_queued(after))
        # The restart completes what the fixes left pending.
        for cause in backups.causes_with_backups(args["backup_dir"], host):
            for path, doc in backups.pending_restarts(args["backup_dir"], host, cause):
                backups.update_backup(path, pending_restart=[s for s in doc["pending_restart"] if s not in result["restarted"]])
        if failed:
            result.update(failed=True, msg=f"{host}: restarting {', '.join(failed)} failed")
        elif result["queue_before"] is not None and result["queue_after"] is not None and result["queue_after"] < result["queue_before"]:
            # SMTP may have delivered some meanwhile; a drop is worth a look, not a failure.
            result.setdefault("warnings", []).append(
                f"{host}: {result['queue_before']} queued message(s) before the restart, {result['queue_after']} after")
        return result
