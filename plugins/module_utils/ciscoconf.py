"""Cisco IOS, PIX, ASA and FWSM running configs: which SMTP inspections they turn on, and the IOS fix.

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
  applied by a `zone-pair security`; in a match-all class (IOS's default) beside
  ` match access-group ACL` it inspects only what the ACL permits (Inspection.scope).
- PIX 6 / FWSM 2 `fixup protocol smtp` and PIX 7+/ASA/FWSM 3 `inspect esmtp|smtp`
  policies: read in ciscoconf_mpf, whose docstring has the details. Access lists:
  ciscoconf_acl.
- The platform comes from the version line (`version 12.4`, `PIX Version`, `ASA
  Version`, `FWSM Version`), which may follow a prompt or prefix on its line. A
  multiple-context system execution space (`... Version X <system>`, or `context`
  blocks and no policies) is refused with the contexts to read instead.

Names (rules, maps, nameifs) are compared case-sensitively, as the devices treat
names; keywords are matched case-insensitively.

This is the module callers import: parse, platform_of, ios_plan, PLATFORMS and the model
(ConfigError, Interface, Binding, Inspection, DeviceConfig, IosPlan). The model is defined in
ciscoconf_model so that ciscoconf_mpf can build it without importing this module back. The IOS
reader stays here, beside ios_plan, which reuses its CBAC rule and binding readers.
"""
from __future__ import annotations

import functools
import re

from ansible_collections.ansible.netcommon.plugins.module_utils.network.common.config import NetworkConfig
from ansible_collections.mailflow.exchange.plugins.module_utils import ciscoconf_acl, ciscoconf_mpf
from ansible_collections.mailflow.exchange.plugins.module_utils.ciscoconf_model import (
    SMTP_PORT, Binding, ConfigError, DeviceConfig, Inspection, Interface, IosPlan, interface_address)

PLATFORMS = ("ios", "pix", "asa", "fwsm")  # fwsm: the Catalyst 6500 Firewall Services Module (PIX code base)
# Replaces NetworkConfig's defaults ("#", "!", "/*", "*/", "echo"): ASA/PIX comments start with ":".
_COMMENT_TOKENS = ["!", ":", "#"]


# ---- text -> top-level ConfigLines ------------------------------------------------------------

_BANNER = re.compile(r"^banner(?:\s+(?:motd|login|exec|incoming|slip-ppp|prompt-timeout|config-save))?"
                     r"\s+(\^C|\S)(.*)$", re.I)
# A version line may follow other text on its line in a capture: a prompt ("fw01# "), a grep prefix
# ("fw01.cfg:"), a ": " comment. One word ending in #, > or : may stand before it; a description's prose may not.
_PREFIX = r"^(?:\S*[#>:]\s*)?"
_IOS_MARK = re.compile(_PREFIX + r"(?:version \d+\.\d+|Building configuration|Current configuration\b|Using \d+ out of)", re.M)
# "PIX Version 6.3(5)", "ASA Version 8.2(5) <context>", "FWSM Version 3.1(1) <system>" (and "FWSM Firewall Version"
# in `show version`): the first such line decides.
_FIREWALL_MARK = re.compile(_PREFIX + r"(PIX|ASA|FWSM)(?:\s+Firewall)?\s+Version\s+\d[^\n]*", re.M)
_SYSTEM_SPACE = re.compile(r"<system>", re.I)


def _holds(delimiter: str, body: str) -> bool:
    return delimiter in body


def _ends_macro(body: str) -> bool:
    return body.strip() == "@"


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
                closes = functools.partial(_holds, m.group(1))
            continue
        if any_delimiter and re.match(r"macro\s+name\s", line, re.I):
            # a switch macro's body is unindented commands, up to a line "@": not this device's config
            closes = _ends_macro
            continue
        out.append(line)
    return out


