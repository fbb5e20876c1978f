"""Access lists for ciscoconf: what a class that matches an access list lets an inspection see.

An MPF class-map (`match access-list ACL`, PIX 7+/ASA/FWSM) or an IOS zone-based
`match-all` class (`match access-group ACL` beside `match protocol smtp`) limits its
inspection to the traffic the ACL permits (Cisco ASA CLI configuration guide, "Identify
Traffic (Layer 3/4 Class Maps)": traffic the ACL permits matches; denied traffic does not).
This module reads the ACLs and says, for one TCP connection to port 25, whether the
ACL permits it - first matching entry wins, no match is the implicit deny.

Read: ASA/PIX/FWSM `access-list NAME [line N] [extended] permit|deny PROTO SRC [SPORT] DST
[DPORT]` (netmasks; `host`, `any`/`any4`, `object`, `object-group`, `interface`), `names`
aliases (`name A NAME`), `object network` (host/subnet/range) and `object-group network`
(network-object/group-object); IOS numbered (`access-list 101 ...`, standard 1-99 and
1300-1999) and named (`ip access-list extended|standard NAME`) lists with wildcard masks,
and IOS `object-group network`. An entry naming something this reader cannot resolve
(a service object-group, an `interface` address, an unknown object) is kept as
`unresolved`: the evaluation then answers "maybe", and the caller treats it as a match
(it cannot rule the traffic out). NAT is not modelled: addresses are compared as the
config writes them.
"""
from __future__ import annotations

import ipaddress
import re

SMTP_PORT = 25
_PORT_NAMES = {"smtp": SMTP_PORT}  # every other port name is some other port
_ANY = ("0.0.0.0", "0.0.0.0")      # (address, care mask): any address


def _ip(token: str) -> int | None:
    try:
        return int(ipaddress.IPv4Address(token))
    except ValueError:
        return None


def _dotted(value: int) -> str:
    return str(ipaddress.IPv4Address(value & 0xFFFFFFFF))


def _port(token: str) -> int | None:
    return int(token) if token.isdigit() else _PORT_NAMES.get(token.lower(), -1)


