"""Programs the lab can run for the dispatcher's run_process: what each does to raw state.

Each emulation takes the host and the argument vector the program would get
(after CommandLineToArgvW) and returns (exit code, console output). They
change the same raw state a snapshot reads (WMI feature states, firewall
registry values, installed-update lists), so a fix is verified by reading,
never by the lab saying so. A program the lab does not know fails the way
Process.Start does for a missing file.

Hotfix packages (Update.exe, KB 262841) are known by their file name
(Product-KBnnnnnn-Platform-LLL.exe, KB 817903), not by a table entry, and run
from where they are: a path on the host, or \\\\HOST\\X$\\... on another lab
host's administrative share (the only shares the lab knows).
"""
from __future__ import annotations

import functools
import ntpath
import re
from datetime import datetime, timezone
from typing import Callable

from lab import firewall
from lab.state import HostState

# msiexec exit codes (MSDN "MsiExec.exe and InstMsi.exe Error Messages").
ERROR_SUCCESS = 0
ERROR_INVALID_PARAMETER = 87
ERROR_UNKNOWN_PRODUCT = 1605
ERROR_UNKNOWN_FEATURE = 1606
ERROR_SUCCESS_REBOOT_REQUIRED = 3010
ERROR_INSTALL_USEREXIT = 1602
ERROR_INSTALL_PACKAGE_OPEN_FAILED = 1619
# Win32_SoftwareFeature.InstallState: 2 Absent, 3 Local.
_ABSENT, _LOCAL = 2, 3


class ProgramNotFound(Exception):
    """Process.Start's Win32Exception: 'The system cannot find the file specified'."""


def _properties(argv: list[str]) -> dict[str, str]:
    return {k.upper(): v for k, _, v in (a.partition("=") for a in argv if "=" in a and not a.startswith("/"))}


def resolve_file(lab, host: HostState, path: str):
    """The file a process on `host` opens at `path`: the host's own, or another lab host's through its
    administrative share \\\\HOST\\X$\\rest (X:\\rest there; none across a blocked network path)."""
    m = re.match(r"^\\\\([^\\]+)\\([A-Za-z])\$\\(.+)$", path)
    if not m:
        return host.files.read(path)
    other = lab.fleet.host_by_name_or_fqdn(m[1])
    if other is None or lab.fleet.is_blocked(host.name, other.name):
        return None
    return other.files.read(f"{m[2]}:\\{m[3]}")


def msiexec(lab, host: HostState, argv: list[str]) -> tuple[int, str]:
    """msiexec /i {ProductCode} REMOVE=F1,F2 | ADDLOCAL=F1 /qn [REBOOT=ReallySuppress]: feature states change.
    msiexec /p <patch.msp> /qn: the patch file must open; see below for what it changes."""
    lowered = [a.lower() for a in argv]
    if "/p" in lowered:
        at = lowered.index("/p") + 1
        if at >= len(argv):
            return ERROR_INVALID_PARAMETER, ""
        if resolve_file(lab, host, argv[at]) is None:
            return ERROR_INSTALL_PACKAGE_OPEN_FAILED, ""
        # Windows Installer patches the products the .msp targets. Whether Win32_QuickFixEngineering then lists
        # the patch is not confirmed, so the lab changes nothing a snapshot reads.
        return ERROR_SUCCESS, ""
    if "/i" not in lowered or lowered.index("/i") + 1 >= len(argv):
        return ERROR_INVALID_PARAMETER, ""
    code = argv[lowered.index("/i") + 1]
    props = _properties(argv)
    features = [f for f in host.wmi.get("root\\cimv2", {}).get("Win32_SoftwareFeature", [])
                if str(f.get("IdentifyingNumber", "")).upper() == code.upper()]
    if not features:
        return ERROR_UNKNOWN_PRODUCT, ""
    by_name = {f["Name"].lower(): f for f in features}
    for prop, state in (("REMOVE", _ABSENT), ("ADDLOCAL", _LOCAL)):
        names = [n for n in props.get(prop, "").split(",") if n]
        if any(n.lower() not in by_name for n in names):
            return ERROR_UNKNOWN_FEATURE, ""
        for n in names:
            by_name[n.lower()]["InstallState"] = state
    # Removing a filter driver's feature asks for a reboot; /qn with REBOOT=ReallySuppress only defers it.
    reboot = bool(props.get("REMOVE"))
    if reboot and props.get("REBOOT", "").lower() != "reallysuppress":
        lab.metrics.bump(host.name, "reboots")
    return (ERROR_SUCCESS_REBOOT_REQUIRED if reboot else ERROR_SUCCESS), ""


# netsh firewall's profile= (XP SP2 / 2003 SP1): CURRENT is the default. The lab's hosts are off the domain
# as far as the firewall goes (lab/firewall.py: the listener honours StandardProfile), so CURRENT is Standard.
_NETSH_PROFILES = {"current": ("StandardProfile",), "standard": ("StandardProfile",), "domain": ("DomainProfile",),
                   "all": ("DomainProfile", "StandardProfile")}


