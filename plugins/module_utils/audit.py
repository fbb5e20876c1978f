"""Collect -> analyze -> write, the analyze part: run every detector over the fleet, rank, summarise.

Input is the fleet (inventory hosts with their snapshots); output is the
`mailflow.audit/1` document that every report is written from (see
docs/audit.md and docs/audit.schema.json). Pure: no host is contacted.
"""
from __future__ import annotations

from typing import Any

from ansible_collections.mailflow.exchange.plugins.module_utils import causes, probe_plan, symptoms
from ansible_collections.mailflow.exchange.plugins.module_utils.causes.common import routes
from ansible_collections.mailflow.exchange.plugins.module_utils.findings import Finding
from ansible_collections.mailflow.exchange.plugins.module_utils.firewalls import FACTS_SCHEMA as FIREWALL_SCHEMA
from ansible_collections.mailflow.exchange.plugins.module_utils.fleet import Fleet, HostEntry

SCHEMA = "mailflow.audit/1"
FAIL_ON = ("never", "present", "unknown")
# Causes whose cure is a hotfix for a held-message defect: never ranked before a corrupt metabase (see rank).
HOTFIX_CAUSES = ("greylist_hotfix_missing",)


class AuditError(ValueError):
    pass


# Inventory variables a user sets to tell the audit what it cannot see (fleet.HostEntry.declared).
DECLARED = {
    "mailflow_platform": "platform",
    "mailflow_greylists": "greylists",
    "mailflow_greylisting_peers": "greylisting_peers",
    "mailflow_smarthost_expected": "smarthost_expected",
    "mailflow_windows_version": "windows_version",  # an unmanaged host's Windows NT version ("5.0" = Windows 2000)
}


def declared(hostvars: dict) -> dict:
    return {key: hostvars[var] for var, key in DECLARED.items() if hostvars.get(var) is not None}


def fleet_from(hosts: list[dict], knowledge: dict, firewalls: list[dict] | None = None,
               probe_plan: dict | None = None) -> Fleet:
    """hosts: [{"name", "managed", "fqdn", "address", "snapshot", "error", "declared"}] in inventory order;
    firewalls: their facts (firewalls.facts_from_config / failed_facts); probe_plan: the run's (probe_plan.plan)."""
    entries = []
    for h in hosts:
        if not h.get("name"):
            raise AuditError(f"a host without a name: {h!r}")
        snap = h.get("snapshot")
        if snap is not None and snap.get("schema") != "mailflow.snapshot/1":
            raise AuditError(f"{h['name']}: not a mailflow.snapshot/1 document (schema {snap.get('schema')!r})")
        entries.append(HostEntry(name=h["name"], managed=h.get("managed", True), fqdn=h.get("fqdn"), address=h.get("address"),
                                 snapshot=snap, error=h.get("error"), declared=dict(h.get("declared") or {})))
    for f in firewalls or []:
        if f.get("schema") != FIREWALL_SCHEMA:
            raise AuditError(f"{f.get('name', '?')}: not a {FIREWALL_SCHEMA} document (schema {f.get('schema')!r})")
    return Fleet(entries, settings=knowledge.get("detect") or {}, firewalls=firewalls, probe_plan=probe_plan)


def detect_all(fleet: Fleet) -> dict[str, list[Finding]]:
    """{host: [Finding, one per cause in catalog order]}."""
    by_host: dict[str, list[Finding]] = {e.name: [] for e in fleet}
    for module in causes.modules():
        found = module.detect(fleet)
        hosts = [f.host for f in found]
        if sorted(hosts) != sorted(by_host):
            raise AuditError(f"detector {module.CAUSE.id} returned findings for {sorted(hosts)}, not one per host")
        for f in found:
            by_host[f.host].append(f)
    return by_host


