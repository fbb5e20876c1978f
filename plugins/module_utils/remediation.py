"""Fixes as data: what a fix will change on a host, how to apply it, how to undo it, what the backup holds.

A cause module's plan(view, params) returns Changes; the fix action applies
them (one WinRM command), records the values it replaced, verifies with a
fresh read, and restores from the backup when verification fails. Pure: this
module builds runner operations and backup documents, it runs nothing. How
each kind of change is applied, undone and read back is in change_kinds.py.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ansible_collections.mailflow.exchange.plugins.module_utils.psrunner import REG_KIND_TO_TYPE, Op

REG_TYPE_TO_KIND = {v: k for k, v in REG_KIND_TO_TYPE.items()}  # "REG_DWORD" -> "DWord" (RegistryValueKind)
_START_MODE_ACTION = {"auto": "auto", "automatic": "auto", "manual": "manual", "disabled": "disabled"}
SERVICE_WAIT_SECONDS = "60"
PROCESS_WAIT_SECONDS = "900"  # msiexec and hotfix installers on a busy 2003 box


class FixError(ValueError):
    """Bad fix input; the message names the variable."""


class NeedsInput(FixError):
    """An operator input this host's fix needs is not given (a smart host only the admin knows, say). Not an error
    while nothing needs fixing; where the fix has to run it changes nothing and says what to set."""

    def __init__(self, variable: str, message: str):
        super().__init__(message)
        self.variable = variable


def setting(facts: dict, name: str) -> Any:
    """A knowledge `detect:` setting's value, as the detectors read it (fleet.setting)."""
    item = (facts.get("detect") or {}).get(name)
    if item is None:
        raise FixError(f"knowledge detect.{name} is not set")
    return item["value"] if isinstance(item, dict) and "value" in item else item


@dataclass
class Change:
    """One thing a fix changes. `kind` picks its handler in KINDS; `before` is replaced by what the host
    reported it replaced (record_prev), so a restore puts back what was really there."""
    kind: str
    target: dict[str, Any]
    before: Any
    after: Any
    restart: list[str] = field(default_factory=list)  # services that must restart for it to take effect

    @property
    def handler(self) -> "_Kind":
        try:
            from ansible_collections.mailflow.exchange.plugins.module_utils.change_kinds import KINDS  # kinds use Change
            return KINDS[self.kind]
        except KeyError:
            raise FixError(f"unknown change kind {self.kind}") from None

    def describe(self) -> str:
        return f"{self.handler.name(self)}: {self.handler.show(self, self.before)} -> {self.handler.show(self, self.after)}"

    def apply_ops(self) -> list[Op]:
        return self.handler.apply(self)

    def restore_ops(self) -> list[Op]:
        """Operations that put `before` back ([] when the change cannot be undone on the host, e.g. a hotfix)."""
        return self.handler.restore(self)

    @property
    def reversible(self) -> bool:
        return self.handler.reversible

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Change":
        return cls(d["kind"], d["target"], d["before"], d["after"], list(d.get("restart") or []))


def restore_plan(changes: list[Change]) -> list[Op]:
    """Undo in reverse order (a service is stopped before its start mode is put back)."""
    return [op for c in reversed(changes) for op in c.restore_ops()]


def record_prev(change: Change, rows: list[tuple[str, dict]]) -> None:
    """Replace the plan's `before` with what the host reported it replaced (the authoritative prior value)."""
    prev = next((r for k, r in rows if k == "prev"), None)
    if prev is not None:
        change.handler.prev(change, prev)


def diff(changes: list[Change]) -> dict[str, str]:
    """Ansible's --diff: before and after, one line per changed item."""
    return {"before": "".join(f"{c.handler.name(c)} = {c.handler.show(c, c.before)}\n" for c in changes),
            "after": "".join(f"{c.handler.name(c)} = {c.handler.show(c, c.after)}\n" for c in changes)}
