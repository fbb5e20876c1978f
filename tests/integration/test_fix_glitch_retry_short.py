"""mailflow.exchange.fix_glitch_retry_short on the lab: audit present -> fix -> audit absent, idempotent, check mode,
bad input, restart with queued mail kept, and a failed verification restored from the backup."""
from __future__ import annotations

import json

import pytest

from tests.support import fixplay

pytestmark = [pytest.mark.slow, pytest.mark.integration]
CAUSE = "glitch_retry_short"
QUEUING = r"HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC\Queuing"


@pytest.fixture
def lab(lab_factory):
    return lab_factory(fixplay.demo_subset("EXCH05", "EXCH55", "RELAY01"))


def play(lab, tmp_path, *extra, limit="EXCH05"):
    return fixplay.play(lab, tmp_path, CAUSE, *extra, limit=limit)


def glitch(lab):
    v = lab.fleet.host("EXCH05").registry.get(QUEUING, "GlitchRetrySeconds")
    return None if v is None else (v.type, v.data)


def status(lab, host="EXCH05"):
    return fixplay.status(lab, host, CAUSE)


def backup_of(tmp_path):
    return fixplay.backup(tmp_path, "EXCH05", CAUSE)


def test_fix_makes_the_audit_clean_and_a_second_run_changes_nothing(lab, tmp_path):
    assert status(lab) == "present" and glitch(lab) == ("REG_DWORD", 30)

    proc = play(lab, tmp_path, "--check", "--diff")
    assert proc.returncode == 0 and "changed=1" in proc.stdout, proc.stdout[-2000:]
    assert "REG_DWORD 180" in proc.stdout and glitch(lab) == ("REG_DWORD", 30)  # check mode touched nothing

    proc = play(lab, tmp_path)
    assert proc.returncode == 0 and "changed=1" in proc.stdout, proc.stdout[-3000:]
    assert glitch(lab) == ("REG_DWORD", 180)
    assert "pending restart of SMTPSVC" in proc.stdout + proc.stderr and not lab.metrics.snapshot()["EXCH05"]["service_restarts"]
    doc = backup_of(tmp_path)
    assert doc["state"] == "verified" and doc["changes"][0]["before"] == {"exists": True, "type": "REG_DWORD", "data": 30}
    assert "dword:0000001e" in fixplay.backup_reg(tmp_path, "EXCH05", CAUSE)
    assert status(lab) == "absent"

    proc = play(lab, tmp_path)
    assert proc.returncode == 0 and "changed=0" in proc.stdout


def test_bad_value_fails_before_any_host_is_touched(lab, tmp_path):
    lab.metrics.reset()
    for bad in ("5", "99999", "soon"):
        proc = play(lab, tmp_path, "-e", f"mailflow_glitch_retry_seconds={bad}")
        assert proc.returncode != 0 and "mailflow_glitch_retry_seconds" in proc.stdout, proc.stdout[-1500:]
    assert fixplay.winrm_commands(lab, "EXCH05") == 0 and glitch(lab) == ("REG_DWORD", 30)


def test_restart_when_allowed_keeps_the_queued_mail(lab, tmp_path):
    lab.metrics.reset()
    queue = r"C:\Program Files\Exchsrvr\Mailroot\vsi 1\Queue"
    before = sorted(p for p, _ in lab.fleet.host("EXCH05").files.listdir(queue))
    proc = play(lab, tmp_path, "-e", "mailflow_allow_service_restart=true", "-e", "mailflow_glitch_retry_seconds=240", "-v")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert glitch(lab) == ("REG_DWORD", 240)
    counters = lab.metrics.snapshot()["EXCH05"]
    assert counters["service_restarts"].get("SMTPSVC") == 1
    assert counters["winrm_commands"] == 3  # read; apply; restart + verifying read
    assert sorted(p for p, _ in lab.fleet.host("EXCH05").files.listdir(queue)) == before and len(before) == 3
    assert "queue_before: 3" in proc.stdout and "queue_after: 3" in proc.stdout


def test_failed_verification_is_restored_from_the_backup(lab, tmp_path):
    # The verifying read looks at another key than the write (as a wrong knowledge override would),
    # so the new value is never seen: the fix must put 30 back and fail, saying so.
    override = json.dumps({"mailflow_knowledge": {"collect": {"smtpsvc_queuing": {"path": QUEUING + "\\Elsewhere"}}}})
    proc = play(lab, tmp_path, "-e", override)
    assert proc.returncode != 0
    assert "verification failed" in proc.stdout and "restored from the backup" in proc.stdout
    assert glitch(lab) == ("REG_DWORD", 30)
    assert backup_of(tmp_path)["state"] == "restored"


