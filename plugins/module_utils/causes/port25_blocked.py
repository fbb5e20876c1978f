"""chicagotech.net Event ID 4006, case 1: a firewall blocks TCP 25 between servers.

A peer is blocked when probes to it are refused or time out (filtered) while
its own snapshot shows SMTPSVC running and bound to port 25. The blocker is
its Windows Firewall when that is on without port 25 open (GloballyOpenPorts,
or inetinfo.exe, which hosts SMTP, among AuthorizedApplications); otherwise
it is the network between the senders and it, which the finding names for
the network team. A peer whose SMTP service is down is peer_smtp_unavailable.
"""
from __future__ import annotations

import re

from ansible_collections.mailflow.exchange.plugins.module_utils import findings as fd
from ansible_collections.mailflow.exchange.plugins.module_utils.causes.common import no_snapshot_reason, path_absent
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import Missing
from ansible_collections.mailflow.exchange.plugins.module_utils.metabase import MetabaseError
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import Change, FixError

CAUSE = fd.Cause(
    id="port25_blocked",
    title="A firewall blocks TCP 25 between servers",
    sources=("chicagotech.net Event ID 4006 case 1",),
    severity="critical",
    position=70,
    fix=fd.Fix(order=30, args=dict(scope=dict(type="str", default="*"))),
    symptom_scope="inbound",
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
            out.append(path_absent(fleet, entry, CAUSE, f"every probing peer ({len(through)}) reached port 25", evidence))
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
        outside = None if fw["blocks"] else f"the network team: open TCP 25 to {entry.name} from {who}"
        out.append(fd.Finding(CAUSE, entry.name, "present", summary, evidence, explains=[p.source for p in blocked],
                              outside_help=outside))
    return out


# -- the fix: where the host's own Windows Firewall is the blocker, open TCP 25 in each profile that blocks it
# (netsh firewall add|set portopening ... profile=<it>); the scope is the role's. Where it is not, the block
# is on the network and the fix only reports: a fix reads its own host, never the peers' probes, so its
# advice is this host's side of the evidence (SMTP listening, the firewall letting 25 in) for the network team.

FIX_READS = ("firewall_policy", "services", "metabase")
RULE_NAME = "SMTP"
_NETSH_PROFILE = {"domainprofile": "DOMAIN", "standardprofile": "STANDARD"}
# netsh firewall's custom scope: IPv4 addresses, address/prefix, address/mask, and the keyword LocalSubnet,
# comma-separated (Windows Server 2003 Networking Recipes 3-4; netsh firewall help); loopback and 0.0.0.0
# are refused by netsh. The role's vars/main.yml carries the same pattern (a unit test keeps them equal).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_MASK_OCTET = r"(?:255|254|252|248|240|224|192|128|0)"
_MASK = rf"(?:255\.255\.255\.{_MASK_OCTET}|255\.255\.{_MASK_OCTET}\.0|255\.{_MASK_OCTET}\.0\.0|{_MASK_OCTET}\.0\.0\.0)"
SCOPE_ITEM = (rf"(?i)^(?:LocalSubnet|(?!127\.)(?!0\.0\.0\.0(?:/|$)){_OCTET}(?:\.{_OCTET}){{3}}"
              rf"(?:/(?:3[0-2]|[12]?[0-9])|/{_MASK})?)$")


def fix_params(args: dict, facts: dict) -> dict:
    raw = args.get("scope")
    text = raw.strip() if isinstance(raw, str) else ""
    if text == "*" or text.lower() == "localsubnet":
        return {"scope": "*" if text == "*" else "LocalSubnet"}
    items = [i.strip() for i in text.split(",")]
    if not text or not all(re.match(SCOPE_ITEM, i) for i in items):
        raise FixError(f"mailflow_port25_scope must be '*', 'LocalSubnet' or a comma-separated list of IPv4 addresses, "
                       f"address/prefix, address/mask and LocalSubnet (not loopback, not 0.0.0.0), got {raw!r}")
    return {"scope": ",".join("LocalSubnet" if i.lower() == "localsubnet" else i for i in items)}


def _rules(view) -> dict[str, dict]:
    """{profile key name: the "25:TCP" opening as {"exists", "scope", "enabled", "name"}} from GloballyOpenPorts\\List."""
    out = {}
    for path, entry in view.reg_subkeys("firewall_policy").items():
        parts = path.split("\\")
        if len(parts) >= 3 and parts[-1] == "List" and parts[-2] == "GloballyOpenPorts":
            for name, value in entry["values"].items():
                if name.upper() == "25:TCP":
                    fields = str(value["data"]).split(":", 4)
                    out[parts[-3]] = {"exists": True, "scope": fields[2] if len(fields) > 2 else "*",
                                      "enabled": len(fields) > 3 and fields[3].lower() == "enabled",
                                      "name": fields[4] if len(fields) > 4 else ""}
    return out


def plan(view, params) -> list[Change]:
    try:
        if view.service("SMTPSVC") is None:
            return []  # not an SMTP server: nothing here should listen on 25
        fw = windows_firewall(view)
    except Missing as exc:  # never guess: an unread firewall policy must not pass for "open"
        raise FixError(str(exc)) from None
    rules = _rules(view)
    changes = []
    for profile, state in sorted(fw["profiles"].items()):
        if not state["blocks_25"] or profile.lower() not in _NETSH_PROFILE:
            continue
        before = rules.get(profile) or {"exists": False}
        # A disabled opening someone made is enabled as it is (its name and scope kept); a new one gets the role's scope.
        scope = before["scope"] if before["exists"] else params["scope"]
        name = before.get("name") or RULE_NAME
        changes.append(Change("firewall_port", {"port": 25, "protocol": "TCP", "name": name, "scope": scope,
                                                "profile": _NETSH_PROFILE[profile.lower()]},
                              before, {"exists": True, "scope": scope, "enabled": True, "name": name}))
    return changes


def advice(view, params) -> list[str]:
    host = view.snap.get("host", "this host")
    if view.service("SMTPSVC") is None:
        return []
    fw = windows_firewall(view)
    out = []
    unknown = [p for p in fw["profiles"] if p.lower() not in _NETSH_PROFILE]
    if any(fw["profiles"][p]["blocks_25"] for p in unknown):
        out.append(f"Windows Firewall profile(s) {', '.join(unknown)} on {host} block TCP 25 and are not ones "
                   f"netsh firewall names (DOMAIN, STANDARD): open TCP 25 there by hand")
    if fw["blocks"]:
        return out
    listening, state = _listening(view)
    if not listening:
        return [f"{state} on {host}: nothing answers on port 25 there to let through (see peer_smtp_unavailable)"]
    profiles = "; ".join(f"{name} {'on' if p['enabled'] else 'off'}"
                         + (f", TCP 25 open (scope {p['port25']['scope']})" if (p["port25"] or {}).get("enabled") else "")
                         + (", inetinfo.exe allowed" if (p["inetinfo"] or {}).get("enabled") else "")
                         for name, p in sorted(fw["profiles"].items())) or "not configured (off)"
    out.append(f"{host} itself lets SMTP in: {state}; Windows Firewall: {profiles}. Where peers still cannot connect to "
               f"{host}:25 (the audit's port25_blocked evidence lists blocked_from and reached_from), the block is on the "
               f"network path: the network team should allow TCP 25 from those senders to {host} on every firewall and "
               f"ACL between them, and check the senders' own outbound rules. This fix reads only {host}, so it cannot "
               f"name the senders itself.")
    opened = [p["port25"] for p in fw["profiles"].values() if (p["port25"] or {}).get("enabled")]
    scoped = sorted({o.get("scope") for o in opened} - {None})
    if scoped and scoped != [params["scope"]]:
        out.append(f"TCP 25 is already open on {host} with scope {', '.join(scoped)}; mailflow_port25_scope "
                   f"({params['scope']}) was not applied over it. A scope that leaves out a sender blocks it too.")
    return out
