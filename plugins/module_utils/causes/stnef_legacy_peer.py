"""KB 919091 cause 2: Exchange 2003 sends Summary TNEF / binary MIME to a system that does not understand it.

Exchange 2003 renders mail for Exchange peers as S-TNEF and sends it with
BODY=BINARYMIME over BDAT to peers that advertise BINARYMIME/CHUNKING
(KB 259890, KB 323483, KB 257569); Exchange 5.5 and other SMTP systems do not
read S-TNEF, and KB 919091 resolution 2 forces the store driver to TNEF
(KB 254089). A sender has the cause when it has mail for such a legacy peer
and TNEF is not known to be forced. KB 254089's registry value is not
confirmed, so unless the inventory names it (knowledge detect.stnef_tnef_setting)
the sender's side is reported as unverified.
"""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils.causes.common import per_host, sends_to
from ansible_collections.mailflow.exchange.plugins.module_utils.fleet import ehlo_verbs

CAUSE = fd.Cause(
    id="stnef_legacy_peer",
    title="S-TNEF / binary MIME sent to a legacy or non-Exchange peer",
    sources=("KB919091", "KB254089", "KB259890", "KB323483", "KB257569"),
    severity="high", fix="mailflow.exchange.fix_stnef_legacy_peer", kb919091_cause=2, symptom_scope="outbound",
)
_NON_EXCHANGE = ("smtp", "smtp_relay", "non_exchange")


def legacy_peers(fleet) -> dict[str, dict]:
    """{peer: {"kind", "kind_source", "advertises"}} for Exchange 5.x and declared non-Exchange SMTP peers."""
    binary = {v.upper() for v in fleet.setting("binary_mime_verbs")}
    out = {}
    for e in fleet:
        kind, source = fleet.kind_of(e.name)
        declared_other = str(e.declared.get("platform") or "") in _NON_EXCHANGE
        if kind == "exchange55" or declared_other:
            seen = [ehlo_verbs(p.raw) for p in fleet.probes_to(e.name) if p.result in ("banner", "greylisted")]
            advertised = sorted(binary & set().union(*seen)) if seen else None
            out[e.name] = {"kind": kind, "kind_source": source, "advertises": advertised}
    return out


def _tnef_forced(view, setting) -> bool | None:
    """True/False when the inventory names KB 254089's value; None when it cannot be checked."""
    if not setting:
        return None
    data = view.reg_value(setting["item"], setting["name"], setting.get("suffix", ""))
    return data == setting["data"]


def detect(fleet):
    legacy = legacy_peers(fleet)
    setting = fleet.setting("stnef_tnef_setting")

    def decide(entry, view):
        targets = sends_to(fleet, entry)
        hit = {p: targets[p] for p in targets if p in legacy}
        forced = _tnef_forced(view, setting)
        evidence = {"legacy_peers": legacy, "mail_for_legacy_peers": hit,
                    "tnef_forced": forced if setting else "not checked: KB 254089's registry value is unconfirmed"}
        if not hit:
            why = f"no mail queued for a legacy peer ({', '.join(sorted(legacy))})" if legacy else "no Exchange 5.x or non-Exchange SMTP peer known"
            return fd.Finding(CAUSE, entry.name, "absent", why, evidence)
        if forced:
            return fd.Finding(CAUSE, entry.name, "absent", "TNEF is forced (knowledge detect.stnef_tnef_setting)", evidence,
                              confidence=fleet.confidence("stnef_tnef_setting"))
        peers = ", ".join(f"{p} ({legacy[p]['kind'] or 'non-Exchange'}, per {legacy[p]['kind_source']})" for p in sorted(hit))
        no_binary = [p for p in hit if legacy[p]["advertises"] == []]
        summary = (f"{entry.name} has mail for {peers}, which does not read S-TNEF"
                   + (f"; {', '.join(sorted(no_binary))} advertises no BINARYMIME/CHUNKING" if no_binary else "")
                   + ("; the TNEF setting (KB 254089) is not set" if forced is False else "; whether TNEF is forced could not be checked (KB 254089's value is unconfirmed)"))
        return fd.Finding(CAUSE, entry.name, "present", summary, evidence, explains=list(hit),
                          confidence="inferred" if forced is None else fleet.confidence("stnef_tnef_setting"))

    return per_host(fleet, CAUSE, decide, kinds=("exchange2003", "exchange2000"))
