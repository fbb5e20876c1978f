"""Firewalls between Exchange servers, as the detectors see them.

A firewall's facts are what `ciscoconf` parses out of its running config: its
interfaces and its SMTP inspections, with the exact lines that turn them on and
off. The config itself is never kept in the facts or the reports: running
configs carry secrets (type 7 passwords, SNMP communities, VPN keys).

Where the servers sit is the inventory's word when it gives one
(`mailflow_firewall_segments: {interface: [servers]}`, the network team's
cabling), otherwise the interface whose subnet holds the server's address. A
firewall is on the path from A to B when A and B sit behind different
interfaces of it.
"""
from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Any

from ansible_collections.mailflow.exchange.plugins.module_utils import ciscoconf

FACTS_SCHEMA = "mailflow.firewall/1"
SOURCES = ("device", "file")


def facts_from_config(name: str, text: str, *, source: str, platform: str | None = None,
                      segments: dict | None = None) -> dict[str, Any]:
    """The facts the audit keeps for one firewall (raises ciscoconf.ConfigError on a config it cannot read)."""
    cfg = ciscoconf.parse(text, platform)
    return {
        "schema": FACTS_SCHEMA, "name": name, "source": source, "error": None,
        "platform": cfg.platform, "hostname": cfg.hostname,
        "config_sha256": hashlib.sha256(text.encode("utf-8", "replace")).hexdigest(),
        "segments": {str(k): [str(h) for h in v] for k, v in (segments or {}).items()},
        "interfaces": {i.name: {"nameif": i.nameif, "addresses": [list(a) for a in i.addresses], "shutdown": i.shutdown,
                                "zone": i.zone}
                       for i in cfg.interfaces.values()},
        "inspections": [inspection_dict(i) for i in cfg.smtp_inspections()],
    }


def inspection_dict(i: "ciscoconf.Inspection") -> dict[str, Any]:
    return {"rule": i.rule, "protocol": i.protocol, "line": i.line, "ports": list(i.ports), "applied": i.applied,
            "bindings": [{"interface": b.interface, "direction": b.direction} for b in i.bindings],
            "remediation": list(i.remediation)}


def failed_facts(name: str, error: str, source: str, segments: dict | None = None) -> dict[str, Any]:
    return {"schema": FACTS_SCHEMA, "name": name, "source": source, "error": error, "platform": None,
            "segments": dict(segments or {}), "interfaces": {}, "inspections": []}


def check_segments(name: str, segments: Any) -> dict[str, list[str]]:
    """mailflow_firewall_segments must be {interface: [server, ...]}; the error names the firewall."""
    if segments in (None, ""):
        return {}
    if not isinstance(segments, dict) or not all(isinstance(v, list) and all(isinstance(h, str) for h in v)
                                                 for v in segments.values()):
        raise ValueError(f"{name}: mailflow_firewall_segments must map an interface name to a list of servers, "
                         f"got {segments!r}")
    return {str(k): list(v) for k, v in segments.items()}


SMTP_PORT = 25
# IOS accepts any unique prefix of an interface type; these are the ones configs and people write.
_IOS_ABBREVIATIONS = (("fa", "FastEthernet"), ("gi", "GigabitEthernet"), ("te", "TenGigabitEthernet"),
                      ("se", "Serial"), ("et", "Ethernet"), ("vl", "Vlan"), ("po", "Port-channel"),
                      ("tu", "Tunnel"), ("lo", "Loopback"), ("di", "Dialer"), ("bv", "BVI"))


def canonical_interface(name: str) -> str:
    """'Fa0/0' / 'fastethernet 0/0' -> 'fastethernet0/0' (lower-cased: a key, not a display name)."""
    text = str(name).replace(" ", "").lower()
    head = text.rstrip("0123456789/.:")
    for short, full in _IOS_ABBREVIATIONS:
        if head and head.startswith(short) and full.lower().startswith(head):
            return full.lower() + text[len(head):]
    return text


def _network(ip: str, mask: str):
    try:
        return ipaddress.IPv4Network(f"{ip}/{mask}", strict=False)
    except ValueError:  # an odd mask
        return None


def _address(text: str | None):
    try:
        return ipaddress.IPv4Address(str(text)) if text else None
    except ValueError:  # a host name, not an address
        return None


@dataclass(frozen=True)
class Crossing:
    """One breaking inspection a connection from src to dst meets on this firewall."""
    firewall: str
    platform: str
    rule: str
    protocol: str
    line: str
    interface: str      # where it is applied ("*" for a global one)
    direction: str
    remediation: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"firewall": self.firewall, "platform": self.platform, "rule": self.rule, "protocol": self.protocol,
                "line": self.line, "interface": self.interface, "direction": self.direction,
                "remediation": list(self.remediation)}


