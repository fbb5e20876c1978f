"""KB 919091 cause 6: the IIS metabase is corrupted ("If the other causes do not apply").

Three signs, each from its own source:
- MetaBase.xml is not well-formed XML (KB 843093 calls that a corrupt metabase);
- the SMTP keys are missing: no /LM/SmtpSvc, no /LM/SmtpSvc/<n>, or an SMTP
  virtual server in AD (DS2MB copies it into the metabase, ExBPA) with no key;
- on Exchange, the EHLO other servers got lacks the Exchange verbs: "SMTP in
  Exchange is not loaded properly ... or ... possible corruption of the IIS
  metabase" (TechNet bb124688). Only probes that got a real EHLO count; when
  some peers see the verbs and others do not, a device on those paths is the
  likelier cause, so that alone is not taken as corruption.
The restore candidates are the History pairs MetaBase_<major>_<minor>.xml +
MBSchema_<major>_<minor>.xml, usable on this machine only (TechNet cc739752,
cc738704); KB 304166's section on replacing it was not retrieved.
"""
from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils import symptoms
from ansible_collections.mailflow.exchange.plugins.module_utils.causes.common import EXCHANGE_SMTP_KINDS, per_host
from ansible_collections.mailflow.exchange.plugins.module_utils.fleet import ehlo_verbs
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import Missing
from ansible_collections.mailflow.exchange.plugins.module_utils.metabase import MetabaseError, parse
from ansible_collections.mailflow.exchange.plugins.module_utils.psrunner import FILE_CHUNK_BYTES, Op
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import Change, FixError, setting

CAUSE = fd.Cause(
    id="metabase_corrupt",
    title="IIS metabase corrupted (MetaBase.xml unreadable, SMTP keys or Exchange EHLO verbs missing)",
    sources=("KB919091", "KB304166", "KB843093", "TechNet bb124688", "TechNet cc739752"),
    severity="high",
    position=60,
    fix=fd.Fix(order=10, args=dict(allow_restore=dict(type="bool", default=False))),
    kb919091_cause=6,
    symptom_scope="inbound",
)
_HISTORY = re.compile(r"(MetaBase|MBSchema)_(\d+)_(\d+)\.xml$", re.I)
_LAST = "KB 919091 suspects the metabase only if the other causes do not apply, so it ranks after them"


def detect(fleet):
    verbs = [str(v).upper() for v in fleet.setting("exchange_ehlo_verbs")]

    def decide(entry, view):
        signs, evidence = [], {}  # signs: [(what was seen, the confidence of reading it as corruption)]
        try:
            evidence["metabase_file"] = {k: (view.item("metabase") or {}).get(k) for k in ("path", "size", "mtime", "encoding")}
        except Missing:
            pass
        evidence["history_pairs"], evidence["history_note"] = _history(view)
        try:
            mb = view.metabase()
        except MetabaseError as exc:  # a file that does not parse is the corruption itself, not missing data
            mb, evidence["parse_error"] = None, str(exc)
            signs.append((f"MetaBase.xml does not parse ({exc})", "confirmed"))
        except Missing as exc:
            mb, unread = None, str(exc)
        if mb is not None:
            servers = mb.smtp_virtual_servers()
            evidence["smtp_virtual_servers"] = sorted(servers, key=int)
            missing = [] if mb.get("/LM/SmtpSvc") is not None else ["/LM/SmtpSvc"]
            missing += [] if servers else ["/LM/SmtpSvc/<n> (no SMTP virtual server)"]
            if view.kind in EXCHANGE_SMTP_KINDS:
                try:
                    in_ad = view.ad_virtual_servers(entry.computer_name)
                    missing += [f"/LM/SmtpSvc/{n} (in AD)" for n in sorted(in_ad) if n not in servers]
                    evidence["ad_virtual_servers"] = sorted(in_ad)
                except Missing as exc:
                    evidence["ad_virtual_servers_error"] = str(exc)
            evidence["missing_keys"] = missing
            if missing:
                # A key missing only against AD may be DS2MB not having run yet (ExBPA: it copies AD into the metabase).
                only_ad = bool(servers) and "/LM/SmtpSvc" not in missing
                signs.append((f"SMTP keys missing: {', '.join(missing)}", "inferred" if only_ad else "confirmed"))
        if view.kind in EXCHANGE_SMTP_KINDS:
            ehlo = _ehlo(fleet, entry, verbs)
            evidence["ehlo"] = ehlo
            if ehlo["lacking"] and not ehlo["complete"]:
                lacking = sorted({v for vs in ehlo["lacking"].values() for v in vs})
                signs.append((f"the EHLO that {', '.join(sorted(ehlo['lacking']))} got lacks the Exchange verbs "
                              f"{', '.join(lacking)} (TechNet bb124688)", fleet.confidence("exchange_ehlo_verbs")))
        if signs:
            # Each sign alone shows the cause, so the finding is as sure as its surest sign.
            return fd.Finding(CAUSE, entry.name, "present", "; ".join(t for t, _ in signs) + f". {_LAST}.", evidence,
                              confidence=min((c for _, c in signs), key=fd.CONFIDENCES.index),
                              explains=_senders_stuck(fleet, entry))
        if mb is None:
            win2000 = str((view.platform.get("os") or {}).get("version") or "").startswith("5.0")
            return fd.unknown(CAUSE, entry.name, unread + (" (Windows 2000 keeps its metabase in MetaBase.bin, which is not read)"
                                                          if win2000 else ""), **evidence)
        return fd.Finding(CAUSE, entry.name, "absent", f"MetaBase.xml parses and has the SMTP keys "
                          f"(virtual servers {', '.join(evidence['smtp_virtual_servers'])})", evidence)

    return per_host(fleet, CAUSE, decide, kinds=EXCHANGE_SMTP_KINDS + ("smtp_relay",))


