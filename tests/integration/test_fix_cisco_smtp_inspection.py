"""Cisco SMTP inspection end to end on the lab's IOS device (FW01, SSH, network_cli with cisco.ios):
audit.yml reads it and names it -> fix.yml takes `smtp` off the rule -> the audit is clean -> a second run
changes nothing -> rollback.yml puts the rule back from the backup."""
from __future__ import annotations

import json
import os

import pytest
import yaml

from tests.conftest import ROOT, demo_data
from tests.support import fixplay

pytestmark = [pytest.mark.slow, pytest.mark.integration]
CAUSE = "cisco_smtp_inspection"
RULE_LINE = "ip inspect name MAILFW smtp"


@pytest.fixture
def lab(lab_factory):
    fw01 = next(d for d in demo_data()["network"]["devices"] if d["name"] == "FW01")
    return lab_factory(fixplay.demo_subset("EXCH01", "EXCH05", network={"devices": [fw01]}))


def fw01(lab):
    return next(d for d in lab.fleet.network["devices"] if d["name"] == "FW01")


def run(lab, tmp_path, playbook, *extra):
    inventory = fixplay.write_inventory(lab, tmp_path)
    return fixplay.ansible_playbook(inventory, os.path.join(ROOT, "playbooks", playbook),
                                    "-e", f"mailflow_report_root={tmp_path / 'reports'}",
                                    "-e", f"mailflow_backup_dir={tmp_path / 'backups'}", *extra)


def secrets_in(folder, proc) -> list[str]:
    """Where FW01's password hashes appear: report files and the playbook's output."""
    where = [str(p) for p in folder.rglob("*") if p.is_file() and "$1$" in p.read_text(errors="replace")]
    return where + (["ansible-playbook output"] if "$1$" in proc.stdout + proc.stderr else [])


def audit_finding(tmp_path, host="EXCH01"):
    with open(tmp_path / "reports" / "latest" / "audit.json", encoding="utf-8") as fh:
        doc = json.load(fh)
    return doc, next(f for f in doc["hosts"][host]["findings"] if f["cause"] == CAUSE)