class _Reader:
    """Reads one config's address objects and access lists (ASA-style netmasks, or IOS wildcards)."""

    def __init__(self, items, wildcard: bool):
        self.wildcard = wildcard
        self.names: dict[str, str] = {}
        self.objects: dict[str, list] = {}       # object network / object-group network -> [(addr, care)] or None
        self.services: set[str] = set()          # object-group service / port groups (not resolved)
        self.acls: dict[str, list[dict]] = {}
        groups: dict[str, list[str]] = {}
        for item in items:
            text, children = item.text, [c.text for c in item.child_objs]
            if m := re.match(r"^name\s+(\d+\.\d+\.\d+\.\d+)\s+(\S+)", text, re.I):
                self.names[m.group(2)] = m.group(1)
            elif m := re.match(r"^object\s+network\s+(\S+)", text, re.I):
                # ASA 8.3+ repeats `object network X` for its NAT line: a block without addresses adds none.
                found = self._object(children)
                if found != [] or m.group(1) not in self.objects:
                    self.objects[m.group(1)] = found
            elif m := re.match(r"^object-group\s+network\s+(\S+)", text, re.I):
                groups[m.group(1)] = children
            elif m := re.match(r"^object-group\s+(?:service|protocol|icmp-type)\s+(\S+)", text, re.I):
                self.services.add(m.group(1))
            elif m := re.match(r"^object\s+service\s+(\S+)", text, re.I):
                self.services.add(m.group(1))
        for name in groups:
            self.objects[name] = self._group(name, groups, set())
        for item in items:
            text = item.text
            if m := re.match(r"^access-list\s+(\S+)\s+(?:line\s+\d+\s+)?(.*)$", text, re.I):
                self._entry(m.group(1), m.group(2))
            elif m := re.match(r"^ip\s+access-list\s+(extended|standard)\s+(\S+)", text, re.I):
                for child in item.child_objs:
                    body = re.sub(r"^\d+\s+", "", child.text)
                    self._entry(m.group(2), body if m.group(1).lower() == "extended" else f"standard {body}")

    # -- addresses: (address, care mask) pairs; care bits must equal; None = cannot be resolved

    def _net(self, addr: str, mask: str):
        a, mk = _ip(self.names.get(addr, addr)), _ip(mask)
        if a is None or mk is None:
            return None
        care = (mk ^ 0xFFFFFFFF) if self.wildcard else mk  # a wildcard mask: the bits to ignore
        return (_dotted(a & care), _dotted(care))

    def _object(self, children: list[str]):
        out = []
        for child in children:
            words = child.split()
            if len(words) == 2 and words[0].lower() == "host" and _ip(words[1]) is not None:
                out.append((words[1], "255.255.255.255"))
            elif len(words) == 3 and words[0].lower() == "subnet":
                net = _plain_net(words[1], words[2])
                out.append(net) if net else None
            elif len(words) == 3 and words[0].lower() == "range":
                lo, hi = _ip(words[1]), _ip(words[2])
                if lo is None or hi is None:
                    return None
                out += [(str(n.network_address), str(n.netmask))
                        for n in ipaddress.summarize_address_range(ipaddress.IPv4Address(lo), ipaddress.IPv4Address(hi))]
            elif words and words[0].lower() in ("fqdn", "nat"):
                return None if words[0].lower() == "fqdn" else out
        return out

    def _group(self, name: str, groups: dict, seen: set):
        out = []
        for child in groups.get(name, []):
            words = child.split()
            head = words[0].lower() if words else ""
            if head == "description":
                continue
            if head == "network-object" and len(words) == 3 and words[1].lower() == "host":
                out.append((self.names.get(words[2], words[2]), "255.255.255.255"))
            elif head == "network-object" and len(words) == 3 and words[1].lower() == "object":
                sub = self.objects.get(words[2])
                if sub is None:
                    return None
                out += sub
            elif head == "network-object" and len(words) == 3:
                net = _plain_net(self.names.get(words[1], words[1]), words[2])
                if net is None:
                    return None
                out.append(net)
            elif head == "group-object" and len(words) == 2 and words[1] not in seen:
                sub = self._group(words[1], groups, seen | {name})
                if sub is None:
                    return None
                out += sub
            elif head == "host" and len(words) == 2:   # IOS object-group network
                out.append((words[1], "255.255.255.255"))
            elif head == "range" and len(words) == 3:
                net = self._object([child])
                if net is None:
                    return None
                out += net
            elif len(words) == 2 and _ip(words[0]) is not None:  # IOS: A MASK
                net = _plain_net(words[0], words[1])
                if net is None:
                    return None
                out.append(net)
            else:
                return None
        return out

    def _address(self, words: list[str], i: int):
        """(list of (addr, care) or None when unresolved, index after the address)."""
        if i >= len(words):
            return None, i
        w = words[i].lower()
        if w in ("any", "any4"):
            return [_ANY], i + 1
        if w == "host" and i + 1 < len(words):
            addr = self.names.get(words[i + 1], words[i + 1])
            return ([(addr, "255.255.255.255")] if _ip(addr) is not None else None), i + 2
        if w in ("object", "object-group") and i + 1 < len(words):
            return self.objects.get(words[i + 1]), i + 2
        if w == "interface" and i + 1 < len(words):
            return None, i + 2
        if i + 1 < len(words) and _ip(self.names.get(words[i], words[i])) is not None and _ip(words[i + 1]) is not None:
            net = self._net(words[i], words[i + 1])
            return ([net] if net else None), i + 2
        if _ip(self.names.get(words[i], words[i])) is not None:  # IOS standard: a bare address is a host
            return [(self.names.get(words[i], words[i]), "255.255.255.255")], i + 1
        return None, i + 1

    def _ports(self, words: list[str], i: int):
        """([(low, high)] or None for any port, or "unresolved", index after the port spec)."""
        if i >= len(words):
            return None, i
        op = words[i].lower()
        nums = []
        if op in ("eq", "neq", "lt", "gt") and i + 1 < len(words):
            p = _port(words[i + 1])
            ranges = {"eq": [(p, p)], "neq": [(0, p - 1), (p + 1, 65535)], "lt": [(0, p - 1)], "gt": [(p + 1, 65535)]}[op]
            if op == "eq":  # IOS allows several: eq 25 587
                j = i + 2
                while j < len(words) and (words[j].isdigit() or words[j].lower() in _PORT_NAMES):
                    nums.append((_port(words[j]), _port(words[j])))
                    j += 1
                return ranges + nums, j
            return ranges, i + 2
        if op == "range" and i + 2 < len(words):
            return [(_port(words[i + 1]), _port(words[i + 2]))], i + 3
        if op in ("object-group", "object") and i + 1 < len(words) and words[i + 1] in self.services:
            return "unresolved", i + 2
        return None, i

    def _entry(self, name: str, body: str) -> None:
        words = body.split()
        if not words:
            return
        head = words[0].lower()
        acl = self.acls.setdefault(name, [])
        if head in ("remark", "description"):
            return
        standard = head == "standard" or (name.isdigit() and (1 <= int(name) <= 99 or 1300 <= int(name) <= 1999))
        if head in ("standard", "extended"):
            words = words[1:]
        if not words or words[0].lower() not in ("permit", "deny"):
            return
        action, rest = words[0].lower(), words[1:]
        entry = {"action": action, "line": f"access-list {name} {body}".strip()}
        if standard:  # source only
            src, _unused = self._address(rest, 0)
            acl.append(dict(entry, src=src, dst=[_ANY], ports=None, unresolved=src is None))
            return
        if not rest:
            return
        proto = rest[0].lower()
        i = 1
        unresolved = False
        if proto in ("object-group", "object"):
            unresolved, i = True, 2
        elif proto not in ("ip", "tcp", "6", "ipinip") and not proto.isdigit():
            return  # udp, icmp, ...: never an SMTP connection
        elif proto.isdigit() and proto not in ("0", "6"):
            return
        src, i = self._address(rest, i)
        sports, i = self._ports(rest, i)
        dst, i = self._address(rest, i)
        dports, i = self._ports(rest, i)
        unresolved = unresolved or src is None or dst is None or dports == "unresolved" or sports == "unresolved"
        acl.append(dict(entry, src=src, dst=dst, ports=None if dports == "unresolved" else dports,
                        unresolved=unresolved))


