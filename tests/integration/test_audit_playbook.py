"""ansible-playbook playbooks/audit.yml against the lab, as a user runs it: online, offline, failing on findings."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest
import yaml

from lab.scenario import fleet_to_plain
from tests.conftest import ROOT
from tests.support import golden

pytestmark = [pytest.mark.slow, pytest.mark.integration]
PLAYBOOK = os.path.join(ROOT, "playbooks", "audit.yml")
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

# What the demo scenario seeds (its header comment), as the audit must find it: host -> present causes.
DEMO_PRESENT = {
    "EXCH01": {"cisco_smtp_inspection"},  # its inbound from EXCH05 crosses FW01 (CBAC MAILFW smtp)
    "EXCH02": set(),
    "EXCH03": {"sav_internet_email_autoprotect", "av_scans_iis_folders", "port25_blocked"},
    "EXCH04": {"smsmse_heuristics", "smarthost_misconfigured", "cisco_smtp_inspection"},
    "EXCH05": {"stnef_legacy_peer", "glitch_retry_short", "greylist_hotfix_missing", "port25_blocked"},
    "EXCH06": {"smtp_banner_missing"},
    "EXCH07": {"metabase_corrupt", "peer_smtp_unavailable"},
    "EXCH08": {"cisco_smtp_inspection", "port25_blocked"},
    "EXCH55": {"ims_connection_leak"},
    "RELAY01": {"greylist_hotfix_missing"},
}

# Where the data to decide is missing, and why: nobody completed an SMTP greeting with the
# filtered/silent/stopped servers, EXCH07's metabase does not parse, EXCH55 has no snapshot.
DEMO_UNKNOWN = {
    "EXCH03": {"cisco_smtp_inspection"},
    "EXCH06": {"cisco_smtp_inspection"},
    "EXCH07": {"cisco_smtp_inspection", "smtp_banner_missing"},
    "EXCH55": {"sav_internet_email_autoprotect"},
}


def run_audit(lab, tmp_path, *extra, mutate_inventory=None, report_root=None):
    inv = lab.inventory()
    if mutate_inventory:
        mutate_inventory(inv)
    inv_path = tmp_path / "hosts.yml"
    inv_path.write_text(yaml.safe_dump(inv))
    root = report_root or (tmp_path / "reports")
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(inv_path), PLAYBOOK, "-e", f"mailflow_report_root={root}", *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    latest = root / "latest"
    doc = json.loads((latest / "audit.json").read_text()) if (latest / "audit.json").exists() else None
    return proc, doc, latest


def present(doc) -> dict[str, set[str]]:
    return {h: {f["cause"] for f in d["findings"] if f["status"] == "present"} for h, d in doc["hosts"].items()}


@pytest.fixture(scope="module")
def demo_run(demo_lab, tmp_path_factory):
    """One check-mode audit of the demo lab, with the lab's state before and after."""
    tmp = tmp_path_factory.mktemp("audit")
    before = copy.deepcopy(fleet_to_plain(demo_lab.fleet))
    demo_lab.metrics.reset()
    proc, doc, latest = run_audit(demo_lab, tmp, "--check")
    return {"proc": proc, "doc": doc, "latest": latest, "before": before, "after": fleet_to_plain(demo_lab.fleet),
            "counters": demo_lab.metrics.snapshot(), "tmp": tmp}