def rank(findings: list[Finding], host_symptoms: list[dict]) -> None:
    """Number the present causes on one host, most likely first.

    KB 919091 lists its causes in an order and says to suspect the metabase "if
    the other causes do not apply": a cause whose evidence names the peers this
    host's mail is stuck on (or that stalls mail to this host) comes first, then
    catalog order; metabase_corrupt comes after every other present cause, except
    a missing hotfix (HOTFIX_CAUSES): with a corrupt MetaBase.xml IIS cannot load
    SMTP's configuration, which explains stalled mail before any held-message
    defect does, so the hotfix is never put first on such a host.
    """
    stuck_on = {r for s in host_symptoms for r in s.get("remote_hosts", [])}
    order = {cid: i for i, cid in enumerate(causes.CAUSE_IDS)}
    corrupt = any(f.cause.id == "metabase_corrupt" and f.status == "present" for f in findings)

    def key(f: Finding):
        # A cause that names peers matches when they are among the stuck ones; an outbound cause that
        # names none (antivirus on the sender, say) stalls all its outbound mail, so any stuck peer matches.
        if f.explains:
            matches = bool(stuck_on & set(f.explains))
        else:
            matches = f.cause.symptom_scope == "outbound" and bool(stuck_on)
        group = 1 if f.cause.id == "metabase_corrupt" else 2 if corrupt and f.cause.id in HOTFIX_CAUSES else 0
        return (group, not matches, order[f.cause.id])

    present = sorted((f for f in findings if f.status == "present"), key=key)
    for i, f in enumerate(present, 1):
        f.rank = i


def run(fleet: Fleet, generated: str, check_mode: bool | None = None,
        pending_restart: dict[str, list[dict]] | None = None, unfinished: dict[str, list[dict]] | None = None) -> dict[str, Any]:
    """The mailflow.audit/1 document. From the fix backups: pending_restart {host: [{cause, services, backup,
    change_id}]}; unfinished {host: [{cause, state, backup, change_id, interrupted}]}, changes a lost run left."""
    by_host = detect_all(fleet)
    hosts: dict[str, Any] = {}
    for entry in fleet:
        host_symptoms = symptoms.of_host(fleet, entry)
        rank(by_host[entry.name], host_symptoms)
        hosts[entry.name] = {
            "managed": entry.managed,
            "reachable": entry.snapshot is not None,
            "error": None if entry.snapshot is not None else (entry.error or ("unmanaged" if not entry.managed else "no snapshot")),
            "collected_at": (entry.snapshot or {}).get("collected_at"),
            # What its peers' probes connect to (the snapshot action's choice): a job slice whose inventory lacks
            # this host probes it there (probe_plan.fleet_from_audit).
            "probe_target": entry.fqdn or entry.address,
            "platform": _platform(fleet, entry),
            "findings": [f.to_dict() for f in by_host[entry.name]],
            "symptoms": host_symptoms,
        }
        if (pending_restart or {}).get(entry.name):
            hosts[entry.name]["pending_restart"] = pending_restart[entry.name]
        if (unfinished or {}).get(entry.name):
            hosts[entry.name]["unfinished_changes"] = unfinished[entry.name]
    doc = {
        "schema": SCHEMA,
        "generated": generated,
        "check_mode": check_mode,
        "causes": [{"id": c.id, "title": c.title, "sources": list(c.sources), "fix": c.role, "kb919091_cause": c.kb919091_cause}
                   for c in causes.catalog().values()],
        "hosts": hosts,
        "peers": [{"from": p.source, "to": p.target, "result": p.result, "banner": (p.raw.get("banner") or "").split("\n")[0],
                   "ms": p.ms, "error": p.raw.get("error") or None, "why": _why(fleet, p.source, p.target)}
                  for p in fleet.probes],
        "probe_plan": plan_summary(fleet),
        "routes": routes(fleet),
        "summary": summarise(hosts),
    }
    if fleet.firewalls:
        doc["firewalls"] = [_firewall(fw.facts) for fw in fleet.firewalls]
    return doc


def _why(fleet: Fleet, source: str, target: str) -> list[str]:
    if fleet.probe_plan is None:
        return ["not recorded (no probe plan with these snapshots)"]
    return probe_plan.why(fleet.probe_plan, source, target) or ["not in the probe plan"]


def plan_summary(fleet: Fleet) -> dict[str, Any]:
    """What the report says of the probe plan: its mode and settings, where its routes came from, the probes per
    host, and the planned pairs that did not happen (with why); the probed pairs are `peers`, each with its why."""
    the_plan = fleet.probe_plan
    if the_plan is None:
        return {"mode": "unrecorded", "probes": len(fleet.probes), "not_probed": []}
    missed = [{"from": s, "to": t, "why": why, "reason": probe_plan.not_planned(the_plan, s, t)}
              for s, peers in sorted((the_plan.get("pairs") or {}).items()) for t, why in peers.items()
              if s in fleet.entries and fleet[s].snapshot is not None and not fleet.probed(s, t)]
    missed += [{"from": s, "to": t, "why": why, "reason": probe_plan.not_planned(the_plan, s, t)}
               for key in ("dropped", "unaddressed")
               for s, peers in sorted((the_plan.get(key) or {}).items()) for t, why in peers.items()]
    per_host = [len(p) for p in (the_plan.get("pairs") or {}).values()]
    return {"mode": the_plan.get("mode"), "requested": the_plan.get("requested"), "settings": the_plan.get("settings"),
            "routes_source": the_plan.get("routes_source"), "probes": len(fleet.probes),
            "max_per_host": max(per_host, default=0), "short_of_min_inbound": the_plan.get("short") or {},
            "not_probed": missed}


