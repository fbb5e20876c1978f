"""Golden audit cases: a folder of saved snapshots (what an audit run writes), and the audit and reports they give.

    tests/fixtures/snapshots/<case>/
        case.json            the fleet as the inventory gave it: hosts (name, managed, fqdn, address, declared),
                             firewalls, and where the case came from
        snapshots/<host>.json, firewalls/<name>.json    as the audit playbook saved them (reports/<ts>/)
        probe_plan.json      the run's probe plan (planned(): the role's plan for case.json's inventory)
        expected/            audit.json, audit.md, audit.csv, junit.xml, audit.html: the approved results

A snapshot folder from a real server becomes a case by copying reports/<ts>/snapshots (and firewalls) here and
writing case.json. Regenerate the demo case from the lab with `make golden`, then read the diff of expected/ before
committing it: that diff is the approval.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile


from ansible_collections.mailflow.exchange.plugins.module_utils import audit, knowledge, probe_plan, reports

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASES = os.path.join(ROOT, "tests", "fixtures", "snapshots")
GENERATED = "2026-01-01T00:00:00Z"  # the one field of an audit that is about the run, not the fleet


def cases() -> list[str]:
    return sorted(d for d in os.listdir(CASES) if os.path.isfile(os.path.join(CASES, d, "case.json"))) \
        if os.path.isdir(CASES) else []


def _load(path: str):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def load_case(case: str) -> tuple[list[dict], list[dict]]:
    """(hosts as audit.fleet_from takes them, firewall facts) of one case."""
    folder = os.path.join(CASES, case)
    meta = _load(os.path.join(folder, "case.json"))
    hosts = []
    for h in meta["hosts"]:
        path = os.path.join(folder, "snapshots", f"{h['name']}.json")
        snap = _load(path) if h["managed"] and os.path.exists(path) else None
        error = None if snap else ("unmanaged (mailflow_unmanaged): probed by its peers, never logged into"
                                   if not h["managed"] else "no snapshot was taken")
        hosts.append(dict(h, snapshot=snap, error=error))
    firewalls = [_load(os.path.join(folder, "firewalls", f"{n}.json")) for n in meta.get("firewalls", [])]
    return hosts, firewalls


def probe_plan_of(case: str) -> dict | None:
    """The case's saved probe plan (probe_plan.json beside its snapshots), None when it has none."""
    path = os.path.join(CASES, case, "probe_plan.json")
    return _load(path) if os.path.exists(path) else None


def planned(case: str) -> dict:
    """The probe plan the snapshot role makes for the case's inventory on a first audit (no earlier audit.json,
    the role's default settings), from case.json. case.json keeps the inventory's names and declarations
    (audit.declared), not mailflow_sends_to or mailflow_probe_peers: a case whose inventory sets those keeps the
    plan its run saved instead."""
    meta = _load(os.path.join(CASES, case, "case.json"))
    hostvars = {h["name"]: {"mailflow_fqdn": h.get("fqdn"), "ansible_host": h.get("address"),
                            "mailflow_smarthost_expected": (h.get("declared") or {}).get("smarthost_expected")}
                for h in meta["hosts"]}
    return probe_plan.for_inventory([h["name"] for h in meta["hosts"] if h["managed"]],
                                    [h["name"] for h in meta["hosts"] if not h["managed"]], hostvars)


def save_plan(case: str, plan: dict) -> str:
    """The plan as the probe_plan action writes it, beside the case's snapshots."""
    path = os.path.join(CASES, case, "probe_plan.json")
    probe_plan.write(path, plan)
    return path


def fleet(case: str, knowledge_overrides: dict | None = None):
    hosts, firewalls = load_case(case)
    return audit.fleet_from(hosts, knowledge.load(knowledge_overrides), firewalls, probe_plan_of(case))


def edited_fleet(case: str, edit=None, knowledge_overrides: dict | None = None, declared: dict | None = None,
                 firewalls: bool = False):
    """A Fleet of the case's snapshots after edit({host: snapshot}) (a fresh copy each time), with these
    inventory declarations; without the firewalls' facts unless firewalls=True (a fleet of servers alone)."""
    hosts, facts = load_case(case)
    snaps = {h["name"]: h["snapshot"] for h in hosts}
    if edit:
        edit(snaps)
    for h in hosts:
        h["snapshot"] = snaps.get(h["name"])
        if h["snapshot"] is None and h["managed"]:
            h["error"] = "unreachable"
        h["declared"] = (declared or {}).get(h["name"], {})
    return audit.fleet_from(hosts, knowledge.load(knowledge_overrides), facts if firewalls else None)


