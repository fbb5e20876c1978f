"""chicagotech.net Event ID 4006, case 3: real-time antivirus scans the IIS/SMTP folders.

"exclude the \\Inetpub and %systemroot%\\system32\\inetsrv from any real time
virus scanning" (chicagotech.net Event ID 4006); KB 245822: "Never run file-based scanning
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
from ansible_collections.mailflow.exchange.plugins.module_utils import knowledge
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import Change, FixError, setting

CAUSE = fd.Cause(
    id="av_scans_iis_folders",
    title="Real-time antivirus scanning of the IIS and SMTP folders (no folder exclusions)",
    sources=("chicagotech.net Event ID 4006 case 3", "KB245822", "KB328841", "ExBPA aa997602", "Symantec TECH101713"),
    severity="medium",
    position=90,
    fix=fd.Fix(order=80, args=dict(extra_folders=dict(type="list", elements="str", default=[]))),
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
        auto = auto_exclusions(view, version, auto_versions)
        evidence["automatic_exchange_exclusions"] = auto
        key = view.reg_key("sav_realtime_scan")
        if key is None:
            return fd.unknown(CAUSE, entry.name, f"{product} is installed but its RealTimeScan key (collect.sav_realtime_scan) "
                              "does not exist; this version may keep its settings elsewhere", **evidence)
        raw = switch_value(key)
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


def auto_exclusions(view, version: str, auto_versions: list[str]) -> bool:
    """SAV 10.1 on Exchange adds the Exchange exclusions itself (Symantec TECH101713)."""
    return view.kind in EXCHANGE_SMTP_KINDS and any(version == v or version.startswith(v + ".") for v in auto_versions)


def switch_value(key: dict) -> dict | None:
    """HaveExceptionDirs under RealTimeScan as {"type", "data"}, or None."""
    return next((v for n, v in key["values"].items() if n.lower() == _SWITCH.lower()), None)


# -- the fix: turn SAV's folder exclusions on (HaveExceptionDirs = 1, the value ExBPA aa997602 reads) and add
# the folders KB 245822 / KB 328841 / chicagotech.net Event ID 4006 say real-time scanning must skip, one registry value
# each, only those not already listed. SAV 10.1 on Exchange adds the Exchange exclusions itself
# (TECH101713): there only the switch is turned on. How SAV lists a folder exclusion in the registry is
# NOT confirmed (knowledge sav_exclusion_entry): the fix says so whenever it relies on it.

FIX_READS = ("installed_products", "sav_realtime_scan", "windows_version", "exchange_setup", "ad_exchange_servers", "services")
APPLIES_TO = EXCHANGE_SMTP_KINDS + ("exchange", "smtp_relay")  # "exchange": a version the read could not tell
# The SAV client service (Rtvscan.exe) that applies Auto-Protect settings; that it needs a restart to re-read
# them after a registry write is inferred (SAV documents only its console and Symantec System Center).
SERVICE = "Symantec AntiVirus"
_TYPES = {"REG_DWORD": int, "REG_SZ": str}
_ENTRY_VAR = "knowledge detect.sav_exclusion_entry"
_EXTRA_VAR = "mailflow_av_exclusion_extra_folders"


def _bad_path(p) -> bool:
    return not isinstance(p, str) or len(p) < 3 or not p[0].isalpha() or p[1:3] != ":\\" \
        or any(c in p for c in '\r\n"*?<>|') or ":" in p[2:]


def fix_params(args: dict, facts: dict) -> dict:
    entry = setting(facts, "sav_exclusion_entry")
    if not isinstance(entry, dict) or not isinstance(entry.get("subkey"), str) or not entry["subkey"].strip("\\ ") \
            or any(c in entry["subkey"] for c in "\r\n"):
        raise FixError(f"{_ENTRY_VAR} must be a mapping {{subkey, type, data}} naming a subkey of RealTimeScan, got {entry!r}")
    rtype = entry.get("type", "REG_DWORD")
    if rtype not in _TYPES:
        raise FixError(f"{_ENTRY_VAR}.type must be one of {', '.join(_TYPES)}, got {rtype!r}")
    data = entry.get("data")
    if isinstance(data, bool) or not isinstance(data, _TYPES[rtype]) or (rtype == "REG_DWORD" and not 0 <= data <= 0xFFFFFFFF):
        raise FixError(f"{_ENTRY_VAR}.data must be {'a whole number 0-4294967295' if rtype == 'REG_DWORD' else 'a string'} "
                       f"for a {rtype}, got {data!r}")
    extra = args.get("extra_folders") or []
    bad = [p for p in extra if _bad_path(p)] if isinstance(extra, list) else [extra]
    if bad:
        raise FixError(f"{_EXTRA_VAR} must list full local folder paths (like D:\\Exchsrvr\\Mdbdata), got {bad[0]!r}")
    return {"path": facts["collect"]["sav_realtime_scan"]["path"], "subkey": entry["subkey"].strip("\\"),
            "type": rtype, "data": data, "extra": [p.rstrip("\\") for p in extra],
            "folders": list(setting(facts, "av_exclusion_folders")),
            "exchange_folders": list(setting(facts, "av_exchange_exclusion_folders")),
            "products": list(setting(facts, "sav_product_names")),
            "auto_versions": [str(v) for v in setting(facts, "sav_auto_exclusion_versions")],
            "default_layout": entry == setting(knowledge.load(), "sav_exclusion_entry")}


def _state(view, params) -> dict | None:
    """What the detector looks at: the SAV product, its RealTimeScan key, the switch, and whether SAV adds Exchange's own."""
    if view.kind not in APPLIES_TO:
        return None
    sav = [p for p in view.installed_products() if names_match(p["name"], params["products"])]
    if not sav:
        return None
    key = view.reg_key("sav_realtime_scan")
    raw = switch_value(key) if key is not None else None
    return {"product": f"{sav[0]['name']} {sav[0]['version']}".strip(), "key": key, "raw": raw,
            "on": raw is not None and raw["type"] == "REG_DWORD" and raw["data"] != 0,
            "auto": auto_exclusions(view, str(sav[0]["version"]), params["auto_versions"])}