def test_a_host_lost_before_the_apply_ran_is_finished_by_the_next_run(lab, tmp_path):
    lab.metrics.fault("EXCH05").drop_after_commands = 2  # the read runs; the apply never reaches the host
    proc = play(lab, tmp_path, "-e", "mailflow_change_id=CHG1")
    assert proc.returncode != 0 and "lost the connection while applying" in proc.stdout, proc.stdout[-3000:]
    assert "the next run finishes or restores it" in proc.stdout
    assert glitch(lab) == ("REG_DWORD", 30) and backup_of(tmp_path)["state"] == "interrupted"

    proc = play(lab, tmp_path, "-e", "mailflow_change_id=CHG1")
    assert proc.returncode == 0 and "changed=1" in proc.stdout, proc.stdout[-3000:]
    doc = backup_of(tmp_path)
    assert glitch(lab) == ("REG_DWORD", 180) and doc["state"] == "verified"
    assert doc["changes"][0]["before"] == {"exists": True, "type": "REG_DWORD", "data": 30}


def test_a_host_lost_after_the_apply_keeps_the_original_value_for_a_restore(lab, tmp_path):
    lab.metrics.fault("EXCH05").drop_output_after_commands = 2  # the apply runs; its answer is lost
    proc = play(lab, tmp_path, "-e", "mailflow_change_id=CHG2")
    assert proc.returncode != 0 and "not known which of 1 change(s) were applied" in proc.stdout, proc.stdout[-3000:]
    assert glitch(lab) == ("REG_DWORD", 180) and backup_of(tmp_path)["state"] == "interrupted"

    # The next run wants another value and its verification fails: the restore must put back the
    # value from before the first run (30), not the half-way 180 it found.
    override = json.dumps({"mailflow_knowledge": {"collect": {"smtpsvc_queuing": {"path": QUEUING + "\\Elsewhere"}}}})
    proc = play(lab, tmp_path, "-e", "mailflow_change_id=CHG2", "-e", "mailflow_glitch_retry_seconds=240", "-e", override)
    assert proc.returncode != 0 and "restored from the backup" in proc.stdout, proc.stdout[-3000:]
    assert glitch(lab) == ("REG_DWORD", 30)
    assert backup_of(tmp_path)["changes"][0]["before"]["data"] == 30


def test_a_pending_restart_is_completed_by_a_later_run_that_may_restart(lab, tmp_path):
    assert play(lab, tmp_path).returncode == 0 and glitch(lab) == ("REG_DWORD", 180)
    lab.metrics.reset()
    proc = play(lab, tmp_path, "-e", "mailflow_allow_service_restart=true")
    assert proc.returncode == 0 and "changed=1" in proc.stdout, proc.stdout[-3000:]
    assert lab.metrics.snapshot()["EXCH05"]["service_restarts"].get("SMTPSVC") == 1
    assert backup_of(tmp_path)["pending_restart"] == []
    proc = play(lab, tmp_path, "-e", "mailflow_allow_service_restart=true")
    assert "changed=0" in proc.stdout and lab.metrics.snapshot()["EXCH05"]["service_restarts"].get("SMTPSVC") == 1


def test_a_restart_that_fails_fails_the_task_and_stays_pending(lab_factory, tmp_path):
    data = fixplay.demo_subset("EXCH05")
    # Running but set to Disabled (an admin's half-done change): it stops, and then cannot start.
    data["hosts"]["EXCH05"].setdefault("services", {})["SMTPSVC"] = {"display_name": "Simple Mail Transfer Protocol (SMTP)",
                                                                     "state": "running", "start_mode": "disabled"}
    data["hosts"]["EXCH05"]["registry"][r"HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC"] = {"Start": {"type": "REG_DWORD", "data": 4}}
    lab = lab_factory(data)
    proc = play(lab, tmp_path, "-e", "mailflow_allow_service_restart=true")
    assert proc.returncode != 0 and "restarting SMTPSVC failed" in proc.stdout, proc.stdout[-3000:]
    assert glitch(lab) == ("REG_DWORD", 180)
    doc = backup_of(tmp_path)
    assert doc["state"] == "verified" and doc["restart_failed"] == ["SMTPSVC"] and doc["pending_restart"] == ["SMTPSVC"]


def test_a_restart_done_for_a_new_change_also_settles_what_was_pending(lab, tmp_path):
    assert play(lab, tmp_path, "-e", "mailflow_change_id=A").returncode == 0  # 180, restart pending
    lab.metrics.reset()
    proc = play(lab, tmp_path, "-e", "mailflow_change_id=B", "-e", "mailflow_glitch_retry_seconds=240", "-e", "mailflow_allow_service_restart=true")
    assert proc.returncode == 0 and lab.metrics.snapshot()["EXCH05"]["service_restarts"].get("SMTPSVC") == 1
    proc = play(lab, tmp_path, "-e", "mailflow_glitch_retry_seconds=240", "-e", "mailflow_allow_service_restart=true")
    assert "changed=0" in proc.stdout and lab.metrics.snapshot()["EXCH05"]["service_restarts"].get("SMTPSVC") == 1


def test_allow_service_restart_false_from_the_command_line_means_no_restart(lab, tmp_path):
    lab.metrics.reset()
    proc = play(lab, tmp_path, "-e", "mailflow_allow_service_restart=false")  # a string "false", as -e gives it
    assert proc.returncode == 0 and "pending restart of SMTPSVC" in proc.stdout + proc.stderr, proc.stdout[-3000:]
    assert not lab.metrics.snapshot()["EXCH05"]["service_restarts"]