def firewalls_to_fix(doc: dict[str, Any]) -> dict[str, list[str]]:
    """{IOS firewall: [rules]} that confirmed cisco_smtp_inspection findings blame: the probes saw the masking
    and the config puts that rule on the path. fix_cisco_smtp_inspection changes those rules and no others
    (an inspection on an internet-facing interface is not this audit's business)."""
    rules: dict[str, set[str]] = {}
    for h in doc["hosts"].values():
        for f in h["findings"]:
            if f["cause"] == "cisco_smtp_inspection" and f["status"] == "present" and f["confidence"] == "confirmed":
                for c in f["evidence"].get("crossings") or []:
                    # CBAC rules only: a zone-based class usually matches more than SMTP (see the role README).
                    if c["platform"] == "ios" and c["direction"] in ("in", "out") and c["from"] in f["explains"]:
                        rules.setdefault(c["firewall"], set()).add(c["rule"])
    return {fw: sorted(r) for fw, r in sorted(rules.items())}


def _firewall(facts: dict) -> dict:
    """What the report says of a firewall: where its config came from and its SMTP inspections (never the config)."""
    return {k: facts.get(k) for k in ("name", "platform", "hostname", "source", "error", "config_sha256", "segments", "inspections")}


def _platform(fleet: Fleet, entry: HostEntry) -> dict:
    if entry.snapshot is not None:
        return entry.snapshot["platform"]
    kind, source = fleet.kind_of(entry.name)
    return {"computer_name": entry.computer_name, "kind": kind, "kind_source": source, "exchange": fleet.exchange_of(entry.name), "os": None}


def to_resume(doc: dict[str, Any]) -> dict[str, list[str]]:
    """{host: [causes]} whose fixes a lost run left unfinished: fix.yml and remediate.yml run them whatever the
    findings say (the change may be half-applied, and its restart still owed)."""
    return {h: [u["cause"] for u in d.get("unfinished_changes") or []] for h, d in doc["hosts"].items()
            if d.get("unfinished_changes")}


def probed_by(doc: dict[str, Any], managed: list[str]) -> dict[str, list[str]]:
    """{host: the managed servers that probed it}: after a change, they probe it again for fresh evidence."""
    out: dict[str, set[str]] = {}
    for p in doc["peers"]:
        if p["from"] in managed:
            out.setdefault(p["to"], set()).add(p["from"])
    return {h: sorted(s) for h, s in out.items()}


def probes_from(doc: dict[str, Any]) -> dict[str, list[str]]:
    """{host: the peers it probed}: a post-change snapshot probes the same ones, so its evidence stands beside the
    audit's."""
    out: dict[str, set[str]] = {}
    for p in doc["peers"]:
        out.setdefault(p["from"], set()).add(p["to"])
    return {h: sorted(s) for h, s in out.items()}


def summarise(hosts: dict[str, Any]) -> dict[str, Any]:
    counts = {s: 0 for s in ("present", "absent", "not_applicable", "unknown")}
    present_by_host = {}
    for name, h in hosts.items():
        for f in h["findings"]:
            counts[f["status"]] += 1
        present_by_host[name] = [f["cause"] for f in sorted((f for f in h["findings"] if f["status"] == "present"), key=lambda f: f["rank"])]
    return {"hosts": len(hosts), "unreachable": sorted(n for n, h in hosts.items() if not h["reachable"]),
            "statuses": counts, "present": present_by_host}


def should_fail(audit_doc: dict, fail_on: str) -> list[str]:
    """The host/cause pairs that make the play fail under `fail_on` (empty: it passes)."""
    if fail_on not in FAIL_ON:
        raise AuditError(f"mailflow_fail_on must be one of {', '.join(FAIL_ON)}, not {fail_on!r}")
    bad = {"never": (), "present": ("present",), "unknown": ("present", "unknown")}[fail_on]
    return [f"{h}: {f['cause']} {f['status']}" for h, d in audit_doc["hosts"].items() for f in d["findings"] if f["status"] in bad]
