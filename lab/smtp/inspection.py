"""Does a network device on the path inspect SMTP? Read from its running config.

Only the SMTP-inspection lines are understood; a fuller config parser comes
later. The lab treats the configured port 25 as "the SMTP port", whatever
high port a test's listener really uses.

- PIX: ``fixup protocol smtp 25`` (Mailguard), undone by ``no fixup protocol smtp [25]``.
- IOS CBAC: ``ip inspect name X smtp`` counts only when rule X is applied on
  an interface (``ip inspect X in|out``); rule names are case-sensitive, as
  IOS keeps them (``Mail`` and ``MAIL`` are two rules). ``esmtp`` inspection understands
  EHLO and is not the problem (domain facts, section 9).
- ASA: ``inspect esmtp`` (or its older spelling ``inspect smtp``) in a class
  of a policy-map that a ``service-policy`` applies.

When the device's segments say which interface a connection enters by and
which it leaves by, an interface-bound rule applies to that direction only:
CBAC's ``ip inspect X in`` on the entering interface or ``out`` on the
leaving one, an ASA ``service-policy ... interface`` on either. Without
segments any applied rule counts. PIX fixups are global.
"""
from __future__ import annotations

import re

from lab.netdev.ios import canonical_interface

SMTP_PORT = 25

_PIX_FIXUP = re.compile(r"^(no\s+)?fixup\s+protocol\s+smtp(?:\s+(\d+)(?:-(\d+))?)?$", re.I)
_IOS_RULE = re.compile(r"^(no\s+)?ip\s+inspect\s+name\s+(\S+)\s+smtp(?:\s|$)", re.I)
_IOS_APPLY = re.compile(r"^ip\s+inspect\s+(\S+)\s+(in|out)$", re.I)
_ASA_POLICY = re.compile(r"^policy-map\s+(?!type\s)(\S+)$", re.I)
_ASA_CLASS = re.compile(r"^class\s+(\S+)$", re.I)
_ASA_INSPECT = re.compile(r"^(no\s+)?inspect\s+e?smtp(?:\s|$)", re.I)
_ASA_SERVICE_POLICY = re.compile(r"^service-policy\s+(\S+)\s+(?:(global)|interface\s+(\S+))$", re.I)


def _lines(config: str) -> list[tuple[bool, str]]:
    """(is_top_level, stripped text) for each non-comment line."""
    out = []
    for raw in config.splitlines():
        text = raw.strip()
        if text and not text.startswith("!"):
            out.append((not raw[:1].isspace(), text))
    return out


def pix_mailguard(config: str) -> bool:
    ports: set[int] = set()
    for _, line in _lines(config):
        m = _PIX_FIXUP.match(line)
        if not m:
            continue
        negated, low, high = m.group(1), m.group(2), m.group(3)
        if low is None:
            if negated:
                ports.clear()
            else:
                ports.add(SMTP_PORT)
            continue
        span = set(range(int(low), int(high or low) + 1))
        ports = ports - span if negated else ports | span
    return SMTP_PORT in ports


def _interface(name: str | None) -> str | None:
    """One spelling per interface: FastEthernet0/0 for fa0/0, nameifs (outside) lower-cased."""
    if name is None:
        return None
    found = canonical_interface(name)
    return (found[0] if found else name).lower()


def ios_cbac_smtp(config: str, entering: str | None = None, leaving: str | None = None) -> bool:
    """Rule X inspects smtp and is applied: `in` on the interface the connection enters by or `out` on
    the one it leaves by (any interface, either way, when those are not known)."""
    directional = entering is not None and leaving is not None
    wanted = {("in", _interface(entering)), ("out", _interface(leaving))}
    smtp_rules: set[str] = set()
    applied: set[str] = set()
    interface = None
    for top_level, line in _lines(config):
        if top_level:
            interface = _interface(line.split(None, 1)[1]) if line.lower().startswith("interface ") else None
            m = _IOS_RULE.match(line)
            if m:
                (smtp_rules.discard if m.group(1) else smtp_rules.add)(m.group(2))
        elif interface is not None:
            m = _IOS_APPLY.match(line)
            if m and (not directional or (m.group(2).lower(), interface) in wanted):
                applied.add(m.group(1))
    return bool(smtp_rules & applied)


def asa_esmtp(config: str, entering: str | None = None, leaving: str | None = None) -> bool:
    crossed = None if entering is None or leaving is None else {_interface(entering), _interface(leaving)}
    inspecting: set[str] = set()  # policy-maps with an SMTP-inspecting class
    applied: set[str] = set()
    policy = klass = None
    for top_level, line in _lines(config):
        if top_level:
            policy = klass = None
            m = _ASA_POLICY.match(line)
            if m:
                policy = m.group(1).lower()
            m = _ASA_SERVICE_POLICY.match(line)
            if m and (m.group(2) or crossed is None or _interface(m.group(3)) in crossed):
                applied.add(m.group(1).lower())
        elif policy is not None:
            m = _ASA_CLASS.match(line)
            if m:
                klass = m.group(1)
                continue
            m = _ASA_INSPECT.match(line)
            if m and klass is not None:
                (inspecting.discard if m.group(1) else inspecting.add)(policy)
    return bool(inspecting & applied)


_BY_KIND = {"pix": pix_mailguard, "ios": ios_cbac_smtp, "asa": asa_esmtp}


def inspects_smtp(device: dict, entering: str | None = None, leaving: str | None = None) -> bool:
    """True when the device's running config inspects SMTP on a connection that enters by interface
    `entering` and leaves by `leaving` (None: not known)."""
    kind = str(device.get("kind", "")).lower()
    config = device.get("config") or ""
    if kind == "pix":
        return pix_mailguard(config)
    check = _BY_KIND.get(kind)
    return bool(check and check(config, entering, leaving))
