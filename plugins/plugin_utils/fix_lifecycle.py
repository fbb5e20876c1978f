# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The life of one fix on one host: read -> plan -> (check mode stops) -> backup -> apply -> verify -> restore.

The cause module (plugins/module_utils/causes/<cause>.py) supplies FIX_READS
(or fix_reads(facts)), fix_params(args, facts) (validation, naming the
variable), plan(view, params) -> [Change], and optionally advice(view, params)
and follow_up_reads(view, facts) with FOLLOW_UP_ITEM (a second read whose
items only the first one can name). A plan that comes back empty after the change is what "verified" means.

A run that loses its host mid-change leaves its backup "interrupted"; the next
run starts from that backup's `before` values (the originals), so it finishes
the change or restores what was there before the first run.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ansible.errors import AnsibleActionFail

from ansible_collections.mailflow.exchange.plugins.module_utils import backups, change, psrunner, remediation, snapshot
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import HostView
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import Change
from ansible_collections.mailflow.exchange.plugins.plugin_utils.host_session import HostLost, HostSession

QUEUE_ITEMS = ("queue_exchange", "queue_iis")
REBOOT_PENDING = 3010  # ERROR_SUCCESS_REBOOT_REQUIRED (msiexec, update.exe)
REBOOTING_KINDS = ("msi_feature", "package")  # installers may ask for one (exit 3010); nothing else here does


@dataclass
class FixOptions:
    """What the play decides for this run (the lifecycle's common arguments)."""
    host: str
    cause: str
    backup_dir: str
    change_id: str | None = None
    allow_service_restart: bool = False
    check_mode: bool = False
    diff: bool = False


@dataclass
class Prior:
    """The backup an earlier run of this fix left unfinished: its `before` values are the host's originals."""
    path: str
    doc: dict
    changes: list[Change]

    @property
    def originals(self) -> dict:
        return {backups.change_key(c): c.before for c in self.changes}

    @property
    def restart(self) -> list[str]:
        return sorted({s for c in self.changes for s in c.restart})


@dataclass
class Applied:
    ok: bool                                  # every operation reported success
    exits: set = field(default_factory=set)   # exit codes of the programs it ran


class BackupFile:
    """This run's backup, rewritten as the change moves on (planned -> applied -> verified | restored | ...)."""

    def __init__(self, opts: FixOptions, changes: list[Change], carried: list[Change]):
        try:
            self.stamp = change.safe_id(opts.change_id) if opts.change_id else datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        except change.ChangeError as exc:
            raise AnsibleActionFail(f"{opts.host}: {exc}") from exc
        self.folder = os.path.join(opts.backup_dir, self.stamp, opts.host)
        self.opts, self.changes, self.carried = opts, changes, carried
        self.path: str | None = None
        self.originals: set[str] = set()  # change keys whose `before` an earlier run of this change recorded

    def adopt_earlier(self) -> None:
        """A run of the same change id before this one (say, a re-run after someone put the old value back) already
        recorded the host's original values: they stay the originals, and what it changed that this plan does not
        touch stays in the backup, so a rollback still finds it."""
        path = os.path.join(self.folder, f"{self.opts.cause}.json")
        if not os.path.exists(path):
            return
        doc, earlier = backups.read_backup(path)
        if doc.get("state") == "rolled_back":
            return  # the host was put back to the originals: this is a new change of the same id
        planned = {backups.change_key(c): c for c in self.changes + self.carried}
        for c in earlier:
            key = backups.change_key(c)
            if key in planned:
                planned[key].before = c.before
            else:
                self.carried.append(c)
            self.originals.add(key)

    def write(self, state: str, **extra) -> str:
        # The carried changes stay in the backup so a rollback of this change still finds them.
        doc = backups.backup_document(self.opts.host, self.opts.cause, self.stamp, self.changes + self.carried, state, **extra)
        self.path = backups.write_backup(self.folder, doc)
        return self.path


