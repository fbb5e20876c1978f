"""mailflow.exchange.fix_peer_smtp_unavailable on the lab: EXCH07's SMTPSVC is Stopped and Disabled. Audit present ->
check mode touches nothing -> without the opt-in only advice -> fix -> audit absent (EXCH01's probe gets a banner),
queued mail kept -> second run changes nothing; bad input touches nothing; a start that does not take is undone."""
from __future__ import annotations

import pytest

from tests.support import fixplay, snapshots
from ansible_collections.mailflow.exchange.plugins.module_utils import knowledge
from ansible_collections.mailflow.exchange.plugins.module_utils.causes import peer_smtp_unavailable
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import HostView

pytestmark = [pytest.mark.slow, pytest.mark.integration]
CAUSE = "peer_smtp_unavailable"
SMTPSVC_KEY = r"HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC"
QUEUE = r"C:\Program Files\Exchsrvr\Mailroot\vsi 1\Queue"
OPT_IN = ("-e", "mailflow_allow_enable_disabled_smtp=true")


@pytest.fixture
def lab(lab_factory):
    return lab_factory(fixplay.demo_subset("EXCH01", "EXCH07"))  # EXCH01 probes EXCH07's port 25


def play(lab, tmp_path, *extra):
    return fixplay.play(lab, tmp_path, CAUSE, *extra, limit="EXCH07")


def smtpsvc(lab):
    host = lab.fleet.host("EXCH07")
    svc = host.service("SMTPSVC")
    return svc.state, svc.start_mode, host.registry.get(SMTPSVC_KEY, "Start").data


def queued(lab):
    return sorted((p, f.data) for p, f in lab.fleet.host("EXCH07").files.listdir(QUEUE))


def finding(lab):
    return fixplay.finding(lab, "EXCH07", CAUSE)


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
    doc = fixplay.backup(tmp_path, "EXCH07", CAUSE)
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
    assert fixplay.winrm_commands(lab, "EXCH07") == 0
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
    assert fixplay.backup(tmp_path, "EXCH07", CAUSE)["state"] == "restored"


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
