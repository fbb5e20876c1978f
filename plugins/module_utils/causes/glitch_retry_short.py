"""M. B. Smith, theessentialexchange.com 2007-11-16: GlitchRetrySeconds too short for a greylisting peer.

SMTP treats a 4xx reply as a "glitch" and retries it three times,
GlitchRetrySeconds apart (absent = 60 s, TechNet aa998772), before the
message goes "to the back of the line"; a greylisting peer typically wants
300 s. The value matters only toward peers that greylist, so the finding
needs both: a short value, and mail queued for a peer seen greylisting (a
4xx to a probe's MAIL/RCPT) or declared so in the inventory.
"""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils.causes.common import greylisting_peers, per_host, sends_to
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import Change, FixError, setting

CAUSE = fd.Cause(
    id="glitch_retry_short",
    title="GlitchRetrySeconds too short for greylisting peers",
    sources=("M. B. Smith, theessentialexchange.com 2007-11-16", "TechNet aa998772", "TechNet aa996601"),
    severity="medium",
    position=110,
    fix=fd.Fix(order=60, args=dict(seconds=dict(type="int"))),
    symptom_scope="outbound",
)


def detect(fleet):
    default = int(fleet.setting("glitch_retry_default_seconds"))
    minimum = int(fleet.setting("glitch_retry_min_seconds"))
    greylisting = greylisting_peers(fleet)

    def decide(entry, view):
        key = view.reg_key("smtpsvc_queuing")
        raw = view.reg_value("smtpsvc_queuing", "GlitchRetrySeconds")
        rtype = next((v["type"] for n, v in (key or {}).get("values", {}).items() if n.lower() == "glitchretryseconds"), None)
        evidence = {"GlitchRetrySeconds": raw, "type": rtype, "minimum": minimum}
        if raw is None:
            effective, how = default, f"absent (default {default} s)"
        elif rtype == "REG_DWORD" and isinstance(raw, int):
            effective, how = raw, f"{raw} s"
        else:
            # TechNet aa998772 creates a DWORD; another type is not what SMTP reads, so the default applies.
            effective, how = default, f"{raw!r} as {rtype}, not a REG_DWORD (so the default {default} s applies)"
        evidence["effective_seconds"] = effective
        targets = sends_to(fleet, entry)
        stuck = {p: greylisting[p] for p in targets if p in greylisting}
        declared = list(entry.declared.get("greylisting_peers") or [])
        evidence.update(greylisting_peers_sent_to={p: targets[p] + ev for p, ev in stuck.items()}, declared_greylisting_peers=declared,
                        # Fleet-wide: cut, so that N hosts do not each carry the whole list.
                        greylisting_seen=sorted(greylisting)[:20], greylisting_seen_total=len(greylisting))
        conf = fleet.confidence("glitch_retry_min_seconds")
        if effective >= minimum:
            return fd.Finding(CAUSE, entry.name, "absent", f"GlitchRetrySeconds {how} is at least {minimum} s", evidence, confidence=conf)
        if not stuck and not declared:
            note = f" (greylisting seen at {', '.join(sorted(greylisting))}, but no mail is queued for it)" if greylisting else ""
            return fd.Finding(CAUSE, entry.name, "absent",
                              f"GlitchRetrySeconds {how} is below {minimum} s, but no greylisting peer is in use{note}", evidence, confidence=conf)
        # What the audit knows: the value, SMTP's retry schedule for a 4xx, and which peers answered with one (or are
        # declared to). When a peer would accept is its own greylisting delay, which the audit cannot see.
        seen = "; ".join([f"{p}: {', '.join(stuck[p])}" for p in sorted(stuck)] +
                         [f"{p} is declared greylisting (mailflow_greylisting_peers)" for p in sorted(declared)])
        return fd.Finding(CAUSE, entry.name, "present",
                          f"GlitchRetrySeconds {how}: SMTP retries a 4xx reply three times {effective} s apart (TechNet "
                          f"aa998772), all within {3 * effective} s of the first try, and this host has mail for greylisting "
                          f"peers ({seen}); raise it to at least {minimum} s (greylisting delays are commonly several minutes, "
                          "M. B. Smith, theessentialexchange.com 2007-11-16)",
                          evidence, explains=list(stuck), confidence=conf)

    return per_host(fleet, CAUSE, decide, kinds=("exchange2003", "exchange2000", "smtp_relay"))


# -- the fix: set GlitchRetrySeconds (TechNet aa998772: REG_DWORD, decimal seconds, in a Queuing key
# that is not created by default, KB 308350), effective after SMTPSVC restarts.

QUEUING = r"HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC\Queuing"
FIX_READS = ("smtpsvc_queuing", "services")
# A sanity bound on what the fix writes: below 30 s the three glitch retries are over before any greylisting
# delay; above an hour a transient failure holds mail longer than the retry schedule itself (15, 30, 60 minutes).
SECONDS_RANGE = (30, 3600)
SECONDS_VAR = "mailflow_glitch_retry_seconds"


def fix_params(args: dict, facts: dict) -> dict:
    """The value to write: the role's variable, or by default the knowledge the detector judges by
    (detect.glitch_retry_min_seconds), so a fix the audit would not accept is refused before any host is read."""
    minimum = int(setting(facts, "glitch_retry_min_seconds"))
    seconds = args.get("seconds")
    if seconds is None:
        seconds = minimum
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not SECONDS_RANGE[0] <= seconds <= SECONDS_RANGE[1]:
        raise FixError(f"{SECONDS_VAR} must be a whole number of seconds from {SECONDS_RANGE[0]} to "
                       f"{SECONDS_RANGE[1]}, got {seconds!r}")
    if seconds < minimum:
        raise FixError(f"{SECONDS_VAR} is {seconds}, below the {minimum} s the audit requires (knowledge "
                       f"detect.glitch_retry_min_seconds): the audit would still find the cause; leave it unset to use "
                       f"{minimum}, or change the knowledge for audit and fix alike")
    return {"seconds": seconds}


def plan(view, params) -> list[Change]:
    if view.service("SMTPSVC") is None:
        return []  # no SMTP service, nothing reads the value
    current = view.reg_value("smtpsvc_queuing", "GlitchRetrySeconds")
    key = view.reg_key("smtpsvc_queuing")
    rtype = next((v["type"] for n, v in (key or {}).get("values", {}).items() if n.lower() == "glitchretryseconds"), None)
    if rtype == "REG_DWORD" and current == params["seconds"]:
        return []
    before = {"exists": current is not None, **({"type": rtype, "data": current} if current is not None else {})}
    return [Change("registry_value", {"path": QUEUING, "name": "GlitchRetrySeconds"}, before,
                   {"exists": True, "type": "REG_DWORD", "data": params["seconds"]}, restart=["SMTPSVC"])]
