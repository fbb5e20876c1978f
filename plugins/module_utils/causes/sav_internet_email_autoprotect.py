"""KB 919091 cause 1: Symantec AntiVirus Internet E-mail Auto-Protect on an SMTP server.

The feature proxies SMTP on the server itself; Symantec says it "should never
be run on any SMTP based Email servers" (freeswing, weblogs.asp.net 2005-04-01). It is found by its
MSI feature caption (the title Windows Installer keeps, as Win32_SoftwareFeature shows
it; the runner reads it through WindowsInstaller.Installer), never by a guessed feature
name, and its install state says whether it is installed.
"""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils.causes.common import names_match, per_host
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import Change, FixError, setting

CAUSE = fd.Cause(
    id="sav_internet_email_autoprotect",
    title="Symantec AntiVirus Internet E-mail Auto-Protect on an SMTP server",
    sources=("KB919091", "Symantec 2004052415562048", "Symantec 2004061009504348"),
    severity="high",
    position=10,
    fix=fd.Fix(order=90, args=dict(allow_reboot=dict(type="bool", default=False))),
    kb919091_cause=1,
    symptom_scope="outbound",
)
_STATES = {-6: "bad configuration", -2: "invalid argument", -1: "unknown package", 1: "advertised", 2: "absent", 3: "local", 4: "source"}


def detect(fleet):
    captions = fleet.setting("sav_email_feature_captions")
    products = fleet.setting("sav_product_names")
    installed_states = set(fleet.setting("msi_installed_states"))
    kb_versions = [str(v) for v in fleet.setting("sav_email_kb_versions")]
    confidence = fleet.confidence("sav_email_feature_captions")

    def decide(entry, view):
        features = view.item("msi_features")
        sav = [p for p in view.installed_products() if names_match(p["name"], products)]
        email = email_features(features, captions, products)
        evidence = {"products": sav, "features": [
            {"caption": f["caption"], "name": f.get("name"), "product": f.get("product"), "product_code": f.get("product_code"),
             "version": f.get("version"), "install_state": f.get("state"), "install_state_text": _STATES.get(f.get("state"), "?")}
            for f in email]}
        if not sav and not email:
            return fd.Finding(CAUSE, entry.name, "absent", "no Symantec AntiVirus client installed", evidence, confidence=confidence)
        on = [f for f in email if f.get("state") in installed_states]
        if not on:
            what = "not installed" if email else "not found among the product's features"
            return fd.Finding(CAUSE, entry.name, "absent",
                              f"Symantec AntiVirus is installed; its Internet E-mail Auto-Protect feature is {what}", evidence,
                              confidence=confidence)
        f = on[0]
        version = str(f.get("version") or (sav[0]["version"] if sav else ""))
        named_by_kb = any(version.startswith(v + ".") or version == v for v in kb_versions)
        return fd.Finding(
            CAUSE, entry.name, "present",
            f"{f.get('product')} {version} has Internet E-mail Auto-Protect installed ({_STATES.get(f.get('state'), f.get('state'))}, "
            f"feature {f.get('name')!r}); it intercepts SMTP on this server"
            + ("" if named_by_kb else " (KB 919091 names 9.x; this version carries the same feature)"),
            evidence, confidence=confidence, severity="high" if named_by_kb else "medium",
            explains=[],
        )

    return per_host(fleet, CAUSE, decide)


def email_features(features, captions, products) -> list[dict]:
    """The Internet E-mail Auto-Protect features among Win32_SoftwareFeature rows: by caption, of a SAV product."""
    wanted = {c.lower() for c in captions}
    return [f for f in features or [] if str(f.get("caption") or "").lower() in wanted
            and names_match(str(f.get("product") or ""), products)]


# -- the fix: remove the feature with Windows Installer in maintenance mode (msiexec /i {ProductCode}
# REMOVE=<Feature> /qn): what Add/Remove Programs > Change does, without dialogs (Symantec's removal documents
# cited by KB 919091 were not found). The feature is found as the detector finds it (caption, not a guessed name), and
# REMOVE takes the feature's own Name from Win32_SoftwareFeature (case-sensitive, MSDN "REMOVE property").

FIX_READS = ("msi_features",)
_ABSENT = 2  # Win32_SoftwareFeature.InstallState Absent (MSDN aa394458)


def fix_params(args: dict, facts: dict) -> dict:
    reboot = args.get("allow_reboot", False)
    if not isinstance(reboot, bool):
        raise FixError(f"mailflow_allow_reboot must be true or false, got {reboot!r}")
    return {"reboot": reboot,
            "captions": list(setting(facts, "sav_email_feature_captions")),
            "products": list(setting(facts, "sav_product_names")),
            "installed_states": set(setting(facts, "msi_installed_states"))}


def _installed(view, params) -> list[dict]:
    features = email_features(view.item("msi_features"), params["captions"], params["products"])
    return [f for f in features if f.get("state") in params["installed_states"]]


def plan(view, params) -> list[Change]:
    changes = []
    for f in _installed(view, params):
        if not f.get("product_code") or not f.get("name"):
            continue  # msiexec needs both; advice() says so
        changes.append(Change("msi_feature", {"product_code": f["product_code"], "product": f.get("product") or "",
                                              "feature": f["name"], "caption": f.get("caption") or "",
                                              "reboot": params["reboot"]},
                              f.get("state"), _ABSENT))
    return changes


def advice(view, params) -> list[str]:
    out = []
    for f in _installed(view, params):
        if not f.get("product_code") or not f.get("name"):
            out.append(f"{f.get('product')} feature {f.get('caption')!r} is installed but WMI gave no "
                       f"{'ProductCode' if not f.get('product_code') else 'feature Name'} for msiexec: not removed; "
                       "remove it in Add/Remove Programs > Change")
        else:
            out.append(f"putting {f['caption']!r} back (msiexec /i {f['product_code']} ADDLOCAL={f['name']}) may need "
                       f"the {f.get('product')} installation source (its MSI or the client install share)")
    return out
