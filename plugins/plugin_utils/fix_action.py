# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every fix action does: read fresh -> plan -> (check mode: stop) -> backup -> apply -> restart -> verify -> restore on failure.

Each plugins/action/fix_<cause>.py names its cause and its own arguments; the
cause module (plugins/module_utils/causes/<cause>.py) provides FIX_READS (the
knowledge items it needs), fix_params(args, facts) (validation, naming the
variable), plan(view, params) -> [Change] and optionally advice(view, params)
-> [str] for what it reports but does not change. A plan that comes back empty
after the change is what "verified" means.

A run that loses its host mid-change leaves its backup "interrupted"; the next
run starts from that backup's `before` values (the originals), so it finishes
the change or restores what was there before the first run.
"""
from __future__ import annotations

import importlib
import os
from datetime import datetime, timezone

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure
from ansible.plugins.action import ActionBase

from ansible_collections.mailflow.exchange.plugins.module_utils import backups, change, knowledge, psrunner, remediation, snapshot
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import HostView
from ansible_collections.mailflow.exchange.plugins.plugin_utils import runner_context

COMMON_ARGS = dict(
    allow_service_restart=dict(type="bool", default=False),
    change_id=dict(type="str"),
    backup_dir=dict(type="path", default="backups"),
    knowledge=dict(type="dict", default={}),
)
QUEUE_ITEMS = ("queue_exchange", "queue_iis")
REBOOT_PENDING = 3010  # ERROR_SUCCESS_REBOOT_REQUIRED (msiexec, update.exe)
REBOOTING_KINDS = ("msi_feature", "package")  # installers may ask for one (exit 3010); nothing else here does


class HostLost(Exception):
    """The connection dropped (or the output was cut) while a command ran."""


class FixAction(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True
    _supports_check_mode = True
    _supports_diff = True
    CAUSE = ""
    ARGS: dict = {}
    _runner: tuple | None = None  # (psrunner.Context, psrunner.Limits), set by _runner_for

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec={**COMMON_ARGS, **self.ARGS})
        host = task_vars.get("inventory_hostname", "")
        self._runner_for(task_vars)
        cause = importlib.import_module(f"ansible_collections.mailflow.exchange.plugins.module_utils.causes.{self.CAUSE}")
        try:
            facts = knowledge.load(args["knowledge"])
            params = cause.fix_params(args, facts)
            prior = backups.incomplete_backup(args["backup_dir"], host, self.CAUSE)
        except (remediation.FixError, knowledge.KnowledgeError) as exc:
            raise AnsibleActionFail(f"{host}: {exc}")

        reads = list(cause.FIX_READS) + [i for i in QUEUE_ITEMS if i not in cause.FIX_READS]
        try:
            view = self._read(host, facts, reads)
        except HostLost as exc:
            raise AnsibleConnectionFailure(f"{host}: {exc}")
        changes = self._plan(host, cause, view, params)
        result.update(changed=bool(changes), cause=self.CAUSE, changes=[c.describe() for c in changes],
                      restart_needed=sorted({s for c in changes for s in c.restart}),
                      reboot_possible=any(c.kind in REBOOTING_KINDS for c in changes))
        advice = list(cause.advice(view, params)) if hasattr(cause, "advice") else []
        if advice:
            result["advice"] = advice
            result.setdefault("warnings", []).extend(f"{host}: {self.CAUSE}: {a}" for a in advice)
        if prior:
            result["resumed_from"] = prior[0]
        if self._play_context.diff and changes:
            result["diff"] = remediation.diff(changes)
        if not changes:
            if prior and not self._task.check_mode:
                # The interrupted run's change is all in place: finish its record. Its restart may never have
                # happened, so it stays pending until a run that may restart does it.
                backups.update_backup(prior[0], state="verified", note="verified by a later run",
                                      pending_restart=sorted({s for c in prior[2] for s in c.restart}))
            return self._pending_restarts(result, host, args)
        if self._task.check_mode:
            return result

        carried = []  # what the interrupted run may already have applied and this plan no longer needs
        if prior:
            originals = {backups.change_key(c): c.before for c in prior[2]}
            for c in changes:
                c.before = originals.get(backups.change_key(c), c.before)
            planned = {backups.change_key(c) for c in changes}
            carried = [c for c in prior[2] if backups.change_key(c) not in planned]
        try:
            stamp = change.safe_id(args["change_id"]) if args["change_id"] else datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        except change.ChangeError as exc:
            raise AnsibleActionFail(f"{host}: {exc}")
        folder = os.path.join(args["backup_dir"], stamp, host)

        def record(state, **extra):
            # The carried changes stay in the backup so a rollback of this change still finds them.
            doc = backups.backup_document(host, self.CAUSE, stamp, changes + carried, state, **extra)
            return backups.write_backup(folder, doc)

        backup = result["backup"] = record("planned")
        if prior and os.path.abspath(prior[0]) != os.path.abspath(backup):
            backups.update_backup(prior[0], state="superseded", superseded_by=backup)
        try:
            applied, exits = self._apply(host, changes, prior)
        except HostLost as exc:
            record("interrupted", interrupted="during apply: not known which changes were applied")
            return self._lost(result, host, backup, f"lost the connection while applying ({exc}); not known which of "
                              f"{len(changes)} change(s) were applied")
        record("applied")
        if REBOOT_PENDING in exits:
            result["pending_reboot"] = True
            result.setdefault("warnings", []).append(f"{host}: {self.CAUSE}: a reboot is pending to complete the change")

        restart = sorted({s for c in changes + carried for s in c.restart})
        restart_ops = []
        if restart and args["allow_service_restart"]:
            # The restart runs first in the verifying read's own command: one round trip, not two.
            restart_ops = [psrunner.Op("service_control", (name, "restart", remediation.SERVICE_WAIT_SECONDS)) for name in restart]
            result["restarted"] = restart
        elif restart:
            result["pending_restart"] = restart
            result.setdefault("warnings", []).append(
                f"{host}: pending restart of {', '.join(restart)} for {self.CAUSE} to take effect (mailflow_allow_service_restart is false)")

        try:
            after, restarts = self._read(host, facts, reads, before=restart_ops, with_before=True)
        except HostLost as exc:
            record("interrupted", interrupted="after apply: applied, not verified")
            return self._lost(result, host, backup, f"lost the connection after applying, before verifying ({exc})")
        left = self._plan(host, cause, after, params)
        result.update(queue_before=_queued(view), queue_after=_queued(after))
        if left or not applied:
            what = "; ".join(c.describe() for c in left) or "the change was not applied"
            # A service restarted for the change restarts again after the undo, so it runs with the old values too.
            undo = remediation.restore_plan(changes)
            try:
                results = self._run_ops(host, undo + list(restart_ops)) if undo else []
            except HostLost as exc:
                record("interrupted", interrupted="during the restore after a failed verification")
                return self._lost(result, host, backup, f"verification failed ({what}) and the connection was lost while "
                                  f"restoring ({exc})")
            failed_undo = [op for op, r in zip(undo, results) if _failed(r)]
            failed_restart = [op.args[0] for op, r in zip(restart_ops, results[len(undo):]) if _failed(r)]
            if failed_restart:
                result.setdefault("warnings", []).append(f"{host}: restarting {', '.join(failed_restart)} after the restore failed")
            kept = [c.describe() for c in changes if not c.reversible]
            also = f"; not reversible on the host, left as applied: {', '.join(kept)}" if kept else ""
            if failed_undo:
                record("restore_failed", restore_failed=[f"{op.name} {op.args[:2]}" for op in failed_undo])
                raise AnsibleActionFail(f"{host}: {self.CAUSE}: verification failed ({what}) and the restore FAILED for "
                                        f"{len(failed_undo)} operation(s) ({', '.join(op.name for op in failed_undo)}): the host "
                                        f"needs an admin; the prior values are in {backup}{also}")
            if not undo:
                record("not_restored")
                raise AnsibleActionFail(f"{host}: {self.CAUSE}: verification failed ({what}); nothing to restore: the change "
                                        f"cannot be undone on the host{also}; the backup {backup} records it")
            record("restored")
            raise AnsibleActionFail(f"{host}: {self.CAUSE}: verification failed ({what}); restored from the backup {backup}{also}")
        bad_restarts = [name for name, r in zip(restart, restarts) if _failed(r)]
        if bad_restarts:
            record("verified", pending_restart=bad_restarts, restart_failed=bad_restarts)
            raise AnsibleActionFail(f"{host}: {self.CAUSE}: the change is verified, but restarting {', '.join(bad_restarts)} failed; "
                                    f"check the service (backup {backup})")
        record("verified", pending_restart=result.get("pending_restart", []))
        if restart_ops:  # this restart also completes what earlier runs left pending
            for path, doc in backups.pending_restarts(args["backup_dir"], host, self.CAUSE):
                if os.path.abspath(path) != os.path.abspath(backup):
                    backups.update_backup(path, pending_restart=[s for s in doc["pending_restart"] if s not in restart])
        result["verified"] = True
        return result

    def _plan(self, host, cause, view, params):
        try:
            return cause.plan(view, params)
        except remediation.FixError as exc:  # e.g. the host's metabase or AD could not be read
            raise AnsibleActionFail(f"{host}: {self.CAUSE}: {exc}")

    def _lost(self, result, host, backup, why):
        result.update(failed=True, interrupted=True, unreachable=False,
                      msg=f"{host}: {self.CAUSE}: {why}. The backup {backup} is kept; the next run finishes or restores it.")
        return result

    def _pending_restarts(self, result, host, args):
        """Nothing to change: complete a restart an earlier run left pending, when now allowed."""
        pending = backups.pending_restarts(args["backup_dir"], host, self.CAUSE)
        services = sorted({s for _, doc in pending for s in doc["pending_restart"]})
        if not services:
            return result
        if not args["allow_service_restart"] or self._task.check_mode:
            result["pending_restart"] = services
            result["changed"] = bool(args["allow_service_restart"])  # check mode: it would restart
            return result
        ops = [psrunner.Op("service_control", (s, "restart", remediation.SERVICE_WAIT_SECONDS)) for s in services]
        try:
            failed = [s for s, r in zip(services, self._run_ops(host, ops)) if _failed(r)]
        except HostLost as exc:
            raise AnsibleConnectionFailure(f"{host}: lost the connection while restarting {', '.join(services)} ({exc})")
        if failed:
            raise AnsibleActionFail(f"{host}: {self.CAUSE}: could not restart {', '.join(failed)}")
        for path, _ in pending:
            backups.update_backup(path, pending_restart=[], restarted=services)
        result.update(changed=True, restarted=services)
        return result

    # -- the host side: one command each

    def _runner_for(self, task_vars):
        """The request context (AD credentials, WMI timeout) and command limits from the host's variables."""
        self._runner = (runner_context.context(self, task_vars), runner_context.limits(self, task_vars))

    def _run_ops(self, host, ops):
        ctx, limits = self._runner or (psrunner.Context(), psrunner.Limits())
        try:
            return psrunner.run(runner_context.executor(self), ops, ctx, limits)
        except (AnsibleConnectionFailure, OSError) as exc:  # requests' ConnectionError is an OSError
            raise HostLost(str(exc).splitlines()[0][:300])
        except psrunner.RunnerError as exc:
            res = exc.response
            if res is not None and (res.get("rc") not in (0, None) or not res.get("stdout")):
                raise HostLost(f"{exc} (rc={res.get('rc')})")
            raise AnsibleActionFail(f"{host}: {exc}" + (f" (rc={res.get('rc')})" if res is not None else ""))

    def _read(self, host, facts, items, before=(), with_before=False):
        """A fresh read of `items` in one command, after the operations in `before` (e.g. a service restart)."""
        _, results, after = self._read_around(host, facts, items, before, read_first=False)
        return (after, results) if with_before else after

    def _read_around(self, host, facts, items, ops, read_first=True):
        """One command: [a read of `items`,] the operations `ops`, a read of `items` again.
        (view before or None, the results of `ops`, view after)."""
        subset = {"collect": {k: facts["collect"][k] for k in items}, "probe": facts["probe"]}
        plan = snapshot.build_plan(subset, [], helo=host, domain=host)
        reads = [op for _, op in plan]
        first = reads if read_first else []
        results = self._run_ops(host, first + list(ops) + reads)
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

        def view(part):
            return HostView(snapshot.assemble(host, plan, part, collected_at=now, duration_ms=0,
                                              transport={"ad_bind": runner_context.ad_bind((self._runner or (psrunner.Context(),))[0])}))
        n, m = len(first), len(first) + len(ops)
        return (view(results[:n]) if read_first else None), results[n:m], view(results[m:])

    def _apply(self, host, changes, prior) -> tuple[bool, set[int]]:
        """Apply every change in one command; record what each replaced. (all ok?, exit codes of programs run)"""
        ops, owners = [], []
        for c in changes:
            for op in c.apply_ops():
                ops.append(op)
                owners.append(c)
        results = self._run_ops(host, ops)
        ok, exits = True, set()
        originals = {backups.change_key(c) for c in prior[2]} if prior else set()
        for c, res in zip(owners, results):
            if backups.change_key(c) not in originals:  # a resumed change keeps the first run's `before`
                remediation.record_prev(c, res.rows)
            exits.update(int(r["code"]) for k, r in res.rows if k == "exit" and isinstance(r.get("code"), int))
            if _failed(res):
                ok = False
        return ok, exits


def _failed(res) -> bool:
    """An operation that threw or reported failure; a service it could not find counts (a registry key already
    gone does not: a restore that finds nothing to delete has nothing to put back)."""
    missing_service = res.op.name == "service_control" and res.first("missing") is not None
    return res.error is not None or res.first("failed") is not None or missing_service


def _queued(view: HostView) -> int | None:
    total, seen = 0, False
    for item in QUEUE_ITEMS:
        listing = view.items.get(item)
        if listing:
            seen = True
            total += listing.get("truncated_total") or len(listing.get("files") or [])
    return total if seen else None
