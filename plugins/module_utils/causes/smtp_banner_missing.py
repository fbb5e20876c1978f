"""KB 919091 cause 4: a server answers TCP on port 25 but never sends its 220 banner.

Decided from the other servers' probes ("telnet server 25", resolution 4):
the finding is attached to the silent server, with the probing servers'
observations as evidence, and the silent server's own ConnectResponse
(KB 281224, the banner text in the metabase) as corroboration.
"""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import Missing
from ansible_collections.mailflow.exchange.plugins.module_utils.metabase import MetabaseError

CAUSE = fd.Cause(
    id="smtp_banner_missing",
    title="Server accepts TCP 25 but sends no SMTP banner",
    sources=("KB919091", "KB281224"),
    severity="high", fix="mailflow.exchange.fix_smtp_banner_missing", kb919091_cause=4, symptom_scope="inbound",
)
_ANSWERED = ("banner", "masked", "greylisted", "rejected")


def _connect_responses(entry) -> dict | None:
    """{"1": value or None} per SMTP virtual server; None when the metabase cannot be read."""
    if entry.view is None:
        return None
    try:
        return {n: props.get("ConnectResponse") for n, props in entry.view.metabase().smtp_virtual_servers().items()}
    except (Missing, MetabaseError):
        return None


def detect(fleet):
    out = []
    for entry in fleet:
        probes = fleet.probes_to(entry.name)
        silent = [p for p in probes if p.result == "no_banner"]
        answered = [p for p in probes if p.result in _ANSWERED]
        responses = _connect_responses(entry)
        evidence = {
            # The peers that got no greeting, in full; the ones that did, by name (a fleet has N x N probes).
            "probes": [{"from": p.source, "result": p.result, "banner_ms": p.raw.get("banner_ms"), "error": p.raw.get("error") or None}
                       for p in probes if p.result not in _ANSWERED],
            "answered_from": sorted(p.source for p in answered),
            "connect_response": responses,
        }
        empty = sorted(n for n, v in (responses or {}).items() if v is not None and not str(v).strip())
        if silent:
            who = ", ".join(sorted(p.source for p in silent))
            summary = f"{entry.name} accepts connections on port 25 but sent no banner to {who}"
            if empty:
                summary += f"; its ConnectResponse is set but empty on SMTP virtual server {', '.join(empty)}"
            if answered:
                summary += f" (it did answer {', '.join(sorted(p.source for p in answered))}: look at the path from the others)"
            out.append(fd.Finding(CAUSE, entry.name, "present", summary, evidence, explains=[p.source for p in silent]))
        elif answered:
            out.append(fd.Finding(CAUSE, entry.name, "absent", f"{len(answered)} peer(s) received a banner from {entry.name}", evidence))
        elif responses is not None and not empty:
            # Nobody got a TCP connection through, so the wire says nothing; the configuration does.
            out.append(fd.Finding(CAUSE, entry.name, "absent",
                                  "no peer could connect to observe the banner; the metabase sets no empty ConnectResponse",
                                  evidence, confidence="inferred"))
        elif responses is not None and empty:
            out.append(fd.Finding(CAUSE, entry.name, "present",
                                  f"ConnectResponse is set but empty on SMTP virtual server {', '.join(empty)} (no peer could connect to confirm)",
                                  evidence, confidence="inferred"))
        else:
            reason = "no peer probed it" if not probes else "no probe connected, and its metabase was not read"
            out.append(fd.unknown(CAUSE, entry.name, reason, **evidence))
    return out