def _history(view) -> tuple[list[dict], str | None]:
    """Restore candidates, newest first: [{major, minor, metabase, schema, mtime, size}]."""
    try:
        listing = view.item("metabase_history")
    except Missing as exc:
        return [], str(exc)
    if not listing:
        return [], "the History folder does not exist"
    found: dict[tuple[int, int], dict] = {}
    for f in listing.get("files") or []:
        m = _HISTORY.search(f.get("path") or "")
        if m:
            slot = found.setdefault((int(m[2]), int(m[3])), {})
            slot[m[1].lower()] = f
    pairs = [{"major": ma, "minor": mi, "metabase": s["metabase"]["path"], "schema": s["mbschema"]["path"],
              "mtime": s["metabase"].get("mtime"), "size": s["metabase"].get("size")}
             for (ma, mi), s in sorted(found.items(), reverse=True) if "metabase" in s and "mbschema" in s]
    return pairs, (None if pairs else "no complete MetaBase/MBSchema pair in the History folder")


def _ehlo(fleet, entry, verbs) -> dict:
    """What other servers' EHLO to this host showed: {"checked": [sources], "complete": [...], "lacking": {source: [verbs]}}."""
    out = {"expected": verbs, "checked": [], "complete": [], "lacking": {}}
    for p in fleet.probes_to(entry.name):
        if p.result not in ("banner", "greylisted"):
            continue  # no real EHLO: silent, filtered, or masked by a PIX/ASA
        out["checked"].append(p.source)
        lacking = sorted(set(verbs) - ehlo_verbs(p.raw))
        if lacking:
            out["lacking"][p.source] = lacking
        else:
            out["complete"].append(p.source)
    return out


def _senders_stuck(fleet, entry) -> list[str]:
    """Inventory hosts whose own Event 4006 or retry queues name this host: the mail this cause stalls."""
    out = set()
    for other in fleet:
        if other.snapshot is not None and other.name != entry.name:
            if entry.name in symptoms.events_4006(fleet, other)["remote_hosts"] + symptoms.queue_retry(fleet, other)["remote_hosts"]:
                out.add(other.name)
    return sorted(out)


# -- the fix: restore the newest History pair that is usable here, the way TechNet cc738704 ("Restoring the
# Metabase with History Files") does it by hand: stop IIS, keep a copy of the current files, copy the pair
# over MetaBase.xml and MBSchema.xml, start IIS. A history pair is MetaBase_<v>.xml with the MBSchema_<v>.xml
# IIS wrote with it (cc739752), so both files go back; MBSchema.xml is left alone when it already equals the
# pair's. Only when mailflow_allow_metabase_restore is true: it puts the whole IIS configuration back to the
# pair's time. Candidates are read in a second command (the first one finds them), only while MetaBase.xml
# is damaged.

FIX_READS = ("metabase", "metabase_history", "services", "computer")
HISTORY_TEXTS = "metabase_history_texts"  # {path (lower case): file item}, added to the view by the fix lifecycle
FOLLOW_UP_ITEM = HISTORY_TEXTS
MAX_CANDIDATES = 10  # MaxHistoryFiles' default: the pairs IIS keeps (cc739752)


