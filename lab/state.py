"""Raw Windows state of the simulated fleet.

Everything here is what a real Exchange 2003 box would hold: registry values,
files (MetaBase.xml and its History, queue folder files), services, event log
entries, WMI instances, TCP connections, and the organisation's Active
Directory configuration objects. There are no cause labels: detectors must
reach their verdicts from this raw state, exactly as they would on a real
server.

All mutations go through these classes, under the fleet lock, so WinRM
commands, SMTP sessions and restarts running on different threads see one
consistent state.
"""
from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

# WinRM 2.0's defaults (winrm get winrm/config on Windows Server 2003 with KB968930; docs/runner.md cites them).
WINRM2_DEFAULTS = {"MaxEnvelopeSizekb": 150, "MaxMemoryPerShellMB": 150, "MaxTimeoutms": 60000}

# Present when Exchange 4.0-2003 is installed (Q147374).
EXCHANGE_SETUP_KEY = r"HKLM\SOFTWARE\Microsoft\Exchange\Setup"

REG_TYPES = ("REG_SZ", "REG_EXPAND_SZ", "REG_DWORD", "REG_QWORD", "REG_MULTI_SZ", "REG_BINARY")

_HIVE_ALIASES = {
    "HKEY_LOCAL_MACHINE": "HKLM",
    "HKEY_CURRENT_USER": "HKCU",
    "HKEY_CLASSES_ROOT": "HKCR",
    "HKEY_USERS": "HKU",
}
_HIVE_LONG = {short: long for long, short in _HIVE_ALIASES.items()}


def normalize_key(path: str) -> str:
    """Canonical registry key path: short hive, backslashes, no trailing slash."""
    path = path.replace("/", "\\").strip().strip("\\")
    if ":" in path.split("\\", 1)[0]:  # PowerShell drive form HKLM:\...
        path = path.replace(":", "", 1)
    head, _, rest = path.partition("\\")
    head = _HIVE_ALIASES.get(head.upper(), head.upper())
    return head + ("\\" + rest if rest else "")


def long_hive(path: str) -> str:
    """HKLM\\X -> HKEY_LOCAL_MACHINE\\X, the form reg.exe prints."""
    head, _, rest = normalize_key(path).partition("\\")
    return _HIVE_LONG.get(head, head) + ("\\" + rest if rest else "")


@dataclass
class RegValue:
    type: str
    data: Any  # str | int | list[str] | bytes

    def to_plain(self) -> dict:
        data = self.data.hex() if isinstance(self.data, (bytes, bytearray)) else copy.deepcopy(self.data)
        return {"type": self.type, "data": data}

    @classmethod
    def from_plain(cls, plain: dict) -> "RegValue":
        rtype, data = plain["type"], plain.get("data")
        if rtype == "REG_BINARY" and isinstance(data, str):
            data = bytes.fromhex(data)
        if rtype == "REG_MULTI_SZ" and isinstance(data, str):
            data = [data]
        return cls(rtype, data)


class Registry:
    """Case-insensitive registry. Keys exist explicitly or as parents of keys."""

    def __init__(self) -> None:
        self._keys: dict[str, tuple[str, dict[str, tuple[str, RegValue]]]] = {}

    # -- keys
    def _ensure(self, path: str) -> dict[str, tuple[str, RegValue]]:
        key = normalize_key(path)
        parts = key.split("\\")
        for i in range(1, len(parts) + 1):
            sub = "\\".join(parts[:i])
            self._keys.setdefault(sub.lower(), (sub, {}))
        return self._keys[key.lower()][1]

    def create_key(self, path: str) -> None:
        self._ensure(path)

    def key_exists(self, path: str) -> bool:
        return normalize_key(path).lower() in self._keys

    def subkeys(self, path: str) -> list[str]:
        prefix = normalize_key(path).lower() + "\\"
        names = {orig[len(prefix):].split("\\", 1)[0] for low, (orig, _) in self._keys.items() if low.startswith(prefix)}
        return sorted(names, key=str.lower)

    def delete_key(self, path: str) -> bool:
        low = normalize_key(path).lower()
        doomed = [k for k in self._keys if k == low or k.startswith(low + "\\")]
        for k in doomed:
            del self._keys[k]
        return bool(doomed)

    # -- values
    def values(self, path: str) -> list[tuple[str, RegValue]] | None:
        entry = self._keys.get(normalize_key(path).lower())
        if entry is None:
            return None
        return [(name, val) for name, val in entry[1].values()]

    def get(self, path: str, name: str) -> RegValue | None:
        entry = self._keys.get(normalize_key(path).lower())
        if entry is None:
            return None
        found = entry[1].get(name.lower())
        return found[1] if found else None

    def set(self, path: str, name: str, rtype: str, data: Any) -> None:
        if rtype not in REG_TYPES:
            raise ValueError(f"unknown registry type {rtype!r}")
        values = self._ensure(path)
        existing = values.get(name.lower())
        values[name.lower()] = (existing[0] if existing else name, RegValue(rtype, data))

    def delete(self, path: str, name: str) -> bool:
        entry = self._keys.get(normalize_key(path).lower())
        if entry is None:
            return False
        return entry[1].pop(name.lower(), None) is not None


    def to_plain(self) -> dict:
        return {orig: {name: val.to_plain() for name, val in vals.values()} for orig, vals in self._keys.values()}

    @classmethod
    def from_plain(cls, plain: dict) -> "Registry":
        reg = cls()
        for key, values in (plain or {}).items():
            reg.create_key(key)
            for name, val in (values or {}).items():
                rv = RegValue.from_plain(val)
                reg.set(key, name, rv.type, rv.data)
        return reg


