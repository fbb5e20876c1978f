"""Q175982: the Exchange 5.0/5.5 Internet Mail Service leaks outbound SMTP connections.

"the connection count against the destination domain is being leaked and as a
result, the IMS never terminates the connection"; NETSTAT shows "several
connections that are in the established state ... established for a long time".
Fixed "in the latest U.S. Service Pack" (Q175982, last revised 13-MAR-1999):
the first fixed build per version is detect.ims_leak_fixed_builds (inferred).

Exchange 5.5 servers run on Windows NT/2000 without WinRM, so they are usually
unmanaged: the build then comes from AD (serialNumber, read by the other
servers) or the IMS banner (Fleet.exchange_of), and the connection table cannot
be read, so the decision rests on the build alone.
"""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import Missing

CAUSE = fd.Cause(
    id="ims_connection_leak",
    title="Exchange 5.x Internet Mail Service leaks outbound SMTP connections (build before the fix)",
    sources=("Q175982", "Q158530"),
    severity="high", fix="mailflow.exchange.fix_ims_connection_leak",
    symptom_scope="outbound",
)


def detect(fleet):
    fixed_builds = {str(k): int(v) for k, v in fleet.setting("ims_leak_fixed_builds").items()}
    min_connections = int(fleet.setting("ims_leak_min_connections"))
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
        evidence = {"exchange": ex, "ims_banners": banners}  # {banner: [hosts that saw it]}
        if build is None or version not in fixed_builds:
            out.append(fd.unknown(CAUSE, entry.name, f"the Exchange 5.x version and build of {entry.name} are not known "
                                  f"(read: {ex!r}; fixed builds are known for {', '.join(sorted(fixed_builds))})", **evidence))
            continue
        fixed = fixed_builds[version]
        evidence.update(build=build, fixed_build=fixed)
        label = f"Exchange {version} build {build}" + (f" ({ex['service_pack']})" if ex.get("service_pack") else "")
        conns, why_not = _connections(fleet, entry)
        evidence["connections"], evidence["connections_note"] = conns, why_not
        if build >= fixed:
            out.append(fd.Finding(CAUSE, entry.name, "absent", f"{label} is at or past {version}.{fixed}, which carries the "
                                  "Q175982 fix", evidence, confidence=build_conf))
            continue
        if entry.snapshot is None and not banners:
            # The IMS is optional on 5.x; without a snapshot only its banner shows it is there.
            out.append(fd.unknown(CAUSE, entry.name, f"{label} is before {version}.{fixed}, but whether it runs the Internet "
                                  "Mail Service is not known: no probe saw an IMS banner", **evidence))
            continue
        head = f"{label} is before {version}.{fixed}, the service pack that fixes the Q175982 IMS connection leak"
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
        rows = entry.view.item("smtp_connections") or []
    except Missing as exc:
        return None, str(exc)
    out = []
    for c in rows:
        remote = str(c.get("remote") or "")
        if str(c.get("state") or "").lower() == "established" and remote.rsplit(":", 1)[-1] == "25":
            out.append({"local": c.get("local"), "remote": remote, "host": fleet.resolve(remote.rsplit(":", 1)[0])})
    return out, "the table gives no connection age; the count alone is compared"