def test_demo_audit_finds_every_seeded_cause_on_the_right_host(demo_run):
    proc, doc = demo_run["proc"], demo_run["doc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert doc["schema"] == "mailflow.audit/1" and doc["check_mode"] is True
    assert present(doc) == DEMO_PRESENT
    unknown = {h: {f["cause"] for f in d["findings"] if f["status"] == "unknown"} for h, d in doc["hosts"].items()}
    assert {h: c for h, c in unknown.items() if c} == DEMO_UNKNOWN
    # Every host x cause has exactly one status, and unknowns say why.
    for host, d in doc["hosts"].items():
        assert [f["cause"] for f in d["findings"]] == [c["id"] for c in doc["causes"]], host
        for f in d["findings"]:
            assert f["status"] != "unknown" or f["reason"], (host, f)
    assert doc["hosts"]["EXCH55"]["managed"] is False and doc["hosts"]["EXCH55"]["reachable"] is False


def test_demo_audit_ranks_by_kb919091(demo_run):
    doc = demo_run["doc"]
    assert doc["summary"]["present"]["EXCH03"][0] == "sav_internet_email_autoprotect"  # cause 1, and it explains its retry queue
    assert doc["summary"]["present"]["EXCH07"][-1] == "metabase_corrupt"  # "if the other causes do not apply"
    ranks = [f["rank"] for f in doc["hosts"]["EXCH05"]["findings"] if f["status"] == "present"]
    assert sorted(ranks) == [1, 2, 3, 4]


def test_demo_audit_changes_nothing_and_uses_one_command_per_host(demo_run, demo_lab):
    assert demo_run["after"] == demo_run["before"]
    for name, host in demo_lab.fleet.hosts.items():
        c = demo_run["counters"][name]
        assert c["winrm_commands"] == (1 if host.winrm else 0), (name, c)
        assert not c["service_restarts"], (name, c)  # {service: count}


def test_demo_audit_writes_the_reports_and_prints_the_summary(demo_run):
    latest, out = demo_run["latest"], demo_run["proc"].stdout
    assert os.path.islink(latest)
    for name in ("audit.json", "audit.html", "audit.md", "audit.csv", "junit.xml"):
        assert (latest / name).stat().st_size > 0, name
    assert sorted(os.listdir(latest / "snapshots")) == sorted(f"{h}.json" for h in DEMO_PRESENT if h != "EXCH55")
    summary = out.split("TASK [Summary]")[1]
    assert "present causes (most likely first)" in summary
    assert "smtp_banner_missing" in summary and "audit.html" in summary


def verdicts(doc) -> dict[tuple[str, str], tuple[str, int | None]]:
    return {(h, f["cause"]): (f["status"], f.get("rank")) for h, d in doc["hosts"].items() for f in d["findings"]}


def test_the_mail_probe_plan_decides_the_demo_as_the_mesh_does(demo_run, demo_lab, tmp_path):
    """auto is the mesh for the 10-host demo; the mail plan, following the routes the mesh audit learned,
    probes fewer pairs, says why each, and decides every host and cause the same."""
    mesh = demo_run["doc"]
    assert mesh["probe_plan"]["mode"] == "mesh" and all(p["why"] == ["mesh"] for p in mesh["peers"])
    # The golden case's saved plan (make golden-reports plans it from case.json, without a lab) is this run's.
    assert json.loads((demo_run["latest"] / "probe_plan.json").read_text()) == golden.probe_plan_of("demo")
    assert mesh["routes"]["EXCH05"]["EXCH55"]  # its stalled queue to the Exchange 5.5 server
    demo_lab.metrics.reset()
    proc, doc, latest = run_audit(demo_lab, tmp_path, "--check", "-e", "mailflow_probe_plan=mail",
                                  "-e", f"mailflow_probe_routes_from={demo_run['latest'] / 'audit.json'}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    plan = doc["probe_plan"]
    assert plan["mode"] == "mail" and plan["routes_source"].startswith("the audit of")
    assert not plan["not_probed"] and not plan["short_of_min_inbound"]
    assert verdicts(doc) == verdicts(mesh)
    assert len(doc["peers"]) < len(mesh["peers"])
    saved = json.loads((latest / "probe_plan.json").read_text())
    assert {(p["from"], p["to"]) for p in doc["peers"]} == {(s, t) for s, peers in saved["pairs"].items() for t in peers}
    assert all(c["winrm_commands"] == (1 if demo_lab.fleet.hosts[n].winrm else 0)
               for n, c in demo_lab.metrics.snapshot().items())


def test_offline_audit_contacts_no_host_and_decides_the_same(demo_run, demo_lab, tmp_path):
    demo_lab.metrics.reset()
    snaps = demo_run["latest"] / "snapshots"
    proc, doc, _ = run_audit(demo_lab, tmp_path, "-e", f"mailflow_snapshot_dir={snaps}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert present(doc) == DEMO_PRESENT
    assert all(c["winrm_commands"] == 0 and c["http_requests"] == 0 for c in demo_lab.metrics.snapshot().values())


def test_fail_on_present_fails_after_writing_the_reports(demo_run, demo_lab, tmp_path):
    proc, doc, _ = run_audit(demo_lab, tmp_path, "-e", f"mailflow_snapshot_dir={demo_run['latest'] / 'snapshots'}",
                             "-e", "mailflow_fail_on=present")
    assert proc.returncode != 0
    assert "mailflow_fail_on=present" in proc.stdout
    assert doc is not None and present(doc) == DEMO_PRESENT


def test_bad_input_is_refused_before_any_host(demo_lab, tmp_path):
    demo_lab.metrics.reset()
    proc, doc, _ = run_audit(demo_lab, tmp_path, "-e", "mailflow_fail_on=sometimes")
    assert proc.returncode != 0 and "mailflow_fail_on" in proc.stdout
    proc, doc, _ = run_audit(demo_lab, tmp_path, "-e", f"mailflow_snapshot_dir={tmp_path / 'nowhere'}")
    assert proc.returncode != 0 and "mailflow_snapshot_dir" in proc.stdout
    assert doc is None
    assert all(c["http_requests"] == 0 for c in demo_lab.metrics.snapshot().values())


def test_a_host_that_cannot_be_reached_is_unknown_not_absent(demo_lab, tmp_path):
    def wrong_password(inv):
        inv["all"]["children"]["mailflow_servers"]["hosts"]["EXCH02"]["ansible_password"] = "wrong"
    proc, doc, _ = run_audit(demo_lab, tmp_path, "--check", mutate_inventory=wrong_password)
    assert proc.returncode == 0, proc.stdout[-3000:]
    ex2 = doc["hosts"]["EXCH02"]
    assert ex2["reachable"] is False and ex2["error"]
    local = {f["cause"]: f for f in ex2["findings"]}
    assert local["sav_internet_email_autoprotect"]["status"] == "unknown"
    assert "EXCH02" in local["sav_internet_email_autoprotect"]["reason"]
    # Its SMTP still answers its peers' probes, so the cross-host causes are still decided.
    assert local["smtp_banner_missing"]["status"] == "absent"
    assert local["peer_smtp_unavailable"]["status"] == "absent"
    assert {h: c for h, c in present(doc).items() if h != "EXCH02"} == {h: c for h, c in DEMO_PRESENT.items() if h != "EXCH02"}