def test_audit_fix_clean_idempotent_and_rollback(lab, tmp_path):
    assert any(line.startswith(RULE_LINE) for line in fw01(lab)["config"].splitlines())

    proc = run(lab, tmp_path, "audit.yml")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    doc, f = audit_finding(tmp_path)
    assert f["status"] == "present" and f["confidence"] == "confirmed", f
    assert "FW01" in f["summary"] and "MAILFW" in f["summary"] and "FastEthernet0/0" in f["summary"]
    assert f["evidence"]["masked"] and f["evidence"]["crossings"][0]["firewall"] == "FW01"
    # The sender's own side: its queue to EXCH01 in retry with Event 4006 (the demo's raw state).
    assert f["evidence"]["stalled_senders"][0]["from"] == "EXCH05" and "sits in Retry" in f["summary"]
    (fw,) = doc["firewalls"]
    assert fw["source"] == "device" and fw["error"] is None
    assert {i["rule"]: i["applied"] for i in fw["inspections"]} == {"MAILFW": True, "LEGACY": False}
    # The running config never reaches the reports or the output (it carries secrets: FW01's secret 5 hashes).
    assert "$1$" in fw01(lab)["config"]
    assert not secrets_in(tmp_path / "reports", proc)

    proc = run(lab, tmp_path, "fix.yml", "-e", '{"mailflow_fix": ["cisco_smtp_inspection"]}', "--check", "--diff")
    assert proc.returncode == 0 and "no ip inspect name MAILFW smtp" in proc.stdout, proc.stdout[-3000:]
    assert any(line.startswith(RULE_LINE) for line in fw01(lab)["config"].splitlines())   # --check sent nothing

    proc = run(lab, tmp_path, "fix.yml", "-e", '{"mailflow_fix": ["cisco_smtp_inspection"]}',
               "-e", "mailflow_change_id=CHG0601")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    config = fw01(lab)["config"]
    assert not any(line.startswith(RULE_LINE) for line in config.splitlines())
    assert "ip inspect name LEGACY smtp" in config            # defined, applied nowhere: left alone
    assert fw01(lab)["startup_config"] == config               # saved (write memory)
    backup = fixplay.backup(tmp_path, "FW01", CAUSE)
    assert backup["state"] == "verified" and backup["change_id"] == "CHG0601"
    assert backup["device"]["commands"] == ["no ip inspect name MAILFW smtp"]
    saved = tmp_path / "backups" / "CHG0601" / "FW01" / "running-config.cfg"
    assert RULE_LINE in saved.read_text() and oct(saved.stat().st_mode & 0o777) == "0o600"
    assert not secrets_in(tmp_path / "reports", proc) and "$1$" not in json.dumps(backup)
    with open(tmp_path / "reports" / "latest" / "fix.json", encoding="utf-8") as fh:
        assert any(r["cause"] == CAUSE and r["status"] == "changed" for r in json.load(fh)["hosts"]["FW01"])

    proc = run(lab, tmp_path, "audit.yml")
    assert proc.returncode == 0
    assert audit_finding(tmp_path)[1]["status"] == "absent"

    proc = run(lab, tmp_path, "fix.yml", "-e", '{"mailflow_fix": ["cisco_smtp_inspection"]}')
    assert proc.returncode == 0 and "FW01" in proc.stdout
    assert "changed=0" in next(line for line in proc.stdout.splitlines() if line.startswith("FW01 "))

    proc = run(lab, tmp_path, "rollback.yml", "-e", "mailflow_change_id=CHG0601")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert any(line.startswith(RULE_LINE) for line in fw01(lab)["config"].splitlines())
    assert fixplay.backup(tmp_path, "FW01", CAUSE)["state"] == "rolled_back"
    proc = run(lab, tmp_path, "audit.yml")
    assert audit_finding(tmp_path)[1]["status"] == "present"


def test_remediate_changes_the_firewall_inside_the_window_and_records_it(lab, tmp_path):
    from tests.integration.test_remediate_playbook import window
    extra = {"mailflow_change_id": "CHG0602", "mailflow_fix": ["cisco_smtp_inspection"],
             "mailflow_cisco_use_esmtp": True, "mailflow_record_root": str(tmp_path / "reports"), "mailflow_drain_wait": 0,
             **window()}
    proc = run(lab, tmp_path, "remediate.yml", "-e", json.dumps(extra))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    config = fw01(lab)["config"].splitlines()
    assert "ip inspect name MAILFW esmtp" in config, proc.stdout[-6000:]
    assert not any(line.startswith(RULE_LINE) for line in config)
    with open(tmp_path / "reports" / "changes" / "CHG0602" / "record.json", encoding="utf-8") as fh:
        doc = json.load(fh)
    events = [(e["type"], e.get("host")) for e in doc["events"]]
    # Planned (before the servers' plan and its confirmation), then changed and verified, in that order.
    assert events.index(("plan", "FW01")) < events.index(("fix", "FW01")) < events.index(("verify", "FW01"))
    (fix,) = [e for e in doc["events"] if e["type"] == "fix" and e["host"] == "FW01"]
    assert fix["status"] == "changed" and fix["verified"] and fix["changes"] == [
        "no ip inspect name MAILFW smtp", "ip inspect name MAILFW esmtp"]
    assert doc["hosts"]["FW01"]["status"] == "changed"
    assert "$1$" not in json.dumps(doc) and "$1$" not in proc.stdout   # no secret in the record or the output

    # Outside a window nothing is read or sent.
    before = fw01(lab)["config"]
    extra.update(mailflow_change_id="CHG0603", **window(-3, -1))
    proc = run(lab, tmp_path, "remediate.yml", "-e", json.dumps(extra))
    assert proc.returncode != 0 and fw01(lab)["config"] == before


