"""Cisco IOS, PIX and ASA running configs: which SMTP inspections they turn on, and the IOS fix.

KB 919091 cause 5: SMTP inspection on a Cisco device between Exchange servers
breaks ESMTP (masked banner, "500" to EHLO). This module reads a config as the
device shows it (`show running-config` / `write terminal`) into interfaces and
SMTP/ESMTP inspections, and plans the IOS CBAC change. Pure: it talks to no
device. Independent of the lab's own reading (lab/smtp/inspection.py).

The hierarchy comes from ansible.netcommon's NetworkConfig (indentation gives
parents; `!` and `:` lines are comments; "Building configuration..." and
"Current configuration : N bytes" are dropped). What it does not know is
removed first: CRLF, and IOS multi-line banners (`banner motd ^C` ... `^C`),
whose text is not config. Regexes read single lines only.

- IOS CBAC: `ip inspect name R smtp|esmtp [options]` defines; ` ip inspect R in|out`
  under `interface` applies. ZBF: ` match protocol smtp [extended]` in a
  `class-map type inspect`, inspected by a `policy-map type inspect` class,
  applied by a `zone-pair security`.
- PIX 6: `fixup protocol smtp PORT[-PORT]` (Mailguard), global. It is on by default,
  and a full PIX 6 config always lists it, `no fixup protocol smtp 25` when off;
  a config without either line is a fragment and reports nothing.
- ASA and PIX 7+ (Modular Policy Framework): `inspect esmtp|smtp` in a class of a
  `policy-map`, applied by `service-policy P global|interface NAMEIF`. The default
  `global_policy` / `class inspection_default` has `inspect esmtp` (ASA CLI Configuration
  Guide, default service policy). `policy-map type inspect esmtp` maps are parameters only.

Names (rules, maps, nameifs) are compared case-sensitively, as the devices treat
names; keywords are matched case-insensitively.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from ansible_collections.ansible.netcommon.plugins.module_utils.network.common.config import NetworkConfig

PLATFORMS = ("ios", "pix", "asa")
SMTP_PORT = 25
_PORT_NAMES = {"smtp": SMTP_PORT}  # ASA prints well-known ports by name ("match port tcp eq smtp")
# Replaces NetworkConfig's defaults ("#", "!", "/*", "*/", "echo"): ASA/PIX comments start with ":".
_COMMENT_TOKENS = ["!", ":", "#"]


class ConfigError(ValueError):
    """A config that cannot be read: empty, or of no known platform."""


@dataclass(frozen=True)
class Interface:
    name: str                                # hardware name: "FastEthernet0/0", "Ethernet0/1", "ethernet0"
    nameif: str | None                       # PIX/ASA security name ("outside"); None on IOS
    addresses: tuple[tuple[str, str], ...]   # (ip, dotted mask); IOS secondaries included
    shutdown: bool


@dataclass(frozen=True)
class Binding:
    interface: str   # IOS interface, ASA nameif, "zone-pair SRC->DST", or "*" for global
    direction: str   # "in" | "out" (IOS CBAC), "global" (PIX fixup, ASA global policy), "both"


@dataclass(frozen=True)
class Inspection:
    platform: str
    rule: str                        # IOS rule name; "fixup protocol smtp"; "policy-map P / class C"
    protocol: str                    # "smtp" | "esmtp"
    line: str                        # the config line that turns it on, without indentation
    ports: tuple[int, ...]           # TCP ports it inspects; a PIX range "25-26" is expanded to (25, 26)
    bindings: tuple[Binding, ...]    # where it is applied; () = defined but not applied
    remediation: tuple[str, ...]     # config-mode lines that remove it, sub-mode lines indented

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


# ---- text -> top-level ConfigLines ------------------------------------------------------------

_BANNER = re.compile(r"^banner(?:\s+(?:motd|login|exec|incoming|slip-ppp|prompt-timeout|config-save))?"
                     r"\s+(\^C|\S)(.*)$", re.I)
_IOS_MARK = re.compile(r"^(?:version \d+\.\d+|Building configuration|Current configuration\b|Using \d+ out of)", re.M)
_PIX_MARK = re.compile(r"^PIX Version \d", re.M)
_ASA_MARK = re.compile(r"^ASA Version \d", re.M)


def _lines(text: str, any_delimiter: bool) -> list[str]:
    """Lines without CRs, banner bodies or macro bodies. IOS shows a banner's delimiter as
    "^C" (a saved file may hold the raw ETX); typed, any character delimits it, so `any_delimiter`
    is for IOS only: an ASA `banner motd text` is one line per line of banner."""
    out: list[str] = []
    closes = None  # inside a banner or macro: does this line end it?
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if closes is not None:
            if closes(line):
                closes = None
            continue
        if line[:1].isspace():
            out.append(line)
            continue
        m = _BANNER.match(line)
        if m and (any_delimiter or m.group(1) in ("^C", "\x03")):
            if m.group(1) not in m.group(2):
                closes = lambda body, delimiter=m.group(1): delimiter in body  # noqa: E731
            continue
        if any_delimiter and re.match(r"macro\s+name\s", line, re.I):
            # a switch macro's body is unindented commands, up to a line "@": not this device's config
            closes = lambda body: body.strip() == "@"  # noqa: E731
            continue
        out.append(line)
    return out


def _top_level(text: str, platform: str):
    config = NetworkConfig(indent=1, contents="\n".join(_lines(text, platform == "ios")),
                           comment_tokens=_COMMENT_TOKENS)
    # An indented line with no parent above it (a pasted fragment) is not top-level.
    return [item for item in config.items if not item.has_parents and not item.raw[:1].isspace()]


def platform_of(text: str) -> str | None:
    body = "\n".join(_lines(text or "", any_delimiter=False))
    if _PIX_MARK.search(body):
        return "pix"
    if _ASA_MARK.search(body):
        return "asa"
    if _IOS_MARK.search(body):
        return "ios"
    return None


def parse(text: str, platform: str | None = None) -> DeviceConfig:
    if platform is None:
        if not (text or "").strip():
            raise ConfigError("empty configuration")
        platform = platform_of(text)
        if platform is None:
            raise ConfigError("not a Cisco IOS, PIX or ASA configuration (no version line)")
    platform = platform.lower()
    if platform not in PLATFORMS:
        raise ConfigError(f"unknown platform {platform!r}; expected one of {', '.join(PLATFORMS)}")
    items = _top_level(text or "", platform)
    hostname = next((i.text.split()[1] for i in items if re.match(r"hostname\s+\S", i.text, re.I)), None)
    if platform == "ios":
        interfaces, inspections = _ios(items)
    else:  # PIX 6 fixups and PIX 7+/ASA policy-maps never share a config; reading both covers either
        interfaces, inspections = _firewall(items, platform)
    return DeviceConfig(platform, hostname, interfaces, tuple(inspections))


# ---- IOS ----------------------------------------------------------------------------------------

_ADDRESS = re.compile(r"^ip\s+address\s+(\d+\.\d+\.\d+\.\d+)\s+(\d+\.\d+\.\d+\.\d+)", re.I)
_CBAC_RULE = re.compile(r"^(no\s+)?ip\s+inspect\s+name\s+(\S+)(?:\s+parameter\s+max-sessions\s+\d+)?"
                        r"(?:\s+(\S+))?", re.I)
_CBAC_APPLY = re.compile(r"^ip\s+inspect\s+(\S+)\s+(in|out)\b", re.I)
_PORT_MAP = re.compile(r"^ip\s+port-map\s+smtp\s+port\s+(?:tcp\s+)?(.*)$", re.I)
_ZBF_CLASS = re.compile(r"^class-map\s+type\s+inspect\s+(?:match-(?:any|all)\s+)?(\S+)$", re.I)
_ZBF_MATCH = re.compile(r"^match\s+protocol\s+smtp(\s+extended)?$", re.I)
_ZBF_NESTED = re.compile(r"^match\s+class-map\s+(\S+)$", re.I)
_ZBF_POLICY = re.compile(r"^policy-map\s+type\s+inspect\s+(\S+)$", re.I)
_ZBF_POLICY_CLASS = re.compile(r"^class\s+type\s+inspect\s+(\S+)$", re.I)
_ZBF_PAIR = re.compile(r"^zone-pair\s+security\s+\S+\s+source\s+(\S+)\s+destination\s+(\S+)", re.I)
_ZBF_SERVICE = re.compile(r"^service-policy\s+type\s+inspect\s+(\S+)$", re.I)


def _address(text: str) -> tuple[str, str] | None:
    m = _ADDRESS.match(text)
    if not m:
        return None
    try:
        ipaddress.IPv4Network(f"{m.group(1)}/{m.group(2)}", strict=False)
    except ValueError:  # not a contiguous netmask
        return None
    return m.group(1), m.group(2)


def _cbac_rules(items) -> dict[str, dict[str, str]]:
    """CBAC rule name -> {protocol: the line defining it}, in config order. `no` lines (not in a
    running config, but in pasted ones) take a protocol, or the whole rule, back out."""
    rules: dict[str, dict[str, str]] = {}
    for item in items:
        m = _CBAC_RULE.match(item.text)
        if not m:
            continue
        negated, name, protocol = m.group(1), m.group(2), (m.group(3) or "").lower()
        if negated:
            if protocol:
                rules.get(name, {}).pop(protocol, None)
            else:
                rules.pop(name, None)
        elif protocol:
            rules.setdefault(name, {})[protocol] = item.text
    return rules


def _cbac_bindings(items) -> dict[str, list[Binding]]:
    """CBAC rule name -> the interfaces (and directions) ` ip inspect R in|out` applies it on."""
    bindings: dict[str, list[Binding]] = {}
    for item in items:
        if re.match(r"interface\s+\S", item.text, re.I):
            for child in item.child_objs:
                if m := _CBAC_APPLY.match(child.text):
                    bindings.setdefault(m.group(1), []).append(Binding(item.text.split()[1], m.group(2).lower()))
    return bindings


def _port_map(spec: str) -> list[int]:
    """Ports of `ip port-map smtp port [tcp] N [N...] | from A to B [list ACL]` (PAM adds them to 25)."""
    numbers = [int(n) for n in spec.split(" list ")[0].split() if n.isdigit()]
    if spec.lstrip().lower().startswith("from ") and len(numbers) >= 2:
        return list(range(numbers[0], numbers[1] + 1))
    return numbers


def _ios(items):
    interfaces: dict[str, Interface] = {}
    cbac_bindings = _cbac_bindings(items)
    smtp_ports = [SMTP_PORT]
    class_maps: dict[str, tuple[str, list]] = {}     # name -> (header line, children)
    policies: dict[str, list[tuple[str, bool]]] = {}  # name -> [(class, inspects?)]
    pairs: dict[str, list[Binding]] = {}              # policy -> zone-pair bindings
    for item in items:
        text = item.text
        if re.match(r"interface\s+\S", text, re.I):
            name = text.split()[1]
            children = [c.text for c in item.child_objs]
            interfaces[name] = Interface(name, None, tuple(a for a in map(_address, children) if a),
                                         any(c.lower() == "shutdown" for c in children))
        elif m := _PORT_MAP.match(text):
            smtp_ports += [p for p in _port_map(m.group(1)) if p not in smtp_ports]
        elif m := _ZBF_CLASS.match(text):
            class_maps[m.group(1)] = (text, [c.text for c in item.child_objs])
        elif m := _ZBF_POLICY.match(text):
            policies[m.group(1)] = [
                (cm.group(1), any(re.match(r"inspect(\s|$)", g.text, re.I) for g in c.child_objs))
                for c in item.child_objs if (cm := _ZBF_POLICY_CLASS.match(c.text))]
        elif m := _ZBF_PAIR.match(text):
            for child in item.child_objs:
                if sm := _ZBF_SERVICE.match(child.text):
                    pairs.setdefault(sm.group(1), []).append(Binding(f"zone-pair {m.group(1)}->{m.group(2)}", "both"))
    ports = tuple(smtp_ports)
    inspections = [
        Inspection("ios", name, protocol, line, ports, tuple(cbac_bindings.get(name, ())),
                   (f"no ip inspect name {name} {protocol}",))
        for name, protocols in _cbac_rules(items).items()
        for protocol, line in protocols.items() if protocol in ("smtp", "esmtp")]

    def smtp_matches(class_name, seen):
        """(class-map header, match line, protocol) for the SMTP matches a class-map holds, nested ones too."""
        header, children = class_maps.get(class_name, (None, []))
        found = []
        for child in children:
            if m := _ZBF_MATCH.match(child):
                found.append((header, child, "esmtp" if m.group(1) else "smtp"))
            elif (m := _ZBF_NESTED.match(child)) and m.group(1) not in seen:
                found += smtp_matches(m.group(1), seen | {m.group(1)})
        return found

    for policy, classes in policies.items():
        for class_name, inspects in classes:
            for header, match_line, protocol in (smtp_matches(class_name, {class_name}) if inspects else ()):
                inspections.append(Inspection(
                    "ios", f"policy-map type inspect {policy} / class {class_name}", protocol, match_line, ports,
                    tuple(pairs.get(policy, ())), (header, f" no {match_line}")))
    return interfaces, inspections


# ---- PIX / ASA ----------------------------------------------------------------------------------

_FIXUP = re.compile(r"^(no\s+)?fixup\s+protocol\s+smtp(?:\s+(\d+)(?:-(\d+))?)?\s*$", re.I)
_PIX6_INTERFACE = re.compile(r"^interface\s+(\S+)(.*)$", re.I)
_PIX6_NAMEIF = re.compile(r"^nameif\s+(\S+)\s+(\S+)", re.I)
_PIX6_ADDRESS = re.compile(r"^ip\s+address\s+(\S+)\s+(\d+\.\d+\.\d+\.\d+\s+\d+\.\d+\.\d+\.\d+)", re.I)
_MPF_CLASS = re.compile(r"^class-map\s+(?!type\s)(\S+)$", re.I)
_MPF_PORT = re.compile(r"^match\s+port\s+tcp\s+(?:eq\s+(\S+)|range\s+(\S+?)(?:-|\s+)(\S+))$", re.I)
_MPF_POLICY = re.compile(r"^policy-map\s+(?!type\s)(\S+)$", re.I)
_MPF_POLICY_CLASS = re.compile(r"^class\s+(\S+)$", re.I)
_MPF_INSPECT = re.compile(r"^(no\s+)?inspect\s+(esmtp|smtp)(?:\s+\S+)?$", re.I)
_MPF_SERVICE = re.compile(r"^service-policy\s+(\S+)\s+(?:(global)|interface\s+(\S+))", re.I)


def _port(token: str) -> int | None:
    return int(token) if token.isdigit() else _PORT_NAMES.get(token.lower())


def _class_ports(children: list[str]) -> tuple[int, ...]:
    """Ports a class-map's `match port tcp` lines name; SMTP's own port for default-inspection-traffic,
    `any` and access-list matches (the inspection engine then picks SMTP by port 25)."""
    ports: list[int] = []
    for child in children:
        m = _MPF_PORT.match(child)
        if m and m.group(1) and _port(m.group(1)) is not None:
            ports.append(_port(m.group(1)))
        elif m and m.group(2) and None not in (_port(m.group(2)), _port(m.group(3))):
            ports += range(_port(m.group(2)), _port(m.group(3)) + 1)
    return tuple(dict.fromkeys(ports)) or (SMTP_PORT,)


def _firewall(items, platform: str):
    hardware: dict[str, dict] = {}      # name -> {"nameif", "addresses", "shutdown"}
    by_nameif: dict[str, list] = {}     # PIX 6 `ip address NAMEIF A M`, attached after all `nameif`s
    fixups: dict[tuple[int, int], str] = {}
    class_ports: dict[str, tuple[int, ...]] = {}
    policies: dict[str, dict[str, dict[str, str]]] = {}  # policy -> class -> {protocol: line}
    service: dict[str, list[Binding]] = {}
    for item in items:
        text, children = item.text, [c.text for c in item.child_objs]
        if m := _PIX6_INTERFACE.match(text):  # ASA block, or PIX 6 flat `interface ethernet2 auto shutdown`
            iface = hardware.setdefault(m.group(1), {"nameif": None, "addresses": [], "shutdown": False})
            iface["shutdown"] = "shutdown" in m.group(2).lower().split() or any(c.lower() == "shutdown" for c in children)
            for child in children:
                if re.match(r"nameif\s+\S+$", child, re.I):
                    iface["nameif"] = child.split()[1]
                elif addr := _address(child):
                    iface["addresses"].append(addr)
        elif m := _PIX6_NAMEIF.match(text):
            hardware.setdefault(m.group(1), {"nameif": None, "addresses": [], "shutdown": False})["nameif"] = m.group(2)
        elif (m := _PIX6_ADDRESS.match(text)) and (addr := _address("ip address " + m.group(2))):
            by_nameif.setdefault(m.group(1), []).append(addr)
        elif m := _FIXUP.match(text):
            if m.group(2) is None:
                if m.group(1):  # bare `no fixup protocol smtp` turns the protocol off (PIX 6.x)
                    fixups.clear()
                continue
            span = (int(m.group(2)), int(m.group(3) or m.group(2)))
            if m.group(1):
                fixups.pop(span, None)
            else:
                fixups[span] = text
        elif m := _MPF_CLASS.match(text):
            class_ports[m.group(1)] = _class_ports(children)
        elif m := _MPF_POLICY.match(text):
            classes = policies.setdefault(m.group(1), {})
            for child in item.child_objs:
                if cm := _MPF_POLICY_CLASS.match(child.text):
                    inspects = classes.setdefault(cm.group(1), {})
                    for grandchild in child.child_objs:
                        if im := _MPF_INSPECT.match(grandchild.text):
                            if im.group(1):
                                inspects.pop(im.group(2).lower(), None)
                            else:
                                inspects[im.group(2).lower()] = grandchild.text
        elif m := _MPF_SERVICE.match(text):
            binding = Binding("*", "global") if m.group(2) else Binding(m.group(3), "both")
            service.setdefault(m.group(1), []).append(binding)

    for nameif, addresses in by_nameif.items():
        owner = next((n for n, i in hardware.items() if i["nameif"] == nameif), None)
        iface = hardware.setdefault(owner or nameif, {"nameif": nameif, "addresses": [], "shutdown": False})
        iface["addresses"] += addresses
    interfaces = {name: Interface(name, i["nameif"], tuple(i["addresses"]), i["shutdown"]) for name, i in hardware.items()}

    inspections = [Inspection(platform, "fixup protocol smtp", "smtp", line, tuple(range(low, high + 1)),
                              (Binding("*", "global"),), (f"no {line}",))
                   for (low, high), line in fixups.items()]
    for policy, classes in policies.items():
        for class_name, inspects in classes.items():
            for protocol, line in inspects.items():
                inspections.append(Inspection(
                    platform, f"policy-map {policy} / class {class_name}", protocol, line,
                    class_ports.get(class_name, (SMTP_PORT,)), tuple(service.get(policy, ())),
                    (f"policy-map {policy}", f" class {class_name}", f"  no {line}")))
    return interfaces, inspections


# ---- the IOS fix --------------------------------------------------------------------------------

def ios_plan(text: str, rules: list[str] | None = None, use_esmtp: bool = False) -> IosPlan:
    """Take `smtp` out of the CBAC rules that are applied (or, given `rules`, of those named, applied
    or not); with use_esmtp, put `esmtp` in its place (IOS 12.3(14)T+), which understands EHLO.
    `no ... smtp` goes first: a rule does not hold smtp and esmtp together. Zone-based policies
    are reported by parse() but not planned here."""
    platform = platform_of(text or "")
    if platform not in (None, "ios"):
        raise ConfigError(f"ios_plan needs an IOS config, this one is {platform}")
    items = _top_level(text or "", "ios")
    defined = _cbac_rules(items)
    applied = _cbac_bindings(items)
    wanted = None if rules is None else list(dict.fromkeys(rules))
    commands: list[str] = []
    restore: list[str] = []
    touched: list[str] = []
    for name, protocols in defined.items():
        if "smtp" not in protocols or (name not in applied if wanted is None else name not in wanted):
            continue
        touched.append(name)
        commands.append(f"no ip inspect name {name} smtp")
        add_esmtp = use_esmtp and "esmtp" not in protocols
        if add_esmtp:
            commands.append(f"ip inspect name {name} esmtp")
            restore.append(f"no ip inspect name {name} esmtp")
        restore.append(protocols["smtp"])
    unknown = tuple(n for n in wanted or () if n not in defined)
    return IosPlan(tuple(commands), tuple(restore), tuple(touched), unknown)
