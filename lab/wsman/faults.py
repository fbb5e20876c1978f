"""Reading and using up the per-host faults a test or operator has injected.

HostFaults is a plain dataclass that the lab API assigns to; the countdown
faults are decremented here from many handler threads, so every
read-modify-write goes through one lock.
"""
from __future__ import annotations

import threading

from lab.runtime import Metrics

_LOCK = threading.Lock()


def take_countdown(metrics: Metrics, host_name: str, fault: str) -> bool:
    """Use up one shot of a countdown fault (http_500, drop_connections)."""
    with _LOCK:
        faults = metrics.fault(host_name)
        remaining = getattr(faults, fault)
        if remaining <= 0:
            return False
        setattr(faults, fault, remaining - 1)
        return True


def take_command_drop(metrics: Metrics, host_name: str, fault: str = "drop_after_commands") -> bool:
    """Should this Command lose its connection (drop_after_commands, drop_output_after_commands,
    http_500_after_commands) or its answer's rows (rows_lost_after_commands)?

    N >= 0 drops the connection on the Nth Command from now (0 and 1 both
    mean the next one) and then disarms the fault (back to -1).
    """
    with _LOCK:
        faults = metrics.fault(host_name)
        remaining = getattr(faults, fault)
        if remaining < 0:
            return False
        setattr(faults, fault, -1 if remaining <= 1 else remaining - 1)
        return remaining <= 1
