"""Field notes 002, case 1: a firewall blocks TCP 25 between servers.

A peer is blocked when probes to it are refused or time out (filtered) while
its own snapshot shows SMTPSVC running and bound to port 25. The blocker is
its Windows Firewall when that is on without port 25 open (GloballyOpenPorts,
or inetinfo.exe, which hosts SMTP, among AuthorizedApplications); otherwise
it is the network between the senders and it, which the finding names for
the network team. A peer whose SMTP service is down is peer_smtp_unavailable.
"""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils.causes.common import no_snapshot_reason
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import Missing
from ansible_collections.mailflow.exchange.plugins.module_utils.metabase import MetabaseError

CAUSE = fd.Cause(
    id="port25_blocked",
    title="A firewall blocks TCP 25 between servers",
    sources=("field notes 002 case 1",),
    severity="critical", fix="mailflow.exchange.fix_port25_blocked", symptom_scope="inbound",
)
_BLOCKED = ("refused", "filtered")


def windows_firewall(view) -> dict:
    """{"profiles": {name: {"enabled", "port25", "inetinfo"}}, "blocks": bool} from the FirewallPolicy registry."""
    keys = view.reg_subkeys("firewall_policy")
    profiles: dict[str, dict] = {}
    for path, entry in keys.items():
        parts = path.split("\\")
        if parts[-1].endswith("Profile"):
            enabled = {k.lower(): v["data"] for k, v in entry["values"].items()}.get("enablefirewall")
            profiles.setdefault(parts[-1], {"enabled": enabled == 1, "port25": None, "inetinfo": None})
    for path, entry in keys.items():
        parts = path.split("\\")
        if len(parts) >= 3 and parts[-1] == "List" and parts[-3] in profiles:
            prof = profiles[parts[-3]]
            for name, value in entry["values"].items():
                fields = str(value["data"]).split(":")
                if parts[-2] == "GloballyOpenPorts" and name.upper() == "25:TCP":
                    prof["port25"] = {"scope": fields[2] if len(fields) > 2 else "*", "enabled": "Enabled" in fields}
                elif parts[-2] == "AuthorizedApplications" and name.lower().endswith("inetinfo.exe"):
                    prof["inetinfo"] = {"enabled": "Enabled" in fields}
    for prof in profiles.values():
        opened = (prof["port25"] or {}).get("enabled") or (prof["inetinfo"] or {}).get("enabled")
        prof["blocks_25"] = bool(prof["enabled"] and not opened)
    return {"profiles": profiles, "blocks": any(p["blocks_25"] for p in profiles.values())}


def _listening(view) -> tuple[bool | None, str]:
    svc = view.service("SMTPSVC")
    if svc is None:
        return None, "SMTPSVC is not installed"
    if str(svc.get("state")).lower() != "running":
        return False, f"SMTPSVC is {svc.get('state')} ({svc.get('start_mode')})"
    try:
        bindings = [p.get("ServerBindings", "") for p in view.metabase().smtp_virtual_servers().values()]
    except (Missing, MetabaseError):
        return True, "SMTPSVC running (bindings unread)"
    on25 = any(":25:" in str(b) for b in bindings)
    return (True, "SMTPSVC running, bound to port 25") if on25 else (False, f"SMTPSVC running, bindings {bindings}")


def detect(fleet):
    out = []
    for entry in fleet:
        probes = fleet.probes_to(entry.name)
        blocked = [p for p in probes if p.result in _BLOCKED]
        through = [p for p in probes if p.result not in _BLOCKED + ("unresolved", "error")]
        evidence = {"blocked_from": [{"from": p.source, "result": p.result, "ms": p.ms} for p in blocked],
                    "reached_from": sorted(p.source for p in through)}
        if not probes:
            out.append(fd.unknown(CAUSE, entry.name, "no peer probed it", **evidence))
            continue
        if not blocked:
            out.append(fd.Finding(CAUSE, entry.name, "absent", f"every probing peer ({len(through)}) reached port 25", evidence))
            continue
        if entry.view is None:
            out.append(fd.unknown(CAUSE, entry.name, f"port 25 blocked from {len(blocked)} peer(s), but whether SMTP runs there "
                                  f"is not known: {no_snapshot_reason(entry)}", **evidence))
            continue
        try:
            listening, state = _listening(entry.view)
            fw = windows_firewall(entry.view)
        except Missing as exc:
            out.append(fd.unknown(CAUSE, entry.name, str(exc), **evidence))
            continue
        evidence.update(smtp=state, windows_firewall=fw)
        if not listening:
            out.append(fd.Finding(CAUSE, entry.name, "absent", f"connections fail, but {state}: see peer_smtp_unavailable", evidence))
            continue
        who = ", ".join(sorted(p.source for p in blocked))
        if fw["blocks"]:
            names = ", ".join(n for n, p in fw["profiles"].items() if p["blocks_25"])
            summary = f"{state}, but Windows Firewall ({names}) is on without TCP 25 open; blocked from {who}"
            evidence["blocker"] = "windows_firewall"
        else:
            summary = (f"{state} and its Windows Firewall allows it, but port 25 is {blocked[0].result} from {who}"
                       + (f" while {', '.join(evidence['reached_from'])} get through" if through else "")
                       + ": a network firewall on that path blocks it")
            evidence["blocker"] = "network"
        out.append(fd.Finding(CAUSE, entry.name, "present", summary, evidence, explains=[p.source for p in blocked]))
    return out
