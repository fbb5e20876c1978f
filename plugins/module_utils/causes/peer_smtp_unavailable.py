"""chicagotech.net Event ID 4006, case 4: the remote server is down, or its SMTP service is not running.

Decided on the peer: its own snapshot shows the SMTP service (SMTPSVC, or the
Exchange 5.5 IMS, MSExchangeIMC) stopped or disabled; or there is no snapshot
because the host did not answer WinRM and every probe to port 25 failed too.
"""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils.causes.common import no_snapshot_reason
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import Missing
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import Change, FixError, setting

CAUSE = fd.Cause(
    id="peer_smtp_unavailable",
    title="Server down or its SMTP service not running",
    sources=("chicagotech.net Event ID 4006 case 4",),
    severity="critical",
    position=100,
    fix=fd.Fix(order=20, args=dict(allow_enable_disabled=dict(type="bool", default=False))),
    symptom_scope="inbound",
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


# -- the fix: set the SMTP service to Automatic and start it (its dependency IIS Admin first). Starting it is
# the fix, not a restart to apply a setting, so mailflow_allow_service_restart does not gate it. A service
# set to Disabled was set so by someone (SMTPSVC installs as Automatic): the fix leaves it alone unless
# mailflow_allow_enable_disabled_smtp says otherwise, and says so in its advice.

FIX_READS = ("services",)
AUTOMATIC = "Auto"  # Win32_Service.StartMode


def fix_params(args: dict, facts: dict) -> dict:
    allow = args.get("allow_enable_disabled")
    if not isinstance(allow, bool):
        raise FixError(f"mailflow_allow_enable_disabled_smtp must be true or false, got {allow!r}")
    return {"allow_enable_disabled": allow, "iis_dependents": [str(n) for n in setting(facts, "iisadmin_dependents")]}


def _smtp_service(view) -> str:
    # The detector's choice; from a services-only read, view.kind is exchange55 exactly when MSExchangeIMC is installed.
    return "MSExchangeIMC" if view.kind == "exchange55" else "SMTPSVC"


def _is(svc: dict, field: str, value: str) -> bool:
    return str(svc.get(field)).lower() == value.lower()


def _needed(view) -> list[tuple[str, dict]]:
    """[(name, service)] that must run for the SMTP service to run, dependency first; [] when it runs or is absent."""
    name = _smtp_service(view)
    svc = view.service(name)
    if svc is None or _is(svc, "state", "running"):
        return []
    admin = view.service("IISADMIN") if name == "SMTPSVC" else None
    return ([("IISADMIN", admin)] if admin is not None else []) + [(name, svc)]


def plan(view, params) -> list[Change]:
    try:
        needed = _needed(view)
    except Missing as exc:  # never guess: an unread service list must not pass for "running"
        raise FixError(str(exc)) from None
    if any(_is(s, "start_mode", "disabled") for _unused, s in needed) and not params["allow_enable_disabled"]:
        return []
    smtp = needed[-1][0] if needed else None
    # Start modes first (a Disabled service cannot start), then states, dependency first; a restore runs in
    # reverse: stop SMTP, stop IIS Admin if it was stopped, put the start modes back.
    modes = [Change("service_start_mode", {"service": n}, s.get("start_mode"), AUTOMATIC) for n, s in needed
             if (n == smtp and not _is(s, "start_mode", AUTOMATIC)) or _is(s, "start_mode", "disabled")]
    states = [Change("service_state", {"service": n}, s.get("state"), "Running") for n, s in needed
              if not _is(s, "state", "running")]
    return modes + states


def advice(view, params) -> list[str]:
    name = _smtp_service(view)
    svc = view.service(name)
    host = view.snap.get("host", "this host")
    if svc is None:  # (the fix reads services only, so its view.kind cannot tell Exchange from plain Windows)
        return [f"{name} is not installed on {host}; this fix does not install it (Add or Remove Programs > Windows "
                f"Components > Application Server > IIS > SMTP Service, then re-apply the Exchange service pack)"]
    needed = _needed(view)
    disabled = [n for n, s in needed if _is(s, "start_mode", "disabled")]
    out = []
    if disabled and not params["allow_enable_disabled"]:
        out.append(f"{' and '.join(disabled)} on {host} {'is' if len(disabled) == 1 else 'are'} Disabled, which someone set "
                   f"(SMTPSVC installs as Automatic), so it was left stopped; set mailflow_allow_enable_disabled_smtp: true "
                   f"to set it to Automatic and start it")
    if any(n == "IISADMIN" and not _is(s, "state", "running") for n, s in needed):
        idle = [n for n in params["iis_dependents"] if n.upper() != name.upper() and view.service(n) is not None]
        if idle:
            out.append(f"IIS Admin was stopped on {host}; this fix starts only what {name} needs, so these stay stopped: "
                       f"{', '.join(idle)}")
    return out
