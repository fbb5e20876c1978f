"""Q175982: the Exchange 5.0/5.5 Internet Mail Service leaks outbound SMTP connections;
and Q253249: Exchange 5.5 before Service Pack 3 on Windows 2000, an unsupported combination.

"the connection count against the destination domain is being leaked and as a
result, the IMS never terminates the connection"; NETSTAT shows "several
connections that are in the established state ... established for a long time".
Fixed in Exchange 5.5 Service Pack 1 (Q242221, the SP1 fix list, names
Q175982) and Exchange 5.0 Service Pack 2 (the 5.0 SP2 readme, Q168735, lists
it under Service Pack 2): detect.ims_leak_fixed_builds, confirmed.

Both are "the 5.x build is before the service pack it needs", so both are this
cause; the summary says which. A 5.5 build that carries the leak fix but is
below SP3 (detect.exchange55_windows2000_min_build) on Windows 2000 is reported
as unsupported (Q253249), not as the leak. Windows 2000 is known from the host's
own snapshot (Win32_OperatingSystem.Version 5.0) or the inventory
(`mailflow_windows_version: "5.0"`); otherwise nothing is said about it.

Exchange 5.5 servers run on Windows NT/2000 without WinRM, so they are usually
unmanaged: the build then comes from AD (serialNumber, read by the other
servers) or the IMS banner (Fleet.exchange_of), and the connection table cannot
be read, so the decision rests on the build alone.
"""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import Missing
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import Change, FixError, setting

CAUSE = fd.Cause(
    id="ims_connection_leak",
    title="Exchange 5.x below the service pack it needs (Q175982 IMS connection leak; 5.5 before SP3 on Windows 2000, Q253249)",
    sources=("Q175982", "Q242221", "Q168735", "Q253249", "Q158530"),
    severity="high",
    position=130,
    fix=fd.Fix(order=120, args=dict(restart=dict(type="bool", default=False))),
    symptom_scope="outbound",
)
WINDOWS_2000 = "5.0"  # Windows NT version of Windows 2000 (Win32_OperatingSystem.Version 5.0.2195)


def windows_version(entry) -> tuple[str | None, str | None]:
    """('5.0', how it is known) from the host's snapshot or the inventory's mailflow_windows_version; (None, None)."""
    own = str(((entry.snapshot or {}).get("platform") or {}).get("os", {}).get("version") or "")
    if own:
        return ".".join(own.split(".")[:2]), "snapshot (Win32_OperatingSystem.Version)"
    declared = entry.declared.get("windows_version")
    if declared not in (None, ""):
        return ".".join(str(declared).split(".")[:2]), "inventory mailflow_windows_version"
    return None, None


def unsupported(version: str, build: int | None, windows: str | None, min_55: int) -> str | None:
    """Why Q253249 says this Exchange does not belong on this Windows, or None."""
    if windows != WINDOWS_2000:
        return None
    if version in ("4.0", "5.0"):
        return f"Exchange {version} is not supported on Windows 2000 (Q253249: only 5.5 Service Pack 3 or later is)"
    if version == "5.5" and build is not None and build < min_55:
        return (f"Exchange 5.5 before Service Pack 3 (build {min_55}) is not supported on Windows 2000 "
                f"(Q253249: only 5.5 SP3 or later is)")
    return None


