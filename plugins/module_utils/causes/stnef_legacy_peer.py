"""KB 919091 cause 2: Exchange 2003 sends Summary TNEF / binary MIME to a system that does not understand it.

Exchange 2003 renders mail for Exchange peers as S-TNEF and sends it with
BODY=BINARYMIME over BDAT to peers that advertise BINARYMIME/CHUNKING
(KB 259890, KB 323483, KB 257569); Exchange 5.5 and other SMTP systems do not
read S-TNEF, and KB 919091 resolution 2 forces the store driver to TNEF
(KB 254089). A sender has the cause when it has mail for such a legacy peer
and TNEF is not known to be forced. KB 254089's registry entries are not
confirmed, so unless the inventory names them (knowledge detect.stnef_tnef_setting,
registry values or AD attributes) the sender's side is reported as unverified.
"""
from __future__ import annotations

import re

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils.causes.common import per_host, sends_to
from ansible_collections.mailflow.exchange.plugins.module_utils.fleet import ehlo_verbs
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import Missing
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import Change, FixError
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import setting as knowledge_setting

CAUSE = fd.Cause(
    id="stnef_legacy_peer",
    title="S-TNEF / binary MIME sent to a legacy or non-Exchange peer",
    sources=("KB919091", "KB254089", "KB259890", "KB323483", "KB257569"),
    severity="high",
    position=20,
    fix=fd.Fix(order=70, args=dict(setting=dict(type="raw"))),
    kb919091_cause=2, symptom_scope="outbound",
)
_NON_EXCHANGE = ("smtp", "smtp_relay", "non_exchange")
EVIDENCE_PEERS = 20  # fleet-wide lists in one host's evidence are cut to this many


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


def _entries(setting) -> list[dict]:
    """detect.stnef_tnef_setting is one entry or a list of them (KB 919091: "several registry entries")."""
    return [setting] if isinstance(setting, dict) else list(setting or [])


def _ad_values(view, entry) -> list[str] | None:
    """The attribute's values on entry["dn"], from an adsi_search item; None when the object is not there."""
    found = next((e for e in view.item(entry["item"]) or [] if str(e.get("dn", "")).lower() == entry["dn"].lower()), None)
    if found is None:
        return None
    values = next((vals for name, vals in found["attrs"].items() if name.lower() == entry["attribute"].lower()), [])
    return [str(v) for v in values or []]


def _entry_set(view, entry) -> bool:
    if entry.get("layer") == "ad":
        want = entry["data"] if isinstance(entry["data"], list) else [entry["data"]]
        return _ad_values(view, entry) == [str(v) for v in want]
    return view.reg_value(entry["item"], entry["name"], entry.get("suffix", "")) == entry["data"]


def _tnef_forced(view, setting) -> bool | None:
    """True/False when the inventory names KB 254089's entries (all must be set); None when it cannot be checked."""
    if not setting:
        return None
    return all(_entry_set(view, e) for e in _entries(setting))


