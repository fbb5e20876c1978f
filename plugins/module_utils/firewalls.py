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

from ansible_collections.mailflow.exchange.plugins.module_utils import ciscoconf, ciscoconf_acl

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
            "remediation": list(i.remediation), "policy": i.policy,
            # The ACL entries travel as lists (JSON); the config lines they came from stay out of the facts.
            "scope": [{"acl": c["acl"], "entries": None if c["entries"] is None else
                       [{k: v for k, v in e.items() if k != "line"} for e in c["entries"]]} for c in i.scope]}


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
    scope: str = ""     # for an ACL-scoped inspection: what its ACL says of this connection

    def to_dict(self) -> dict[str, Any]:
        out = {"firewall": self.firewall, "platform": self.platform, "rule": self.rule, "protocol": self.protocol,
               "line": self.line, "interface": self.interface, "direction": self.direction,
               "remediation": list(self.remediation)}
        if self.scope:
            out["scope"] = self.scope
        return out


MPF_PLATFORMS = ("pix", "asa", "fwsm")  # PIX 7+, ASA and FWSM 3 policies; their PIX 6 / FWSM 2 fixups are global


def scope_match(insp: dict, src: str | None, dst: str | None) -> tuple[bool | None, str]:
    """(does this inspection's class take a connection src -> dst:25?, what its ACLs say). True for an unscoped
    inspection; None ("maybe") when an address is unknown, an ACL is not defined or an entry is unresolved."""
    verdicts, notes = [], []
    for cond in insp.get("scope") or []:
        verdict = ciscoconf_acl.permits(cond.get("entries"), _ip_text(src), _ip_text(dst))
        verdicts.append(verdict)
        what = {True: "permits", False: "does not permit", None: "may permit"}[verdict]
        why = "" if verdict is not None else (" (not defined in the config)" if cond.get("entries") is None else
                                              " (an address is unknown or an entry is not resolved)")
        notes.append(f"access-list {cond['acl']} {what} {src or '?'} -> {dst or '?'}:25{why}")
    if False in verdicts:
        return False, "; ".join(notes)
    return (None if None in verdicts else True), "; ".join(notes)


def _ip_text(text: str | None) -> str | None:
    return str(addr) if (addr := _address(text)) is not None else None


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
            for net, _unused, iname in self._subnets:
                if addr in net:
                    return iname
        return None

    def _smtp(self) -> list[dict]:
        """Applied SMTP/ESMTP inspections that cover the SMTP port, breaking or not, in config order. An inspection
        of other ports only (PIX `fixup protocol smtp 2525` after `no fixup protocol smtp 25`) does not touch mail
        between Exchange servers."""
        return [i for i in self.facts.get("inspections") or []
                if i["applied"] and SMTP_PORT in (i.get("ports") or [SMTP_PORT])]

    def breaking(self, breaking: dict[str, list[str]]) -> list[dict]:
        """Applied inspections of the SMTP port whose protocol breaks ESMTP on this platform
        (knowledge cisco_breaking_inspections)."""
        protos = {p.lower() for p in breaking.get(self.platform or "", [])}
        return [i for i in self._smtp() if i["protocol"].lower() in protos]

    def crossings(self, src_if: str, dst_if: str, breaking: dict[str, list[str]],
                  src: str | None = None, dst: str | None = None) -> list[Crossing]:
        """The breaking inspections a connection from src (behind src_if) to dst:25 (behind dst_if) meets."""
        protos = {p.lower() for p in breaking.get(self.platform or "", [])}
        met = self._mpf(src_if, dst_if, src, dst) if self.platform in MPF_PLATFORMS else self._ios(src_if, dst_if, src, dst)
        out, seen = [], set()
        for insp, binding, scope in met:
            if insp["protocol"].lower() in protos and insp["line"] + insp["rule"] not in seen:
                seen.add(insp["line"] + insp["rule"])  # one crossing per inspection, however many bindings match
                out.append(Crossing(self.name, self.platform or "?", insp["rule"], insp["protocol"], insp["line"],
                                    binding["interface"], binding["direction"], tuple(insp["remediation"]), scope))
        return out

    def _ios(self, src_if, dst_if, src, dst):
        """CBAC: a rule applied `in` on the sender's interface or `out` on the receiver's. Zone-based: a zone pair from
        the sender's zone to the receiver's, for the classes whose access lists take the connection."""
        interfaces = self.facts.get("interfaces") or {}
        zones = f"{(interfaces.get(src_if) or {}).get('zone')}->{(interfaces.get(dst_if) or {}).get('zone')}"
        met = []
        for insp in self._smtp():
            for b in insp["bindings"]:
                where = (b["direction"] == "in" and self._alias(b["interface"]) == src_if) or \
                        (b["direction"] == "out" and self._alias(b["interface"]) == dst_if) or \
                        (b["direction"] == "zone-pair" and b["interface"] == zones) or b["direction"] == "global"
                if not where:
                    continue
                verdict, scope = scope_match(insp, src, dst)
                if verdict is not False:
                    met.append((insp, b, scope))
        return met

    def _mpf(self, src_if, dst_if, src, dst):
        """PIX 6 fixups: every connection on their ports. MPF (ASA CLI configuration guide, "Service Policy
        Guidelines" and "Feature Matching"): application inspection applies on the ingress of every interface for a
        global policy and both ways for an interface policy; an interface policy that has SMTP inspection takes
        precedence over the global one for that interface ("if you have a global policy with FTP inspection, and an
        interface policy with FTP inspection, then only the interface policy FTP inspection is applied to that
        interface"); within a policy the first class that matches the connection decides; a connection matched on
        one interface is not inspected again by the other ("only the first policy is used")."""
        smtp = self._smtp()
        met = [(i, b, "") for i in smtp if i.get("policy") is None for b in i["bindings"] if b["direction"] == "global"]
        by_policy: dict[str, list[dict]] = {}
        for insp in smtp:
            if insp.get("policy") is not None:
                by_policy.setdefault(insp["policy"], []).append(insp)
        global_policy = next((p for p, ins in by_policy.items() if any(b["direction"] == "global" for b in ins[0]["bindings"])), None)
        on_interface = {self._alias(b["interface"]): (p, b) for p, ins in by_policy.items()
                        for b in ins[0]["bindings"] if b["direction"] == "both"}

        def first(policy, binding):
            for insp in by_policy.get(policy, []):
                verdict, scope = scope_match(insp, src, dst)
                if verdict is not False:
                    return insp, binding or next(b for b in insp["bindings"] if b["direction"] == "global"), scope
            return None

        ingress = on_interface.get(src_if) or ((global_policy, None) if global_policy else None)
        hit = first(*ingress) if ingress else None
        if hit is None and dst_if in on_interface:
            hit = first(*on_interface[dst_if])
        return met + ([hit] if hit else [])