def detect(fleet):
    fixed_builds = {str(k): int(v) for k, v in fleet.setting("ims_leak_fixed_builds").items()}
    min_connections = int(fleet.setting("ims_leak_min_connections"))
    min_55 = int(fleet.setting("exchange55_windows2000_min_build"))
    build_conf = fleet.confidence("ims_leak_fixed_builds")
    both_conf = max(build_conf, fleet.confidence("ims_leak_min_connections"), key=fd.CONFIDENCES.index)
    out = []
    for entry in fleet:
        kind, how = fleet.kind_of(entry.name)
        ex = fleet.exchange_of(entry.name) if kind else None
        version = str((ex or {}).get("version") or "")
        if kind is None:
            out.append(fd.unknown(CAUSE, entry.name, f"what {entry.name} runs is not known ({how})"))
            continue
        if kind != "exchange55" and not version.startswith("5."):
            out.append(fd.not_applicable(CAUSE, entry.name, f"{entry.name} is {kind}: no Exchange 5.x Internet Mail Service"))
            continue
        if entry.snapshot is not None and (entry.snapshot["platform"].get("kind") != "exchange55"):
            out.append(fd.not_applicable(CAUSE, entry.name, f"{entry.name} has no Internet Mail Service (MSExchangeIMC)"))
            continue
        build = _build_number((ex or {}).get("build"))
        banners: dict[str, list[str]] = {}
        for p in fleet.probes_to(entry.name):
            line = (p.raw.get("banner") or "").split("\n", 1)[0].strip()
            if "internet mail service" in line.lower():
                banners.setdefault(line, []).append(p.source)
        windows, windows_how = windows_version(entry)
        evidence = {"exchange": ex, "ims_banners": banners,  # {banner: [hosts that saw it]}
                    "windows_version": windows, "windows_version_source": windows_how}
        if build is None or version not in fixed_builds:
            out.append(fd.unknown(CAUSE, entry.name, f"the Exchange 5.x version and build of {entry.name} are not known "
                                  f"(read: {ex!r}; fixed builds are known for {', '.join(sorted(fixed_builds))})", **evidence))
            continue
        fixed = fixed_builds[version]
        evidence.update(build=build, fixed_build=fixed)
        label = f"Exchange {version} build {build}" + (f" ({ex['service_pack']})" if ex.get("service_pack") else "")
        conns, why_not = _connections(fleet, entry)
        evidence["connections"], evidence["connections_note"] = conns, why_not
        not_supported = unsupported(version, build, windows, min_55)
        if not_supported:
            evidence["unsupported"] = {"reason": not_supported, "min_build_on_windows_2000": min_55, "source": "Q253249"}
        if build >= fixed:
            if not_supported:
                # Q253249's case, not the leak's: the service pack it needs is SP3, for support, not for Q175982.
                out.append(fd.Finding(CAUSE, entry.name, "present", f"unsupported: {label} runs on Windows 2000; "
                                      f"{not_supported}. Install 5.5 SP3 or later. Its IMS already carries the Q175982 "
                                      f"fix ({version}.{fixed}), so the connection leak is not what this is",
                                      evidence, confidence=fleet.confidence("exchange55_windows2000_min_build"),
                                      severity="medium"))
                continue
            out.append(fd.Finding(CAUSE, entry.name, "absent", f"{label} is at or past {version}.{fixed}, which carries the "
                                  "Q175982 fix", evidence, confidence=build_conf))
            continue
        if entry.snapshot is None and not banners:
            # The IMS is optional on 5.x; without a snapshot only its banner shows it is there.
            out.append(fd.unknown(CAUSE, entry.name, f"{label} is before {version}.{fixed}, but whether it runs the Internet "
                                  "Mail Service is not known: no probe saw an IMS banner", **evidence))
            continue
        head = f"{label} is before {version}.{fixed}, the service pack that fixes the Q175982 IMS connection leak"
        if not_supported:
            head += f" (and {not_supported})"
        if conns is None:
            out.append(fd.Finding(CAUSE, entry.name, "present", f"{head}; its connection table could not be read ({why_not}), "
                                  "so the decision rests on the build alone", evidence, confidence=build_conf, severity="medium"))
            continue
        explains = sorted({c["host"] for c in conns if c["host"]})
        if len(conns) >= min_connections:
            out.append(fd.Finding(CAUSE, entry.name, "present", f"{head}; {len(conns)} ESTABLISHED connections to remote port 25 "
                                  f"are open (the leak's signature)", evidence, confidence=both_conf, explains=explains))
        else:
            out.append(fd.Finding(CAUSE, entry.name, "present", f"{head}; only {len(conns)} ESTABLISHED connection(s) to port 25 "
                                  f"now (fewer than {min_connections}), so the leak is not seen yet", evidence,
                                  confidence=both_conf, severity="medium"))
    return out


