"""Programs the lab can run for the dispatcher's run_process: what each does to raw state.

Each emulation takes the host and the argument vector the program would get
(after CommandLineToArgvW) and returns (exit code, console output). They
change the same raw state a snapshot reads (WMI feature states, firewall
registry values, installed-update lists), so a fix is verified by reading,
never by the lab saying so. A program the lab does not know fails the way
Process.Start does for a missing file.
"""
from __future__ import annotations

import ntpath
import re
from typing import Callable

from lab import firewall
from lab.state import HostState

# msiexec exit codes (MSDN "MsiExec.exe and InstMsi.exe Error Messages").
ERROR_SUCCESS = 0
ERROR_INVALID_PARAMETER = 87
ERROR_UNKNOWN_PRODUCT = 1605
ERROR_UNKNOWN_FEATURE = 1606
ERROR_SUCCESS_REBOOT_REQUIRED = 3010
# Win32_SoftwareFeature.InstallState: 2 Absent, 3 Local.
_ABSENT, _LOCAL = 2, 3


class ProgramNotFound(Exception):
    """Process.Start's Win32Exception: 'The system cannot find the file specified'."""


def _properties(argv: list[str]) -> dict[str, str]:
    return {k.upper(): v for k, _, v in (a.partition("=") for a in argv if "=" in a and not a.startswith("/"))}


def msiexec(lab, host: HostState, argv: list[str]) -> tuple[int, str]:
    """msiexec /i {ProductCode} REMOVE=F1,F2 | ADDLOCAL=F1 /qn [REBOOT=ReallySuppress]: feature states change."""
    lowered = [a.lower() for a in argv]
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


def netsh(lab, host: HostState, argv: list[str]) -> tuple[int, str]:
    """netsh firewall add|set|delete portopening protocol=TCP port=25 [name=..] [mode=ENABLE] [scope=CUSTOM addresses=..]."""
    words = [a.lower() for a in argv if "=" not in a]
    if words[:1] != ["firewall"] or len(words) < 3 or words[2] != "portopening":
        return 1, "The following command was not found: " + " ".join(argv) + ".\r\n"
    props = {k.lower(): v for k, v in _properties(argv).items()}
    proto, port = props.get("protocol", "").upper(), props.get("port", "")
    if proto not in ("TCP", "UDP", "ALL") or not port.isdigit():
        return 1, "Invalid value specified.\r\n"
    rules = [r for r in firewall.open_ports(host.registry) if not (r["port"] == int(port) and r["protocol"] == proto)]
    existed = len(rules) != len(firewall.open_ports(host.registry))
    if words[1] == "delete":
        if not existed:
            return 1, "The system cannot find the file specified.\r\n"
    elif words[1] in ("add", "set"):
        if words[1] == "add" and existed:
            return 1, "An object with the same name already exists.\r\n"
        scope = {"all": "*", "subnet": "LocalSubnet", "custom": props.get("addresses", "*")}.get(props.get("scope", "all").lower(), "*")
        rules.append({"port": int(port), "protocol": proto, "scope": scope,
                      "enabled": props.get("mode", "enable").lower() == "enable", "name": props.get("name", "")})
    else:
        return 1, "The following command was not found: " + " ".join(argv) + ".\r\n"
    firewall.set_firewall(host.registry, firewall.enabled(host.registry), rules)
    return 0, "Ok.\r\n\r\n"


PROGRAMS: dict[str, Callable] = {"msiexec.exe": msiexec, "netsh.exe": netsh}


def run(lab, host: HostState, exe: str, argv: list[str]) -> tuple[int, str]:
    name = ntpath.basename(exe).lower()
    if not name.endswith(".exe"):
        name += ".exe"
    program = PROGRAMS.get(name)
    if program is None or (ntpath.isabs(exe) and not re.match(r"(?i)^[a-z]:\\windows\\system32\\", exe)
                           and host.files.read(exe) is None):
        raise ProgramNotFound(exe)
    lab.metrics.record_process(host.name, [exe, *argv])
    return program(lab, host, list(argv))
