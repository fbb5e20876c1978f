"""KB 919091 cause 3: heuristics (Bloodhound) scanning on in Symantec Mail Security for Microsoft Exchange.

"Heuristics scanning alters a message. This causes the terminating period to
appear at the end of the message text" (KB 919091), so the receiving server
never sees CRLF.CRLF and the sender's connection times out (Event 4006).

Where SMSMSE 4.x keeps its heuristics switch is NOT confirmed (domain-facts 8):
the registry root (knowledge collect.smsmse_settings) and the value
(detect.smsmse_heuristics_value, {name, off_values}) are the lab's layout and can be
overridden, so every decision that reads the switch is `unconfirmed`.
"""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils.causes.common import EXCHANGE_SMTP_KINDS, names_match, per_host, stuck_on

CAUSE = fd.Cause(
    id="smsmse_heuristics",
    title="Symantec Mail Security for Exchange heuristics (Bloodhound) scanning alters outgoing messages",
    sources=("KB919091", "Terry's WebLog 2005-04-01"),
    severity="high", fix="mailflow.exchange.fix_smsmse_heuristics", kb919091_cause=3,
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
        found = [{"key": path, "name": vname, "type": v["type"], "data": v["data"]}
                 for path, key in keys.items() for vname, v in key["values"].items() if vname.lower() == value_name.lower()]
        evidence["values"] = found
        product = f"{products[0]['name']} {products[0]['version']}".strip()
        if not found:
            where = ", ".join(sorted(keys)) if keys else "the smsmse_settings key (it does not exist)"
            return fd.unknown(CAUSE, entry.name, f"{product} is installed but no {value_name!r} value was found under {where}; "
                              + _OVERRIDE, **evidence)
        # A value of another type than the switch's (say REG_SZ "1" for a DWORD) is not read as on or off:
        # how SMSMSE treats it is not known, so it is reported, not guessed.
        odd = [v for v in found if v["type"] != expected_type and v["data"] not in off_values]
        on = [v for v in found if v["type"] == expected_type and v["data"] not in off_values]
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
