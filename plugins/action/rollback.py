# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Roll a change back from its backups (see plugins/modules/rollback.py and plugins/module_utils/rollback.py).

Per host: one read of every value the change set, a decision per value (restore only where the host still holds
the change's value), one command restoring them (last applied first), one verifying read; then each backup says
what was restored and what was left, and the change record gets a `rollback` event per cause.
"""
from __future__ import annotations

import glob
import os
from datetime import datetime, timezone

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure
from ansible.plugins.action import ActionBase

from ansible_collections.mailflow.exchange.plugins.module_utils import backups, change, hostlock, knowledge, remediation
from ansible_collections.mailflow.exchange.plugins.module_utils import rollback as rb
from ansible_collections.mailflow.exchange.plugins.plugin_utils.fix_lifecycle import failed as _failed, restart_operations
from ansible_collections.mailflow.exchange.plugins.plugin_utils.host_session import HostLost, HostSession

ARGS = dict(
    stage=dict(type="str", choices=["check", "host", "summary"], default="host"),
    change_id=dict(type="str"),
    change_id_pattern=dict(type="str", default=r"^CHG\d+$"),
    backup_dir=dict(type="path", default="backups"),
    record_root=dict(type="path", default="reports"),
    allow_service_restart=dict(type="bool", default=False),
    knowledge=dict(type="dict", default={}),
    hosts=dict(type="list", elements="str", default=[]),
    lock_wait=dict(type="int", default=0),
)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=ARGS)
        try:
            # The pattern is checked once, before any host (stage check); a host only needs an id that names a folder.
            args["change_id"] = change.check_change_id(args["change_id"], args["change_id_pattern"]) \
                if args["stage"] == "check" else change.safe_id(args["change_id"])
        except change.ChangeError as exc:
            raise AnsibleActionFail(str(exc))
        stage = {"check": self._check, "summary": self._summary}.get(args["stage"], self._host)
        return stage(result, args, task_vars)

    def _record(self, args, event):
        if not self._task.check_mode:  # check mode reports only
            change.append(args["record_root"], args["change_id"], event)

    # -- stage check: on the controller, before any host is contacted

    def _check(self, result, args, task_vars):
        folder = os.path.join(args["backup_dir"], args["change_id"])
        if not os.path.isdir(folder):
            raise AnsibleActionFail(f"no backups of mailflow_change_id={args['change_id']} in {folder} "
                                    f"(mailflow_backup_dir={args['backup_dir']}): nothing to roll back")
        found = sorted(d for d in os.listdir(folder) if glob.glob(os.path.join(folder, d, "*.json")))
        in_play = {h.lower(): h for h in args["hosts"]}
        inventory = {h.lower() for h in task_vars.get("groups", {}).get("all", [])}
        result.update(changed=False, hosts=[in_play[h.lower()] for h in found if h.lower() in in_play],
                      not_in_inventory=[h for h in found if h.lower() not in inventory])
        if result["not_in_inventory"]:
            result["warnings"] = [f"backups of {args['change_id']} for hosts not in the inventory, not rolled back: "
                                  f"{', '.join(result['not_in_inventory'])}"]
        self._record(args, {"type": "run_started", "playbook": "rollback.yml", "check_mode": bool(self._task.check_mode)})
        return result

    # -- stage summary: on the controller, after every host

    def _summary(self, result, args, task_vars):
        hostvars = task_vars.get("hostvars", {})
        table, done, not_reached = [], [], []
        for host in args["hosts"]:
            r = hostvars.get(host, {}).get("mailflow_rollback")
            if not isinstance(r, dict) or r.get("skipped"):
                continue
            if r.get("unreachable") or r.get("failed"):
                not_reached.append(host)
                table.append(f"{host}: FAILED: {r.get('msg', 'unreachable' if r.get('unreachable') else 'failed')}")
            else:
                done.append(host)
            for cause, s in sorted((r.get("causes") or {}).items()):
                if s.get("skipped"):
                    table.append(f"{host} {cause}: {s['skipped']}")
                    continue
                counts = ", ".join(f"{k.replace('_', ' ')} {len(s.get(k) or [])}"
                                   for k in ("restored", "already", "changed_since", "not_reversible", "unread"))
                table.append(f"{host} {cause}: {counts}")
                table += [f"  changed since: {x}" for x in s.get("changed_since") or []]
                table += [f"  not read: {x}" for x in s.get("unread") or []]
        self._record(args, {"type": "run_finished", "done": done, "not_reached": not_reached})
        result.update(changed=False, table=table or [f"nothing of {args['change_id']} to roll back on these hosts"],
                      done=done, not_reached=not_reached)
        return result

    # -- stage host: the rollback of one host

    def _host(self, result, args, task_vars):
        host = task_vars.get("inventory_hostname", "")
        folder = os.path.join(args["backup_dir"], args["change_id"], host)
        if not self._task.check_mode:
            try:  # the run that changed the host may still be at it (or a second rollback)
                hostlock.hold(args["backup_dir"], host, wait=args["lock_wait"], what=f"rollback {args['change_id']}")
            except hostlock.HostBusy as exc:
                raise AnsibleActionFail(f"{host}: not rolled back: {exc}") from exc
        try:
            facts = knowledge.load(args["knowledge"])
            docs = [(p, *backups.read_backup(p)) for p in sorted(glob.glob(os.path.join(folder, "*.json")))]
        except (knowledge.KnowledgeError, remediation.FixError, ValueError) as exc:
            raise AnsibleActionFail(f"{host}: {exc}")
        rollbacks = rb.load(docs)
        items = rb.to_decide(rollbacks)
        ops, slots = rb.read_request(items, facts)
        session = HostSession(self, host, task_vars)
        try:
            results = session.run(ops) if ops else []
        except HostLost as exc:
            raise AnsibleConnectionFailure(f"{host}: {exc}")
        rb.decide_all(items, rb.currents(items, results, slots))

        todo = rb.restore_ops(rollbacks)
        restart = rb.restarts(rollbacks)
        result.update(changed=bool(todo), change_id=args["change_id"], causes=self._causes(rollbacks))
        result.update({k: sum(len(cr.of(k)) for cr in rollbacks) for k in (rb.ALREADY, rb.CHANGED_SINCE, rb.NOT_REVERSIBLE, rb.UNREAD)})
        result["restored"] = sum(len(cr.of(rb.RESTORE)) for cr in rollbacks)  # in check mode: would restore
        if self._task.check_mode:
            if restart:
                result["pending_restart" if not args["allow_service_restart"] else "would_restart"] = restart
            return self._unread(result, host, rollbacks)
        unsettled = [cr for cr in rollbacks if not cr.settled]
        if not todo:
            self._finish(args, host, unsettled, {}, [], [])
            return self._unread(result, host, rollbacks)

        restart_ops = restart_operations(restart) if args["allow_service_restart"] else []
        try:
            done = session.run([op for _unused, op in todo] + restart_ops)
        except HostLost as exc:
            return self._lost(result, args, host, unsettled, f"lost the connection while restoring ({exc}); not known which "
                              f"of {len(todo)} operation(s) ran; run the rollback again: it restores only what still holds "
                              f"the change's value")
        failed_ops = {id(item): f"{op.name} {op.args[:2]} failed" for (item, op), r in zip(todo, done) if _failed(r)}
        bad_restarts = [s for s, r in zip(restart, done[len(todo):]) if _failed(r)]
        restored = [i for cr in rollbacks for i in cr.of(rb.RESTORE)]
        ops, slots = rb.read_request(restored, facts)
        try:
            after = session.run(ops)
        except HostLost as exc:
            return self._lost(result, args, host, unsettled, f"lost the connection after restoring, before verifying ({exc}); "
                              f"run the rollback again to verify")
        failed = {id(item): why for item, why in rb.not_back(restored, rb.currents(restored, after, slots))}
        for key, why in failed_ops.items():
            failed[key] = f"{failed[key]} ({why})" if key in failed else why
        pending = bad_restarts if args["allow_service_restart"] else restart  # a restart that failed is still needed
        if restart_ops:
            result["restarted"] = [s for s in restart if s not in bad_restarts]
        if pending:
            result["pending_restart"] = pending
        if pending and not bad_restarts:
            result.setdefault("warnings", []).append(f"{host}: pending restart of {', '.join(pending)} for the restored values "
                                                     f"to take effect (mailflow_allow_service_restart is false)")
        self._finish(args, host, unsettled, failed, pending, result.get("restarted", []))
        problems = list(failed.values()) + [f"restarting {s} failed" for s in bad_restarts]
        if problems:
            result.update(failed=True, msg=f"{host}: rollback of {args['change_id']}: not back as before: {'; '.join(problems)}; "
                                           f"the backups in {folder} keep the prior values")
            return result
        result["verified"] = True
        return self._unread(result, host, rollbacks)

    @staticmethod
    def _causes(rollbacks) -> dict:
        out = {}
        for cr in rollbacks:
            entry = {"backup": cr.path, "state": cr.doc.get("state")}
            entry.update({"skipped": cr.settled} if cr.settled else cr.summary())
            out[cr.cause] = entry
        return out

    def _finish(self, args, host, unsettled, failed, pending, restarted):
        """Each backup says what this rollback did; the change record gets one event per backup."""
        now = _now()
        for cr in unsettled:
            mine = [why for i in cr.items for key, why in failed.items() if key == id(i)]
            backups.update_backup(cr.path, **rb.outcome(cr, mine, now, pending, restarted))
            self._record(args, rb.event(host, cr, mine))

    def _lost(self, result, args, host, unsettled, why):
        for cr in unsettled:  # the state is left as it was: a re-run decides again from what the host then holds
            backups.update_backup(cr.path, rollback_interrupted=f"{_now()}: {why}")
            self._record(args, rb.event(host, cr, [why], reason=why))
        result.update(failed=True, interrupted=True, unreachable=False, msg=f"{host}: rollback of {args['change_id']}: {why}")
        return result

    @staticmethod
    def _unread(result, host, rollbacks):
        unread = [f"{cr.cause}: {d}" for cr in rollbacks for d in cr.summary()[rb.UNREAD]]
        if unread:
            result.update(failed=True, msg=f"{host}: could not read, so did not roll back: {'; '.join(unread)}")
        return result
