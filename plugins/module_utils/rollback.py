"""Rolling a change back from its backups: what to read, what to restore, what to report. Pure: the action
(plugins/action/rollback.py) reads the backups and runs the operations built here.

A change is put back only where the host still holds the value the change set. Per change of a backup:
  restore         the current value is the change's `after`: put `before` back
  already         the current value is `before`: nothing to do
  changed_since   neither: someone changed it after the fix; reported, never overwritten
  not_reversible  a service restart or an installed package: nothing on the host undoes it
  unread          the current value could not be read: not touched, the rollback fails for it (a re-run retries)
A backup whose change never took effect or was already undone (SETTLED) needs nothing and reads nothing, so a
second rollback of the same change runs no command on the host.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ansible_collections.mailflow.exchange.plugins.module_utils.causes import FIXABLE
from ansible_collections.mailflow.exchange.plugins.module_utils.psrunner import Op, OpResult
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import Change, FixError

RESTORE, ALREADY, CHANGED_SINCE, NOT_REVERSIBLE, UNREAD = "restore", "already", "changed_since", "not_reversible", "unread"
# Backup states whose change is not on the host (or belongs to a later backup): nothing to roll back.
SETTLED = {
    "planned": "never applied (the run stopped before applying it)",
    "restored": "already restored by the fix itself (its verification failed)",
    "rolled_back": "already rolled back",
    "superseded": "superseded by a later run's backup, which holds the original values",
}
ROLLED_BACK = "rolled_back"
RESTORE_FAILED = "restore_failed"


@dataclass
class Item:
    """One change of one backup, and what the rollback found and decided about it."""
    change: Change
    decision: str = ""
    current: Any = None
    why: str = ""

    def describe(self) -> str:
        c, h = self.change, self.change.handler
        if self.decision == CHANGED_SINCE:
            return (f"{h.name(c)}: the change set {h.show(c, c.after)}, it is now {h.show(c, self.current)} "
                    f"(changed since; left as it is)")
        if self.decision == UNREAD:
            return f"{h.name(c)}: current value not read ({self.why}); left as it is"
        if self.decision == NOT_REVERSIBLE:
            return f"{c.describe()} (cannot be undone on the host)"
        if self.decision == ALREADY:
            return f"{h.name(c)} = {h.show(c, c.before)}"
        return f"{h.name(c)}: {h.show(c, c.after)} -> {h.show(c, c.before)}"


@dataclass
class CauseRollback:
    """One backup (backups/<change id>/<host>/<cause>.json) and its items."""
    cause: str
    path: str
    doc: dict
    items: list[Item] = field(default_factory=list)

    @property
    def settled(self) -> str | None:
        return SETTLED.get(self.doc.get("state"))

    def of(self, decision: str) -> list[Item]:
        return [i for i in self.items if i.decision == decision]

    def summary(self) -> dict:
        """restored / already / changed_since / not_reversible / unread, as lists of descriptions."""
        out = {k: [i.describe() for i in self.of(k)] for k in (ALREADY, CHANGED_SINCE, NOT_REVERSIBLE, UNREAD)}
        out["restored"] = [i.describe() for i in self.of(RESTORE)]
        return out


def load(docs: list[tuple[str, dict, list[Change]]]) -> list[CauseRollback]:
    """The backups of one host, in the order their fixes run (causes.FIXABLE): a rollback undoes them backwards."""
    rank = {c: n for n, c in enumerate(FIXABLE)}
    found = [CauseRollback(doc.get("cause", ""), path, doc, [Item(c) for c in changes]) for path, doc, changes in docs]
    return sorted(found, key=lambda cr: (rank.get(cr.cause, len(rank)), cr.cause))


def to_decide(rollbacks: list[CauseRollback]) -> list[Item]:
    """Every item of an unsettled backup, in order; irreversible ones are decided here (nothing to read)."""
    out = []
    for cr in rollbacks:
        if cr.settled:
            continue
        for item in cr.items:
            if not item.change.reversible:
                item.decision = NOT_REVERSIBLE
            else:
                out.append(item)
    return out


def read_request(items: list[Item], facts: dict) -> tuple[list[Op], list[list[int]]]:
    """(one request's operations, each item's indices into it): items reading the same thing share its read."""
    ops: list[Op] = []
    slots = []
    for item in items:
        mine = []
        for op in item.change.handler.read_ops(item.change, facts):
            if op not in ops:
                ops.append(op)
            mine.append(ops.index(op))
        slots.append(mine)
    return ops, slots


def currents(items: list[Item], results: list[OpResult], slots: list[list[int]]) -> list[tuple[Any, str | None]]:
    """[(current value, None) or (None, why it could not be read)] per item."""
    out = []
    for item, mine in zip(items, slots):
        try:
            out.append((item.change.handler.current(item.change, [results[i] for i in mine]), None))
        except FixError as exc:
            out.append((None, str(exc)))
    return out


def decide(change: Change, current: Any) -> str:
    h = change.handler
    if not change.reversible:
        return NOT_REVERSIBLE
    if h.same(change, current, change.before):
        return ALREADY
    if h.same(change, current, change.after):
        return RESTORE
    return CHANGED_SINCE


def decide_all(items: list[Item], found: list[tuple[Any, str | None]]) -> None:
    for item, (value, why) in zip(items, found):
        item.current = value
        if why is not None:
            item.decision, item.why = UNREAD, why
        else:
            item.decision = decide(item.change, value)


def restore_ops(rollbacks: list[CauseRollback]) -> list[tuple[Item, Op]]:
    """The restores, last applied first (backups in reverse fix order, each backup's changes in reverse)."""
    todo = [i for cr in rollbacks for i in cr.of(RESTORE)]
    return [(item, op) for item in reversed(todo) for op in item.change.restore_ops()]


def restarts(rollbacks: list[CauseRollback]) -> list[str]:
    """Services to restart so the restored values take effect. Not those whose fix's restart never happened (the
    service never ran with the fix's value), nor a service whose own state or start mode was just put back (a
    restart would undo that)."""
    wanted, own = set(), set()
    for cr in rollbacks:
        pending = {s.lower() for s in cr.doc.get("pending_restart") or []}
        for item in cr.of(RESTORE):
            wanted |= {s for s in item.change.restart if s.lower() not in pending}
            if item.change.kind in ("service_state", "service_start_mode"):
                own.add(item.change.target["service"].lower())
    return sorted(s for s in wanted if s.lower() not in own)


def not_back(items: list[Item], found: list[tuple[Any, str | None]]) -> list[tuple[Item, str]]:
    """After the restore: each restored item that does not read as its `before`, and what it reads."""
    out = []
    for item, (value, why) in zip(items, found):
        c, h = item.change, item.change.handler
        if why is not None:
            out.append((item, f"{h.name(c)} (not read back: {why})"))
        elif not h.same(c, value, c.before):
            out.append((item, f"{h.name(c)} is {h.show(c, value)}, not {h.show(c, c.before)}"))
    return out


def outcome(cr: CauseRollback, failed: list[str], time: str, pending_restart: list[str], restarted: list[str]) -> dict:
    """The backup's fields after this rollback: rolled back, or restore_failed (a re-run decides again)."""
    record = dict(cr.summary(), time=time, pending_restart=pending_restart, restarted=restarted)
    if failed:
        record["failed"] = failed
    if failed or cr.of(UNREAD):
        return {"state": RESTORE_FAILED if failed else cr.doc.get("state"), "rollback": record}
    return {"state": ROLLED_BACK, "rollback": record, "pending_restart": []}


def event(host: str, cr: CauseRollback, failed: list[str], reason: str = "") -> dict:
    """The change record's `rollback` event for one backup."""
    s = cr.summary()
    ok = not failed and not s[UNREAD]
    if not reason:
        reason = cr.settled or ("; ".join(failed + s[UNREAD]) if not ok else "")
    return {"type": "rollback", "host": host, "cause": cr.cause, "restored": s["restored"], "already": s[ALREADY],
            "changed_since": s[CHANGED_SINCE], "not_reversible": s[NOT_REVERSIBLE], "ok": ok, "reason": reason}
