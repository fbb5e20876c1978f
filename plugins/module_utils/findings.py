"""What a detector says about one host and one cause.

Every host x cause gets exactly one Finding. The status vocabulary is closed:
  present        - the cause is there, with the evidence that shows it
  absent         - the data needed was read and the cause is not there
  not_applicable - the cause cannot occur on this kind of host (say, KB934709 on Exchange)
  unknown        - the data needed is missing (host unreachable, item failed); `reason` says which
Missing data is never `absent`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STATUSES = ("present", "absent", "not_applicable", "unknown")
SEVERITIES = ("critical", "high", "medium", "low", "info")
CONFIDENCES = ("confirmed", "inferred", "unconfirmed")


@dataclass(frozen=True, eq=False)
class Fix:
    """How a cause is fixed: by the role mailflow.exchange.fix_<cause id>, which registers its result as
    mailflow_fix_<cause id> (the contract fix_report and the change record read).

    order: where the fix runs in a host's (or a firewall's) fix run, lowest first.
    args: the fix's own arguments, an Ansible argument_spec beyond the lifecycle's common ones (the role
    maps its variables onto them; the cause module's fix_params checks them, naming the variable).
    on: "server" (the mailflow.exchange.fix action on the Exchange host) or "network" (its own action on
    the firewalls, before the servers)."""
    order: int
    args: dict = field(default_factory=dict)
    on: str = "server"


@dataclass(frozen=True)
class Cause:
    """The catalog entry: what the cause is, where it is documented, where it ranks and how it is fixed.

    A cause module declares itself once, here: causes/__init__.py finds it, ranks present causes by
    `position` (KB 919091's order of causes, then the other public write-ups') and runs fixes by `fix.order`."""
    id: str
    title: str
    sources: tuple[str, ...]
    severity: str            # severity when present
    position: int            # its place in the catalog, which is the ranking order
    fix: Fix | None = None   # None: report-only
    kb919091_cause: int | None = None  # its number in KB 919091
    symptom_scope: str = "host"  # "outbound": explains this host's own retry queues; "inbound": its senders'

    @property
    def role(self) -> str | None:
        """The role that fixes it, as reports name it."""
        return f"mailflow.exchange.fix_{self.id}" if self.fix else None

    @property
    def register(self) -> str:
        """The variable the fix role registers its result as."""
        return fix_register(self.id)


def fix_register(cause_id: str) -> str:
    return f"mailflow_fix_{cause_id}"


@dataclass
class Finding:
    cause: Cause
    host: str
    status: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None       # why unknown / not applicable
    confidence: str = "confirmed"   # the weakest knowledge this decision rests on
    explains: list[str] = field(default_factory=list)  # inventory hosts whose mail this cause stalls
    rank: int | None = None
    severity: str | None = None     # overrides the catalog's severity when the evidence warrants
    # Present for a reason no fix on the hosts can change (a network firewall, say): what to ask for, and of whom.
    # A change that leaves only this behind has done its part (verify_causes).
    outside_help: str | None = None

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"{self.cause.id}/{self.host}: status {self.status!r} is not one of {STATUSES}")
        if self.confidence not in CONFIDENCES:
            raise ValueError(f"{self.cause.id}/{self.host}: confidence {self.confidence!r}")
        if self.status in ("unknown", "not_applicable") and not self.reason:
            raise ValueError(f"{self.cause.id}/{self.host}: an {self.status} finding must say why")

    def to_dict(self) -> dict[str, Any]:
        present = self.status == "present"
        return {
            "cause": self.cause.id,
            "title": self.cause.title,
            "status": self.status,
            "severity": (self.severity or self.cause.severity) if present else "info",
            "summary": self.summary,
            "reason": self.reason,
            "confidence": self.confidence,
            "evidence": self.evidence,
            "explains": sorted(self.explains),
            "sources": list(self.cause.sources),
            "fix": self.cause.role if present else None,
            "rank": self.rank,
            "outside_help": self.outside_help if present else None,
        }


def unknown(cause: Cause, host: str, reason: str, **evidence) -> Finding:
    return Finding(cause, host, "unknown", f"cannot decide: {reason}", evidence=evidence, reason=reason)


def not_applicable(cause: Cause, host: str, reason: str) -> Finding:
    return Finding(cause, host, "not_applicable", reason, reason=reason)