def audit_doc(case: str) -> dict:
    """The audit of a case, as audit_fleet decides it offline (check mode, nothing pending)."""
    return audit.run(fleet(case), generated=GENERATED, check_mode=True)


def render(case: str, out_dir: str) -> dict[str, str]:
    """Every report of the case's audit written into out_dir; {kind: path}."""
    return reports.write_all(audit_doc(case), out_dir)


# -- regenerating a case from the demo lab (make golden)


def _case_meta(inventory: dict, source: str) -> dict:
    groups = inventory["all"]["children"]
    hosts = []
    for group, managed in (("mailflow_servers", True), ("mailflow_unmanaged", False)):
        for name, hv in (groups.get(group, {}).get("hosts") or {}).items():
            hosts.append({"name": name, "managed": managed, "fqdn": hv.get("mailflow_fqdn"), "address": hv.get("ansible_host"),
                          "declared": audit.declared(hv)})
    return {"source": source, "hosts": hosts, "firewalls": list((groups.get("firewalls", {}).get("hosts") or {}))}


def regenerate_demo(case: str = "demo", block: int = 250) -> str:
    """Run the audit playbook against the demo lab (on loopback block `block`) and save its snapshots and the
    approved results as tests/fixtures/snapshots/<case>/."""
    from lab.core import Lab
    from lab.scenario import load_scenario

    work = tempfile.mkdtemp(prefix="mailflow-golden-")
    folder = os.path.join(CASES, case)
    try:
        scenario = os.path.join(ROOT, "lab", "scenarios", "demo.yml")
        # No mail flows: the case is the scenario as written, not a moment of its deliveries.
        with Lab(load_scenario(scenario, address_block=block), os.path.join(work, "lab"), user_known_hosts=True,
                 mail_flow=False) as lab_:
            inventory = lab_.inventory()
            inv_path = os.path.join(work, "hosts.yml")
            lab_.write_inventory(inv_path)
            env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
            playbook = shutil.which("ansible-playbook", path=os.path.dirname(sys.executable)) or "ansible-playbook"
            proc = subprocess.run([playbook, "-i", inv_path, os.path.join(ROOT, "playbooks", "audit.yml"), "--check",
                                   "-e", f"mailflow_report_root={work}/reports", "-e", f"mailflow_backup_dir={work}/backups"],
                                  cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(f"the audit playbook failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
        run = os.path.realpath(os.path.join(work, "reports", "latest"))
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        for sub in ("snapshots", "firewalls"):
            if os.path.isdir(os.path.join(run, sub)):
                shutil.copytree(os.path.join(run, sub), os.path.join(folder, sub))
        with open(os.path.join(folder, "case.json"), "w", encoding="utf-8") as fh:
            json.dump(_case_meta(inventory, "lab/scenarios/demo.yml through playbooks/audit.yml (make golden)"), fh,
                      indent=1, sort_keys=True)
            fh.write("\n")
        # The run's own plan, which `--reports` must be able to make again without the lab.
        ran = _load(os.path.join(run, "probe_plan.json"))
        if ran != json.loads(json.dumps(planned(case))):
            raise RuntimeError("the playbook's probe plan differs from the one planned from case.json")
        save_plan(case, ran)
        expected = render(case, os.path.join(folder, "expected"))
        # The playbook's own audit and the offline one must agree, or the case would approve a different path.
        online = _load(os.path.join(run, "audit.json"))
        offline = _load(expected["json"])
        if online["hosts"] != offline["hosts"] or online["peers"] != offline["peers"]:
            raise RuntimeError("the audit of the saved snapshots differs from the playbook's own audit")
        return folder
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    # `--reports CASE`: re-render only the approved reports from the saved snapshots (a change of wording or of a
    # decision); without it the snapshots are taken again from the lab (a change of what is collected).
    if sys.argv[1:2] == ["--reports"]:
        which = (sys.argv[2:3] or ["demo"])[0]
        # The plan goes with the snapshots: without it the audit would decide as if no plan had been recorded,
        # which a run of the playbook never does.
        save_plan(which, planned(which))
        print(render(which, os.path.join(CASES, which, "expected"))["json"])
    else:
        print(regenerate_demo(*(sys.argv[1:2] or ["demo"])))