@dataclass
class File:
    data: bytes
    mtime: str  # ISO 8601 UTC, e.g. 2026-11-20T10:00:00Z
    # Another process deletes it moments after it appears (SMTP delivering a queue file): a directory listing
    # names it, a read of its details finds it gone, and it is gone after that.
    transient: bool = False


class Filesystem:
    """Case-insensitive Windows paths (C:\\...). Directories are implicit."""

    def __init__(self) -> None:
        self._files: dict[str, tuple[str, File]] = {}

    @staticmethod
    def norm(path: str) -> str:
        return path.replace("/", "\\").rstrip("\\")

    def read(self, path: str) -> File | None:
        entry = self._files.get(self.norm(path).lower())
        return entry[1] if entry else None

    def write(self, path: str, data: bytes | str, mtime: str, transient: bool = False) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        p = self.norm(path)
        self._files[p.lower()] = (p, File(data, mtime, transient))

    def delete(self, path: str) -> bool:
        return self._files.pop(self.norm(path).lower(), None) is not None

    def is_dir(self, path: str) -> bool:
        prefix = self.norm(path).lower() + "\\"
        return any(k.startswith(prefix) for k in self._files)

    def listdir(self, path: str, recurse: bool = False) -> list[tuple[str, File]]:
        prefix = self.norm(path).lower() + "\\"
        out = []
        for low, (orig, f) in sorted(self._files.items()):
            if low.startswith(prefix) and (recurse or "\\" not in low[len(prefix):]):
                out.append((orig, f))
        return out

    def to_plain(self) -> dict:
        out = {}
        for orig, f in self._files.values():
            try:
                out[orig] = {"text": f.data.decode("utf-8"), "mtime": f.mtime}
            except UnicodeDecodeError:
                out[orig] = {"hex": f.data.hex(), "mtime": f.mtime}
            if f.transient:
                out[orig]["transient"] = True
        return out

    @classmethod
    def from_plain(cls, plain: dict) -> "Filesystem":
        fs = cls()
        for path, spec in (plain or {}).items():
            data = bytes.fromhex(spec["hex"]) if "hex" in spec else spec.get("text", "")
            fs.write(path, data, spec["mtime"], bool(spec.get("transient")))
        return fs


_WIN32_STATE = {"running": "Running", "stopped": "Stopped"}
_WIN32_START_MODE = {"auto": "Auto", "manual": "Manual", "disabled": "Disabled"}


@dataclass
class Service:
    name: str
    display_name: str
    state: str = "running"  # running | stopped
    start_mode: str = "auto"  # auto | manual | disabled
    depends_on: list[str] = field(default_factory=list)
    stop_seconds: float = 0  # how long it takes to stop once told to (0: at once)
    stopping_until: float = 0.0  # runtime: wall-clock time its stop completes (time.time())

    @property
    def stop_pending(self) -> bool:
        return self.state == "stopped" and time.time() < self.stopping_until

    def win32(self) -> dict:
        """The service as WMI's Win32_Service reports it."""
        state = "Stop Pending" if self.stop_pending else _WIN32_STATE.get(self.state, self.state)
        return {"Name": self.name, "DisplayName": self.display_name, "State": state,
                "StartMode": _WIN32_START_MODE.get(self.start_mode, self.start_mode)}


