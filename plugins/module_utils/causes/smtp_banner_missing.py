"""KB 919091 cause 4: a server answers TCP on port 25 but never sends its 220 banner.

Decided from the other servers' probes ("telnet server 25", resolution 4):
the finding is attached to the silent server, with the probing servers'
observations as evidence, and the silent server's own ConnectResponse
(KB 281224, the banner text in the metabase) as corroboration.
"""
from __future__ import annotations

import re

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils.causes.common import path_absent
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import Missing
from ansible_collections.mailflow.exchange.plugins.module_utils.metabase import MetabaseError
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import Change, FixError

CAUSE = fd.Cause(
    id="smtp_banner_missing",
    title="Server accepts TCP 25 but sends no SMTP banner",
    sources=("KB919091", "KB281224"),
    severity="high",
    position=40,
    fix=fd.Fix(order=40, args=dict(banner=dict(type="str", required=True))),
    kb919091_cause=4, symptom_scope="inbound",
)
_ANSWERED = ("banner", "masked", "greylisted", "rejected")


def _connect_responses(entry) -> dict | None:
    """{"1": value or None} per SMTP virtual server; None when the metabase cannot be read."""
    if entry.view is None:
        return None
    try:
        return connect_responses(entry.view)
    except (Missing, MetabaseError):
        return None


def connect_responses(view) -> dict:
    """{"1": ConnectResponse or None} per SMTP virtual server in the metabase (raises Missing, MetabaseError)."""
    return {n: props.get("ConnectResponse") for n, props in view.metabase().smtp_virtual_servers().items()}


def empty_responses(responses: dict) -> list[str]:
    """The virtual servers whose ConnectResponse (KB 281224's banner text) is set but blank, which leaves SMTP mute
    (inferred from KB 919091 cause 4; neither KB says it in so many words)."""
    return sorted((n for n, v in responses.items() if v is not None and not str(v).strip()), key=int)


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
        empty = empty_responses(responses or {})
        if silent:
            who = ", ".join(sorted(p.source for p in silent))
            summary = f"{entry.name} accepts connections on port 25 but sent no banner to {who}"
            if empty:
                summary += f"; its ConnectResponse is set but empty on SMTP virtual server {', '.join(empty)}"
            if answered:
                summary += f" (it did answer {', '.join(sorted(p.source for p in answered))}: look at the path from the others)"
            out.append(fd.Finding(CAUSE, entry.name, "present", summary, evidence, explains=[p.source for p in silent]))
        elif answered:
            out.append(path_absent(fleet, entry, CAUSE, f"{len(answered)} peer(s) received a banner from {entry.name}", evidence))
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


# -- the fix: KB 919091 resolution 4 ("edit the metabase to configure an SMTP banner", pointing to KB 281224):
# set ConnectResponse (metabase /LM/SmtpSvc/<n>, what `adsutil.vbs set smtpsvc/<n>/ConnectResponse` writes)
# on every virtual server where it is set but empty - the configuration the detector holds against the
# server. An unset ConnectResponse is left alone: SMTP then sends its default banner (ExBPA), nothing is
# wrong there to change. Admin guides restart SMTPSVC after setting it (net stop/start smtpsvc); no
# Microsoft text says SMTP rereads it live, so the change asks for an SMTPSVC restart (inferred).

FIX_READS = ("metabase", "services")
# RFC 5321 4.5.3.1.5: a reply line is at most 512 octets with its code and CRLF. 250 leaves room for
# "220 ", a full 255-octet host name (whether IIS puts one before the text is not confirmed) and CRLF.
BANNER_MAX = 250
_ONE_PRINTABLE_LINE = re.compile(r"[\x20-\x7e]+")


def fix_params(args: dict, facts: dict) -> dict:
    banner = args.get("banner")
    if not isinstance(banner, str) or not _ONE_PRINTABLE_LINE.fullmatch(banner) or not banner.strip() or len(banner) > BANNER_MAX:
        raise FixError(f"mailflow_smtp_banner must be one line of printable ASCII (no CR, LF or other control characters), "
                       f"not only spaces, at most {BANNER_MAX} characters; got {banner!r}")
    return {"banner": banner}


def plan(view, params) -> list[Change]:
    if view.service("SMTPSVC") is None:
        return []  # no SMTP service on this host: nothing sends a banner
    try:
        responses = connect_responses(view)
    except (Missing, MetabaseError) as exc:
        # Not "nothing to change": a verifying read that cannot see the metabase must not pass.
        raise FixError(f"cannot read ConnectResponse from the metabase: {exc}") from None
    return [Change("adsi_attribute", {"dn": f"IIS://localhost/SMTPSVC/{n}", "attribute": "ConnectResponse", "syntax": "string"},
                   [responses[n]], [params["banner"]], restart=["SMTPSVC"])
            for n in empty_responses(responses)]
