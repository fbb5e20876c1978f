"""The collection as AWX runs it: ansible-runner over a private data directory (examples/ansible-runner), the state
kept outside the job's folders, the run's stats, and a fleet audited in slices (AWX job slicing) that decides as
one run does."""
from __future__ import annotations

import concurrent.futures
import glob
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.integration]
BIN = os.path.dirname(sys.executable)
EXAMPLE = os.path.join(ROOT, "examples", "ansible-runner")
RELATIVE_WARNING = "which ansible-runner (AWX) discards after the job"


def private_dir(tmp_path, name, inventory: dict, **extravars) -> str:
    """The example as a job gets it: its own inventory, the collection from the checkout (where the execution
    environment would have it installed)."""
    pdd = tmp_path / name
    shutil.copytree(EXAMPLE, pdd)
    (pdd / "inventory" / "hosts.yml").write_text(yaml.safe_dump(inventory))
    env = yaml.safe_load((pdd / "env" / "envvars").read_text())
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(ROOT, "collections")
    env["ANSIBLE_NOCOLOR"] = "1"
    (pdd / "env" / "envvars").write_text(yaml.safe_dump(env))
    extra = yaml.safe_load((pdd / "env" / "extravars").read_text())
    extra.update(extravars)
    (pdd / "env" / "extravars").write_text(yaml.safe_dump(extra))
    return str(pdd)


def runner(pdd: str, playbook: str, *cmdline: str) -> dict:
    """ansible-runner run; {rc, status, stdout, stats (the set_stats data)}."""
    cmd = [os.path.join(BIN, "ansible-runner"), "run", pdd, "-p", playbook, "--ident", "job"]
    if cmdline:
        cmd += ["--cmdline", " ".join(cmdline)]
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    art = os.path.join(pdd, "artifacts", "job")
    stats = {}
    for path in glob.glob(os.path.join(art, "job_events", "*.json")):
        with open(path, encoding="utf-8") as fh:
            event = json.load(fh)
        if event.get("event") == "playbook_on_stats":
            stats = event["event_data"].get("artifact_data") or {}
    with open(os.path.join(art, "status"), encoding="utf-8") as fh:
        status = fh.read().strip()
    return {"rc": proc.returncode, "status": status, "stdout": proc.stdout, "stats": stats}


def verdicts(doc: dict) -> dict:
    return {h: {f["cause"]: f["status"] for f in d["findings"]} for h, d in doc["hosts"].items()}


def awx_slice(inventory: dict, number: int, count: int) -> dict:
    """The inventory AWX gives slice `number` of `count`: every `count`-th host by name, groups keeping only
    those hosts, group variables kept."""
    children = inventory["all"]["children"]
    names = sorted({h for g in children.values() for h in (g.get("hosts") or {})})
    mine = set(names[number - 1::count])
    sliced = {"all": {"vars": inventory["all"].get("vars", {}), "children": {}}}
    for group, body in children.items():
        hosts = {h: v for h, v in (body.get("hosts") or {}).items() if h in mine}
        sliced["all"]["children"][group] = {"hosts": hosts, **({"vars": body["vars"]} if body.get("vars") else {})}
    return sliced


@pytest.fixture(scope="module")
def one_run(demo_lab, tmp_path_factory):
    """The example over the whole demo fleet, its state under an absolute root outside the job's folder."""
    tmp = tmp_path_factory.mktemp("runner")
    state = tmp / "state"
    pdd = private_dir(tmp, "job", demo_lab.inventory(), mailflow_state_dir=str(state))
    return {"pdd": pdd, "state": state, "run": runner(pdd, "audit.yml")}


def test_the_runner_example_audits_the_fleet_into_the_state_root(one_run):
    run, state = one_run["run"], one_run["state"]
    assert run["rc"] == 0 and run["status"] == "successful", run["stdout"][-3000:]
    assert RELATIVE_WARNING not in run["stdout"]
    stats = run["stats"]["mailflow_audit_stats"]
    (report_dir,) = glob.glob(str(state / "reports" / "2*"))
    assert stats["report_dir"] == report_dir and stats["reports"]["json"] == os.path.join(report_dir, "audit.json")
    with open(stats["reports"]["json"], encoding="utf-8") as fh:
        doc = json.load(fh)
    assert stats["statuses"] == doc["summary"]["statuses"] and stats["hosts"] == 10 and stats["statuses"]["present"] > 0
    assert stats["present"]["EXCH05"] == doc["summary"]["present"]["EXCH05"]
    # Nothing is left in the job's own folders (AWX deletes them).
    assert not os.path.exists(os.path.join(one_run["pdd"], "project", "reports"))
    assert "mailflow snapshot: 9/9 hosts done" in run["stdout"]  # the example's envvars enable the progress


def test_a_relative_state_root_under_runner_is_warned_about(one_run, demo_lab, tmp_path):
    # Offline (the first run's snapshots): no host is contacted, the warning is what is tested.
    snaps = glob.glob(str(one_run["state"] / "reports" / "2*" / "snapshots"))[0]
    pdd = private_dir(tmp_path, "job", demo_lab.inventory(), mailflow_state_dir="state")
    run = runner(pdd, "audit.yml", "-e", f"mailflow_snapshot_dir={snaps}")
    assert run["rc"] == 0, run["stdout"][-3000:]
    assert RELATIVE_WARNING in run["stdout"].replace("\n", " ")
    assert glob.glob(os.path.join(pdd, "project", "state", "reports", "2*", "audit.json"))  # where it warned it would go