def detect(fleet):
    legacy = legacy_peers(fleet)
    setting = fleet.setting("stnef_tnef_setting")

    def decide(entry, view):
        targets = sends_to(fleet, entry)
        hit = {p: targets[p] for p in targets if p in legacy}
        forced = _tnef_forced(view, setting)
        # The legacy peers this host has mail for, and a few others: every one of them on every host grows as N².
        shown = sorted(hit) + [p for p in sorted(legacy) if p not in hit][:EVIDENCE_PEERS]
        evidence = {"legacy_peers": {p: legacy[p] for p in shown}, "legacy_peers_total": len(legacy), "mail_for_legacy_peers": hit,
                    "tnef_forced": forced if setting else "not checked: KB 254089's registry value is unconfirmed"}
        if not hit:
            names = sorted(legacy)
            listed = ", ".join(names[:EVIDENCE_PEERS]) + (f" and {len(names) - EVIDENCE_PEERS} more" if len(names) > EVIDENCE_PEERS else "")
            why = f"no mail queued for a legacy peer ({listed})" if legacy else "no Exchange 5.x or non-Exchange SMTP peer known"
            return fd.Finding(CAUSE, entry.name, "absent", why, evidence)
        if forced:
            return fd.Finding(CAUSE, entry.name, "absent", "TNEF is forced (knowledge detect.stnef_tnef_setting)", evidence,
                              confidence=fleet.confidence("stnef_tnef_setting"))
        peers = ", ".join(f"{p} ({legacy[p]['kind'] or 'non-Exchange'}, per {legacy[p]['kind_source']})" for p in sorted(hit))
        no_binary = [p for p in hit if legacy[p]["advertises"] == []]
        summary = (f"{entry.name} has mail for {peers}, which does not read S-TNEF"
                   + (f"; {', '.join(sorted(no_binary))} advertises no BINARYMIME/CHUNKING" if no_binary else "")
                   + ("; the TNEF setting (KB 254089) is not set" if forced is False
                      else "; whether TNEF is forced could not be checked (KB 254089's value is unconfirmed)"))
        return fd.Finding(CAUSE, entry.name, "present", summary, evidence, explains=list(hit),
                          confidence="inferred" if forced is None else fleet.confidence("stnef_tnef_setting"))

    return per_host(fleet, CAUSE, decide, kinds=("exchange2003", "exchange2000"))


# -- the fix: KB 919091 resolution 2 forces TNEF with "several registry entries" from KB 254089, which could
# not be found (knowledge detect.stnef_tnef_setting is null, unconfirmed). The entries are the user's:
# mailflow_stnef_setting, one entry or a list, each a registry value or an AD attribute. The action turns them
# into the knowledge the audit reads (collect.stnef_tnef_location_<n> and detect.stnef_tnef_setting), so the
# fix decides with the detector's own _tnef_forced. Without them the fix is report-only.

FIX_READS = ("os", "services", "exchange_setup", "ad_exchange_servers")  # the setting's own items come on top
SETTING_VAR = "mailflow_stnef_setting"
LOCATION_ITEM = "stnef_tnef_location"
MAX_ENTRIES = 8
_SENDERS = ("exchange2003", "exchange2000")
_REG_TYPES = ("REG_DWORD", "REG_SZ")
_KEYS = {"registry": {"layer", "path", "name", "type", "value", "restart"},
         "ad": {"layer", "dn", "attribute", "value", "syntax", "restart"}}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_REG_PATH = re.compile(r"^HKLM\\[^\\]+(\\[^\\]+)*$", re.I)
_ATTRIBUTE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,63}$")
_DN = re.compile(r"^[A-Za-z][A-Za-z0-9-]*=.+$")
_SERVICE = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def _text(value, where: str, what: str, pattern: re.Pattern | None = None, limit: int = 1024) -> str:
    if not isinstance(value, str) or not value or len(value) > limit or _CONTROL.search(value) \
            or (pattern is not None and not pattern.match(value)):
        raise FixError(f"{where}.{what} must be {_WHAT[what]}, got {value!r}")
    return value


_WHAT = {"path": "a registry key under HKLM\\ (e.g. HKLM\\SYSTEM\\CurrentControlSet\\Services\\...)",
         "name": "a registry value name (one line, no backslash)", "dn": "an AD distinguished name (CN=...,DC=...)",
         "attribute": "an AD attribute's lDAPDisplayName", "value": "one line of text"}


