"""The greylisting hotfix is missing on a host that sends to greylisting peers.

KB 950757 (Exchange 2003): after a greylisting peer's "Temporary Error (4.7.1)"
the message is set to retry, its time stamp no longer matches the store
driver's, and it "is not delivered until the SMTP service or IIS is
restarted"; the held messages "are not visible in the SMTP queues in Exchange
System Manager. However, these messages are visible the SMTP Temp tables in
the mailbox store". So its signature is a greylisting peer this host has mail
for, not files in the queue folder: old .EML files alone are never blamed on
it (they sit where the store's held messages do not).

KB 934709 (Windows Server 2003 SMTP without Exchange; it "does not apply to
Windows 2003 servers that are running Exchange 2000 or Exchange 2003", so it
is never suggested on an Exchange server): "some messages may unexpectedly
remain in the queue folder until the SMTP service is restarted" - there, old
files in the queue folder while SMTP runs are the article's own symptom, unless
something else on the host explains them (SMTPSVC stopped, or a MetaBase.xml
that does not parse, so IIS cannot load SMTP's configuration: metabase_corrupt).

The hotfix matters toward a peer that greylists this host: this host's probe
got a greylisting reply (detect.greylist_reply_codes) at MAIL or RCPT; or the
host has mail for a peer another host saw greylisting; or the inventory says so
(`greylisting_peers` on this host, `greylists: true` on the peer). Peers
outside the inventory are never probed. Win32_QuickFixEngineering is not
confirmed to list these hotfixes, so every decision that reads it is `inferred`.
"""
from __future__ import annotations

import ntpath
import re

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils import symptoms
from ansible_collections.mailflow.exchange.plugins.module_utils.causes.common import (
    greylisting_peers, no_snapshot_reason, sends_to, unknown_version)
from ansible_collections.mailflow.exchange.plugins.module_utils.fleet import greylist_reply
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import Missing
from ansible_collections.mailflow.exchange.plugins.module_utils.metabase import MetabaseError
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import Change, FixError, setting