class Firewall:
    def __init__(self, facts: dict[str, Any]):
        self.facts = facts
        self.name: str = facts["name"]
        self.platform: str | None = facts.get("platform")
        self.error: str | None = facts.get("error")
        # Every name an interface goes by (IOS name or its abbreviation, PIX/ASA nameif) -> the interface's name.
        self._aliases: dict[str, str] = {}
        for iname, iface in (facts.get("interfaces") or {}).items():
            self._aliases[canonical_interface(iname)] = iname
            if iface.get("nameif"):
                self._aliases[str(iface["nameif"]).lower()] = iname
        self._segment_of_host = {h.lower(): self._alias(iface)
                                 for iface, hosts in (facts.get("segments") or {}).items() for h in hosts}
        # Longest prefix first, up interfaces before shut ones (as the router would route).
        self._subnets = sorted(((net, iface.get("shutdown", False), iname)
                                for iname, iface in (facts.get("interfaces") or {}).items()
                                for ip, mask in iface.get("addresses") or [] if (net := _network(ip, mask))),
                               key=lambda t: (-t[0].prefixlen, t[1]))
        self._bound: dict | None = None  # (interface, direction) -> crossings; knowledge is fleet-wide

    def _alias(self, name: str) -> str:
        return self._aliases.get(str(name).lower()) or self._aliases.get(canonical_interface(name), str(name))

    def unknown_segments(self) -> list[str]:
        """Segment keys (mailflow_firewall_segments) that name no interface or nameif of this config."""
        return sorted(k for k in (self.facts.get("segments") or {})
                      if str(k).lower() not in self._aliases and canonical_interface(k) not in self._aliases)

    def segment_of(self, names: tuple[str | None, ...], address: str | None) -> str | None:
        """The interface a server sits behind: the inventory's segments first, then the subnets."""
        for n in names:
            if n and n.lower() in self._segment_of_host:
                return self._segment_of_host[n.lower()]
        addr = _address(address)
        if addr is not None:
            for net, _, iname in self._subnets:
                if addr in net:
                    return iname
        return None

    def breaking(self, breaking: dict[str, list[str]]) -> list[dict]:
        """Applied inspections of the SMTP port whose protocol breaks ESMTP on this platform
        (knowledge cisco_breaking_inspections). An inspection of other ports only (PIX `fixup protocol
        smtp 2525` after `no fixup protocol smtp 25`) does not touch mail between Exchange servers."""
        protos = {p.lower() for p in breaking.get(self.platform or "", [])}
        return [i for i in self.facts.get("inspections") or []
                if i["applied"] and i["protocol"].lower() in protos and SMTP_PORT in (i.get("ports") or [SMTP_PORT])]

    def crossings(self, src_if: str, dst_if: str, breaking: dict[str, list[str]]) -> list[Crossing]:
        """What a connection entering at src_if and leaving at dst_if meets (src_if != dst_if)."""
        if self._bound is None:  # indexed once: a fleet asks this for every pair of servers
            self._bound = self._index(breaking)
        interfaces = self.facts.get("interfaces") or {}
        zones = f"{(interfaces.get(src_if) or {}).get('zone')}->{(interfaces.get(dst_if) or {}).get('zone')}"
        out, seen = [], set()
        for key in (("*", "global"), (src_if, "in"), (dst_if, "out"), (src_if, "both"), (dst_if, "both"),
                    (zones, "zone-pair")):
            for c in self._bound.get(key, ()):
                if c.line not in seen:     # one crossing per inspection, however many bindings match
                    seen.add(c.line)
                    out.append(c)
        return out

    def _index(self, breaking: dict[str, list[str]]) -> dict[tuple[str, str], list[Crossing]]:
        """(interface, direction) -> the breaking inspections bound there ("in": inspected as it enters
        from the sender; "out": as it leaves towards the receiver; "both": an ASA interface policy;
        ("SRC->DST", "zone-pair"): from an interface in zone SRC to one in zone DST)."""
        bound: dict[tuple[str, str], list[Crossing]] = {}
        for insp in self.breaking(breaking):
            for b in insp["bindings"]:
                where = {"global": "*", "zone-pair": b["interface"]}.get(b["direction"]) or self._alias(b["interface"])
                bound.setdefault((where, b["direction"]), []).append(
                    Crossing(self.name, self.platform or "?", insp["rule"], insp["protocol"], insp["line"],
                             b["interface"], b["direction"], tuple(insp["remediation"])))
        return bound
