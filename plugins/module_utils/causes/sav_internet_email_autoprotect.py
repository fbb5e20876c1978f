"""KB 919091 cause 1: Symantec AntiVirus Internet E-mail Auto-Protect on an SMTP server.

The feature proxies SMTP on the server itself; Symantec says it "should never
be run on any SMTP based Email servers" (field notes 000). It is found by its
MSI feature caption through Win32_SoftwareFeature, never by a guessed feature
name, and its InstallState says whether it is installed.
"""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils.causes.common import names_match, per_host

CAUSE = fd.Cause(
    id="sav_internet_email_autoprotect",
    title="Symantec AntiVirus Internet E-mail Auto-Protect on an SMTP server",
    sources=("KB919091", "Symantec 2004052415562048", "Symantec 2004061009504348"),
    severity="high", fix="mailflow.exchange.fix_sav_internet_email_autoprotect", kb919091_cause=1,
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
        email = [f for f in features or [] if str(f.get("caption") or "").lower() in {c.lower() for c in captions}
                 and names_match(str(f.get("product") or ""), products)]
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