CAUSE = fd.Cause(
    id="greylist_hotfix_missing",
    title="Greylisting hotfix missing (KB 950757 on Exchange 2003, KB 934709 on a Windows 2003 SMTP relay)",
    sources=("KB950757", "KB934709", "M. B. Smith, theessentialexchange.com 2007-11-16"),
    severity="medium",
    position=120,
    fix=fd.Fix(order=110, args=dict(package=dict(type="str", default=""))),
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
        kind, _unused = fleet.kind_of(entry.name)
        if kind == "exchange" or (entry.snapshot is None and (kind is None or kind in _SETTING)):
            reason = no_snapshot_reason(entry) if entry.snapshot is None else \
                f"{unknown_version(entry, entry.view)}; KB 950757 may apply"
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
    if stale.get("observed"):
        evidence["stale_queue_messages"] = {k: stale.get(k) for k in ("count", "oldest_minutes", "folders")}
    if stale.get("observed") and entry.view.kind == "smtp_relay":
        explained = _stale_explained(entry.view)
        if explained is None:
            # KB 934709's own symptom: messages that stay in the queue folder while SMTP runs. The greylisting
            # peer may be outside the inventory.
            return fd.Finding(CAUSE, entry.name, "present",
                              f"{hotfix} is not installed and {stale['count']} message(s) up to {stale['oldest_minutes'] // 60} h "
                              f"old sit in the queue folder while SMTP runs (Windows SMTP has no queue viewer): {hotfix}'s "
                              "symptom", evidence, confidence="inferred")
        evidence["stale_queue_messages"]["explained_by"] = explained
    note = ""
    if stale.get("observed") and entry.view.kind == "exchange2003":
        note = ("; the old files in its queue folder are not KB 950757's signature (its held messages sit in the store's "
                "SMTP Temp tables, after a greylisting peer's 4.7.1)")
    elif stale.get("observed"):
        note = f"; the old files in its queue folder are explained otherwise ({evidence['stale_queue_messages']['explained_by']})"
    if seen:
        return fd.Finding(CAUSE, entry.name, "absent",
                          f"{hotfix} is not installed and {', '.join(sorted(seen))} greylists, but this host has no mail for it "
                          f"(install it if this host routes mail there){note}", evidence, confidence=confidence)
    return fd.Finding(CAUSE, entry.name, "absent", f"{hotfix} is not needed: no greylisting peer seen (inventory peers were "
                      f"probed; declare greylisting_peers for peers outside the inventory){note}", evidence, confidence=confidence)


def _stale_explained(view) -> str | None:
    """What else keeps old files in a relay's queue folder: its SMTP service stopped, or a metabase IIS cannot load."""
    if not _smtp_running(view):
        return "SMTPSVC is not running"
    try:
        view.metabase()
    except MetabaseError as exc:
        return f"MetaBase.xml does not parse ({exc}), so IIS cannot load SMTP's configuration: metabase_corrupt"
    except Missing:
        pass
    return None


def _smtp_running(view) -> bool:
    """Old queue files on a host whose SMTP service is stopped are explained by that, not by the held-message defect."""
    try:
        svc = view.service("SMTPSVC")
    except Missing:
        return True
    return bool(svc) and str(svc.get("state") or "").lower() == "running"


# -- the fix: report-only, unless the user gives the hotfix package (mailflow_greylist_hotfix_package);
# then run it quietly without a restart (knowledge detect.greylist_hotfix_install_args, KB 262841) and verify
# that Win32_QuickFixEngineering now lists the KB, the way the detector reads it.

# The platform items (os, services, exchange_setup, ad_exchange_servers) tell Exchange 2003 from a relay.
FIX_READS = ("hotfixes", "os", "services", "exchange_setup", "ad_exchange_servers")
PACKAGE_VAR = "mailflow_greylist_hotfix_package"
# A local path (C:\...) or a UNC path (\\server\share\...), ending in .exe or .msp; no quotes, wildcards or
# control characters: the path travels as one encoded argument, but a quote would still split it for the
# installer's own command-line parsing.
_PATH = re.compile(r'^(?:[A-Za-z]:\\|\\\\[A-Za-z0-9._-]+\\[^\\"<>|*?]+\\)[^"<>|*?]+\.(?:exe|msp)$', re.I)
_PACKAGE_KB = re.compile(r"(?:^|[-_ .])KB(\d{5,7})(?=[-_ .])", re.I)  # Exchange2003-KB950757-x86-ENU.exe (KB 817903)
# Windows Installer patches: msiexec /p <patch> /qn, never restarting by itself (REBOOT=ReallySuppress).
_MSP_ARGS = ("/qn", "REBOOT=ReallySuppress")


def package_kb(path: str) -> str | None:
    """'\\\\fs\\hotfixes\\WindowsServer2003-KB934709-x86-ENU.exe' -> 'KB934709'."""
    m = _PACKAGE_KB.search(ntpath.basename(path or ""))
    return f"KB{m.group(1)}" if m else None


def fix_params(args: dict, facts: dict) -> dict:
    hotfixes = {kind: str(setting(facts, name)) for kind, name in _SETTING.items()}
    switches = setting(facts, "greylist_hotfix_install_args")
    if not isinstance(switches, list) or not all(isinstance(s, str) and re.fullmatch(r"[/-][A-Za-z:=]+", s) for s in switches):
        raise FixError("knowledge detect.greylist_hotfix_install_args must be a list of switches such as /quiet")
    path = args.get("package") or ""
    if not path:
        return {"package": None, "hotfixes": hotfixes, "switches": switches}
    if not isinstance(path, str) or len(path) > 259 or re.search(r"[\x00-\x1f\x7f]", path) or not _PATH.match(path):
        raise FixError(f"{PACKAGE_VAR} must be a local (C:\\...) or UNC (\\\\server\\share\\...) path to an .exe or .msp "
                       f"package, at most 259 characters, without quotes, wildcards or line breaks; got {path!r}")
    kb = package_kb(path)
    wanted = {kb_number(h) for h in hotfixes.values()}
    if kb is None or kb_number(kb) not in wanted:
        raise FixError(f"{PACKAGE_VAR} must name the hotfix in its file name ({' or '.join(sorted(hotfixes.values()))}, e.g. "
                       f"Exchange2003-KB950757-x86-ENU.exe); {ntpath.basename(path)!r} names {kb or 'no KB article'}")
    return {"package": {"path": path, "kb": kb}, "hotfixes": hotfixes, "switches": switches}


def _needed(view, params) -> str | None:
    """The hotfix this host can take (KB 950757 on Exchange 2003, KB 934709 on a Windows 2003 relay), or None."""
    if view.kind == "smtp_relay" and not str((view.platform.get("os") or {}).get("version") or "").startswith("5.2"):
        return None
    return params["hotfixes"].get(view.kind)


def _installed(view, hotfix: str) -> bool | None:
    """Listed in Win32_QuickFixEngineering (as the detector reads it); None when WMI could not be read."""
    try:
        return any(kb_number(h.get("HotFixID")) == kb_number(hotfix) for h in view.item("hotfixes") or [])
    except Missing:
        return None


def plan(view, params) -> list[Change]:
    hotfix = _needed(view, params)
    package = params["package"]
    if hotfix is None or package is None or kb_number(package["kb"]) != kb_number(hotfix):
        return []  # not for this host, or report-only (advice says why)
    installed = _installed(view, hotfix)
    if installed is None:
        # Never install on a guess, and never call an install verified on an unreadable list.
        raise FixError(f"cannot tell whether {hotfix} is installed: Win32_QuickFixEngineering could not be read")
    if installed:
        return []
    path = package["path"]
    target = {"path": path, "kb": hotfix, "args": list(params["switches"])}
    if path.lower().endswith(".msp"):
        target.update(exe="msiexec.exe", args=["/p", path, *_MSP_ARGS])
    # Messages already held stay held "until the SMTP service or IIS is restarted" (KB 950757, KB 934709):
    # the restart releases them once the hotfix is in (done only when mailflow_allow_service_restart is true).
    return [Change("package", target, "missing", "installed", restart=["SMTPSVC"])]


def advice(view, params) -> list[str]:
    hotfix = _needed(view, params)
    if view.kind == "exchange":
        return ["Exchange of an unknown version: cannot tell whether KB 950757 applies; nothing installed"]
    installed = None if hotfix is None else _installed(view, hotfix)
    if hotfix is None or installed:
        return []
    if installed is None:
        return [f"cannot tell whether {hotfix} is installed (Win32_QuickFixEngineering could not be read): nothing installed"]
    package = params["package"]
    if package is None:
        example = "Exchange2003-KB950757-x86-ENU.exe" if view.kind == "exchange2003" else "WindowsServer2003-KB934709-x86-ENU.exe"
        return [f"{hotfix} is not installed and nothing was installed: this role installs it only from a package you "
                f"give in {PACKAGE_VAR} (a local or UNC path to the hotfix, e.g. C:\\Hotfixes\\{example}; Microsoft "
                f"supplies it through the article's hotfix download request)"]
    if kb_number(package["kb"]) != kb_number(hotfix):
        return [f"{PACKAGE_VAR} is {package['kb']} ({ntpath.basename(package['path'])}), but this host needs {hotfix}: nothing installed"]
    return []
