"""mailflow.exchange.fix_peer_smtp_unavailable on the lab: EXCH07's SMTPSVC is Stopped and Disabled. Audit present ->
check mode touches nothing -> without the opt-in only advice -> fix -> audit absent (EXCH01's probe gets a banner),
queued mail kept -> second run changes nothing; bad input touches nothing; a start that does not take is undone."""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT, demo_data
from tests.support import snapshots
from ansible_collections.mailflow.exchange.plugins.module_utils import audit, knowledge
from ansible_collections.mailflow.exchange.plugins.module_utils.causes import peer_smtp_unavailable
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import HostView

pytestmark = [pytest.mark.slow, pytest.mark.integration]
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
SMTPSVC_KEY = r"HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC"
QUEUE = r"C:\Program Files\Exchsrvr\Mailroot\vsi 1\Queue"
PLAY = [{"name": "fix", "hosts": "mailflow_servers", "gather_facts": False,
         "roles": [{"role": "mailflow.exchange.fix_peer_smtp_unavailable"}]}]
OPT_IN = ("-e", "mailflow_allow_enable_disabled_smtp=true")


@pytest.fixture
def lab(lab_factory):
    data = demo_data()
    data["hosts"] = {n: data["hosts"][n] for n in ("EXCH01", "EXCH07")}  # EXCH01 probes EXCH07's port 25
    data["network"] = {}
    return lab_factory(data)


def play(lab, tmp_path, *extra):
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump(lab.inventory()))
    pb = tmp_path / "fix.yml"
    pb.write_text(yaml.safe_dump(PLAY))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(inv), str(pb), "--limit", "EXCH07",
                           "-e", f"mailflow_backup_dir={tmp_path / 'backups'}", *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def smtpsvc(lab):
    host = lab.fleet.host("EXCH07")
    svc = host.service("SMTPSVC")
    return svc.state, svc.start_mode, host.registry.get(SMTPSVC_KEY, "Start").data


def queued(lab):
    return sorted((p, f.data) for p, f in lab.fleet.host("EXCH07").files.listdir(QUEUE))


def finding(lab):
    doc = audit.run(snapshots.fleet(lab, snapshots.take_fleet(lab)), generated="x")
    return next(f for f in doc["hosts"]["EXCH07"]["findings"] if f["cause"] == "peer_smtp_unavailable")


def test_fix_starts_smtp_keeps_the_queue_and_the_audit_agrees(lab, tmp_path):
    f = finding(lab)
    assert f["status"] == "present" and f["evidence"]["probes_failed"] == [{"from": "EXCH01", "result": "refused"}]
    assert smtpsvc(lab) == ("stopped", "disabled", 4)
    mail = queued(lab)
    assert len(mail) == 2

    lab.metrics.reset()
    proc = play(lab, tmp_path, "--check", "--diff", *OPT_IN)
    assert proc.returncode == 0 and "changed=1" in proc.stdout, proc.stdout[-2000:]
    assert "SMTPSVC start mode = Disabled" in proc.stdout and "SMTPSVC state = Running" in proc.stdout
    assert smtpsvc(lab) == ("stopped", "disabled", 4) and lab.metrics.snapshot()["EXCH07"]["winrm_commands"] == 1

    # Disabled is an administrator's setting: without the opt-in the fix only says so.
    proc = play(lab, tmp_path)
    assert proc.returncode == 0 and "changed=0" in proc.stdout, proc.stdout[-2000:]
    assert "set mailflow_allow_enable_disabled_smtp: true" in proc.stdout + proc.stderr
    assert smtpsvc(lab) == ("stopped", "disabled", 4)

    proc = play(lab, tmp_path, *OPT_IN, "-v")
    assert proc.returncode == 0 and "changed=1" in proc.stdout, proc.stdout[-3000:]
    assert smtpsvc(lab) == ("running", "auto", 2)
    assert queued(lab) == mail and "queue_before: 2" in proc.stdout and "queue_after: 2" in proc.stdout
    (backup,) = glob.glob(str(tmp_path / "backups" / "*" / "EXCH07" / "peer_smtp_unavailable.json"))
    doc = json.loads(open(backup).read())
    assert doc["state"] == "verified"
    assert [(c["kind"], c["before"], c["after"]) for c in doc["changes"]] == [
        ("service_start_mode", "Disabled", "Auto"), ("service_state", "Stopped", "Running")]
    f = finding(lab)
    assert f["status"] == "absent" and f["evidence"]["probes_answered"] == ["EXCH01"]

    proc = play(lab, tmp_path, *OPT_IN)
    assert proc.returncode == 0 and "changed=0" in proc.stdout


def test_bad_input_fails_before_any_host_is_touched(lab, tmp_path):
    lab.metrics.reset()
    proc = play(lab, tmp_path, "-e", "mailflow_allow_enable_disabled_smtp=maybe")
    assert proc.returncode != 0 and "mailflow_allow_enable_disabled_smtp" in proc.stdout, proc.stdout[-1500:]
    assert lab.metrics.snapshot().get("EXCH07", {}).get("winrm_commands", 0) == 0
    assert smtpsvc(lab) == ("stopped", "disabled", 4)


def test_a_start_that_does_not_take_is_undone(lab, tmp_path):
    # SMTPSVC names a dependency that is not installed (a damaged install): StartService fails with 1075 and the
    # verifying read finds it stopped, so the start mode goes back to Disabled.
    lab.fleet.host("EXCH07").service("SMTPSVC").depends_on = ["IISADMIN", "MSDTC"]
    proc = play(lab, tmp_path, *OPT_IN)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "verification failed (service SMTPSVC state: Stopped -> Running)" in proc.stdout
    assert "restored from the backup" in proc.stdout
    assert smtpsvc(lab) == ("stopped", "disabled", 4)
    (backup,) = glob.glob(str(tmp_path / "backups" / "*" / "EXCH07" / "peer_smtp_unavailable.json"))
    assert json.loads(open(backup).read())["state"] == "restored"


def test_a_merely_stopped_service_is_started_with_its_dependency_without_the_opt_in(lab):
    # No playbook: the plan on a real read of the host (SMTPSVC Manual and IIS Admin stopped, with what runs under it).
    host = lab.fleet.host("EXCH07")
    for name in ("W3SVC", "RESvc", "IISADMIN"):
        host.service(name).state = "stopped"
    host.service("SMTPSVC").start_mode = "manual"
    view = HostView(snapshots.take(lab, "EXCH07", peers=[]))
    params = peer_smtp_unavailable.fix_params({"allow_enable_disabled": False}, knowledge.load())
    assert [c.describe() for c in peer_smtp_unavailable.plan(view, params)] == [
        "service SMTPSVC start mode: Manual -> Auto", "service IISADMIN state: Stopped -> Running",
        "service SMTPSVC state: Stopped -> Running"]
    (note,) = peer_smtp_unavailable.advice(view, params)
    assert "RESvc, W3SVC" in note and "stay stopped" in note
