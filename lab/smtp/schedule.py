"""When the lab's SMTP services retry, read from each host's raw state, and the lab's clock.

The SMTP queuing engine of Windows Server 2003 (which Exchange 2003 extends)
retries a message on the virtual server's schedule, all of it raw state:

- ``SmtpRemoteProgressiveRetry`` on ``/LM/SmtpSvc/1``, inherited from
  ``/LM/SmtpSvc``: the Delivery tab's first, second, third and subsequent
  retry intervals in minutes (IIS 6 metabase reference cc758615). Absent,
  the defaults are 15, 30, 60 and 240 minutes (TechNet cc757058 "Configuring
  Retry Attempts and Intervals"; the same four for Exchange 2000/2003 in the
  Exchange Server Administration Guide's SMTP virtual server defaults).
- ``SmtpRemoteNDRExpireMinutes``: the outbound "Expiration timeout", schema
  default 2880 minutes, two days (IIS 6 SDK ms525067; "The default expiration
  time-out is two days" in the Exchange administration guide).
- ``GlitchRetrySeconds`` (REG_DWORD) under ``SMTPSVC\\Queuing``: after a
  transient ("Server Busy", 4xx) failure "Exchange Server 2003 waits 60
  seconds before attempting to resend the message, and it repeats this process
  three times before resorting to other actions" (TechNet aa998772); read when
  SMTP starts ("Restart the SMTP service for the change to take effect").
- the outbound connection "Time-out (minutes)": 10 minutes before an inactive
  connection is closed (Exchange 2003 administration guide, "Configure Outgoing
  Connections"); the lab's client waits that long for any reply.

The lab runs these on a compressed clock: a time factor F (scenario key
``time_factor``, ``python -m lab up --time-factor F``) divides every interval,
so at F = 600 the first retry comes after 1.5 s instead of 15 minutes. Times
the lab writes into state (file times, events, WMI) stay real UTC times, so a
snapshot's own clock and the lab's agree; only durations shrink.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from lab.state import HostState

QUEUING_KEY = r"HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC\Queuing"
DEFAULT_PROGRESSIVE_RETRY_MINUTES = (15, 30, 60, 240)
DEFAULT_EXPIRE_MINUTES = 2880
DEFAULT_GLITCH_RETRY_SECONDS = 60
GLITCH_RETRIES = 3
OUTBOUND_TIMEOUT_SECONDS = 600
# Windows Server 2003 gives up a TCP connect after its SYN retransmissions (3 s, 6 s, 12 s).
CONNECT_TIMEOUT_SECONDS = 21
# However fast the lab's clock runs, a reply wait or a connect gets at least this much real time, so a busy
# test machine does not time out a healthy loopback session.
MIN_REAL_WAIT = 1.0


def _int(value, default: int) -> int:
    try:
        return int(str(value).strip(), 0)
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True)
class RetrySchedule:
    """One virtual server's retry settings (lab seconds)."""

    progressive: tuple[int, ...]  # first, second, third, subsequent retry intervals
    expire_seconds: int
    glitch_seconds: int
    glitch_retries: int = GLITCH_RETRIES

    def retry_interval(self, retries_done: int) -> int:
        """The wait before retry number retries_done + 1 (the last interval repeats)."""
        return self.progressive[min(retries_done, len(self.progressive) - 1)]


def progressive_retry(metabase: dict | None, vs_property) -> tuple[int, ...]:
    raw = vs_property(metabase, "SmtpRemoteProgressiveRetry", inherit=True)
    minutes = [_int(part, -1) for part in str(raw or "").split(",")]
    if raw is None or not minutes or any(m <= 0 for m in minutes):
        minutes = list(DEFAULT_PROGRESSIVE_RETRY_MINUTES)
    return tuple(m * 60 for m in minutes)


def glitch_retry_seconds(host: HostState) -> int:
    """GlitchRetrySeconds as SMTP reads it at start: a REG_DWORD, else the 60 s default."""
    value = host.registry.get(QUEUING_KEY, "GlitchRetrySeconds")
    if value is None or value.type != "REG_DWORD":
        return DEFAULT_GLITCH_RETRY_SECONDS
    return int(value.data) & 0xFFFFFFFF


def schedule_for(host: HostState, metabase: dict | None, vs_property, glitch_seconds: int) -> RetrySchedule:
    expire = _int(vs_property(metabase, "SmtpRemoteNDRExpireMinutes", inherit=True), DEFAULT_EXPIRE_MINUTES)
    return RetrySchedule(progressive_retry(metabase, vs_property),
                         (expire if expire > 0 else DEFAULT_EXPIRE_MINUTES) * 60, glitch_seconds)


class LabClock:
    """Real time, with lab durations divided by the time factor."""

    def __init__(self, factor: float = 1.0) -> None:
        if not factor > 0:
            raise ValueError(f"time_factor must be a number above 0, got {factor!r}")
        self.factor = float(factor)
        self.started_wall = datetime.now(timezone.utc)
        self.started_mono = time.monotonic()

    def real(self, lab_seconds: float) -> float:
        """How many real seconds a lab duration takes."""
        return lab_seconds / self.factor

    def wait(self, lab_seconds: float) -> float:
        """A timeout in real seconds: the lab duration, never under MIN_REAL_WAIT."""
        return max(self.real(lab_seconds), MIN_REAL_WAIT)

    def lab_age(self, arrived: datetime, now: datetime | None = None) -> float:
        """Lab seconds since a message arrived: what it had when the lab started (the scenario's past runs at
        real speed) plus the time since, at the lab's speed."""
        now = now or datetime.now(timezone.utc)
        before = max((self.started_wall - arrived).total_seconds(), 0.0)
        since = max((now - max(arrived, self.started_wall)).total_seconds(), 0.0)
        return before + since * self.factor

    @staticmethod
    def wall_after(real_seconds: float) -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=real_seconds)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def cim(moment: datetime) -> str:
    """CIM_DATETIME, as WMI hands Exchange_Link times over."""
    return moment.astimezone(timezone.utc).strftime("%Y%m%d%H%M%S.000000+000")


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
