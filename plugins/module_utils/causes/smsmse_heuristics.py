"""KB 919091 cause 3: heuristics (Bloodhound) scanning on in Symantec Mail Security for Microsoft Exchange.

"Heuristics scanning alters a message. This causes the terminating period to
appear at the end of the message text" (KB 919091), so the receiving server
never sees CRLF.CRLF and the sender's connection times out (Event 4006).

Where SMSMSE 4.x keeps its heuristics switch is NOT confirmed (Symantec documents only the console):
the registry root (knowledge collect.smsmse_settings) and the value
(detect.smsmse_heuristics_value, {name, off_values}) are an unconfirmed default and can be
overridden, so every decision that reads the switch is `unconfirmed`.
"""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils.causes.common import EXCHANGE_SMTP_KINDS, names_match, per_host, stuck_on
from ansible_collections.mailflow.exchange.plugins.module_utils import knowledge
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import Change, FixError, setting

CAUSE = fd.Cause(
    id="smsmse_heuristics",
    title="Symantec Mail Security for Exchange heuristics (Bloodhound) scanning alters outgoing messages",
    sources=("KB919091", "Terry's WebLog 2005-04-01"),
    severity="high",
    position=30,
    fix=fd.Fix(order=100),
    kb919091_cause=3,
    symptom_scope="outbound",
)
_OVERRIDE = ("where SMSMSE keeps its heuristics switch is a lab assumption (not confirmed); set "
             "mailflow_knowledge detect.smsmse_heuristics_value (and collect.smsmse_settings) for your build")


def detect(fleet):
    product_names = fleet.setting("smsmse_product_names")
    switch = fleet.setting("smsmse_heuristics_value")
    value_name, off_values = switch["name"], list(switch.get("off_values") or [])
    expected_type = switch.get("type", "REG_DWORD")
    marks = [fleet.confidence("smsmse_product_names"), fleet.confidence("smsmse_heuristics_value")]
    weakest = max(marks, key=fd.CONFIDENCES.index)

    def decide(entry, view):
        products = [p for p in view.installed_products() if names_match(p["name"], product_names)]
        evidence = {"products": products, "setting": {"name": value_name, "off": off_values, "type": expected_type}}
        if not products:
            return fd.Finding(CAUSE, entry.name, "absent", "Symantec Mail Security for Microsoft Exchange is not installed",
                              evidence, confidence=fleet.confidence("smsmse_product_names"))
        keys = view.reg_subkeys("smsmse_settings")
        evidence["looked_in"] = sorted(keys) or "collect.smsmse_settings (key not found)"
        found = switch_values(view, value_name)
        evidence["values"] = found
        product = f"{products[0]['name']} {products[0]['version']}".strip()
        if not found:
            where = ", ".join(sorted(keys)) if keys else "the smsmse_settings key (it does not exist)"
            return fd.unknown(CAUSE, entry.name, f"{product} is installed but no {value_name!r} value was found under {where}; "
                              + _OVERRIDE, **evidence)
        # A value of another type than the switch's (say REG_SZ "1" for a DWORD) is not read as on or off:
        # how SMSMSE treats it is not known, so it is reported, not guessed.
        odd = [v for v in found if is_odd(v, expected_type, off_values)]
        on = [v for v in found if is_on(v, expected_type, off_values)]
        if on:
            where = "; ".join(f"{v['key']}\\{v['name']} = {v['data']!r}" for v in on)
            return fd.Finding(CAUSE, entry.name, "present",
                              f"{product} has heuristics (Bloodhound) scanning on ({where}); it alters messages so the "
                              f"terminating period is not seen (KB 919091 cause 3). Note: {_OVERRIDE}",
                              evidence, confidence=weakest, explains=stuck_on(fleet, entry))
        if odd:
            v = odd[0]
            return fd.unknown(CAUSE, entry.name, f"{v['key']}\\{v['name']} is {v['type']} {v['data']!r}, not a {expected_type}; "
                              f"whether SMSMSE reads that as heuristics on or off is not known", **evidence)
        return fd.Finding(CAUSE, entry.name, "absent",
                          f"{product} is installed with heuristics (Bloodhound) scanning off ({value_name} = "
                          f"{found[0]['data']!r}). Note: {_OVERRIDE}", evidence, confidence=weakest)

    return per_host(fleet, CAUSE, decide, kinds=EXCHANGE_SMTP_KINDS)


def switch_values(view, value_name: str) -> list[dict]:
    """Every value named like the switch under collect.smsmse_settings: [{key, name, type, data}]."""
    return [{"key": path, "name": vname, "type": v["type"], "data": v["data"]}
            for path, key in view.reg_subkeys("smsmse_settings").items()
            for vname, v in key["values"].items() if vname.lower() == value_name.lower()]