def _build_number(build) -> int | None:
    """'2232.4' -> 2232; None when it is not a number."""
    head = str(build or "").split(".", 1)[0]
    return int(head) if head.isdigit() else None


def _connections(fleet, entry) -> tuple[list[dict] | None, str | None]:
    """ESTABLISHED connections to remote port 25, or (None, why they cannot be read). The table has no age."""
    if entry.snapshot is None:
        return None, f"{entry.name} is not managed, so there is no snapshot" if not entry.managed else \
            f"no snapshot of {entry.name}: {entry.error or 'not collected'}"
    try:
        rows = established_smtp(entry.view)
    except Missing as exc:
        return None, str(exc)
    out = [dict(c, host=fleet.resolve(c["remote"].rsplit(":", 1)[0])) for c in rows]
    return out, "the table gives no connection age; the count alone is compared"


def established_smtp(view) -> list[dict]:
    """[{local, remote}]: the host's ESTABLISHED connections to remote port 25 (raises Missing when unread)."""
    out = []
    for c in view.item("smtp_connections") or []:
        remote = str(c.get("remote") or "")
        if str(c.get("state") or "").lower() == "established" and remote.rsplit(":", 1)[-1] == "25":
            out.append({"local": c.get("local"), "remote": remote})
    return out


# -- the fix: report-only - the cure is the service pack (detect.ims_leak_fixed_builds), which this role does
# not install. As a stop-gap it restarts MSExchangeIMC (mailflow_ims_restart, and mailflow_allow_service_restart
# like every restart) while the leak's signature is seen: the restart ends the process that holds the leaked
# connections, and the verifying read must find fewer than detect.ims_leak_min_connections left. A restart
# cannot be undone; it is only done for a running, not Disabled, IMS (a Disabled one would stay stopped).

FIX_READS = ("services", "smtp_connections", "os", "exchange_setup", "ad_exchange_servers")
IMS = "MSExchangeIMC"
RESTART_VAR = "mailflow_ims_restart"


def fix_params(args: dict, facts: dict) -> dict:
    restart = args.get("restart", False)
    if not isinstance(restart, bool):
        raise FixError(f"{RESTART_VAR} must be true or false, got {restart!r}")
    try:
        fixed = {str(k): int(v) for k, v in setting(facts, "ims_leak_fixed_builds").items()}
        minimum = int(setting(facts, "ims_leak_min_connections"))
        min_55 = int(setting(facts, "exchange55_windows2000_min_build"))
    except (AttributeError, TypeError, ValueError) as exc:
        raise FixError(f"knowledge detect.ims_leak_fixed_builds must map versions to builds, and "
                       f"detect.ims_leak_min_connections and detect.exchange55_windows2000_min_build must be numbers "
                       f"({exc})") from None
    if minimum < 1:
        raise FixError(f"knowledge detect.ims_leak_min_connections must be at least 1, got {minimum}")
    return {"restart": restart, "allowed": bool(args.get("allow_service_restart")), "fixed_builds": fixed,
            "min_connections": minimum, "min_55_windows2000": min_55}


def _state(view, params) -> dict | None:
    """What the fix knows of this host's IMS, or None when the host has none."""
    ims = view.service(IMS) if view.kind == "exchange55" else None
    if not ims:
        return None
    ex = view.platform.get("exchange") or {}
    version, build = str(ex.get("version") or ""), _build_number(ex.get("build"))
    fixed = params["fixed_builds"].get(version)
    try:
        connections = established_smtp(view)
    except Missing:
        connections = None  # the table could not be read: no restart on a guess
    windows = ".".join(str((view.platform.get("os") or {}).get("version") or "").split(".")[:2]) or None
    return {"ims": ims, "version": version, "build": build, "fixed": fixed,
            "leaky": None if build is None or fixed is None else build < fixed, "connections": connections,
            "unsupported": unsupported(version, build, windows, params["min_55_windows2000"])}