def netsh(lab, host: HostState, argv: list[str]) -> tuple[int, str]:
    """netsh firewall add|set|delete portopening protocol=TCP port=25 [name=..] [mode=ENABLE] [scope=CUSTOM addresses=..]
    [profile=CURRENT|DOMAIN|STANDARD|ALL]: one value under <profile>\\GloballyOpenPorts\\List, as Windows keeps it."""
    words = [a.lower() for a in argv if "=" not in a]
    if words[:1] != ["firewall"] or len(words) < 3 or words[2] != "portopening" or words[1] not in ("add", "set", "delete"):
        return 1, "The following command was not found: " + " ".join(argv) + ".\r\n"
    props = {k.lower(): v for k, v in _properties(argv).items()}
    proto, port = props.get("protocol", "").upper(), props.get("port", "")
    profiles = _NETSH_PROFILES.get(props.get("profile", "current").lower())
    if proto not in ("TCP", "UDP", "ALL") or not port.isdigit() or profiles is None:
        return 1, "Invalid value specified.\r\n"
    policy = firewall.POLICY.rsplit("\\", 1)[0]
    value = f"{int(port)}:{proto}"
    for profile in profiles:
        key = f"{policy}\\{profile}\\GloballyOpenPorts\\List"
        old = host.registry.get(key, value)
        if words[1] == "delete":
            if old is None:
                return 1, "The system cannot find the file specified.\r\n"
            host.registry.delete(key, value)
            continue
        if words[1] == "add" and old is not None:
            return 1, "An object with the same name already exists.\r\n"
        scopes = {"all": "*", "subnet": "LocalSubnet", "custom": props.get("addresses", "*")}
        scope = scopes.get(props.get("scope", "all").lower(), "*")
        name = props.get("name") or (str(old.data).split(":", 4)[-1] if old is not None else "")
        status = "Enabled" if props.get("mode", "enable").lower() == "enable" else "Disabled"
        host.registry.create_key(key)
        host.registry.set(key, value, "REG_SZ", f"{int(port)}:{proto}:{scope}:{status}:{name}")
    # The SMTP listener follows the firewall (lab/smtp/server.py); tell it, as a service change does.
    listener = getattr(lab, "smtp", {}).get(host.name)
    if listener is not None:
        listener.refresh()
    return 0, "Ok.\r\n\r\n"


# Update.exe hotfix packages the lab knows, by file name (KB 817903 / KB 816915 naming), and the product
# folder they register under (KB 262841: HKLM\SOFTWARE\Microsoft\Updates\<product>\<SP>\KB<n>).
_PACKAGE = re.compile(r"^(?P<product>WindowsServer2003|Exchange2003)-KB(?P<kb>\d+)(?:-v\d+)?-(?:x86|x64|ia64)-[A-Za-z]{3}\.exe$", re.I)
_UPDATES_PRODUCT = {"windowsserver2003": "Windows Server 2003", "exchange2003": "Exchange Server 2003"}
_QUIET = {"/quiet", "/q", "/passive"}
_NO_RESTART = {"/norestart", "/z"}


def hotfix_package(lab, host: HostState, argv: list[str], exe: str) -> tuple[int, str]:
    """<package>.exe /quiet /norestart: Update.exe registers the update (the Updates key, KB 262841) and WMI's
    Win32_QuickFixEngineering lists it. The lab checks neither applicability nor file versions.

    Lab assumptions: the update lands under SP<n+1> of the host's Windows service pack (every lab template is
    SP2 of Windows and Exchange; TechNet aa998975 shows Exchange 2003 SP2 updates under "SP3"); the value names
    are the usual ones, not read off a real box; and the package replaces files the running SMTP service has
    open, so it needs a restart: 3010 with /norestart, otherwise the restart it would do is counted."""
    m = _PACKAGE.match(ntpath.basename(exe))
    switches = {a.lower() for a in argv}
    if not switches & _QUIET:
        return ERROR_INSTALL_USEREXIT, ""  # it would wait for a click; nobody clicks, as if cancelled
    kb = f"KB{m['kb']}"
    when = datetime.now(timezone.utc)
    product = _UPDATES_PRODUCT[m["product"].lower()]
    key = f"HKLM\\SOFTWARE\\Microsoft\\Updates\\{product}\\SP{int(host.os.get('service_pack_major') or 0) + 1}\\{kb}"
    host.registry.set(key, "Description", "REG_SZ", f"Hotfix for {product} ({kb})")
    host.registry.set(key, "InstalledBy", "REG_SZ", host.username)
    host.registry.set(key, "InstalledDate", "REG_SZ", f"{when.month}/{when.day}/{when.year}")
    cimv2 = next((v for k, v in host.wmi.items() if k.lower() == "root\\cimv2"), None)
    if cimv2 is None:
        cimv2 = host.wmi.setdefault("root\\cimv2", {})
    qfe = cimv2.setdefault("Win32_QuickFixEngineering", [])
    if not any(str(q.get("HotFixID", "")).upper() == kb for q in qfe):
        qfe.append({"HotFixID": kb, "Description": "Hotfix", "InstalledBy": host.username,
                    "InstalledOn": f"{when.month}/{when.day}/{when.year}"})
    if switches & _NO_RESTART:
        return ERROR_SUCCESS_REBOOT_REQUIRED, ""
    lab.metrics.bump(host.name, "reboots")
    return ERROR_SUCCESS, ""


PROGRAMS: dict[str, Callable] = {"msiexec.exe": msiexec, "netsh.exe": netsh}


def run(lab, host: HostState, exe: str, argv: list[str]) -> tuple[int, str]:
    name = ntpath.basename(exe).lower()
    if not name.endswith(".exe"):
        name += ".exe"
    program = PROGRAMS.get(name)
    if program is None and _PACKAGE.match(ntpath.basename(exe)) and ntpath.isabs(exe):
        program = functools.partial(hotfix_package, exe=exe)
    if program is None or (ntpath.isabs(exe) and not re.match(r"(?i)^[a-z]:\\windows\\system32\\", exe)
                           and resolve_file(lab, host, exe) is None):
        raise ProgramNotFound(exe)
    lab.metrics.record_process(host.name, [exe, *argv])
    return program(lab, host, list(argv))