class FixRun:
    def __init__(self, cause, session: HostSession, facts: dict, params: dict, opts: FixOptions):
        self.cause, self.session, self.facts, self.params, self.opts = cause, session, facts, params, opts
        self.host = opts.host

    # -- the steps, in order

    def run(self) -> dict:
        prior = self.prior()
        view = self.read().view
        changes = self.plan(view)
        result = self.describe(view, changes, prior)
        if not changes:
            return self.settle(result, prior)
        if self.opts.check_mode:
            return result
        carried = self.resume(changes, prior)
        backup = BackupFile(self.opts, changes, carried)
        backup.adopt_earlier()
        result["backup"] = backup.write("planned")
        if prior and os.path.abspath(prior.path) != os.path.abspath(backup.path):
            backups.update_backup(prior.path, state="superseded", superseded_by=backup.path)
        try:
            applied = self.apply(changes, set(prior.originals if prior else ()) | backup.originals)
        except HostLost as exc:
            backup.write("interrupted", interrupted="during apply: not known which changes were applied")
            return self.lost(result, backup, f"lost the connection while applying ({exc}); not known which of "
                             f"{len(changes)} change(s) were applied")
        backup.write("applied")
        if REBOOT_PENDING in applied.exits:
            result["pending_reboot"] = True
            self.warn(result, "a reboot is pending to complete the change")
        return self.verify(result, view, changes, carried, applied, backup)

    def prior(self) -> Prior | None:
        found = backups.incomplete_backup(self.opts.backup_dir, self.host, self.opts.cause)
        return Prior(*found) if found else None

    def reads(self) -> list[str]:
        own = self.cause.fix_reads(self.facts) if hasattr(self.cause, "fix_reads") else list(self.cause.FIX_READS)
        return own + [i for i in QUEUE_ITEMS if i not in own]

    def read(self, before=()):
        """A fresh read (one command), then the follow-up read the first one makes necessary, if any (the
        cause's follow_up_reads names its items; they land in the view under its FOLLOW_UP_ITEM)."""
        reading = self.session.read(self.facts, self.reads(), before=before)
        follow = self.cause.follow_up_reads(reading.view, self.facts) if hasattr(self.cause, "follow_up_reads") else []
        if follow:
            results = self.session.run([op for _unused, op in follow])
            extra = snapshot.assemble(self.host, follow, results, collected_at="", duration_ms=0, transport={})
            reading.view.items[self.cause.FOLLOW_UP_ITEM] = extra["items"]
        return reading

    def plan(self, view: HostView) -> list[Change]:
        try:
            return self.cause.plan(view, self.params)
        except remediation.FixError as exc:  # e.g. the host's metabase or AD could not be read
            raise AnsibleActionFail(f"{self.host}: {self.opts.cause}: {exc}") from exc

    def describe(self, view: HostView, changes: list[Change], prior: Prior | None) -> dict:
        result = dict(changed=bool(changes), cause=self.opts.cause, changes=[c.describe() for c in changes],
                      restart_needed=sorted({s for c in changes for s in c.restart}),
                      reboot_possible=any(c.kind in REBOOTING_KINDS for c in changes))
        advice = list(self.cause.advice(view, self.params)) if hasattr(self.cause, "advice") else []
        if advice:
            result["advice"] = advice
            for a in advice:
                self.warn(result, a)
        if prior:
            result["resumed_from"] = prior.path
        if self.opts.diff and changes:
            result["diff"] = remediation.diff(changes)
        return result

    def settle(self, result: dict, prior: Prior | None) -> dict:
        """Nothing to change: finish an interrupted run's record, and do the restarts earlier runs left pending."""
        if prior and not self.opts.check_mode:
            # The interrupted run's change is all in place. Its restart may never have happened, so it stays
            # pending until a run that may restart does it.
            backups.update_backup(prior.path, state="verified", note="verified by a later run", pending_restart=prior.restart)
        return self.pending_restarts(result)

    def resume(self, changes: list[Change], prior: Prior | None) -> list[Change]:
        """Start from the originals an interrupted run recorded; return what it may have applied that this plan
        no longer needs (carried in this run's backup so a rollback finds it)."""
        if not prior:
            return []
        originals = prior.originals
        for c in changes:
            c.before = originals.get(backups.change_key(c), c.before)
        planned = {backups.change_key(c) for c in changes}
        return [c for c in prior.changes if backups.change_key(c) not in planned]

    def apply(self, changes: list[Change], kept: set[str]) -> Applied:
        """Every change in one command; each records what it replaced, unless an earlier run of it already recorded
        the original (`kept`: change keys)."""
        ops, owners = [], []
        for c in changes:
            for op in c.apply_ops():
                ops.append(op)
                owners.append(c)
        results = self.session.run(ops)
        applied = Applied(ok=True)
        for c, res in zip(owners, results):
            if backups.change_key(c) not in kept:
                remediation.record_prev(c, res.rows)
            applied.exits.update(int(r["code"]) for k, r in res.rows if k == "exit" and isinstance(r.get("code"), int))
            if failed(res):
                applied.ok = False
        return applied

    def verify(self, result, view, changes, carried, applied: Applied, backup: BackupFile) -> dict:
        restart = sorted({s for c in changes + carried for s in c.restart})
        restart_ops = []
        if restart and self.opts.allow_service_restart:
            # The restart runs first in the verifying read's own command: one round trip, not two.
            restart_ops = restart_operations(restart)
            result["restarted"] = restart
        elif restart:
            result["pending_restart"] = restart
            self.warn(result, f"pending restart of {', '.join(restart)} to take effect (mailflow_allow_service_restart is false)")
        try:
            reading = self.read(before=restart_ops)
        except HostLost as exc:
            backup.write("interrupted", interrupted="after apply: applied, not verified")
            return self.lost(result, backup, f"lost the connection after applying, before verifying ({exc})")
        left = self.plan(reading.view)
        result.update(queue_before=queued(view), queue_after=queued(reading.view))
        if left or not applied.ok:
            return self.restore(result, changes, left, restart_ops, backup)
        bad_restarts = [name for name, r in zip(restart, reading.before) if failed(r)]
        if bad_restarts:
            backup.write("verified", pending_restart=bad_restarts, restart_failed=bad_restarts)
            raise AnsibleActionFail(f"{self.host}: {self.opts.cause}: the change is verified, but restarting "
                                    f"{', '.join(bad_restarts)} failed; check the service (backup {backup.path})")
        backup.write("verified", pending_restart=result.get("pending_restart", []))
        if restart_ops:  # this restart also completes what earlier runs left pending
            for path, doc in backups.pending_restarts(self.opts.backup_dir, self.host, self.opts.cause):
                if os.path.abspath(path) != os.path.abspath(backup.path):
                    backups.update_backup(path, pending_restart=[s for s in doc["pending_restart"] if s not in restart])
        result["verified"] = True
        return result

    def restore(self, result, changes, left, restart_ops, backup: BackupFile) -> dict:
        """Verification failed: put back the backup's values (and restart again, so services run with them)."""
        what = "; ".join(c.describe() for c in left) or "the change was not applied"
        undo = remediation.restore_plan(changes)
        try:
            results = self.session.run(undo + list(restart_ops)) if undo else []
        except HostLost as exc:
            backup.write("interrupted", interrupted="during the restore after a failed verification")
            return self.lost(result, backup, f"verification failed ({what}) and the connection was lost while restoring ({exc})")
        failed_undo = [op for op, r in zip(undo, results) if failed(r)]
        failed_restart = [op.args[0] for op, r in zip(restart_ops, results[len(undo):]) if failed(r)]
        if failed_restart:
            self.warn(result, f"restarting {', '.join(failed_restart)} after the restore failed")
        kept = [c.describe() for c in changes if not c.reversible]
        also = f"; not reversible on the host, left as applied: {', '.join(kept)}" if kept else ""
        head = f"{self.host}: {self.opts.cause}: verification failed ({what})"
        if failed_undo:
            backup.write("restore_failed", restore_failed=[f"{op.name} {op.args[:2]}" for op in failed_undo])
            raise AnsibleActionFail(f"{head} and the restore FAILED for {len(failed_undo)} operation(s) "
                                    f"({', '.join(op.name for op in failed_undo)}): the host needs an admin; the prior "
                                    f"values are in {backup.path}{also}")
        if not undo:
            backup.write("not_restored")
            raise AnsibleActionFail(f"{head}; nothing to restore: the change cannot be undone on the host{also}; the backup "
                                    f"{backup.path} records it")
        backup.write("restored")
        raise AnsibleActionFail(f"{head}; restored from the backup {backup.path}{also}")

    # -- what every step shares

    def pending_restarts(self, result: dict) -> dict:
        """Nothing to change: complete a restart an earlier run left pending, when now allowed."""
        pending = backups.pending_restarts(self.opts.backup_dir, self.host, self.opts.cause)
        services = sorted({s for _unused, doc in pending for s in doc["pending_restart"]})
        if not services:
            return result
        if not self.opts.allow_service_restart or self.opts.check_mode:
            result["pending_restart"] = services
            result["changed"] = bool(self.opts.allow_service_restart)  # check mode: it would restart
            return result
        try:
            bad = [s for s, r in zip(services, self.session.run(restart_operations(services))) if failed(r)]
        except HostLost as exc:
            result.update(failed=True, interrupted=True, changed=True, unreachable=False,
                          msg=f"{self.host}: {self.opts.cause}: lost the connection while restarting {', '.join(services)} "
                              f"({exc}); the restart stays pending in the backups")
            return result
        if bad:
            raise AnsibleActionFail(f"{self.host}: {self.opts.cause}: could not restart {', '.join(bad)}")
        for path, _unused in pending:
            backups.update_backup(path, pending_restart=[], restarted=services)
        result.update(changed=True, restarted=services)
        return result

    def lost(self, result: dict, backup: BackupFile, why: str) -> dict:
        # changed: whatever was sent may have landed (the next run finds out and finishes or restores it).
        result.update(failed=True, interrupted=True, unreachable=False, changed=True,
                      msg=f"{self.host}: {self.opts.cause}: {why}. The backup {backup.path} is kept; the next run finishes "
                          f"or restores it.")
        return result

    def warn(self, result: dict, text: str) -> None:
        result.setdefault("warnings", []).append(f"{self.host}: {self.opts.cause}: {text}")


def restart_operations(services) -> list[psrunner.Op]:
    return [psrunner.Op("service_control", (s, "restart", remediation.SERVICE_WAIT_SECONDS)) for s in services]


def failed(res) -> bool:
    """An operation that threw or reported failure; a service it could not find counts (a registry key already
    gone does not: a restore that finds nothing to delete has nothing to put back)."""
    missing_service = res.op.name == "service_control" and res.first("missing") is not None
    return res.error is not None or res.first("failed") is not None or missing_service


def queued(view: HostView) -> int | None:
    total, seen = 0, False
    for item in QUEUE_ITEMS:
        listing = view.items.get(item)
        if listing:
            seen = True
            total += listing.get("truncated_total") or len(listing.get("files") or [])
    return total if seen else None