def _plain_net(addr: str, mask: str):
    a, mk = _ip(addr), _ip(mask)
    return None if a is None or mk is None else (_dotted(a & mk), _dotted(mk))


def access_lists(items, platform: str) -> dict[str, list[dict]]:
    """{ACL name: [entry]} from a config's top-level items; IOS reads wildcard masks, the firewalls netmasks.
    An entry: {"action", "line", "src", "dst" ([(address, care mask)], None when unresolved), "ports"
    ([(low, high)] of the destination port, None for any), "unresolved"}. Entries that can never carry a TCP
    connection (udp, icmp, ...) are left out."""
    return _Reader(items, wildcard=platform == "ios").acls


def _in(address: str, nets) -> bool | None:
    if nets is None:
        return None
    ip = _ip(address)
    return any((ip & _ip(care)) == (_ip(net) & _ip(care)) for net, care in nets)


def permits(entries: list[dict] | None, src: str | None, dst: str | None, port: int = SMTP_PORT) -> bool | None:
    """Does this ACL permit TCP src -> dst:port? True/False, or None ("maybe") when an unresolved entry or an
    unknown address stands before the decision. An ACL that is not defined (None) is None too."""
    if entries is None:
        return None
    uncertain: set[str] = set()  # actions of earlier entries that might match
    for e in entries:
        if e["ports"] is not None and not any(lo <= port <= hi for lo, hi in e["ports"]):
            continue
        hits = [None if a is None else _in(a, nets) for a, nets in ((src, e["src"]), (dst, e["dst"]))]
        if False in hits:
            continue
        if None in hits or e.get("unresolved"):
            uncertain.add(e["action"])
            continue
        return (e["action"] == "permit") if uncertain <= {e["action"]} else None
    return False if uncertain <= {"deny"} else None