def _entry(e, where: str) -> dict:
    if not isinstance(e, dict) or e.get("layer") not in _KEYS:
        raise FixError(f"{where} must be a mapping with layer: registry or layer: ad, got {e!r}")
    layer = e["layer"]
    unknown = sorted(set(e) - _KEYS[layer])
    if unknown:
        raise FixError(f"{where} has keys {', '.join(map(str, unknown))} that a layer: {layer} entry does not take "
                       f"({', '.join(sorted(_KEYS[layer]))})")
    restart = e.get("restart") or []
    if not isinstance(restart, list) or not all(isinstance(x, str) and _SERVICE.match(x) for x in restart):
        raise FixError(f"{where}.restart must be a list of service names (e.g. [SMTPSVC]), got {restart!r}")
    value = e.get("value")
    if layer == "registry":
        rtype = e.get("type") or ("REG_SZ" if isinstance(value, str) else "REG_DWORD")
        if rtype not in _REG_TYPES:
            raise FixError(f"{where}.type must be one of {', '.join(_REG_TYPES)}, got {rtype!r}")
        if rtype == "REG_DWORD" and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF):
            raise FixError(f"{where}.value must be a whole number from 0 to 4294967295 for a REG_DWORD, got {value!r}")
        if rtype == "REG_SZ":
            _text(value, where, "value", limit=4096)
        name = e.get("name")
        if not isinstance(name, str) or "\\" in name:
            raise FixError(f"{where}.name must be {_WHAT['name']}, got {name!r}")
        return {"layer": "registry", "path": _text(e.get("path"), where, "path", _REG_PATH).rstrip("\\"),
                "name": _text(name, where, "name", limit=255), "type": rtype, "value": value, "restart": restart}
    syntax = e.get("syntax") or "string"
    if syntax not in ("string", "int"):
        raise FixError(f"{where}.syntax must be string or int, got {syntax!r}")
    if isinstance(value, bool) or not isinstance(value, (str, int)) or (syntax == "int" and not re.fullmatch(r"-?\d+", str(value))):
        raise FixError(f"{where}.value must be {'a whole number' if syntax == 'int' else 'one line of text'}, got {value!r}")
    return {"layer": "ad", "dn": _text(e.get("dn"), where, "dn", _DN), "attribute": _text(e.get("attribute"), where, "attribute", _ATTRIBUTE),
            "syntax": syntax, "value": _text(str(value), where, "value"), "restart": restart}


def var_entries(raw) -> list[dict]:
    """mailflow_stnef_setting, validated: [] when not given; FixError naming the variable otherwise."""
    if raw in (None, "", {}, []):
        return []
    if isinstance(raw, dict):
        return [_entry(raw, SETTING_VAR)]
    if not isinstance(raw, list) or len(raw) > MAX_ENTRIES:
        raise FixError(f"{SETTING_VAR} must be a mapping or a list of at most {MAX_ENTRIES} mappings, got {raw!r}")
    return [_entry(e, f"{SETTING_VAR}[{i}]") for i, e in enumerate(raw)]


def setting_knowledge(raw) -> dict:
    """The knowledge overrides that say what mailflow_stnef_setting says, as the audit reads it.
    {} when it is not given, or is invalid (fix_params then names the problem)."""
    try:
        entries = var_entries(raw)
    except FixError:
        return {}
    collect, value = {}, []
    for n, e in enumerate(entries, 1):
        item = f"{LOCATION_ITEM}_{n}"
        why = f"entry {n} of {SETTING_VAR} (KB 254089's entries are unconfirmed: the user's)"
        if e["layer"] == "registry":
            collect[item] = {"op": "reg_read", "path": e["path"], "why": why, "confidence": "unconfirmed"}
            value.append({"item": item, "path": e["path"], "name": e["name"], "type": e["type"], "data": e["value"],
                          "restart": e["restart"]})
        else:
            # The search returns the object and anything under it; the entry is matched by its DN.
            collect[item] = {"op": "adsi_search", "base": e["dn"], "filter": "(objectClass=*)", "attrs": [e["attribute"]],
                             "why": why, "confidence": "unconfirmed"}
            value.append({"layer": "ad", "item": item, "dn": e["dn"], "attribute": e["attribute"], "syntax": e["syntax"],
                          "data": [e["value"]], "restart": e["restart"]})
    if not value:
        return {}
    return {"collect": collect, "detect": {"stnef_tnef_setting": {
        "value": value, "why": f"from {SETTING_VAR}", "sources": ["KB919091 resolution 2", "KB254089"], "confidence": "unconfirmed"}}}