def test_an_image_without_esmtp_refuses_it_and_the_rule_is_restored(lab_factory, tmp_path):
    fw = next(d for d in demo_data()["network"]["devices"] if d["name"] == "FW01")
    lab = lab_factory(fixplay.demo_subset("EXCH01", "EXCH05", network={"devices": [{**fw, "features": {"esmtp_inspection": False}}]}))
    original = fw01(lab)["config"]
    proc = run(lab, tmp_path, "fix.yml", "-e", '{"mailflow_fix": ["cisco_smtp_inspection"], "mailflow_cisco_use_esmtp": true}',
               "-e", "mailflow_change_id=CHG0604")
    assert proc.returncode != 0 and "restored: ip inspect name MAILFW smtp" in proc.stdout, proc.stdout[-4000:]
    inspect = sorted(line for line in fw01(lab)["config"].splitlines() if line.startswith("ip inspect name"))
    assert inspect == sorted(line for line in original.splitlines() if line.startswith("ip inspect name"))
    assert fixplay.backup(tmp_path, "FW01", CAUSE)["state"] == "restored"
    # Nothing for a rollback to do, and a second attempt without esmtp goes through.
    proc = run(lab, tmp_path, "rollback.yml", "-e", "mailflow_change_id=CHG0604")
    assert proc.returncode == 0 and fw01(lab)["config"].count(RULE_LINE) == 1
    proc = run(lab, tmp_path, "fix.yml", "-e", '{"mailflow_fix": ["cisco_smtp_inspection"]}', "-e", "mailflow_change_id=CHG0605")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert RULE_LINE not in fw01(lab)["config"]


def test_unsaved_changes_on_the_device_are_not_saved_with_ours(lab, tmp_path):
    fw01(lab)["config"] += "! an operator's unsaved line follows\nip inspect name SCRATCH ftp\n"
    proc = run(lab, tmp_path, "fix.yml", "-e", '{"mailflow_fix": ["cisco_smtp_inspection"]}')
    assert proc.returncode != 0 and "mailflow_cisco_save_unsaved_changes" in proc.stdout, proc.stdout[-3000:]
    assert RULE_LINE in fw01(lab)["config"] and "SCRATCH" not in fw01(lab)["startup_config"]


def test_firewall_variables_are_checked_and_named(lab, tmp_path):
    inventory = lab.inventory()
    fw = inventory["all"]["children"]["firewalls"]["hosts"]["FW01"]
    fw["mailflow_firewall_platform"] = "asa"            # an ASA cannot be read with cisco.ios
    (tmp_path / "bad.yml").write_text(yaml.safe_dump(inventory))
    proc = fixplay.ansible_playbook(tmp_path / "bad.yml", os.path.join(ROOT, "playbooks", "audit.yml"),
                                    "-e", f"mailflow_report_root={tmp_path / 'reports'}")
    assert proc.returncode != 0 and "FW01: a asa config is read from a saved file" in proc.stdout, proc.stdout[-3000:]
    assert lab.metrics.device_snapshot().get("FW01", {}).get("ssh_logins", 0) == 0   # refused before any read

    fw["mailflow_firewall_platform"] = "ios"
    fw["mailflow_firewall_segments"] = {"Fa0/0": ["EXCH05"], "Gi0/9": ["EXCH01"]}  # an abbreviation, and a typo
    (tmp_path / "bad.yml").write_text(yaml.safe_dump(inventory))
    proc = fixplay.ansible_playbook(tmp_path / "bad.yml", os.path.join(ROOT, "playbooks", "audit.yml"),
                                    "-e", f"mailflow_report_root={tmp_path / 'reports'}")
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "FW01: mailflow_firewall_segments names Gi0/9, which its config has no interface" in proc.stdout
    assert "Fa0/0" not in proc.stdout.split("mailflow_firewall_segments names", 1)[1].split(",")[0]