def plan(view, params) -> list[Change]:
    if not (params["restart"] and params["allowed"]):
        return []
    try:
        s = _state(view, params)
    except Missing as exc:
        raise FixError(f"cannot tell whether {IMS} runs: {exc}") from None
    if s is None or not s["leaky"]:
        return []
    running = str(s["ims"].get("state") or "").lower() == "running"
    if not running or str(s["ims"].get("start_mode") or "").lower() == "disabled":
        return []
    if s["connections"] is None:
        # No restart on a guess, and no restart called verified on an unreadable table.
        raise FixError("the connection table (smtp_connections) could not be read: the leak's signature cannot be checked")
    held = len(s["connections"])
    if held < params["min_connections"]:
        return []
    return [Change("service_restart", {"service": IMS}, f"running, {held} ESTABLISHED connections to remote port 25",
                   "restarted (its connections closed)")]


def advice(view, params) -> list[str]:
    try:
        s = _state(view, params)
    except Missing as exc:
        return [f"nothing done: {exc}"]
    if s is None:
        return []
    if s["leaky"] is False:
        return [f"{s['unsupported']}: install Exchange 5.5 SP3 or later. This role does not install service packs."] \
            if s["unsupported"] else []
    if s["leaky"] is None:
        return [f"the Exchange 5.x version and build are not known (read: {view.platform.get('exchange')!r}), so whether "
                f"the Q175982 fix is in cannot be told; nothing restarted"]
    label = f"Exchange {s['version']} build {s['build']}"
    out = [f"{label} is before {s['version']}.{s['fixed']}: install a service pack at or past build {s['fixed']} "
           f"(Q175982: the leak is corrected in the service pack; knowledge ims_leak_fixed_builds). This role does not "
           f"install service packs."]
    if s["unsupported"]:
        out.append(f"{s['unsupported']}: on Windows 2000 that service pack must be 5.5 SP3 or later")
    held, minimum = len(s["connections"] or []), params["min_connections"]
    ims = s["ims"]
    if s["connections"] is None:
        out.append("the connection table (smtp_connections) could not be read: no stop-gap restart on a guess")
    elif str(ims.get("start_mode") or "").lower() == "disabled":
        out.append(f"{IMS} is Disabled: a restart would leave it stopped, so it is not restarted")
    elif str(ims.get("state") or "").lower() != "running":
        out.append(f"{IMS} is {ims.get('state')}: nothing to restart")
    elif held < minimum:
        out.append(f"{held} ESTABLISHED connection(s) to remote port 25 now (fewer than {minimum}): no stop-gap restart needed")
    elif not params["restart"]:
        out.append(f"{held} ESTABLISHED connections to remote port 25 are open (the leak's signature): as a stop-gap, "
                   f"{RESTART_VAR}: true with mailflow_allow_service_restart: true restarts {IMS}")
    elif not params["allowed"]:
        out.append(f"restart of {IMS} pending ({held} ESTABLISHED connections to remote port 25): "
                   f"mailflow_allow_service_restart is false")
    return out


def advice_unmanaged(host: str, params) -> list[str]:
    """For a host the role cannot reach (mailflow_unmanaged: Exchange 5.x on Windows NT/2000 has no WinRM)."""
    builds = ", ".join(f"{v}.{b}" for v, b in sorted(params["fixed_builds"].items()))
    return [f"{host} is not managed (mailflow_unmanaged, no WinRM): nothing was read or changed there. If it runs an "
            f"Exchange 5.x build before {builds}, install a service pack at or past that build (Q175982; on Windows 2000, "
            f"5.5 SP3, build {params['min_55_windows2000']}, or later: Q253249); as a "
            f"stop-gap, restart its Internet Mail Service ({IMS}) by hand while many ESTABLISHED connections to "
            f"remote port 25 stay open (netstat -n)"]