def _top_level(text: str, platform: str):
    config = NetworkConfig(indent=1, contents="\n".join(_lines(text, platform == "ios")),
                           comment_tokens=_COMMENT_TOKENS)
    # An indented line with no parent above it (a pasted fragment) is not top-level.
    return [item for item in config.items if not item.has_parents and not item.raw[:1].isspace()]


def _firewall_mark(body: str):
    """The first PIX/ASA/FWSM version line of a config body (banners already removed), or None."""
    return _FIREWALL_MARK.search("\n".join(line for line in body.split("\n") if not re.match(r"\s*banner\s", line, re.I)))


def platform_of(text: str) -> str | None:
    body = "\n".join(_lines(text or "", any_delimiter=False))
    m = _firewall_mark(body)
    if m:
        return m.group(1).lower()
    if _IOS_MARK.search(body):
        return "ios"
    return None


def _system_space(text: str, items) -> None:
    """A multiple-context ASA/FWSM's system execution space holds the contexts, not their policies: say so (and name
    the contexts to read) instead of reporting a firewall that inspects nothing."""
    mark = _firewall_mark("\n".join(_lines(text, any_delimiter=False)))
    contexts = {i.text.split()[1]: next((c.text.split(None, 1)[1] for c in i.child_objs
                                         if c.text.lower().startswith("config-url ")), None)
                for i in items if re.match(r"^context\s+\S+$", i.text, re.I)}
    if (mark and _SYSTEM_SPACE.search(mark.group(0))) or (contexts and not any(
            re.match(r"^(policy-map|service-policy|fixup)\s", i.text, re.I) for i in items)):
        where = ", ".join(f"{n} ({u})" if u else n for n, u in contexts.items()) or "none listed"
        raise ConfigError("this is the system execution space of a multiple-context firewall: it holds no policies of its "
                          "own. Read each security context's config instead (`changeto context NAME`, then `show "
                          f"running-config`; or the file its config-url names). Contexts: {where}")


def parse(text: str, platform: str | None = None) -> DeviceConfig:
    if platform is None:
        if not (text or "").strip():
            raise ConfigError("empty configuration")
        platform = platform_of(text)
        if platform is None:
            raise ConfigError("not a Cisco IOS, PIX, ASA or FWSM configuration (no version line: IOS `version 12.4`, "
                              "`PIX Version ...`, `ASA Version ...` or `FWSM Version ...`)")
    platform = platform.lower()
    if platform not in PLATFORMS:
        raise ConfigError(f"unknown platform {platform!r}; expected one of {', '.join(PLATFORMS)}")
    items = _top_level(text or "", platform)
    hostname = next((i.text.split()[1] for i in items if re.match(r"hostname\s+\S", i.text, re.I)), None)
    if platform == "ios":
        interfaces, inspections = _ios(items)
    else:  # PIX 6 fixups and PIX 7+/ASA/FWSM policy-maps never share a config; reading both covers either
        _system_space(text or "", items)
        interfaces, inspections = ciscoconf_mpf.firewall(items, platform)
    return DeviceConfig(platform, hostname, interfaces, tuple(inspections))


# ---- IOS ----------------------------------------------------------------------------------------

_CBAC_RULE = re.compile(r"^(no\s+)?ip\s+inspect\s+name\s+(\S+)(?:\s+parameter\s+max-sessions\s+\d+)?"
                        r"(?:\s+(\S+))?", re.I)
