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

import re

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils import symptoms
from ansible_collections.mailflow.exchange.plugins.module_utils.causes.common import EXCHANGE_SMTP_KINDS, per_host
from ansible_collections.mailflow.exchange.plugins.module_utils.fleet import ehlo_verbs
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import Missing
from ansible_collections.mailflow.exchange.plugins.module_utils.metabase import MetabaseError

CAUSE = fd.Cause(
    id="metabase_corrupt",
    title="IIS metabase corrupted (MetaBase.xml unreadable, SMTP keys or Exchange EHLO verbs missing)",
    sources=("KB919091", "KB304166", "KB843093", "TechNet bb124688", "TechNet cc739752"),
    severity="high", fix="mailflow.exchange.fix_metabase_corrupt", kb919091_cause=6,
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
