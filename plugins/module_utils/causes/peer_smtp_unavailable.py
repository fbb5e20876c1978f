"""Field notes 002, case 4: the remote server is down, or its SMTP service is not running.

Decided on the peer: its own snapshot shows the SMTP service (SMTPSVC, or the
Exchange 5.5 IMS, MSExchangeIMC) stopped or disabled; or there is no snapshot
because the host did not answer WinRM and every probe to port 25 failed too.
"""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils.causes.common import no_snapshot_reason
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import Missing

CAUSE = fd.Cause(
    id="peer_smtp_unavailable",
    title="Server down or its SMTP service not running",
    sources=("field notes 002 case 4",),
    severity="critical", fix="mailflow.exchange.fix_peer_smtp_unavailable", symptom_scope="inbound",
)
_FAILED = ("refused", "filtered", "error", "unresolved")


def detect(fleet):
    out = []
    for entry in fleet:
        probes = fleet.probes_to(entry.name)
        failed = [p for p in probes if p.result in _FAILED]
        evidence = {"probes_failed": [{"from": p.source, "result": p.result} for p in failed],
                    "probes_answered": sorted(p.source for p in probes if p.result not in _FAILED)}
        explains = [p.source for p in failed]
        if entry.view is None:
            if probes and len(failed) == len(probes):
                why = "WinRM did not answer" if entry.managed else "unmanaged"
                out.append(fd.Finding(CAUSE, entry.name, "present",
                                      f"{entry.name} is unreachable ({why}) and port 25 failed from every peer that tried ({len(failed)})",
                                      dict(evidence, snapshot_error=entry.error), explains=explains, confidence="inferred"))
            elif probes and not failed:
                out.append(fd.Finding(CAUSE, entry.name, "absent", f"its SMTP service answered {len(probes)} peer(s)", evidence))
            else:
                out.append(fd.unknown(CAUSE, entry.name, no_snapshot_reason(entry), **evidence))
            continue
        name = "MSExchangeIMC" if entry.view.kind == "exchange55" else "SMTPSVC"
        try:
            svc = entry.view.service(name)
        except Missing as exc:
            out.append(fd.unknown(CAUSE, entry.name, str(exc), **evidence))
            continue
        evidence["service"] = {"name": name, **(svc or {"state": "not installed"})}
        if svc is None:
            if entry.view.kind in ("exchange2003", "exchange2000", "smtp_relay"):
                out.append(fd.Finding(CAUSE, entry.name, "present", f"{name} is not installed", evidence, explains=explains))
            else:
                out.append(fd.not_applicable(CAUSE, entry.name, f"{entry.name} runs no SMTP service ({entry.view.kind})"))
            continue
        state, mode = str(svc.get("state")), str(svc.get("start_mode"))
        if state.lower() != "running":
            out.append(fd.Finding(
                CAUSE, entry.name, "present",
                f"{name} is {state} (start mode {mode})" + (f"; port 25 failed from {len(failed)} peer(s)" if failed else ""),
                evidence, explains=explains, severity="critical"))
        else:
            out.append(fd.Finding(CAUSE, entry.name, "absent", f"{name} is running (start mode {mode})", evidence))
    return out
