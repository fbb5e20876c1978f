"""chicagotech.net Event ID 4006, case 2: a wrong smart host on the SMTP virtual server (KB 821911).

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
from ansible_collections.mailflow.exchange.plugins.module_utils import probe_plan
from ansible_collections.mailflow.exchange.plugins.module_utils.causes.common import per_host
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import Missing
from ansible_collections.mailflow.exchange.plugins.module_utils.metabase import MetabaseError
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import NeedsInput, Change, FixError

CAUSE = fd.Cause(
    id="smarthost_misconfigured",
    title="Wrong smart host on the SMTP virtual server",
    sources=("chicagotech.net Event ID 4006 case 2", "KB821911", "KB257426"),
    severity="high",
    position=80,
    fix=fd.Fix(order=50, args=dict(smarthost=dict(type="str", required=True), expected=dict(type="str"))),
    symptom_scope="outbound",
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


def same_smarthost(value, wanted) -> bool:
    """The comparison the detector makes against mailflow_smarthost_expected (case and outer spaces aside)."""
    return (value or "").strip().lower() == str(wanted).strip().lower()


def _first(values) -> str | None:
    if isinstance(values, list):
        return str(values[0]) if values else None
    return None if values is None else str(values)


def detect(fleet):
    def decide(entry, view):
        vs_ad = {n: attrs for n, (_dn, attrs) in view.ad_virtual_servers(entry.computer_name).items()} \
            if view.kind.startswith("exchange") else {}
        try:
            vs_mb = view.metabase().smtp_virtual_servers()
        except (MetabaseError, Missing):
            if not vs_ad:
                raise
            vs_mb = {}  # AD is where Exchange keeps it; the metabase copy is only a cross-check
        expected = entry.declared.get("smarthost_expected")
        servers, problems, unprobed = {}, [], []
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
                    elif peer and probe is None and peer != entry.name:
                        # Whether the smart host answers is half of this cause: an unprobed pair is not an answer.
                        unprobed.append(probe_plan.not_planned(fleet.probe_plan, entry.name, peer))
            elif stype in (1, 2):
                problems.append(f"{where}: SmartHostType {stype} ({_TYPES[stype]}) with no smart host")
            if expected is not None and not same_smarthost(value, expected):
                problems.append(f"{where}: smart host {value!r} is not the expected {expected!r} (mailflow_smarthost_expected)")
        evidence = {"virtual_servers": servers, "expected": expected}
        if problems:
            return fd.Finding(CAUSE, entry.name, "present", "; ".join(problems), dict(evidence, problems=problems))
        configured = {n: s["smart_host"] for n, s in servers.items() if s["smart_host"]}
        summary = f"smart host {configured} is well-formed" if configured else "no smart host configured"
        if unprobed:
            return fd.unknown(CAUSE, entry.name, f"{summary}, but whether it answers is not known: {'; '.join(unprobed)}",
                              **evidence)
        return fd.Finding(CAUSE, entry.name, "absent", summary, evidence)

    return per_host(fleet, CAUSE, decide, kinds=("exchange2003", "exchange2000", "smtp_relay"))


# -- the fix: set the smart host where the host keeps it. Exchange 2000/2003: msExchSmtpSmartHost on the SMTP
# virtual server object in AD ("the IIS metabase replicates this information from Active Directory, but not
# vice versa", KB 321757; ExBPA reads msExchSmtpSmartHost); DS2MB (System Attendant) copies it into the
# metabase's SmartHost, which SMTP reads. A Windows SMTP relay has only the metabase (IIS://localhost/SMTPSVC/<n>).
#
# Verifying: the value written (AD, or a relay's metabase) is read back at once. On Exchange the metabase
# follows only when DS2MB runs: at System Attendant's start and within ~15 s of a change reaching its
# configuration DC (TechNet aa996727); the lab runs it when SMTPSVC starts. With restarts allowed the fix
# restarts SMTPSVC and verifies the metabase too: a value DS2MB did not copy fails the fix and AD is
# restored. Without, AD is verified and the metabase is reported as pending (advice); a later run with
# restarts allowed restarts SMTPSVC for it and verifies then.

FIX_READS = ("ad_smtp_virtual_servers", "ad_exchange_servers", "computer", "exchange_setup", "metabase", "services")
_FIX_KINDS = ("exchange2003", "exchange2000", "exchange", "smtp_relay")  # "exchange": a version the read could not tell
_NAME_MAX = 255  # RFC 1035: a domain name is at most 255 octets
_PRINTABLE = re.compile(r"[\x20-\x7e]+")


def fix_params(args: dict, facts: dict) -> dict:
    raw = args.get("smarthost")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise NeedsInput("mailflow_smarthost", "mailflow_smarthost must be set to the smart host to use, a fully qualified "
                         "domain name or an IP address in brackets (KB 821911); it defaults to mailflow_smarthost_expected")
    if not isinstance(raw, str):
        raise FixError(f"mailflow_smarthost must be text, got {raw!r}")
    value = raw.strip()
    problems = [] if _PRINTABLE.fullmatch(value) else ["only printable ASCII, one line"]
    problems += smarthost_problems(value)
    for e in (e.strip() for e in value.split(";")):
        if len(e) > _NAME_MAX:
            problems.append(f"{e[:40]}...: longer than {_NAME_MAX} characters")
        if e.startswith("[") and ":" in e:
            problems.append(f"{e}: Exchange 2003 smart hosts are IPv4 addresses")
    if problems:
        raise FixError(f"mailflow_smarthost must be an FQDN (relay.example.com) or an IPv4 address in brackets ([10.0.0.25]), "
                       f"several separated by ';' with FQDNs first (KB 821911); {value!r}: {'; '.join(problems)}")
    expected = args.get("expected")
    if expected and expected.strip() and not same_smarthost(value, expected):
        # The audit judges against mailflow_smarthost_expected: another value would be written, "verified" by the
        # fix and still called wrong by the audit that follows, which then rolls the host back.
        raise FixError(f"mailflow_smarthost {value!r} is not mailflow_smarthost_expected {expected.strip()!r}, the value "
                       "the audit compares against: set one of them to the other (or leave mailflow_smarthost unset)")
    return {"smarthost": value, "restart_allowed": bool(args.get("allow_service_restart"))}


def _where(view) -> tuple[dict, dict | None]:
    """(AD virtual servers, metabase virtual servers or None when MetaBase.xml cannot be read)."""
    try:
        ad = view.ad_virtual_servers() if view.kind.startswith("exchange") else {}
    except Missing as exc:
        raise FixError(f"cannot read the SMTP virtual servers from AD: {exc}") from None
    if view.kind.startswith("exchange") and not ad:
        # A metabase edit would be overwritten by DS2MB if AD has the server under another name.
        raise FixError("found no SMTP virtual server of this computer in AD (protocolCfgSMTPServer under its server object)")
    try:
        return ad, view.metabase().smtp_virtual_servers()
    except (Missing, MetabaseError) as exc:
        if not ad:
            # Not "nothing to change": a verifying read that cannot see the value must not pass.
            raise FixError(f"cannot read the smart host from the metabase: {exc}") from None
        return ad, None  # AD is where Exchange keeps it; the copy is for metabase_corrupt to sort out


def _metabase_behind(ad: dict, mb: dict, want: str) -> dict[str, str | None]:
    """{virtual server: metabase SmartHost} where DS2MB has not (yet) copied the AD value."""
    return {n: (mb.get(n) or {}).get("SmartHost") for n in ad if not same_smarthost((mb.get(n) or {}).get("SmartHost"), want)}


def plan(view, params) -> list[Change]:
    want = params["smarthost"]
    if view.kind not in _FIX_KINDS or view.service("SMTPSVC") is None:
        return []  # the detector's not_applicable hosts
    ad, mb = _where(view)
    changes = []
    for n in sorted(set(mb or {}) | set(ad), key=int):
        if n in ad:
            dn, attrs = ad[n]
            have = _first(attrs.get("msExchSmtpSmartHost"))
            target = {"dn": dn, "attribute": "msExchSmtpSmartHost", "syntax": "string"}
        else:
            have = mb[n].get("SmartHost")
            target = {"dn": f"IIS://localhost/SMTPSVC/{n}", "attribute": "SmartHost", "syntax": "string"}
        if not same_smarthost(have, want):
            changes.append(Change("adsi_attribute", target, [] if have is None else [have], [want], restart=["SMTPSVC"]))
    if changes or not params["restart_allowed"] or mb is None:
        return changes
    behind = _metabase_behind(ad, mb, want)
    if not behind:
        return []
    # AD is right, the metabase is behind and restarts are allowed: restart SMTPSVC (DS2MB's trigger in the lab;
    # a real server's DS2MB follows AD on its own) and see the copy in the verifying read, or fail saying so.
    return [Change("service_restart", {"service": "SMTPSVC"},
                   "; ".join(f"metabase /LM/SmtpSvc/{n} SmartHost {v!r}" for n, v in behind.items()),
                   f"restarted, with {want!r} copied from AD by DS2MB")]


def advice(view, params) -> list[str]:
    """What the fix reports but does not change: a metabase DS2MB has not caught up with, an unused smart host."""
    want, out = params["smarthost"], []
    if view.kind not in _FIX_KINDS or view.service("SMTPSVC") is None:
        return out
    try:
        ad, mb = _where(view)
    except FixError:
        return out  # plan() says why
    if ad and mb is None:
        out.append("MetaBase.xml cannot be read, so whether DS2MB copied the smart host from AD cannot be checked (see metabase_corrupt)")
    elif ad and not params["restart_allowed"]:
        behind = _metabase_behind(ad, mb, want)
        if behind:
            out.append(f"the metabase, which SMTP reads, has SmartHost {behind} (virtual server: value) until DS2MB copies {want!r} "
                       "from AD: when System Attendant starts, or within about 15 s of the change reaching its configuration "
                       "domain controller (TechNet aa996727); set mailflow_allow_service_restart to restart SMTPSVC and verify it")
    for n in sorted(set(mb or {}) | set(ad), key=int):
        stype = _first(ad[n][1].get("msExchSmtpSmartHostType")) if n in ad else (mb[n].get("SmartHostType"))
        if str(stype or "0").strip() == "0":
            out.append(f"virtual server {n}: SmartHostType is {stype or 'not set'} (0 = no smart host): SMTP does not use {want!r} "
                       "until it is 2 (always) or 1 (after DNS fails) - ESM: the virtual server's Delivery > Advanced")
    return out
