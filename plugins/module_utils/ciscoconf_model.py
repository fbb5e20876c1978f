"""The model ciscoconf reads a Cisco config into: interfaces, inspections and where they are applied.

Callers use these names through ciscoconf (ciscoconf.Inspection, ciscoconf.ConfigError, ...). They
live in a module of their own because both readers build them: ciscoconf (IOS) and ciscoconf_mpf
(PIX/ASA). With the model here, every import is at the top of its module and none goes back:
ciscoconf -> ciscoconf_mpf -> ciscoconf_model, no cycle.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

SMTP_PORT = 25


class ConfigError(ValueError):
    """A config that cannot be read: empty, of no known platform, or one that holds no policies of its own (the
    system execution space of a multiple-context ASA/FWSM)."""


@dataclass(frozen=True)
class Interface:
    name: str                                # hardware name: "FastEthernet0/0", "Ethernet0/1", "ethernet0"
    nameif: str | None                       # PIX/ASA security name ("outside"); None on IOS
    addresses: tuple[tuple[str, str], ...]   # (ip, dotted mask); IOS secondaries included
    shutdown: bool
    zone: str | None = None                  # IOS zone-based firewall: ` zone-member security Z`


@dataclass(frozen=True)
class Binding:
    interface: str   # IOS interface, ASA nameif, "SRC->DST" zones of an IOS zone pair, or "*" for global
    # direction: "in" | "out" (IOS CBAC), "global" (PIX fixup, ASA global policy), "both" (ASA interface policy),
    # "zone-pair" (IOS zone-based: from a source-zone interface to a destination-zone one)
    direction: str


@dataclass(frozen=True)
class Inspection:
    platform: str
    rule: str                        # IOS rule name; "fixup protocol smtp"; "policy-map P / class C"
    protocol: str                    # "smtp" | "esmtp"
    line: str                        # the config line that turns it on, without indentation
    ports: tuple[int, ...]           # TCP ports it inspects; a PIX range "25-26" is expanded to (25, 26)
    bindings: tuple[Binding, ...]    # where it is applied; () = defined but not applied
    remediation: tuple[str, ...]     # config-mode lines that remove it, sub-mode lines indented
    # Access lists that must all permit a connection for this inspection to see it (an MPF class matching an ACL,
    # an IOS zone-based match-all class with `match access-group`): ({"acl": name, "entries": [...] or None when
    # the ACL is not defined}, ...); () = every connection on `ports`. Entries as ciscoconf_acl.access_lists gives them.
    scope: tuple[dict, ...] = ()
    policy: str | None = None        # the MPF / zone-based policy-map it belongs to (classes keep config order)

    @property
    def applied(self) -> bool:
        return bool(self.bindings)


@dataclass(frozen=True)
class DeviceConfig:
    platform: str
    hostname: str | None
    interfaces: dict[str, Interface] = field(hash=False)
    inspections: tuple[Inspection, ...]

    def interface_for(self, address: str) -> Interface | None:
        """The interface whose subnet holds this IPv4 address: the longest prefix, up interfaces first.
        ValueError for an address that is not IPv4."""
        ip = ipaddress.IPv4Address(address)
        best = None
        for iface in self.interfaces.values():
            for addr, mask in iface.addresses:
                net = ipaddress.IPv4Network(f"{addr}/{mask}", strict=False)
                rank = (not iface.shutdown, net.prefixlen)
                if ip in net and (best is None or rank > best[0]):
                    best = (rank, iface)
        return best[1] if best else None

    def smtp_inspections(self) -> tuple[Inspection, ...]:
        return tuple(i for i in self.inspections if i.protocol in ("smtp", "esmtp"))


@dataclass(frozen=True)
class IosPlan:
    commands: tuple[str, ...]       # config-mode lines that take SMTP inspection off (and add ESMTP)
    restore: tuple[str, ...]        # config-mode lines that put the original rules back
    rules: tuple[str, ...]          # rules the commands touch
    unknown_rules: tuple[str, ...]  # requested rules the config does not define


# ---- `ip address A M`: IOS interfaces and PIX 7+/ASA interface blocks write it alike -------------

_ADDRESS = re.compile(r"^ip\s+address\s+(\d+\.\d+\.\d+\.\d+)\s+(\d+\.\d+\.\d+\.\d+)", re.I)


def interface_address(text: str) -> tuple[str, str] | None:
    """(ip, dotted mask) of an `ip address A M ...` line; None for another line or a mask with holes."""
    m = _ADDRESS.match(text)
    if not m:
        return None
    try:
        ipaddress.IPv4Network(f"{m.group(1)}/{m.group(2)}", strict=False)
    except ValueError:  # not a contiguous netmask
        return None
    return m.group(1), m.group(2)
