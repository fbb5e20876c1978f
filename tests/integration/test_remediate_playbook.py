"""playbooks/remediate.yml on the lab: the window, the change id, the canary, a host lost mid-change, the record."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from lab import firewall
from lab.scenario import fleet_to_plain
from tests.conftest import ROOT, demo_data

pytestmark = [pytest.mark.slow, pytest.mark.integration]
BIN = os.path.dirname(sys.executable)
QUEUING = r"HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC\Queuing"


def window(hours_from=-1, hours_to=1):
    now = datetime.now(timezone.utc).astimezone(timezone(timedelta(hours=1)))  # a +01:00 zone, as a CET team writes it
    return {"mailflow_window_start": (now + timedelta(hours=hours_from)).isoformat(timespec="seconds"),
            "mailflow_window_end": (now + timedelta(hours=hours_to)).isoformat(timespec="seconds")}


@pytest.fixture
def lab(lab_factory):
    data = demo_data()
    data["hosts"] = {n: data["hosts"][n] for n in ("EXCH03", "EXCH05", "RELAY01")}
    data["network"] = {}
    return lab_factory(data)


def run(lab, tmp_path, playbook, extra: dict, *args, host_vars=None):
    inv = lab.inventory()
    for host, hv in (host_vars or {}).items():
        inv["all"]["children"]["mailflow_servers"]["hosts"][host].update(hv)
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inv))
    # No mail flows in these labs unless a test asks for it: remediate.yml's wait for the stuck mail is off unless given.
    extra = {"mailflow_record_root": str(tmp_path / "reports"), "mailflow_report_root": str(tmp_path / "reports"),
             "mailflow_backup_dir": str(tmp_path / "backups"), "mailflow_drain_wait": 0, **extra}
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1", CI="1")
    return subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", str(tmp_path / "hosts.yml"),
                           os.path.join(ROOT, "playbooks", playbook), "-e", json.dumps(extra), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def record(tmp_path, change_id):
    path = tmp_path / "reports" / "changes" / change_id / "record.json"
    return json.loads(path.read_text()) if path.exists() else None


def glitch(lab):
    v = lab.fleet.host("EXCH05").registry.get(QUEUING, "GlitchRetrySeconds")
    return None if v is None else v.data


def commands(lab):
    return {h: c["winrm_commands"] for h, c in lab.metrics.snapshot().items()}


def test_a_closed_window_or_a_bad_change_id_is_refused_before_any_host(lab, tmp_path):
    before = fleet_to_plain(lab.fleet)
    proc = run(lab, tmp_path, "remediate.yml", {"mailflow_change_id": "CHG100", **window(-3, -1)})
    assert proc.returncode != 0 and "mailflow_window" in proc.stdout, proc.stdout[-3000:]
    assert [e["type"] for e in record(tmp_path, "CHG100")["events"]] == ["refused"]
    for bad in ({}, {"mailflow_change_id": "chg-1"}, {"mailflow_change_id": "../CHG1"}):
        proc = run(lab, tmp_path, "remediate.yml", {**bad, **window()})
        assert proc.returncode != 0 and "mailflow_change_id" in proc.stdout, proc.stdout[-3000:]
    assert fleet_to_plain(lab.fleet) == before and not any(commands(lab).values())


def test_a_canary_that_fails_verification_is_rolled_back_and_no_other_host_is_touched(lab, tmp_path):
    # EXCH03 is the canary (inventory order). A knowledge override that counts an Absent feature as installed
    # makes SAV's feature removal fail its verification there, after port 25 and the AV exclusions were fixed.
    bad_read = {"detect": {"msi_installed_states": {"value": [1, 2, 3, 4]}}}
    relay_before = fleet_to_plain(lab.fleet)["hosts"]["EXCH05"]
    proc = run(lab, tmp_path, "remediate.yml", {"mailflow_change_id": "CHG200", **window()},
               host_vars={"EXCH03": {"mailflow_knowledge": bad_read}})
    assert proc.returncode != 0, proc.stdout[-4000:]
    doc = record(tmp_path, "CHG200")
    hosts = doc["hosts"]
    assert hosts["EXCH03"]["status"] in ("failed", "rolled_back"), hosts
    assert hosts["EXCH05"]["status"] == "not_reached" and "untouched" in hosts["EXCH05"]["not_reached"], hosts
    assert fleet_to_plain(lab.fleet)["hosts"]["EXCH05"] == relay_before
    assert glitch(lab) == 30
    exch03 = lab.fleet.host("EXCH03")
    assert not firewall.allows(exch03.registry, 25)  # port 25's opening was rolled back
    pop3 = next(f for f in exch03.wmi["root\\cimv2"]["Win32_SoftwareFeature"] if f["Name"] == "Pop3Smtp")
    assert pop3["InstallState"] == 3
    assert any(e["type"] == "rollback" and e["host"] == "EXCH03" for e in doc["events"])


def test_a_change_then_its_rollback_and_a_second_rollback_that_changes_nothing(lab, tmp_path):
    queue = r"C:\Program Files\Exchsrvr\Mailroot\vsi 1\Queue"
    queued = sorted(p for p, _ in lab.fleet.host("EXCH05").files.listdir(queue))
    proc = run(lab, tmp_path, "remediate.yml", {"mailflow_change_id": "CHG300", "mailflow_allow_service_restart": True,
                                                 "mailflow_fix": ["glitch_retry_short"], **window()})
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert glitch(lab) == 180
    doc = record(tmp_path, "CHG300")
    types = [(e["type"], e.get("host")) for e in doc["events"]]
    assert ("fix", "EXCH05") in types and ("restart", "EXCH05") in types and ("verify", "EXCH05") in types
    restart = next(e for e in doc["events"] if e["type"] == "restart")
    assert restart["services"] == ["SMTPSVC"] and restart["queue_before"] == restart["queue_after"] == len(queued)
    assert lab.metrics.snapshot()["EXCH05"]["service_restarts"] == {"SMTPSVC": 1}  # one restart, coordinated
    # audit snapshot; plan read; fix read, apply, verifying read; restart with queue counts around it; post snapshot
    assert lab.metrics.snapshot()["EXCH05"]["winrm_commands"] == 7
    assert (tmp_path / "reports" / "changes" / "CHG300" / "record.md").exists()

    proc = run(lab, tmp_path, "rollback.yml", {"mailflow_change_id": "CHG300"})
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert glitch(lab) == 30 and sorted(p for p, _ in lab.fleet.host("EXCH05").files.listdir(queue)) == queued
    proc = run(lab, tmp_path, "rollback.yml", {"mailflow_change_id": "CHG300"})
    assert proc.returncode == 0 and "changed=0" in proc.stdout and glitch(lab) == 30, proc.stdout[-3000:]


def test_a_host_lost_mid_change_is_restored_and_recorded(lab, tmp_path):
    # EXCH05's commands: the audit's snapshot, the plan's read, the fix's read, then the apply: it runs,
    # and its answer never arrives.
    lab.metrics.fault("EXCH05").drop_output_after_commands = 4
    proc = run(lab, tmp_path, "remediate.yml", {"mailflow_change_id": "CHG400", "mailflow_fix": ["glitch_retry_short"],
                                                 **window()}, "--limit", "EXCH05")
    assert proc.returncode != 0, proc.stdout[-4000:]
    doc = record(tmp_path, "CHG400")
    fix = next(e for e in doc["events"] if e["type"] == "fix" and e["host"] == "EXCH05")
    assert fix["status"] == "interrupted"
    assert any(e["type"] == "rollback" and e["host"] == "EXCH05" for e in doc["events"])
    assert glitch(lab) == 30  # rolled back to the value before the change