def wanted_folders(view, params) -> tuple[list[str], list[str]]:
    """(full paths to exclude, knowledge folders that could not be placed). %SystemRoot% and the system drive
    come from the registry's SystemRoot, \\Exchsrvr from Exchange's Setup key (no Exchange: not wanted)."""
    root = view.reg_value("windows_version", "SystemRoot")
    exchsrvr = view.reg_value("exchange_setup", "Services")
    names = params["folders"] + (params["exchange_folders"] if view.kind.startswith("exchange") else [])
    out, unplaced = [], []
    for f in names:
        low = f.lower()
        if low.startswith("%systemroot%"):
            base, rest = root, f[len("%systemroot%"):]
        elif low == "\\exchsrvr" or low.startswith("\\exchsrvr\\"):
            if not exchsrvr:
                continue
            base, rest = exchsrvr, f[len("\\exchsrvr"):]
        elif f.startswith("\\"):
            base, rest = (str(root)[:2] if root else None), f
        else:
            base, rest = "", f
        if base is None:
            unplaced.append(f)
            continue
        out.append((str(base).rstrip("\\") + rest).rstrip("\\"))
    seen, unique = set(), []
    for p in out + params["extra"]:
        if p.lower() not in seen:
            seen.add(p.lower())
            unique.append(p)
    return unique, unplaced


def _covered(folder: str, listed: dict, params) -> bool:
    """Listed already, or under a listed folder whose entry reads like ours (include subfolders)."""
    f = folder.lower()
    for name, v in listed.items():
        n = name.lower().rstrip("\\")
        if n == f or (f.startswith(n + "\\") and v["type"] == params["type"] and v["data"] == params["data"]):
            return True
    return False


def plan(view, params) -> list[Change]:
    st = _state(view, params)
    if st is None or st["key"] is None or (st["auto"] and st["on"]):
        return []
    changes = []
    if not st["on"]:
        raw = st["raw"]
        changes.append(Change("registry_value", {"path": params["path"], "name": "HaveExceptionDirs"},
                              {"exists": raw is not None, **(raw or {})},
                              {"exists": True, "type": "REG_DWORD", "data": 1}, restart=[SERVICE]))
    if st["auto"]:
        return changes  # SAV 10.1 adds the Exchange exclusions once folder exclusions are on
    listed = (view.reg_key("sav_realtime_scan", params["subkey"]) or {}).get("values", {})
    where = f"{params['path']}\\{params['subkey']}"
    for folder in wanted_folders(view, params)[0]:
        if not _covered(folder, listed, params):
            changes.append(Change("registry_value", {"path": where, "name": folder}, {"exists": False},
                                  {"exists": True, "type": params["type"], "data": params["data"]}, restart=[SERVICE]))
    return changes


def advice(view, params) -> list[str]:
    st = _state(view, params)
    if st is None:
        return []
    if st["key"] is None:
        return [f"{st['product']} is installed but its RealTimeScan key ({params['path']}) does not exist: nothing was "
                "changed; this version may keep its settings elsewhere (set its exclusions in the SAV console)"]
    out = []
    if params["default_layout"] and not st["auto"]:
        out.append(f"how SAV lists folder exclusions in the registry is NOT confirmed: this used the unconfirmed default "
                   f"(one {params['type']} {params['data']!r} value per folder under RealTimeScan\\{params['subkey']}); check "
                   f"the folders are listed in the SAV client's Auto-Protect exclusions, or override {_ENTRY_VAR} (mailflow_knowledge) for your build")
    unplaced = wanted_folders(view, params)[1]
    if unplaced and not st["auto"]:
        out.append(f"SystemRoot could not be read, so {', '.join(unplaced)} could not be placed: not excluded")
    if plan(view, params):
        out.append("a SAV client managed from Symantec System Center takes its settings from its parent server: set the "
                   "same exclusions there (Client Auto-Protect Options > Exclusions), or its next push undoes these")
    return out
