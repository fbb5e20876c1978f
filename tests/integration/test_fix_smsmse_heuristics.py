"""mailflow.exchange.fix_smsmse_heuristics on the lab (EXCH04, SMSMSE 4.5 with EnableBloodhound = 1): audit present ->
check mode touches nothing -> fix -> audit absent, idempotent, the unconfirmed default said out loud, bad input, and a
product that puts its setting back on restart caught by the verifying read and restored."""
from __future__ import annotations

import json

import pytest

from tests.support import fixplay
from ansible_collections.mailflow.exchange.plugins.module_utils import knowledge
from ansible_collections.mailflow.exchange.plugins.module_utils.causes import smsmse_heuristics as cause
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import FixError

pytestmark = [pytest.mark.slow, pytest.mark.integration]
CAUSE = "smsmse_heuristics"
KEY = r"HKLM\SOFTWARE\Symantec\SMSMSE\4.5\Server"  # lab/templates/symantec_mail_security_45.yml


@pytest.fixture
def lab(lab_factory):
    return lab_factory(fixplay.demo_subset("EXCH04"))


def play(lab, tmp_path, *extra):
    return fixplay.play(lab, tmp_path, CAUSE, *extra, limit="EXCH04")


def bloodhound(lab):
    v = lab.fleet.host("EXCH04").registry.get(KEY, "EnableBloodhound")
    return None if v is None else (v.type, v.data)


def status(lab):
    return fixplay.status(lab, "EXCH04", CAUSE)


def test_fix_turns_bloodhound_off_and_says_the_location_is_unconfirmed(lab, tmp_path):
    assert status(lab) == "present" and bloodhound(lab) == ("REG_DWORD", 1)

    proc = play(lab, tmp_path, "--check", "--diff")
    assert proc.returncode == 0 and "changed=1" in proc.stdout, proc.stdout[-2000:]
    assert f"{KEY}\\EnableBloodhound = REG_DWORD 0" in proc.stdout and bloodhound(lab) == ("REG_DWORD", 1)

    proc = play(lab, tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "changed=1" in proc.stdout, proc.stdout[-3000:]
    assert bloodhound(lab) == ("REG_DWORD", 0)
    assert "NOT confirmed: this used the unconfirmed default" in out  # the default location is never passed off as fact
    assert "pending restart of SMSMSE" in out and not lab.metrics.snapshot()["EXCH04"]["service_restarts"]
    doc = fixplay.backup(tmp_path, "EXCH04", CAUSE)
    assert doc["state"] == "verified" and doc["changes"][0]["before"] == {"exists": True, "type": "REG_DWORD", "data": 1}
    assert "dword:00000001" in fixplay.backup_reg(tmp_path, "EXCH04", CAUSE)
    assert status(lab) == "absent"

    proc = play(lab, tmp_path)
    assert proc.returncode == 0 and "changed=0" in proc.stdout


def test_bad_location_fails_before_any_host_is_touched(lab, tmp_path):
    lab.metrics.reset()
    proc = play(lab, tmp_path, "-e", json.dumps({"mailflow_knowledge": {"collect": {"smsmse_settings": {"path": "SOFTWARE\\Symantec"}}}}))
    assert proc.returncode != 0 and "knowledge collect.smsmse_settings.path" in proc.stdout, proc.stdout[-1500:]
    assert fixplay.winrm_commands(lab, "EXCH04") == 0 and bloodhound(lab) == ("REG_DWORD", 1)


@pytest.mark.parametrize("value, why", [
    ({"name": "EnableBloodhound", "off_values": ["0"]}, "whole numbers"),  # a DWORD's "0" would never read back equal
    ({"name": "EnableBloodhound", "type": "REG_BINARY", "off_values": [0]}, "type must be one of"),
    ({"name": "", "off_values": [0]}, "mapping with the value's name"),
    ({"name": "EnableBloodhound", "off_values": []}, "off_values must list"),
])
def test_fix_params_refuse_a_switch_the_audit_could_not_agree_with(value, why):
    facts = knowledge.load({"detect": {"smsmse_heuristics_value": {"value": value}}})
    with pytest.raises(FixError, match="knowledge detect.smsmse_heuristics_value") as exc:
        cause.fix_params({}, facts)
    assert why in str(exc.value)


def test_a_product_that_puts_its_setting_back_on_restart_is_caught_and_restored(lab, tmp_path):
    # As if SMSMSE kept its real configuration elsewhere and rewrote the registry when it starts: the verifying
    # read (after the allowed restart) still sees Bloodhound on, so the fix restores its backup and fails.
    host = lab.fleet.host("EXCH04")
    real_set, real_on_change, written = host.registry.set, lab.services.on_change, []

    def record_set(path, name, rtype, data):
        if name.lower() == "enablebloodhound":
            written.append(data)
        real_set(path, name, rtype, data)

    def smsmse_reapplies_its_store(host_name):
        real_on_change(host_name)
        if host_name == "EXCH04" and host.service("SMSMSE").state == "running":
            real_set(KEY, "EnableBloodhound", "REG_DWORD", 1)

    host.registry.set, lab.services.on_change = record_set, smsmse_reapplies_its_store
    lab.metrics.reset()
    # The location given explicitly (knowledge the audit reads too): no "unconfirmed default" warning then.
    proc = play(lab, tmp_path, "-e", json.dumps({
        "mailflow_knowledge": {
            "collect": {"smsmse_settings": {"path": r"HKLM\SOFTWARE\Symantec\SMSMSE\4.5"}},
            "detect": {"smsmse_heuristics_value": {"value": {"name": "EnableBloodhound", "type": "REG_DWORD", "off_values": [0]}}}},
        "mailflow_allow_service_restart": True}))
    assert proc.returncode != 0
    assert "verification failed" in proc.stdout and "restored from the backup" in proc.stdout, proc.stdout[-2000:]
    assert "unconfirmed default" not in proc.stdout + proc.stderr
    # once for the change, once after the restore (the service runs with the restored value again)
    assert lab.metrics.snapshot()["EXCH04"]["service_restarts"] == {"SMSMSE": 2}
    assert written == [0, 1] and bloodhound(lab) == ("REG_DWORD", 1)  # the fix's write, then the restore's
    assert fixplay.backup(tmp_path, "EXCH04", CAUSE)["state"] == "restored"
