"""The greylisting hotfix is missing on a host that sends to greylisting peers.

After a greylisting peer's temporary 4xx ("Temporary Error (4.7.1)") the
message is held, in no visible queue, "until the SMTP service or IIS is
restarted" (KB 950757, Exchange 2003). Windows Server 2003 SMTP without
Exchange has the same defect and its own hotfix, KB 934709, which "does not
apply to Windows 2003 servers that are running Exchange 2000 or Exchange 2003":
it is never suggested on an Exchange server.

The hotfix only matters toward a peer that greylists this host: this host's
probe got a greylisting reply (detect.greylist_reply_codes) at MAIL or RCPT;
or the host has mail for a peer another host saw greylisting; or the inventory
says so (`greylisting_peers` on this host, `greylists: true` on the peer).
Peers outside the inventory are never probed. Win32_QuickFixEngineering is not
confirmed to list these hotfixes, so every decision that reads it is `inferred`.
"""
from __future__ import annotations

import re

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils import symptoms
from ansible_collections.mailflow.exchange.plugins.module_utils.causes.common import greylisting_peers, no_snapshot_reason, sends_to
from ansible_collections.mailflow.exchange.plugins.module_utils.fleet import greylist_reply
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import Missing

CAUSE = fd.Cause(
    id="greylist_hotfix_missing",
    title="Greylisting hotfix missing (KB 950757 on Exchange 2003, KB 934709 on a Windows 2003 SMTP relay)",
    sources=("KB950757", "KB934709", "field notes 004"),
    severity="medium", fix="mailflow.exchange.fix_greylist_hotfix_missing",
    symptom_scope="outbound",
)
_SETTING = {"exchange2003": "greylist_hotfix_exchange", "smtp_relay": "greylist_hotfix_relay"}


def kb_number(text) -> str | None:
    """'KB950757', 'kb950757-v2', 'Q950757' -> '950757'; None when it names no KB article."""
    m = re.match(r"^\s*(?:KB|Q)?(\d+)(?:\D.*)?$", str(text or ""), re.I)
    return m.group(1) if m else None


def detect(fleet):
    greylisting = greylisting_peers(fleet)
    out = []
    for entry in fleet:
        kind, _ = fleet.kind_of(entry.name)
        if kind == "exchange" or (entry.snapshot is None and (kind is None or kind in _SETTING)):
            reason = no_snapshot_reason(entry) if entry.snapshot is None else "an Exchange server of unknown version: KB 950757 may apply"
            out.append(fd.unknown(CAUSE, entry.name, reason))
        elif kind not in _SETTING:
            # Exchange 2000 and 5.5 have no such hotfix; KB 934709 excludes every Exchange server.
            out.append(fd.not_applicable(CAUSE, entry.name, f"{entry.name} is {kind}; KB 950757 is for Exchange 2003 and "
                                         "KB 934709 for Windows Server 2003 SMTP without Exchange"))
        elif kind == "smtp_relay" and not str((entry.snapshot["platform"].get("os") or {}).get("version") or "").startswith("5.2"):
            out.append(fd.not_applicable(CAUSE, entry.name, f"{entry.name} is an SMTP relay on another Windows than Server 2003"))
        else:
            out.append(_decide(fleet, entry, fleet.setting(_SETTING[kind]), _SETTING[kind], greylisting))
    return out


def _seen_greylisting(fleet, entry, greylisting) -> dict[str, str]:
    """{peer: why we know it greylists this host}."""
    seen = {}
    for p in fleet.probes_from(entry.name):
        if p.result == "greylisted":
            seen[p.target] = f"probe from {entry.name}: {greylist_reply(p.raw, fleet.greylist_codes).splitlines()[0][:80]}"
    for peer in sends_to(fleet, entry):
        if peer in greylisting and peer != entry.name:
            seen.setdefault(peer, "; ".join(greylisting[peer]))
    for peer in entry.declared.get("greylisting_peers") or []:
        seen.setdefault(fleet.resolve(peer) or peer, "inventory greylisting_peers")
    for e in fleet:
        if e.declared.get("greylists") and e.name != entry.name:
            seen.setdefault(e.name, "inventory: the peer greylists")
    return seen


def _decide(fleet, entry, hotfix, setting, greylisting) -> fd.Finding:
    seen = _seen_greylisting(fleet, entry, greylisting)
    evidence = {"hotfix": hotfix, "greylisting_peers": seen}
    confidence = max(("inferred", fleet.confidence(setting), fleet.confidence("greylist_reply_codes")), key=fd.CONFIDENCES.index)
    try:
        ids = [h.get("HotFixID") for h in entry.view.item("hotfixes") or [] if kb_number(h.get("HotFixID")) == kb_number(hotfix)]
        evidence.update(installed=bool(ids), hotfix_ids=ids)
    except Missing as exc:
        return fd.unknown(CAUSE, entry.name, f"cannot tell whether {hotfix} is installed: {exc}", **evidence)
    if ids:
        return fd.Finding(CAUSE, entry.name, "absent", f"{hotfix} is installed ({', '.join(ids)})", evidence, confidence=confidence)
    mail_for = sends_to(fleet, entry)
    explains = sorted(p for p in seen if p in mail_for)
    declared = sorted(p for p, why in seen.items() if why == "inventory greylisting_peers")
    evidence["has_mail_for"] = {p: mail_for[p] for p in explains}
    if explains or declared:
        summary = (f"{hotfix} is not installed and this host sends to {', '.join(explains + declared)}, which greylists: after "
                   f"the temporary 4xx, messages can be held in no visible queue until SMTP restarts ({hotfix})")
        return fd.Finding(CAUSE, entry.name, "present", summary, evidence, confidence=confidence, explains=explains)
    stale = symptoms.stale_messages(fleet, entry)
    if stale.get("observed") and not stale.get("seen_in_queues") and _smtp_running(entry.view):
        # The hotfix's own symptom: messages that stay in the queue folder, in no queue, while SMTP runs
        # (KB 934709's title; KB 950757: "not visible in the queues"). The greylisting peer may be outside the inventory.
        evidence["stale_queue_messages"] = {k: stale.get(k) for k in ("count", "oldest_minutes", "folders")}
        where = "in no visible queue" if entry.view.kind == "exchange2003" else "(Windows SMTP has no queue viewer)"
        return fd.Finding(CAUSE, entry.name, "present",
                          f"{hotfix} is not installed and {stale['count']} message(s) up to {stale['oldest_minutes'] // 60} h old sit in the "
                          f"queue folder {where} while SMTP runs: {hotfix}'s symptom", evidence, confidence="inferred")
    if seen:
        return fd.Finding(CAUSE, entry.name, "absent",
                          f"{hotfix} is not installed and {', '.join(sorted(seen))} greylists, but this host has no mail for it "
                          "(install it if this host routes mail there)", evidence, confidence=confidence)
    return fd.Finding(CAUSE, entry.name, "absent", f"{hotfix} is not needed: no greylisting peer seen (inventory peers were "
                      "probed; declare greylisting_peers for peers outside the inventory)", evidence, confidence=confidence)


def _smtp_running(view) -> bool:
    """Old queue files on a host whose SMTP service is stopped are explained by that, not by the held-message defect."""
    try:
        svc = view.service("SMTPSVC")
    except Missing:
        return True
    return bool(svc) and str(svc.get("state") or "").lower() == "running"
