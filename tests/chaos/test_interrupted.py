"""A change whose connection drops (or whose answer is an HTTP 500) is finished by the next run, whatever the audit
says, and the audit lists it until then.

Before: the next fix.yml audited first, found the cause absent (the change had landed), skipped the role, and so
never finished the change nor its pending SMTPSVC restart; an HTTP 500 escaped as a bare transport error with
changed: false after the registry had changed.
"""
from __future__ import annotations

import json

import pytest

from tests.chaos.conftest import glitch, inventory, latest_audit, run

pytestmark = [pytest.mark.slow, pytest.mark.integration]
ARGS = ("-e", "mailflow_fix=glitch_retry_short", "--limit", "EXCH05")
BACKUP = ("backups", "CHG910", "EXCH05", "glitch_retry_short.json")


def backup(tmp_path) -> dict:
    return json.loads(tmp_path.joinpath(*BACKUP).read_text())


# fix.yml's commands on EXCH05: 1 the audit's snapshot, 2 the fix's read, 3 the apply, 4 the verifying read.
@pytest.mark.parametrize("fault, words", [
    ("drop_output_after_commands", "not known which of 1 change(s) were applied"),
    ("http_500_after_commands", "not known which of 1 change(s) were applied"),
])
def test_a_change_lost_as_it_landed_is_finished_by_the_next_run(lab, tmp_path, fault, words):
    inv = inventory(lab, tmp_path)
    setattr(lab.metrics.fault("EXCH05"), fault, 3)
    proc = run("fix.yml", inv, tmp_path, *ARGS, "-e", "mailflow_change_id=CHG910")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and words in out, out[-3000:]
    assert glitch(lab) == ("REG_DWORD", 180)  # it landed
    assert backup(tmp_path)["state"] == "interrupted"
    fix_record = json.loads(next((tmp_path / "reports").glob("*/fix.json")).read_text())
    (row,) = fix_record["hosts"]["EXCH05"]
    assert row["status"] == "interrupted"

    # The next audit finds the cause gone (the value is in), and says the change is unfinished.
    proc = run("audit.yml", inv, tmp_path, "--limit", "EXCH05")
    assert proc.returncode == 0, proc.stdout[-3000:]
    # RELAY01, outside the limit, was not asked for: "not run", not FAILED.
    assert "FAILED" not in proc.stdout and "RELAY01" in proc.stdout and "not run" in proc.stdout, proc.stdout[-3000:]
    host = latest_audit(tmp_path)["hosts"]["EXCH05"]
    assert next(f for f in host["findings"] if f["cause"] == "glitch_retry_short")["status"] == "absent"
    assert [u["cause"] for u in host["unfinished_changes"]] == ["glitch_retry_short"]

    # The next fix run resumes it anyway, and completes the restart the first run owed.
    lab.metrics.reset()
    proc = run("fix.yml", inv, tmp_path, *ARGS, "-e", "mailflow_change_id=CHG910", "-e", "mailflow_allow_service_restart=true")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert backup(tmp_path)["state"] == "verified" and backup(tmp_path)["changes"][0]["before"]["data"] == 30
    assert lab.metrics.snapshot()["EXCH05"]["service_restarts"].get("SMTPSVC") == 1
    proc = run("audit.yml", inv, tmp_path, "--limit", "EXCH05")
    assert "unfinished_changes" not in latest_audit(tmp_path)["hosts"]["EXCH05"]


def test_a_host_lost_before_its_first_fix_stops_its_other_fixes(lab, tmp_path):
    """A lost host is a failure that ends its fixes, not an "unreachable" that lets the next fix try again."""
    inv = inventory(lab, tmp_path)
    lab.metrics.fault("EXCH05").drop_after_commands = 2  # the audit's snapshot runs; the first fix's read is lost
    proc = run("fix.yml", inv, tmp_path, "--limit", "EXCH05")
    out = proc.stdout
    assert proc.returncode != 0 and "no complete answer from the host before anything was changed" in out, out[-3000:]
    record = json.loads(next((tmp_path / "reports").glob("*/fix.json")).read_text())
    ran = [r for r in record["hosts"]["EXCH05"] if r["status"] != "skipped"]
    assert [r["status"] for r in ran] == ["unreachable"], ran  # the first of EXCH05's fixes, and no other
    assert out.count("EXCH05: EXCH05:") == 0