_CBAC_APPLY = re.compile(r"^ip\s+inspect\s+(\S+)\s+(in|out)\b", re.I)
_PORT_MAP = re.compile(r"^ip\s+port-map\s+smtp\s+port\s+(?:tcp\s+)?(.*)$", re.I)
_ZBF_CLASS = re.compile(r"^class-map\s+type\s+inspect\s+(?:match-(any|all)\s+)?(\S+)$", re.I)
_ZBF_ACCESS_GROUP = re.compile(r"^match\s+access-group\s+(?:name\s+)?(\S+)$", re.I)
_ZBF_MATCH = re.compile(r"^match\s+protocol\s+smtp(\s+extended)?$", re.I)
_ZBF_NESTED = re.compile(r"^match\s+class-map\s+(\S+)$", re.I)
_ZBF_POLICY = re.compile(r"^policy-map\s+type\s+inspect\s+(\S+)$", re.I)
_ZBF_POLICY_CLASS = re.compile(r"^class\s+type\s+inspect\s+(\S+)$", re.I)
_ZBF_MEMBER = re.compile(r"^zone-member\s+security\s+(\S+)$", re.I)
_ZBF_PAIR = re.compile(r"^zone-pair\s+security\s+\S+\s+source\s+(\S+)\s+destination\s+(\S+)", re.I)
_ZBF_SERVICE = re.compile(r"^service-policy\s+type\s+inspect\s+(\S+)$", re.I)


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
            zone = next((z.group(1) for c in children if (z := _ZBF_MEMBER.match(c))), None)
            interfaces[name] = Interface(name, None, tuple(a for a in map(interface_address, children) if a),
                                         any(c.lower() == "shutdown" for c in children), zone)
        elif m := _PORT_MAP.match(text):
            smtp_ports += [p for p in _port_map(m.group(1)) if p not in smtp_ports]
        elif m := _ZBF_CLASS.match(text):
            # IOS class-maps are match-all unless they say match-any.
            class_maps[m.group(2)] = (text, [c.text for c in item.child_objs], (m.group(1) or "all").lower() == "all")
        elif m := _ZBF_POLICY.match(text):
            policies[m.group(1)] = [
                (cm.group(1), any(re.match(r"inspect(\s|$)", g.text, re.I) for g in c.child_objs))
                for c in item.child_objs if (cm := _ZBF_POLICY_CLASS.match(c.text))]
        elif m := _ZBF_PAIR.match(text):
            for child in item.child_objs:
                if sm := _ZBF_SERVICE.match(child.text):
                    # A zone pair inspects what goes from its source zone to its destination zone.
                    pairs.setdefault(sm.group(1), []).append(Binding(f"{m.group(1)}->{m.group(2)}", "zone-pair"))
    ports = tuple(smtp_ports)
    inspections = [
        Inspection("ios", name, protocol, line, ports, tuple(cbac_bindings.get(name, ())),
                   (f"no ip inspect name {name} {protocol}",))
        for name, protocols in _cbac_rules(items).items()
        for protocol, line in protocols.items() if protocol in ("smtp", "esmtp")]

    acls = ciscoconf_acl.access_lists(items, "ios") if class_maps else {}

    def smtp_matches(class_name, seen):
        """(class-map header, match line, protocol, ACLs that must permit) for the SMTP matches a class-map holds,
        nested ones too. In a match-all class, `match protocol smtp` beside `match access-group ACL` inspects only
        what the ACL permits; in a match-any class the protocol match alone suffices."""
        header, children, match_all = class_maps.get(class_name, (None, [], False))
        own_acls = [m.group(1) for c in children if (m := _ZBF_ACCESS_GROUP.match(c))] if match_all else []
        found = []
        for child in children:
            if m := _ZBF_MATCH.match(child):
                found.append((header, child, "esmtp" if m.group(1) else "smtp", tuple(own_acls)))
            elif (m := _ZBF_NESTED.match(child)) and m.group(1) not in seen:
                found += [(h, line, proto, tuple(own_acls) + nested)
                          for h, line, proto, nested in smtp_matches(m.group(1), seen | {m.group(1)})]
        return found

    for policy, classes in policies.items():
        for class_name, inspects in classes:
            for header, match_line, protocol, scoped in (smtp_matches(class_name, {class_name}) if inspects else ()):
                inspections.append(Inspection(
                    "ios", f"policy-map type inspect {policy} / class {class_name}", protocol, match_line, ports,
                    tuple(pairs.get(policy, ())), (header, f" no {match_line}"),
                    tuple({"acl": n, "entries": acls.get(n)} for n in dict.fromkeys(scoped)), policy))
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
