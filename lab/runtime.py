"""Lab-side measurement and fault injection, kept apart from Windows state.

Counters prove the collection's promises (one WinRM command per host per
snapshot, no command line over cmd.exe's 8191 characters). Faults let tests
see how the collection behaves when a host is slow, broken or gone.
"""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field

CMD_EXE_MAX = 8191  # cmd.exe's command-line limit, in characters


@dataclass
class HostCounters:
    http_requests: int = 0
    auth_failures: int = 0
    shells_opened: int = 0
    winrm_commands: int = 0
    command_line_lengths: list[int] = field(default_factory=list)
    overlong_command_lines: int = 0
    smtp_sessions: int = 0  # SMTP sessions accepted from clients other than the lab's own mail delivery
    delivery_sessions: int = 0  # SMTP sessions accepted from another lab host delivering mail (lab/smtp/delivery.py)
    delivery_attempts: int = 0  # outgoing delivery sessions this host's SMTP service tried
    messages_delivered: int = 0  # queued messages this host handed to a next hop
    service_restarts: dict[str, int] = field(default_factory=dict)
    processes: list[list[str]] = field(default_factory=list)  # run_process argv, program first
    reboots: int = 0  # reboots a program would have done (msiexec without REBOOT=ReallySuppress)

    @property
    def max_command_line(self) -> int:
        return max(self.command_line_lengths, default=0)

    def to_plain(self) -> dict:
        out = asdict(self)
        out["max_command_line"] = self.max_command_line
        return out


@dataclass
class DeviceCounters:
    """A network device's SSH side: logins, refused passwords, CLI lines, lines typed in config mode."""

    ssh_logins: int = 0
    ssh_auth_failures: int = 0
    cli_commands: int = 0
    config_commands: int = 0

    def to_plain(self) -> dict:
        return asdict(self)


@dataclass
class HostFaults:
    """Set per host through the lab API or CLI; all off by default."""

    latency_ms: int = 0  # added to every HTTP request
    http_500: int = 0  # answer the next N requests with 500
    drop_connections: int = 0  # close the socket on the next N requests without answering
    timeout: bool = False  # accept requests and never answer (until cleared)
    drop_after_commands: int = -1  # drop the connection at the Nth command from now, before it runs
    drop_output_after_commands: int = -1  # the Nth command runs, then the connection drops before its output
    http_500_after_commands: int = -1  # the Nth command runs, then its output is answered with HTTP 500
    rows_lost_after_commands: int = -1  # the Nth command runs; its answer keeps only its first and last line

    def to_plain(self) -> dict:
        return asdict(self)


class Metrics:
    """Thread-safe counters and faults for every host."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[str, HostCounters] = {}
        self.faults: dict[str, HostFaults] = {}
        self.devices: dict[str, DeviceCounters] = {}  # network devices, apart from hosts

    def host(self, name: str) -> HostCounters:
        with self._lock:
            return self.counters.setdefault(name, HostCounters())

    def device(self, name: str) -> DeviceCounters:
        with self._lock:
            return self.devices.setdefault(name, DeviceCounters())

    def bump_device(self, name: str, attr: str, n: int = 1) -> None:
        with self._lock:
            c = self.devices.setdefault(name, DeviceCounters())
            setattr(c, attr, getattr(c, attr) + n)

    def fault(self, name: str) -> HostFaults:
        with self._lock:
            return self.faults.setdefault(name, HostFaults())

    def bump(self, name: str, attr: str, n: int = 1) -> None:
        with self._lock:
            c = self.counters.setdefault(name, HostCounters())
            setattr(c, attr, getattr(c, attr) + n)

    def record_command_line(self, name: str, length: int) -> bool:
        """Count a command line; False when cmd.exe would refuse to run it."""
        with self._lock:
            c = self.counters.setdefault(name, HostCounters())
            c.winrm_commands += 1
            c.command_line_lengths.append(length)
            if length > CMD_EXE_MAX:
                c.overlong_command_lines += 1
                return False
            return True

    def record_process(self, name: str, argv: list[str]) -> None:
        with self._lock:
            self.counters.setdefault(name, HostCounters()).processes.append(list(argv))

    def reset(self) -> None:
        with self._lock:
            self.counters.clear()
            self.devices.clear()

    def snapshot(self) -> dict:
        with self._lock:
            return {name: c.to_plain() for name, c in self.counters.items()}

    def device_snapshot(self) -> dict:
        with self._lock:
            return {name: c.to_plain() for name, c in self.devices.items()}
