"""mailflow.exchange.fix_sav_internet_email_autoprotect on the lab (EXCH03, SAV CE 9.0 with the feature installed):
audit present -> check mode touches nothing -> msiexec REMOVE -> audit absent, idempotent, no reboot unless allowed,
bad input, and a failed verification put back with ADDLOCAL."""
from __future__ import annotations

import json

import pytest

from tests.support import fixplay

pytestmark = [pytest.mark.slow, pytest.mark.integration]
CAUSE = "sav_internet_email_autoprotect"
PRODUCT_CODE = "{5A8E4C1D-7E2B-4C59-A3F1-0B9D6E2F4A17}"  # lab/templates/symantec_antivirus_ce9.yml


@pytest.fixture
def lab(lab_factory):
    return lab_factory(fixplay.demo_subset("EXCH03"))


def play(lab, tmp_path, *extra):
    return fixplay.play(lab, tmp_path, CAUSE, *extra, limit="EXCH03")


def states(lab):
    """{feature name: InstallState} of the SAV product, as Win32_SoftwareFeature has them."""
    features = lab.fleet.host("EXCH03").wmi["root\\cimv2"]["Win32_SoftwareFeature"]
    return {f["Name"]: f["InstallState"] for f in features}


def status(lab):
    return fixplay.status(lab, "EXCH03", CAUSE)


def processes(lab):
    return lab.metrics.snapshot().get("EXCH03", {}).get("processes", [])


def test_fix_removes_the_feature_and_a_second_run_changes_nothing(lab, tmp_path):
    before = states(lab)
    assert status(lab) == "present" and before["Pop3Smtp"] == 3

    proc = play(lab, tmp_path, "--check", "--diff")
    assert proc.returncode == 0 and "changed=1" in proc.stdout, proc.stdout[-2000:]
    assert "feature Pop3Smtp (Internet E-mail Auto-Protect) = absent" in proc.stdout
    assert states(lab) == before and not processes(lab)  # check mode ran no msiexec

    proc = play(lab, tmp_path)
    assert proc.returncode == 0 and "changed=1" in proc.stdout, proc.stdout[-3000:]
    # Only the caption-matched feature went; the client and the Exchange snap-in kept their states.
    assert states(lab) == {**before, "Pop3Smtp": 2}
    assert processes(lab) == [["msiexec.exe", "/i", PRODUCT_CODE, "REMOVE=Pop3Smtp", "/qn", "REBOOT=ReallySuppress"]]
    counters = lab.metrics.snapshot()["EXCH03"]
    assert counters["reboots"] == 0 and "a reboot is pending" in proc.stdout + proc.stderr
    assert "ADDLOCAL=Pop3Smtp) may need" in proc.stdout + proc.stderr  # advice: what a restore needs
    doc = fixplay.backup(tmp_path, "EXCH03", CAUSE)
    assert doc["state"] == "verified"
    assert doc["changes"][0]["before"] == 3 and doc["changes"][0]["target"]["feature"] == "Pop3Smtp"
    assert status(lab) == "absent"

    proc = play(lab, tmp_path)
    assert proc.returncode == 0 and "changed=0" in proc.stdout and len(processes(lab)) == 1


def test_bad_value_fails_before_any_host_is_touched(lab, tmp_path):
    lab.metrics.reset()
    proc = play(lab, tmp_path, "-e", "mailflow_allow_reboot=sometimes")
    assert proc.returncode != 0 and "mailflow_allow_reboot" in proc.stdout, proc.stdout[-1500:]
    assert fixplay.winrm_commands(lab, "EXCH03") == 0 and states(lab)["Pop3Smtp"] == 3


def test_failed_verification_puts_the_feature_back(lab, tmp_path):
    # A knowledge override that counts Absent (2) as installed: the verifying read still sees the feature
    # "installed", so the fix must run msiexec ADDLOCAL to put it back, and fail saying so.
    override = json.dumps({"mailflow_knowledge": {"detect": {"msi_installed_states": {"value": [1, 2, 3, 4]}}},
                           "mailflow_allow_reboot": True})
    proc = play(lab, tmp_path, "-e", override)
    assert proc.returncode != 0
    assert "verification failed" in proc.stdout and "restored from the backup" in proc.stdout, proc.stdout[-2000:]
    assert states(lab)["Pop3Smtp"] == 3
    assert [p[3] for p in processes(lab)] == ["REMOVE=Pop3Smtp", "ADDLOCAL=Pop3Smtp"]
    # Reboots allowed: msiexec ran without REBOOT=ReallySuppress and the lab counts the restart it would do.
    assert "REBOOT=ReallySuppress" not in processes(lab)[0] and lab.metrics.snapshot()["EXCH03"]["reboots"] == 1
    assert fixplay.backup(tmp_path, "EXCH03", CAUSE)["state"] == "restored"