def fix_params(args: dict, facts: dict) -> dict:
    given = var_entries(args.get("setting"))  # names mailflow_stnef_setting when it is wrong
    value = knowledge_setting(facts, "stnef_tnef_setting")  # the var's entries (the action merged them) or the inventory's
    if not value:
        return {"setting": None, "from_var": False}
    entries = []
    for i, e in enumerate(_entries(value)):
        where = f"knowledge detect.stnef_tnef_setting[{i}]"
        if not isinstance(e, dict) or e.get("item") not in facts["collect"] or "data" not in e:
            raise FixError(f"{where} must name a collect item (item) and the value to set (data), got {e!r}")
        if e.get("layer") == "ad":
            if not e.get("dn") or not e.get("attribute"):
                raise FixError(f"{where} needs dn and attribute")
            entries.append({**e, "syntax": e.get("syntax", "string"), "restart": list(e.get("restart") or [])})
            continue
        item = facts["collect"][e["item"]]
        if item.get("op") != "reg_read" or not e.get("name"):
            raise FixError(f"{where} needs name and a reg_read collect item")
        path = e.get("path") or "\\".join(p for p in (item["path"], e.get("suffix", "").strip("\\")) if p)
        rtype = e.get("type") or ("REG_SZ" if isinstance(e["data"], str) else "REG_DWORD")
        if rtype not in _REG_TYPES:
            raise FixError(f"{where}.type must be one of {', '.join(_REG_TYPES)}")
        entries.append({**e, "path": path, "type": rtype, "restart": list(e.get("restart") or [])})
    return {"setting": entries, "from_var": bool(given)}


def setting_items(facts: dict) -> list[str]:
    """The collect items the setting's entries are read from (the fix reads them with FIX_READS)."""
    value = (facts.get("detect") or {}).get("stnef_tnef_setting")
    value = value.get("value") if isinstance(value, dict) and "value" in value else value
    return [e["item"] for e in _entries(value) if isinstance(e, dict) and e.get("item") in facts.get("collect", {})]


def fix_reads(facts: dict) -> list[str]:
    """The setting's own collect items are read with the rest, in the same one command."""
    return list(FIX_READS) + [i for i in setting_items(facts) if i not in FIX_READS]


def knowledge_from_args(args: dict) -> dict:
    # KB 254089's entries are unconfirmed, so where they live is the user's to say (mailflow_stnef_setting). They
    # become the knowledge the audit reads, under the user's own overrides (mailflow_knowledge wins, as everywhere),
    # so the fix decides with the detector's reading of them.
    return setting_knowledge(args.get("setting"))


def plan(view, params) -> list[Change]:
    if not params["setting"] or view.kind not in _SENDERS:
        return []  # the store driver that sends S-TNEF is Exchange 2000/2003's
    changes = []
    for e in params["setting"]:
        try:
            if _entry_set(view, e):
                continue
            unread = False
        except Missing:
            unread = True  # the read failed (no such AD object, access denied): the write will say why
        if e.get("layer") == "ad":
            changes.append(Change("adsi_attribute", {"dn": e["dn"], "attribute": e["attribute"], "syntax": e["syntax"]},
                                  [] if unread else _ad_values(view, e) or [],
                                  [str(v) for v in (e["data"] if isinstance(e["data"], list) else [e["data"]])], restart=e["restart"]))
            continue
        key = None if unread else view.reg_key(e["item"], e.get("suffix", ""))
        now = next((v for n, v in (key or {}).get("values", {}).items() if n.lower() == e["name"].lower()), None)
        before = {"exists": True, "type": now["type"], "data": now["data"]} if now else {"exists": False}
        changes.append(Change("registry_value", {"path": e["path"], "name": e["name"]}, before,
                              {"exists": True, "type": e["type"], "data": e["data"]}, restart=e["restart"]))
    return changes


def advice(view, params) -> list[str]:
    if params["setting"] or view.kind not in _SENDERS:
        return []
    return ["nothing changed: KB 919091 resolution 2 forces TNEF toward Exchange 5.5 and other systems that do not "
            "read S-TNEF with 'several registry entries' described in KB 254089, and that article could not be found, so "
            f"the entries are not known here. Set {SETTING_VAR} to them (registry values or AD attributes; see the role "
            "README) to have this role set and verify them; until then the audit reports the sender's side as unverified"]
