"""Service Control Manager semantics for the simulated fleet.

Start, stop, restart and start-mode changes behave the way Windows Server
2003 answers `net start` / `net stop`: dependencies start first, running
dependents stop first, a disabled service refuses to start. Errors carry the
Win32 code and its system message text (winerror.h / `net helpmsg N`).

Starting SMTPSVC on an Exchange 2003 host runs DS2MB, which rewrites the
Active Directory-owned properties in MetaBase.xml. Queue folder files are
never touched: stopping a service loses nothing that is on disk.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from lab.ds2mb import run_ds2mb
from lab.runtime import Metrics
from lab.state import FleetState, HostState, Service

START_MODES = ("auto", "manual", "disabled")

# Service Start values under HKLM\SYSTEM\CurrentControlSet\Services\<name>.
_START_VALUE = {"auto": 2, "manual": 3, "disabled": 4}

# Win32 error codes and their English system messages.
ERROR_SERVICE_ALREADY_RUNNING = 1056
ERROR_SERVICE_DISABLED = 1058
ERROR_SERVICE_DOES_NOT_EXIST = 1060
ERROR_SERVICE_CANNOT_ACCEPT_CTRL = 1061
ERROR_SERVICE_NOT_ACTIVE = 1062
ERROR_SERVICE_DEPENDENCY_FAIL = 1068
ERROR_SERVICE_DEPENDENCY_DELETED = 1075

_MESSAGES = {
    ERROR_SERVICE_ALREADY_RUNNING: "An instance of the service is already running.",
    ERROR_SERVICE_DISABLED: (
        "The service cannot be started, either because it is disabled or because it "
        "has no enabled devices associated with it."
    ),
    ERROR_SERVICE_DOES_NOT_EXIST: "The specified service does not exist as an installed service.",
    ERROR_SERVICE_CANNOT_ACCEPT_CTRL: "The service cannot accept control messages at this time.",
    ERROR_SERVICE_NOT_ACTIVE: "The service has not been started.",
    ERROR_SERVICE_DEPENDENCY_FAIL: "The dependency service or group failed to start.",
    ERROR_SERVICE_DEPENDENCY_DELETED: "The dependency service does not exist or has been marked for deletion.",
}

# Dependencies of well-known services, used when a Service carries no
# depends_on of its own. IIS 6 hosts SMTP, WWW and the Exchange routing and
# protocol services under the IIS Admin service; the Exchange store and MTA
# need the System Attendant. Common knowledge of the product, not read off a
# real box by this repo. Entries naming a service the host does not have are
# skipped, so a minimal test host does not fail with 1075.
STANDARD_DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "SMTPSVC": ("IISADMIN",),
    "W3SVC": ("IISADMIN",),
    "RESVC": ("IISADMIN",),
    "POP3SVC": ("IISADMIN",),
    "IMAP4SVC": ("IISADMIN",),
    "MSEXCHANGEIS": ("MSExchangeSA",),
    "MSEXCHANGEMTA": ("MSExchangeSA",),
}


@dataclass(frozen=True)
class ServiceImage:
    """What the SCM reports about a service beyond the Service dataclass."""

    type_code: int  # 0x10 WIN32_OWN_PROCESS, 0x20 WIN32_SHARE_PROCESS
    binary_path: str  # "{root}" stands for the host's %SystemRoot%
    start_name: str
    pausable: bool


# Lab assumptions from the usual Windows Server 2003 / Exchange 2003 layout
# (IIS services share inetinfo.exe; Exchange under C:\Program Files\Exchsrvr).
_INETINFO = "{root}\\system32\\inetsrv\\inetinfo.exe"
_EXCHSRVR_BIN = "C:\\Program Files\\Exchsrvr\\bin\\"
SERVICE_IMAGES: dict[str, ServiceImage] = {
    "IISADMIN": ServiceImage(0x20, _INETINFO, "LocalSystem", False),
    "SMTPSVC": ServiceImage(0x20, _INETINFO, "LocalSystem", True),
    "RESVC": ServiceImage(0x20, _INETINFO, "LocalSystem", False),
    "POP3SVC": ServiceImage(0x20, _INETINFO, "LocalSystem", True),
    "IMAP4SVC": ServiceImage(0x20, _INETINFO, "LocalSystem", True),
    "W3SVC": ServiceImage(0x20, "{root}\\System32\\svchost.exe -k iissvcs", "LocalSystem", True),
    "MSEXCHANGESA": ServiceImage(0x10, '"' + _EXCHSRVR_BIN + 'mad.exe"', "LocalSystem", False),
    "MSEXCHANGEIS": ServiceImage(0x10, '"' + _EXCHSRVR_BIN + 'store.exe"', "LocalSystem", False),
    "MSEXCHANGEMTA": ServiceImage(0x10, '"' + _EXCHSRVR_BIN + 'emsmta.exe"', "LocalSystem", False),
}


# A process's sockets close when it exits. The lab's connection table names no owning process; on an
# Exchange 5.x box the Internet Mail Service (msexcimc.exe) is the SMTP client, so stopping it closes the
# host's connections to remote port 25 (the ones Q175982's leak holds open included).
_SMTP_CLIENT_SERVICES = ("MSEXCHANGEIMC",)


def service_image(svc: Service) -> ServiceImage:
    """The image facts for svc; an own-process exe in system32 when unknown."""
    return SERVICE_IMAGES.get(
        svc.name.upper(), ServiceImage(0x10, "{root}\\system32\\" + svc.name + ".exe", "LocalSystem", False)
    )


def dependencies(host: HostState, svc: Service) -> list[Service]:
    """Services svc needs running, as installed Service objects.

    Raises ServiceError 1075 when an explicit depends_on names a service the
    host does not have, as StartService does.
    """
    if svc.depends_on:
        found = []
        for name in svc.depends_on:
            dep = host.service(name)
            if dep is None:
                raise ServiceError(ERROR_SERVICE_DEPENDENCY_DELETED)
            found.append(dep)
        return found
    standard = (host.service(name) for name in STANDARD_DEPENDENCIES.get(svc.name.upper(), ()))
    return [dep for dep in standard if dep is not None]


def dependents(host: HostState, svc: Service) -> list[Service]:
    """Installed services that depend directly on svc."""
    out = []
    for other in host.services.values():
        if other is svc:
            continue
        try:
            needs = dependencies(host, other)
        except ServiceError:
            continue  # a broken dependency list cannot name svc as installed
        if any(dep is svc for dep in needs):
            out.append(other)
    return out


class ServiceError(Exception):
    """A Service Control Manager failure, with its Win32 error code."""

    def __init__(self, code: int, message: str | None = None) -> None:
        self.code = code
        self.message = message or _MESSAGES.get(code, f"Win32 error {code}.")
        super().__init__(f"System error {code} has occurred. {self.message}")


class ServiceManager:
    """Starts and stops services on lab hosts, with Windows SCM semantics.

    on_change(host_name) is called after a host's services changed state, so
    the lab core can open or close that host's SMTP listener. It runs after
    the fleet lock is released: the callback binds and closes sockets, and
    WinRM and SMTP threads should not wait on the lock meanwhile.
    """

    def __init__(self, fleet: FleetState, metrics: Metrics, on_change: Callable[[str], None]) -> None:
        self.fleet = fleet
        self.metrics = metrics
        self.on_change = on_change
        # (host, service) pairs stopped while running: the next start of one
        # of them completes a restart, however the stop and start were issued
        # (one restart call, or `net stop` and `net start` in two commands).
        self._awaiting_restart: set[tuple[str, str]] = set()
        # How often each (host, service) has started in this lab: what a service reads only as it starts
        # (SMTPSVC's queue folder and GlitchRetrySeconds, lab/smtp/delivery.py) is read again when this moves.
        self._starts: dict[tuple[str, str], int] = {}

    def start_count(self, host_name: str, name: str) -> int:
        with self.fleet.lock:
            return self._starts.get((host_name.lower(), name.lower()), 0)

    # -- public API
    def start(self, host_name: str, name: str) -> None:
        with self.fleet.lock:
            host, svc = self._lookup(host_name, name)
            if svc.state == "running":
                raise ServiceError(ERROR_SERVICE_ALREADY_RUNNING)
            self._start(host, svc, chain=())
        self.on_change(host.name)

    def stop(self, host_name: str, name: str) -> None:
        with self.fleet.lock:
            host, svc = self._lookup(host_name, name)
            if svc.state != "running":
                raise ServiceError(ERROR_SERVICE_NOT_ACTIVE)
            self._stop(host, svc)
        self.on_change(host.name)

    def restart(self, host_name: str, name: str) -> None:
        """Stop (dependents first) and start again, bringing back the
        dependents that were running, as Restart-Service does. A stopped
        service is simply started."""
        with self.fleet.lock:
            host, svc = self._lookup(host_name, name)
            if svc.state == "running":
                if svc.start_mode == "disabled":
                    # Windows would stop it and then fail to start it again.
                    self._stop(host, svc)
                    raise ServiceError(ERROR_SERVICE_DISABLED)
                stopped = self._stop(host, svc)
            else:
                stopped = [svc]
            # _stop returns dependents before the service; start in reverse.
            for service in reversed(stopped):
                if service.state != "running":
                    self._start(host, service, chain=())
        self.on_change(host.name)

    def set_start_mode(self, host_name: str, name: str, mode: str) -> None:
        """Change the start type. Like `sc config start=`, it does not stop a
        running service that becomes disabled."""
        if mode not in START_MODES:
            raise ValueError(f"start mode must be one of {START_MODES}, not {mode!r}")
        with self.fleet.lock:
            host, svc = self._lookup(host_name, name)
            svc.start_mode = mode
            # The SCM keeps the start type in the service's registry key; keep
            # it in step where the host's registry models that key.
            key = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\" + svc.name
            if host.registry.key_exists(key):
                host.registry.set(key, "Start", "REG_DWORD", _START_VALUE[mode])

    # -- internals (caller holds fleet.lock)
    def _lookup(self, host_name: str, name: str) -> tuple[HostState, Service]:
        host = self.fleet.host(host_name)
        svc = host.service(name)
        if svc is None:
            raise ServiceError(ERROR_SERVICE_DOES_NOT_EXIST)
        return host, svc

    def _start(self, host: HostState, svc: Service, chain: tuple[str, ...]) -> None:
        if svc.name.lower() in chain:
            return  # circular dependency: already being started further up
        if svc.start_mode == "disabled":
            # The caller asked for svc itself: 1058. For a dependency the SCM
            # reports 1068 on the service that was asked for.
            raise ServiceError(ERROR_SERVICE_DISABLED if not chain else ERROR_SERVICE_DEPENDENCY_FAIL)
        if svc.stop_pending:  # still in STOP_PENDING: the SCM refuses controls until it has stopped
            raise ServiceError(ERROR_SERVICE_CANNOT_ACCEPT_CTRL if not chain else ERROR_SERVICE_DEPENDENCY_FAIL)
        for dep in dependencies(host, svc):
            if dep.state != "running":
                try:
                    self._start(host, dep, chain + (svc.name.lower(),))
                except ServiceError as exc:
                    raise ServiceError(ERROR_SERVICE_DEPENDENCY_FAIL) from exc
        if svc.name.upper() == "SMTPSVC":
            # DS2MB runs as SMTP comes up, before it serves mail.
            run_ds2mb(self.fleet, host)
        svc.state = "running"
        self._starts[(host.name.lower(), svc.name.lower())] = self._starts.get((host.name.lower(), svc.name.lower()), 0) + 1
        if (host.name, svc.name.lower()) in self._awaiting_restart:
            self._awaiting_restart.discard((host.name, svc.name.lower()))
            self._count_restart(host, svc)

    def _stop(self, host: HostState, svc: Service) -> list[Service]:
        """Stop svc after its running dependents; returns everything stopped,
        dependents first."""
        stopped: list[Service] = []
        for dependent in dependents(host, svc):
            if dependent.state == "running":
                stopped.extend(self._stop(host, dependent))
        if svc.state == "running":
            svc.state = "stopped"
            # A service that takes time to stop reports Stop Pending until then (Service.win32).
            svc.stopping_until = time.time() + float(svc.stop_seconds or 0)
            self._awaiting_restart.add((host.name, svc.name.lower()))
            stopped.append(svc)
            if svc.name.upper() in _SMTP_CLIENT_SERVICES:
                host.tcp_connections = [c for c in host.tcp_connections if c["remote"].rsplit(":", 1)[-1] != "25"]
        return stopped

    def _count_restart(self, host: HostState, svc: Service) -> None:
        counters = self.metrics.host(host.name)
        # Swap in a new dict rather than mutate: Metrics.snapshot() copies the
        # counters under its own lock, which this code does not hold.
        updated = dict(counters.service_restarts)
        updated[svc.name] = updated.get(svc.name, 0) + 1
        counters.service_restarts = updated
