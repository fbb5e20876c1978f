"""Field notes 002, case 2: a wrong smart host on the SMTP virtual server (KB 821911).

Exchange keeps SmartHost / SmartHostType in AD (msExchSmtpSmartHost on the
virtual server object) and DS2MB copies them into the metabase; a Windows
SMTP relay has only the metabase. KB 821911's syntax: an IP address must be
in brackets ("the DNS lookup is bypassed"), several smart hosts are separated
by ";", and FQDN entries come before IP entries.
"""
from __future__ import annotations

import ipaddress
import re

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils.causes.common import per_host
from ansible_collections.mailflow.exchange.plugins.module_utils.metabase import MetabaseError

CAUSE = fd.Cause(
    id="smarthost_misconfigured",
    title="Wrong smart host on the SMTP virtual server",
    sources=("field notes 002 case 2", "KB821911", "KB257426"),
    severity="high", fix="mailflow.exchange.fix_smarthost_misconfigured", symptom_scope="outbound",
)
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_TYPES = {0: "no smart host", 1: "DNS first, then the smart host", 2: "always the smart host"}


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def smarthost_problems(value: str) -> list[str]:
    """What is wrong with a SmartHost string under KB 821911 (empty list: well-formed)."""
    problems = []
    if "," in value:
        problems.append("entries separated by ',' (KB 821911: separate smart hosts with ';')")
    entries = [e.strip() for e in re.split(r"[;,]", value)]
    if any(not e for e in entries):
        problems.append("an empty entry")
    seen_ip = False
    for e in (e for e in entries if e):
        if e.startswith("[") and e.endswith("]"):
            if not _is_ip(e[1:-1]):
                problems.append(f"{e}: brackets are for IP addresses only")
            seen_ip = True
        elif _is_ip(e):
            problems.append(f"{e}: an IP address must be in brackets ([{e}]) or it is looked up in DNS as a name")
            seen_ip = True
        else:
            labels = e.rstrip(".").split(".")
            if len(labels) < 2 or not all(_LABEL.match(lb) for lb in labels):
                problems.append(f"{e}: not a fully qualified domain name")
            elif seen_ip:
                problems.append(f"{e}: FQDN entries must come before IP entries")
    return problems


def _first(values) -> str | None:
    if isinstance(values, list):
        return str(values[0]) if values else None
    return None if values is None else str(values)


def detect(fleet):
    def decide(entry, view):
        vs_ad = view.ad_virtual_servers(entry.computer_name) if view.kind.startswith("exchange") else {}
        try:
            vs_mb = view.metabase().smtp_virtual_servers()
        except MetabaseError:
            if not vs_ad:
                raise
            vs_mb = {}  # AD is where Exchange keeps it; the metabase copy is only a cross-check
        expected = entry.declared.get("smarthost_expected")
        servers, problems = {}, []
        for n in sorted(set(vs_mb) | set(vs_ad), key=int):
            ad, mb = vs_ad.get(n), vs_mb.get(n) or {}
            value = _first(ad.get("msExchSmtpSmartHost")) if ad is not None else mb.get("SmartHost")
            stype = _first(ad.get("msExchSmtpSmartHostType")) if ad is not None else mb.get("SmartHostType")
            stype = int(stype) if stype is not None and str(stype).isdigit() else None
            servers[n] = {"smart_host": value, "type": stype, "type_text": _TYPES.get(stype), "source": "AD" if ad is not None else "metabase",
                          "metabase_smart_host": mb.get("SmartHost")}
            where = f"virtual server {n}"
            if value:
                problems += [f"{where}: {p}" for p in smarthost_problems(value)]
                if ad is not None and (mb.get("SmartHost") or "") != value:
                    servers[n]["note"] = "the metabase differs from AD (DS2MB copies AD over it)"
                for e in (e.strip().strip("[]") for e in value.split(";") if e.strip()):
                    peer = fleet.resolve(e)
                    probe = next((p for p in fleet.probes_from(entry.name) if p.target == peer), None) if peer else None
                    if probe is not None and probe.result not in ("banner", "greylisted"):
                        problems.append(f"{where}: smart host {e} ({peer}) did not answer SMTP from {entry.name}: {probe.result}")
            elif stype in (1, 2):
                problems.append(f"{where}: SmartHostType {stype} ({_TYPES[stype]}) with no smart host")
            if expected is not None and (value or "").strip().lower() != str(expected).strip().lower():
                problems.append(f"{where}: smart host {value!r} is not the expected {expected!r} (mailflow_smarthost_expected)")
        evidence = {"virtual_servers": servers, "expected": expected}
        if problems:
            return fd.Finding(CAUSE, entry.name, "present", "; ".join(problems), dict(evidence, problems=problems))
        configured = {n: s["smart_host"] for n, s in servers.items() if s["smart_host"]}
        summary = f"smart host {configured} is well-formed" if configured else "no smart host configured"
        return fd.Finding(CAUSE, entry.name, "absent", summary, evidence)

    return per_host(fleet, CAUSE, decide, kinds=("exchange2003", "exchange2000", "smtp_relay"))