def test_two_slices_collect_and_one_audit_decides_as_one_run(one_run, demo_lab, tmp_path):
    """AWX job slicing: each slice sees only its hosts, so every server's probe peers come from a group variable
    (mailflow_probe_peers: the fleet's names and FQDNs); both slices collect into one collection under the shared
    state root, at the same time; then one offline audit of the collection, over the whole inventory."""
    inventory = demo_lab.inventory()
    children = inventory["all"]["children"]
    fleet = {**children["mailflow_servers"]["hosts"], **children["mailflow_unmanaged"]["hosts"]}
    inventory["all"].setdefault("vars", {})["mailflow_probe_peers"] = [
        {"name": name, "target": hv["mailflow_fqdn"]} for name, hv in fleet.items()]
    state = tmp_path / "state"
    slices = [private_dir(tmp_path, f"slice{n}", awx_slice(inventory, n, 2), mailflow_state_dir=str(state))
              for n in (1, 2)]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda pdd: runner(pdd, "audit.yml", "-e", "mailflow_collection=c1"), slices))
    for run in runs:
        assert run["rc"] == 0 and run["status"] == "successful", run["stdout"][-3000:]
        assert "mailflow_audit_stats" not in run["stats"]  # a slice decides nothing
    collection = state / "reports" / "collections" / "c1"
    servers = sorted(children["mailflow_servers"]["hosts"])
    assert sorted(os.listdir(collection / "snapshots")) == [f"{h}.json" for h in servers]
    assert not glob.glob(str(state / "reports" / "2*"))  # no partial audit was written

    merge = private_dir(tmp_path, "merge", demo_lab.inventory(), mailflow_state_dir=str(state))
    run = runner(merge, "audit.yml", "-e", f"mailflow_snapshot_dir={collection / 'snapshots'}")
    assert run["rc"] == 0, run["stdout"][-3000:]
    with open(run["stats"]["mailflow_audit_stats"]["reports"]["json"], encoding="utf-8") as fh:
        merged = json.load(fh)
    with open(one_run["run"]["stats"]["mailflow_audit_stats"]["reports"]["json"], encoding="utf-8") as fh:
        whole = json.load(fh)
    assert verdicts(merged) == verdicts(whole)
    assert merged["summary"]["present"] == whole["summary"]["present"]  # the same causes, ranked the same
    assert [f["name"] for f in merged["firewalls"]] == [f["name"] for f in whole["firewalls"]]


def test_slices_plan_over_the_fleet_the_earlier_audit_knows_and_probe_each_others_servers(one_run, demo_lab, tmp_path):
    """Without mailflow_probe_peers: each slice completes the fleet from the earlier audit (the first run's), draws
    the plan of the whole fleet, runs its own servers' rows, and probes the other slice's servers at the names that
    audit recorded (probe_target), which its own inventory lacks."""
    whole = one_run["run"]["stats"]["mailflow_audit_stats"]["reports"]["json"]
    state = tmp_path / "state"
    inventory = demo_lab.inventory()
    slices = [private_dir(tmp_path, f"slice{n}", awx_slice(inventory, n, 2), mailflow_state_dir=str(state))
              for n in (1, 2)]
    for pdd in slices:
        run = runner(pdd, "audit.yml", "-e", "mailflow_collection=c2", "-e", f"mailflow_probe_routes_from={whole}")
        assert run["rc"] == 0, run["stdout"][-3000:]
    collection = state / "reports" / "collections" / "c2"
    plans = []
    for path in sorted(glob.glob(str(collection / "probe_plan-*.json"))):
        with open(path, encoding="utf-8") as fh:
            plans.append(json.load(fh))
    with open(os.path.join(os.path.dirname(whole), "probe_plan.json"), encoding="utf-8") as fh:
        unsliced = json.load(fh)
    assert len(plans) == 2 and all(p["fleet_source"] and not p["unaddressed"] for p in plans)
    # The demo is small enough for the mesh: each slice's rows are the whole fleet's, not its half's.
    merged = {s: sorted(peers) for p in plans for s, peers in p["pairs"].items()}
    assert merged == {s: sorted(peers) for s, peers in unsliced["pairs"].items()}
    crossing = 0
    for name, peers in merged.items():
        with open(collection / "snapshots" / f"{name}.json", encoding="utf-8") as fh:
            snap = json.load(fh)
        assert sorted(p["peer"] for p in snap["probes"]) == peers, name
        own = next(p for p in plans if name in p["pairs"])
        crossing += sum(1 for p in snap["probes"] if p["peer"] in own["addresses"] and p.get("connect") == "ok")
    assert crossing > 0  # the other slice's servers were reached at the audit's names

    merge = private_dir(tmp_path, "merge", demo_lab.inventory(), mailflow_state_dir=str(state))
    run = runner(merge, "audit.yml", "-e", f"mailflow_snapshot_dir={collection / 'snapshots'}")
    assert run["rc"] == 0, run["stdout"][-3000:]
    with open(run["stats"]["mailflow_audit_stats"]["reports"]["json"], encoding="utf-8") as fh:
        merged_doc = json.load(fh)
    with open(whole, encoding="utf-8") as fh:
        assert verdicts(merged_doc) == verdicts(json.load(fh))
    assert not merged_doc["probe_plan"]["not_probed"]
