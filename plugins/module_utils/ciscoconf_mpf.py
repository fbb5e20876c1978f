"""PIX, ASA and FWSM configs for ciscoconf: PIX 6 / FWSM 2 fixups and the Modular Policy Framework of PIX 7+,
ASA and FWSM 3+.

- PIX 6 (and FWSM 2.x, the PIX 6 code base): `fixup protocol smtp PORT[-PORT]` (Mailguard), global. It is on by
  default, and a full PIX 6 config always lists it, `no fixup protocol smtp 25` when off; a config without either
  line is a fragment and reports nothing.
- PIX 7+, ASA and FWSM 3.x (the PIX 7 code base; Modular Policy Framework): `inspect esmtp|smtp` in a class of a
  `policy-map`, applied by `service-policy P global|interface NAMEIF`. The default `global_policy` / `class
  inspection_default` has `inspect esmtp` (PIX 7 and ASA, ASA CLI configuration guide "default service policy";
  FWSM 3.1 prints `inspect smtp` there). `policy-map type inspect esmtp` maps are parameters only.
  What a class matches decides what its inspection sees: `match default-inspection-traffic` (SMTP's own port 25 for
  an SMTP inspection), `match port tcp eq|range`, `match any`, `class-default`, or `match access-list ACL` - only
  what the ACL permits (Inspection.scope; ciscoconf_acl evaluates it). Classes keep their config order: a
  connection matches the first class of a policy that inspects SMTP and matches it ("a packet can match only one
  class map in the policy map for each feature type").

ciscoconf.parse calls firewall() for platforms "pix", "asa" and "fwsm"; callers use ciscoconf, not this module.
It builds the model from ciscoconf_model, not from ciscoconf, so that ciscoconf can import it at its top with no
import cycle.
"""
from __future__ import annotations

import re

from ansible_collections.mailflow.exchange.plugins.module_utils import ciscoconf_acl
from ansible_collections.mailflow.exchange.plugins.module_utils.ciscoconf_model import (
    SMTP_PORT, Binding, Inspection, Interface, interface_address)

_PORT_NAMES = {"smtp": SMTP_PORT}  # ASA prints well-known ports by name ("match port tcp eq smtp")

_FIXUP = re.compile(r"^(no\s+)?fixup\s+protocol\s+smtp(?:\s+(\d+)(?:-(\d+))?)?\s*$", re.I)
_PIX6_INTERFACE = re.compile(r"^interface\s+(\S+)(.*)$", re.I)
_PIX6_NAMEIF = re.compile(r"^nameif\s+(\S+)\s+(\S+)", re.I)
_PIX6_ADDRESS = re.compile(r"^ip\s+address\s+(\S+)\s+(\d+\.\d+\.\d+\.\d+\s+\d+\.\d+\.\d+\.\d+)", re.I)
_MPF_CLASS = re.compile(r"^class-map\s+(?!type\s)(?:match-(?:any|all)\s+)?(\S+)$", re.I)
_MPF_PORT = re.compile(r"^match\s+port\s+tcp\s+(?:eq\s+(\S+)|range\s+(\S+?)(?:-|\s+)(\S+))$", re.I)
_MPF_ACL = re.compile(r"^match\s+access-list\s+(\S+)$", re.I)
_MPF_POLICY = re.compile(r"^policy-map\s+(?!type\s)(\S+)$", re.I)
_MPF_POLICY_CLASS = re.compile(r"^class\s+(\S+)$", re.I)
_MPF_INSPECT = re.compile(r"^(no\s+)?inspect\s+(esmtp|smtp)(?:\s+\S+)?$", re.I)
_MPF_SERVICE = re.compile(r"^service-policy\s+(\S+)\s+(?:(global)|interface\s+(\S+))", re.I)


def _port(token: str) -> int | None:
    return int(token) if token.isdigit() else _PORT_NAMES.get(token.lower())


def _class_match(children: list[str]) -> tuple[tuple[int, ...], str | None]:
    """(ports, access list) a class-map matches. `match port tcp` gives its ports; default-inspection-traffic, `any`
    and an access list give SMTP's own port (the inspection engine picks SMTP by port 25 for the first; the others
    match every port, 25 among them), the access list further limited by what it permits."""
    ports: list[int] = []
    acl = None
    for child in children:
        m = _MPF_PORT.match(child)
        if m and m.group(1) and _port(m.group(1)) is not None:
            ports.append(_port(m.group(1)))
        elif m and m.group(2) and None not in (_port(m.group(2)), _port(m.group(3))):
            ports += range(_port(m.group(2)), _port(m.group(3)) + 1)
        elif am := _MPF_ACL.match(child):
            acl = am.group(1)
    return tuple(dict.fromkeys(ports)) or (SMTP_PORT,), acl


def firewall(items, platform: str):
    """The interfaces and SMTP inspections of a PIX, ASA or FWSM config's top-level items (ciscoconf.parse's)."""
    hardware: dict[str, dict] = {}      # name -> {"nameif", "addresses", "shutdown"}
    by_nameif: dict[str, list] = {}     # PIX 6 `ip address NAMEIF A M`, attached after all `nameif`s
    fixups: dict[tuple[int, int], str] = {}
    classes_matched: dict[str, tuple[tuple[int, ...], str | None]] = {"class-default": ((SMTP_PORT,), None)}
    policies: dict[str, dict[str, dict[str, str]]] = {}  # policy -> class (config order) -> {protocol: line}
    service: dict[str, list[Binding]] = {}
    for item in items:
        text, children = item.text, [c.text for c in item.child_objs]
        if m := _PIX6_INTERFACE.match(text):  # ASA block, or PIX 6 flat `interface ethernet2 auto shutdown`
            iface = hardware.setdefault(m.group(1), {"nameif": None, "addresses": [], "shutdown": False})
            iface["shutdown"] = "shutdown" in m.group(2).lower().split() or any(c.lower() == "shutdown" for c in children)
            for child in children:
                if re.match(r"nameif\s+\S+$", child, re.I):
                    iface["nameif"] = child.split()[1]
                elif addr := interface_address(child):
                    iface["addresses"].append(addr)
        elif m := _PIX6_NAMEIF.match(text):
            hardware.setdefault(m.group(1), {"nameif": None, "addresses": [], "shutdown": False})["nameif"] = m.group(2)
        elif (m := _PIX6_ADDRESS.match(text)) and (addr := interface_address("ip address " + m.group(2))):
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
            classes_matched[m.group(1)] = _class_match(children)
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
    acls = ciscoconf_acl.access_lists(items, platform) if policies else {}
    for policy, classes in policies.items():
        for class_name, inspects in classes.items():
            ports, acl = classes_matched.get(class_name, ((SMTP_PORT,), None))
            scope = ({"acl": acl, "entries": acls.get(acl)},) if acl else ()
            for protocol, line in inspects.items():
                inspections.append(Inspection(
                    platform, f"policy-map {policy} / class {class_name}", protocol, line, ports,
                    tuple(service.get(policy, ())), (f"policy-map {policy}", f" class {class_name}", f"  no {line}"),
                    scope, policy))
    return interfaces, inspections
