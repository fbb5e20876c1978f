"""Field notes 002 case 3: real-time antivirus scans the IIS/SMTP folders.

"exclude the \\Inetpub and %systemroot%\\system32\\inetsrv from any real time
virus scanning" (field notes 002); KB 245822: "Never run file-based scanning
software against ... the IIS system files"; KB 328841 adds Exchsrvr\\Mailroot.

Only Symantec AntiVirus is inspected: the ExBPA rule reads its RealTimeScan key,
where HaveExceptionDirs = 0 "indicates that folder exclusions are disabled"
(ExBPA aa997602). SAV 10.1 "automatically detects the presence of Exchange and
creates appropriate file and directory exclusions" (Symantec TECH101713); that
is no help on a relay without Exchange. Which folders the FileExceptions subkey
lists cannot be checked (its layout is not confirmed for SAV 9/10), so the
folders to exclude are given as evidence for a human to verify.
"""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils.causes.common import EXCHANGE_SMTP_KINDS, names_match, per_host, stuck_on

CAUSE = fd.Cause(
    id="av_scans_iis_folders",
    title="Real-time antivirus scanning of the IIS and SMTP folders (no folder exclusions)",
    sources=("field notes 002 case 3", "KB245822", "KB328841", "ExBPA aa997602", "Symantec TECH101713"),
    severity="medium", fix="mailflow.exchange.fix_av_scans_iis_folders",
    symptom_scope="outbound",
)
_SWITCH = "HaveExceptionDirs"


def detect(fleet):
    products = fleet.setting("sav_product_names")
    auto_versions = [str(v) for v in fleet.setting("sav_auto_exclusion_versions")]
    folders = list(fleet.setting("av_exclusion_folders"))
    names = ("sav_product_names", "sav_auto_exclusion_versions", "av_exclusion_folders")
    confidence = max((fleet.confidence(n) for n in names), key=fd.CONFIDENCES.index)

    def decide(entry, view):
        sav = [p for p in view.installed_products() if names_match(p["name"], products)]
        evidence = {"products": sav, "folders_to_exclude": folders}
        if not sav:
            # Not `absent` in the strict sense for other vendors: say what was not looked at.
            return fd.Finding(CAUSE, entry.name, "absent",
                              f"no supported AV product found ({', '.join(products)}); other AV products are not inspected",
                              evidence, confidence=max(confidence, "inferred", key=fd.CONFIDENCES.index))
        product = f"{sav[0]['name']} {sav[0]['version']}".strip()
        version = str(sav[0]["version"])
        is_exchange = view.kind in EXCHANGE_SMTP_KINDS
        auto = is_exchange and any(version == v or version.startswith(v + ".") for v in auto_versions)
        evidence["automatic_exchange_exclusions"] = auto
        key = view.reg_key("sav_realtime_scan")
        if key is None:
            return fd.unknown(CAUSE, entry.name, f"{product} is installed but its RealTimeScan key (collect.sav_realtime_scan) "
                              "does not exist; this version may keep its settings elsewhere", **evidence)
        raw = next((v for n, v in key["values"].items() if n.lower() == _SWITCH.lower()), None)
        evidence[_SWITCH] = raw
        evidence["file_exceptions"] = view.reg_key("sav_realtime_scan", "FileExceptions")
        if raw is not None and raw["type"] != "REG_DWORD":
            # ExBPA compares a DWORD; a REG_SZ "0" may or may not be read by SAV as 0, so it is not guessed.
            return fd.unknown(CAUSE, entry.name, f"{_SWITCH} is {raw['type']} {raw['data']!r}, not a REG_DWORD; "
                              "whether SAV reads it as exclusions on or off is not known", **evidence)
        off = raw is not None and raw["data"] == 0
        if auto and not off:
            return fd.Finding(CAUSE, entry.name, "absent",
                              f"{product} creates the Exchange exclusions itself (Symantec TECH101713)", evidence, confidence=confidence)
        if off:
            tail = ("; SAV 10.1 creates Exchange exclusions itself (TECH101713), but whether they survive folder exclusions "
                    "being off is not documented" if auto else "")
            return fd.Finding(CAUSE, entry.name, "present",
                              f"{product} scans in real time with folder exclusions off ({_SWITCH} = 0, ExBPA aa997602): "
                              f"{', '.join(folders)} are scanned" + tail,
                              evidence, confidence="inferred" if auto else confidence, severity="low" if auto else None,
                              explains=stuck_on(fleet, entry))
        if raw is None:
            return fd.unknown(CAUSE, entry.name, f"{product} is installed but {_SWITCH} is not set under RealTimeScan; "
                              "what SAV does without it is not documented", **evidence)
        return fd.Finding(CAUSE, entry.name, "absent",
                          f"{product} has folder exclusions on ({_SWITCH} = {raw['data']}); check that they cover "
                          f"{', '.join(folders)} (the FileExceptions layout is not confirmed, so the list is not read)",
                          evidence, confidence=max(confidence, "inferred", key=fd.CONFIDENCES.index))

    return per_host(fleet, CAUSE, decide, kinds=EXCHANGE_SMTP_KINDS + ("smtp_relay",))