def fix_params(args: dict, facts: dict) -> dict:
    allow = args.get("allow_restore")
    if not isinstance(allow, bool):
        raise FixError(f"mailflow_allow_metabase_restore must be true or false, got {allow!r}")
    accounts = setting(facts, "metabase_machine_accounts")
    return {"allow_restore": allow, "iis_dependents": [str(n) for n in setting(facts, "iisadmin_dependents")],
            "accounts": {str(k): str(v) for k, v in (accounts or {}).items()},
            "max_bytes": _max_bytes(facts)}


def _max_bytes(facts: dict) -> int:
    return int(facts["collect"]["metabase"].get("max_bytes", 1 << 20))  # snapshot.py's file_read default


def damage(view, max_bytes: int) -> str | None:
    """What makes MetaBase.xml need replacing (the detector's confirmed signs), or None; Missing when unread,
    FixError when it was read only in part (file_read stops at max_bytes, and a cut-off file never parses)."""
    size = (view.item("metabase") or {}).get("size")
    if isinstance(size, int) and size > max_bytes:
        raise FixError(f"MetaBase.xml is {size} bytes, more than the {max_bytes} read "
                       f"(knowledge collect.metabase.max_bytes): raise it to judge the file")
    try:
        mb = view.metabase()
    except MetabaseError as exc:
        return str(exc)
    if mb.get("/LM/SmtpSvc") is None:
        return "MetaBase.xml has no /LM/SmtpSvc"
    if not mb.smtp_virtual_servers():
        return "MetaBase.xml has no SMTP virtual server (/LM/SmtpSvc/<n>)"
    return None


def _live_schema(view) -> str:
    return view.item("metabase")["path"].rsplit("\\", 1)[0] + "\\MBSchema.xml"


def follow_up_reads(view, facts: dict) -> list[tuple[str, Op]]:
    """[(path, file_read)] for the candidate pairs and the live MBSchema.xml, when MetaBase.xml is damaged."""
    try:
        if damage(view, _max_bytes(facts)) is None:
            return []
    except (Missing, FixError):
        return []
    max_bytes = str(_max_bytes(facts))
    paths = [p for pair in _history(view)[0][:MAX_CANDIDATES] for p in (pair["metabase"], pair["schema"])]
    return [(p.lower(), Op("file_read", (p, max_bytes, str(FILE_CHUNK_BYTES)))) for p in paths + ([_live_schema(view)] if paths else [])]


def _accounts(text: str, params) -> set[str]:
    """The computer names in a metabase's IUSR_<name> / IWAM_<name> accounts (knowledge: metabase_machine_accounts)."""
    out = set()
    for prop, prefix in params["accounts"].items():
        for m in re.finditer(rf'\b{re.escape(prop)}\s*=\s*"{re.escape(prefix)}([^"]+)"', text or "", re.I):
            out.add(m[1].upper())
    return out


def _machine_names(view, params) -> set[str]:
    names = set()
    try:
        names |= {str(r.get("Name") or "").upper() for r in view.item("computer") or []} - {""}
    except Missing:
        pass
    live = (view.items.get("metabase") or {}).get("text")
    return names | _accounts(live, params)  # a renamed computer's live metabase keeps its first name's accounts


def _unusable(pair: dict, view, params, names: set[str]) -> str | None:
    texts = view.items.get(HISTORY_TEXTS) or {}
    mb_file, schema_file = texts.get(pair["metabase"].lower()), texts.get(pair["schema"].lower())
    if not mb_file or mb_file.get("text") is None:
        return "not read" if not mb_file else "not text"
    if isinstance(mb_file.get("size"), int) and mb_file["size"] > params["max_bytes"]:
        return "is larger than knowledge collect.metabase.max_bytes, so it was not read whole"
    try:
        mb = parse(mb_file["text"])
    except MetabaseError as exc:
        return f"does not parse ({exc})"
    if mb.get("/LM/SmtpSvc") is None or not mb.smtp_virtual_servers():
        return "has no SMTP virtual server"
    major = (mb.get(".") or {}).get("HistoryMajorVersionNumber")
    if major is not None and str(major).strip() != str(pair["major"]):
        return f"says HistoryMajorVersionNumber {major}, not the {pair['major']} of its name (renamed or copied in)"
    foreign = _accounts(mb_file["text"], params) - names
    if foreign:
        return (f"names the accounts of {', '.join(sorted(foreign))}, not of this computer "
                f"({', '.join(sorted(names)) or 'name unread'}): history is usable only where it was written")
    if not schema_file or schema_file.get("text") is None:
        return "its MBSchema file was not read"
    try:
        ET.fromstring(schema_file["text"].lstrip("\ufeff"))
    except ET.ParseError as exc:
        return f"its MBSchema file does not parse ({exc})"
    return None