def is_on(v: dict, expected_type: str, off_values: list) -> bool:
    return v["type"] == expected_type and v["data"] not in off_values


def is_odd(v: dict, expected_type: str, off_values: list) -> bool:
    return v["type"] != expected_type and v["data"] not in off_values


# -- the fix: write the switch's "off" data where the audit found it on. KB 919091 only says "disable
# heuristics scanning ... refer to the program's Help files"; SMSMSE 4.x/5.x documents no registry form,
# so the location is the (overridable, unconfirmed) knowledge the audit reads, and the fix says so.

FIX_READS = ("installed_products", "smsmse_settings")
# The service that scans (ExBPA queries Win32_Service for "SMSMSE", unifiedpeople.ru db7b2ac6). Whether it
# re-reads a registry change without a restart is not documented, so the change asks for one.
SERVICE = "SMSMSE"
_TYPES = {"REG_DWORD": int, "REG_SZ": str}
_VAR = "knowledge detect.smsmse_heuristics_value"


def _switch(facts: dict) -> tuple[str, dict]:
    return facts["collect"]["smsmse_settings"]["path"], setting(facts, "smsmse_heuristics_value")


def fix_params(args: dict, facts: dict) -> dict:
    root, switch = _switch(facts)
    if not isinstance(root, str) or not root.upper().startswith(("HKLM\\", "HKEY_LOCAL_MACHINE\\")) or any(c in root for c in "\r\n"):
        raise FixError(f"knowledge collect.smsmse_settings.path must be a registry key under HKLM\\, got {root!r}")
    if not isinstance(switch, dict) or not isinstance(switch.get("name"), str) or not switch["name"].strip():
        raise FixError(f"{_VAR} must be a mapping with the value's name (name, type, off_values), got {switch!r}")
    rtype = switch.get("type", "REG_DWORD")
    if rtype not in _TYPES:
        raise FixError(f"{_VAR}.type must be one of {', '.join(_TYPES)}, got {rtype!r}")
    off_values = switch.get("off_values")
    if not isinstance(off_values, list) or not off_values:
        raise FixError(f"{_VAR}.off_values must list the data that mean off (the first is written), got {off_values!r}")
    for v in off_values:
        # A "0" for a DWORD would never compare equal to the 0 the host returns: fix and audit would disagree forever.
        if isinstance(v, bool) or not isinstance(v, _TYPES[rtype]) or (rtype == "REG_DWORD" and not 0 <= v <= 0xFFFFFFFF):
            raise FixError(f"{_VAR}.off_values must be {'whole numbers 0-4294967295' if rtype == 'REG_DWORD' else 'strings'} "
                           f"for a {rtype}, got {v!r}")
    shipped_root, shipped_switch = _switch(knowledge.load())
    return {"root": root, "name": switch["name"], "type": rtype, "off_values": off_values, "off": off_values[0],
            "products": list(setting(facts, "smsmse_product_names")),
            "default_location": root == shipped_root and switch == shipped_switch}


def _installed(view, params) -> bool:
    return any(names_match(p["name"], params["products"]) for p in view.installed_products())


def plan(view, params) -> list[Change]:
    if not _installed(view, params):
        return []
    return [Change("registry_value", {"path": v["key"], "name": v["name"]},
                   {"exists": True, "type": v["type"], "data": v["data"]},
                   {"exists": True, "type": params["type"], "data": params["off"]}, restart=[SERVICE])
            for v in switch_values(view, params["name"]) if is_on(v, params["type"], params["off_values"])]


def advice(view, params) -> list[str]:
    if not _installed(view, params):
        return []
    where = f"{params['name']} ({params['type']}, off = {params['off']!r}) under {params['root']}"
    out = []
    if params["default_location"]:
        out.append(f"where SMSMSE keeps its heuristics switch is NOT confirmed: this used the unconfirmed default, {where}; "
                   "check it on your build and override knowledge collect.smsmse_settings.path and detect.smsmse_heuristics_value "
                   "(mailflow_knowledge), for the audit and the fix alike")
    found = switch_values(view, params["name"])
    if not found:
        out.append(f"no {params['name']} value was found under {params['root']}: nothing was changed; turn heuristics "
                   "(Bloodhound) off in the SMSMSE console (KB 919091 cause 3)")
    for v in found:
        if is_odd(v, params["type"], params["off_values"]):
            out.append(f"{v['key']}\\{v['name']} is {v['type']} {v['data']!r}, not a {params['type']}: not changed "
                       "(how SMSMSE reads it is not known)")
    return out