@dataclass
class HostState:
    """One simulated Windows host."""

    name: str  # inventory name, e.g. EXCH01
    fqdn: str
    address: str  # loopback address its listeners bind to
    username: str
    password: str
    os: dict  # caption, version (5.2.3790), build, service_pack (Service Pack 2), computer_name, domain
    registry: Registry
    files: Filesystem
    services: dict[str, Service]
    events: list[dict]  # log, source, event_id, type, category, time, message
    wmi: dict[str, dict[str, list[dict]]]  # namespace -> class -> instances (raw WMI objects)
    tcp_connections: list[dict]  # local, remote, state
    smtp_engine: dict  # how the host's SMTP listener software behaves beyond IIS (e.g. greylisting)
    system_root: str = "C:\\WINDOWS"
    ports: dict = field(default_factory=lambda: {"http": 5985, "https": 5986, "smtp": 25})
    winrm: bool = True  # False: no WinRM at all (e.g. Exchange 5.5 on Windows 2000): probed, never managed
    # `winrm get winrm/config` values the lab enforces; WinRM 2.0's defaults unless the scenario says otherwise.
    winrm_config: dict = field(default_factory=lambda: dict(WINRM2_DEFAULTS))
    # Add/Remove Windows Components: wmi_installer_provider (the WMI Windows Installer Provider, Win32_SoftwareFeature).
    windows_components: dict = field(default_factory=dict)
    # {log: {entries, oldest, source, event_id, writes_per_second}}: the rest of a log besides `events`.
    event_logs: dict = field(default_factory=dict)
    registry_unreadable: list = field(default_factory=list)  # keys whose ACL refuses the WinRM account read access
    wmi_unresponsive: list = field(default_factory=list)  # WMI namespaces whose provider never answers

    def component(self, name: str) -> bool:
        return bool(self.windows_components.get(name, True))

    def registry_readable(self, path: str) -> bool:
        low = normalize_key(path).lower()
        return not any(low == d or low.startswith(d + "\\") for d in (normalize_key(k).lower() for k in self.registry_unreadable))

    def service(self, name: str) -> Service | None:
        for svc in self.services.values():
            if svc.name.lower() == name.lower():
                return svc
        return None

    @property
    def metabase_path(self) -> str:
        return self.system_root + "\\system32\\inetsrv\\MetaBase.xml"


class ActiveDirectory:
    """The organisation's configuration naming context, shared by every host."""

    def __init__(self, objects: dict[str, dict[str, list]] | None = None) -> None:
        self._objects: dict[str, tuple[str, dict[str, list]]] = {}
        for dn, attrs in (objects or {}).items():
            self.put(dn, attrs)

    @staticmethod
    def norm(dn: str) -> str:
        return ",".join(part.strip() for part in dn.split(",")).lower()

    def put(self, dn: str, attrs: dict[str, Any]) -> None:
        clean = {k: (v if isinstance(v, list) else [v]) for k, v in attrs.items()}
        self._objects[self.norm(dn)] = (dn, clean)

    def get(self, dn: str) -> dict[str, list] | None:
        entry = self._objects.get(self.norm(dn))
        return entry[1] if entry else None

    def set_attr(self, dn: str, attr: str, values: list | None) -> list | None:
        """Set (or clear with None) an attribute; returns the previous values."""
        entry = self._objects.get(self.norm(dn))
        if entry is None:
            raise KeyError(dn)
        attrs = entry[1]
        prev_key = next((k for k in attrs if k.lower() == attr.lower()), None)
        previous = attrs.pop(prev_key) if prev_key else None
        if values is not None:
            attrs[prev_key or attr] = list(values)
        return previous

    def search(self, base: str, object_class: str | None = None) -> list[tuple[str, dict[str, list]]]:
        """Objects at or under base ("" for every object), optionally of one class."""
        nbase = self.norm(base)
        out = []
        for low, (dn, attrs) in sorted(self._objects.items()):
            if not nbase or low == nbase or low.endswith("," + nbase):
                classes = [c.lower() for c in attrs.get("objectClass", [])]
                if object_class is None or object_class.lower() in classes:
                    out.append((dn, attrs))
        return out

    def dns(self) -> list[str]:
        """Every object's DN, as written (what to_plain's keys are, without copying each object)."""
        return [dn for dn, _attrs in self._objects.values()]

    def to_plain(self) -> dict:
        return {dn: copy.deepcopy(attrs) for dn, attrs in self._objects.values()}


@dataclass
class FleetState:
    hosts: dict[str, HostState]
    ad: ActiveDirectory
    # blocked: [[a, b]]; devices: [{name, kind, config, startup_config, paths: [[a, b]], segments?, address?,
    # ports?, username?, password?}] (lab.network fills paths from segments; lab.netdev edits config)
    network: dict
    # Not Windows state: how much faster than real time the lab's SMTP services run their retry schedules
    # (scenario key time_factor, `python -m lab up --time-factor`; lab/smtp/schedule.py).
    time_factor: float = 1.0
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def host(self, name: str) -> HostState:
        for h in self.hosts.values():
            if h.name.lower() == name.lower():
                return h
        raise KeyError(name)

    def host_by_address(self, address: str) -> HostState | None:
        for h in self.hosts.values():
            if h.address == address:
                return h
        return None

    def host_by_name_or_fqdn(self, name: str) -> HostState | None:
        low = name.lower().strip("[]")
        for h in self.hosts.values():
            if low in (h.name.lower(), h.fqdn.lower(), h.address):
                return h
        return None

    def is_blocked(self, src: str, dst: str) -> bool:
        """Does the simulated network drop TCP from host src to host dst?"""
        for a, b in self.network.get("blocked", []):
            if {a.lower(), b.lower()} == {src.lower(), dst.lower()}:
                return True
        return False

    def devices_on_path(self, src: str, dst: str) -> list[dict]:
        out = []
        for dev in self.network.get("devices", []):
            for a, b in dev.get("paths", []):
                if {a.lower(), b.lower()} == {src.lower(), dst.lower()}:
                    out.append(dev)
        return out
