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


@dataclass(frozen=True)
class Cause:
    """The catalog entry: what the cause is and where it is documented."""
    id: str
    title: str
    sources: tuple[str, ...]
    severity: str            # severity when present
    fix: str | None          # the role that fixes it, or None (report-only / separate issue)
    kb919091_cause: int | None = None  # its number in KB 919091, which sets the ranking order
    symptom_scope: str = "host"  # "outbound": explains this host's own retry queues; "inbound": its senders'


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
            "fix": self.cause.fix if present else None,
            "rank": self.rank,
        }


def unknown(cause: Cause, host: str, reason: str, **evidence) -> Finding:
    return Finding(cause, host, "unknown", f"cannot decide: {reason}", evidence=evidence, reason=reason)


def not_applicable(cause: Cause, host: str, reason: str) -> Finding:
    return Finding(cause, host, "not_applicable", reason, reason=reason)