def candidates(view, params) -> list[dict]:
    """The history pairs, newest first, each with `why` it cannot be used (None: usable)."""
    names = _machine_names(view, params)
    return [dict(p, why=_unusable(p, view, params, names)) for p in _history(view)[0][:MAX_CANDIDATES]]


def _file(item: dict | None) -> dict:
    """FileReplace's value: size and the SHA-256 of the file's text as read ({} when there is no file)."""
    if not item:
        return {}
    content = str(item.get("text") or item.get("base64") or "")
    return {"size": item.get("size"), "sha256": hashlib.sha256(content.encode("utf-8")).hexdigest()}


def _iis_window(view, params) -> tuple[list[str], list[str]]:
    """(stop, start): the running IIS Admin dependents then IIS Admin; IIS Admin then those dependents."""
    def running(name):
        svc = view.service(name)
        return svc is not None and str(svc.get("state")).lower() == "running"
    dependents = [n for n in params["iis_dependents"] if running(n)]
    admin = ["IISADMIN"] if running("IISADMIN") else []
    return dependents + admin, admin + list(reversed(dependents))


def plan(view, params) -> list[Change]:
    try:
        damaged = damage(view, params["max_bytes"]) is not None
    except Missing as exc:  # never guess: an unread MetaBase.xml must not pass for a healthy one
        raise FixError(str(exc)) from None
    if not damaged or not params["allow_restore"]:
        return []
    pick = next((c for c in candidates(view, params) if c["why"] is None), None)
    if pick is None:
        return []
    texts = view.items[HISTORY_TEXTS]
    live = view.item("metabase")
    folder = live["path"].rsplit("\\", 1)[0]
    stamp = re.sub(r"[-:]", "", str(view.snap.get("collected_at") or "now"))
    stop, start = _iis_window(view, params)
    changes = [Change("file_replace", {"path": live["path"], "source": pick["metabase"], "stop": stop, "start": start,
                                       "keep_as": f"{folder}\\MetaBase.corrupt-{stamp}.xml"},
                      _file(live), _file(texts[pick["metabase"].lower()]))]
    schema, old_schema = texts[pick["schema"].lower()], texts.get(_live_schema(view).lower())
    if (old_schema or {}).get("text") != schema.get("text"):
        # Its own stop/start: a restore runs the changes backwards, each around its own copy.
        changes.append(Change("file_replace", {"path": _live_schema(view), "source": pick["schema"], "stop": stop,
                                               "start": start, "keep_as": f"{folder}\\MBSchema.replaced-{stamp}.xml"},
                              _file(old_schema), _file(schema)))
    return changes


def advice(view, params) -> list[str]:
    why = damage(view, params["max_bytes"])
    if why is None:
        return []
    host = view.snap.get("host", "this host")
    cands = candidates(view, params)
    pick = next((c for c in cands if c["why"] is None), None)
    newer = cands[:cands.index(pick)] if pick else cands
    skipped = [f"{c['metabase'].rsplit(chr(92), 1)[-1]} {c['why']}" for c in newer]
    out = [f"{'skipped newer' if pick else 'unusable'} history on {host}: " + "; ".join(skipped)] if skipped else []
    if pick is None:
        note = _history(view)[1] or "no history pair is usable"
        return out + [f"MetaBase.xml on {host} is damaged ({why}) and {note}: restore it from a configuration backup "
                      f"(IIS Manager > All Tasks > Backup/Restore Configuration; %SystemRoot%\\system32\\inetsrv\\MetaBack, "
                      f"KB 324277) or rebuild it (KB 312395)"]
    name = pick["metabase"].rsplit("\\", 1)[-1]
    if not params["allow_restore"]:
        return out + [f"MetaBase.xml on {host} is damaged ({why}). The newest usable history pair is {name} and its "
                      f"MBSchema ({pick.get('mtime')}); set mailflow_allow_metabase_restore: true to restore it (the IIS "
                      f"services are stopped and started around the copy)"]
    return out + [f"restoring {name} ({pick.get('mtime')}) on {host}: IIS settings changed after that time are not in it; "
                  f"on Exchange, DS2MB copies the Active Directory-owned SMTP settings back when SMTPSVC next starts"]
