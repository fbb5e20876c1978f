"""mailflow.exchange.fix_metabase_corrupt on the lab: EXCH07's MetaBase.xml is cut off mid-element; History holds good
pairs 4 and 5, and here also a newer pair from another computer (IUSR_EXCH99) and a newer one that does not parse.
Audit present -> check mode touches nothing -> without the opt-in only advice naming pair 5 -> restore (IIS stopped
and started around both files, queued mail kept) -> audit absent -> second run changes nothing; bad input touches
nothing; a restore whose services do not come back is undone (the damaged file put back)."""
from __future__ import annotations

import pytest

from lab import metabase as lab_metabase
from tests.support import fixplay, snapshots
from ansible_collections.mailflow.exchange.plugins.module_utils import knowledge
from ansible_collections.mailflow.exchange.plugins.module_utils.causes import metabase_corrupt
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import HostView
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import FixError

pytestmark = [pytest.mark.slow, pytest.mark.integration]
CAUSE = "metabase_corrupt"
INETSRV = r"C:\WINDOWS\system32\inetsrv"
QUEUE = r"C:\Program Files\Exchsrvr\Mailroot\vsi 1\Queue"
OPT_IN = ("-e", "mailflow_allow_metabase_restore=true")
SMTP = {"/LM/SmtpSvc": {"SmtpRemoteProgressiveRetry": "15,30,60,240"},
        "/LM/SmtpSvc/1": {"ServerBindings": ":25:", "QueueDirectory": QUEUE}}


@pytest.fixture
def lab(lab_factory):
    data = fixplay.demo_subset("EXCH07")
    # The IIS accounts carry the computer's name (IUSR_EXCH07), in the History pairs rendered from these locations.
    data["hosts"]["EXCH07"]["metabase"]["locations"] = {"/LM/W3SVC": {"AnonymousUserName": "IUSR_EXCH07"}}
    return lab_factory(data)


def play(lab, tmp_path, *extra):
    return fixplay.play(lab, tmp_path, CAUSE, *extra)


def text(lab, path):
    f = lab.fleet.host("EXCH07").files.read(path)
    return None if f is None else f.data.decode("utf-8")


def status(lab):
    return fixplay.status(lab, "EXCH07", CAUSE)


def running(lab):
    return sorted(n for n, s in lab.fleet.host("EXCH07").services.items() if s.state == "running")


def add_newer_history(lab):
    """A pair from another computer (its accounts say so), and a newer one still that does not parse."""
    host = lab.fleet.host("EXCH07")
    foreign = lab_metabase.render({**SMTP, "/LM/W3SVC": {"AnonymousUserName": "IUSR_EXCH99"}}, major_version=6)
    schema = text(lab, INETSRV + r"\MBSchema.xml")
    for name, body in (("0000000006_0000000000", foreign), ("0000000006_0000000001", foreign[:300])):
        host.files.write(rf"{INETSRV}\History\MetaBase_{name}.xml", body, "2026-01-02T00:00:00Z")
        host.files.write(rf"{INETSRV}\History\MBSchema_{name}.xml", schema, "2026-01-02T00:00:00Z")


def test_restore_puts_back_the_newest_usable_pair_and_the_audit_agrees(lab, tmp_path):
    add_newer_history(lab)
    corrupt, pair = text(lab, INETSRV + r"\MetaBase.xml"), text(lab, INETSRV + r"\History\MetaBase_0000000005_0000000000.xml")
    # The live schema differs from the pair's, so both files go back, each in its own stop/start.
    lab.fleet.host("EXCH07").files.write(INETSRV + r"\MBSchema.xml", text(lab, INETSRV + r"\MBSchema.xml") + "<!-- -->",
                                         "2026-01-03T00:00:00Z")
    pair_schema = text(lab, INETSRV + r"\History\MBSchema_0000000005_0000000000.xml")
    mail, up = sorted(p for p, _ in lab.fleet.host("EXCH07").files.listdir(QUEUE)), running(lab)
    assert status(lab) == "present" and len(mail) == 2 and {"IISADMIN", "W3SVC", "RESvc"} <= set(up)

    lab.metrics.reset()
    proc = play(lab, tmp_path, "--check", "--diff", *OPT_IN)
    assert proc.returncode == 0 and "changed=1" in proc.stdout, proc.stdout[-2000:]
    assert "MetaBase.xml" in proc.stdout and "MBSchema.xml" in proc.stdout
    assert text(lab, INETSRV + r"\MetaBase.xml") == corrupt
    assert lab.metrics.snapshot()["EXCH07"]["winrm_commands"] == 2  # the read, then the History pairs it listed

    proc = play(lab, tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "changed=0" in proc.stdout, proc.stdout[-2000:]
    assert "The newest usable history pair is MetaBase_0000000005_0000000000.xml" in out
    assert "MetaBase_0000000006_0000000001.xml does not parse" in out and "the accounts of EXCH99" in out
    assert text(lab, INETSRV + r"\MetaBase.xml") == corrupt

    lab.metrics.reset()
    proc = play(lab, tmp_path, *OPT_IN, "-v")
    assert proc.returncode == 0 and "changed=1" in proc.stdout, proc.stdout[-3000:]
    assert text(lab, INETSRV + r"\MetaBase.xml") == pair and text(lab, INETSRV + r"\MBSchema.xml") == pair_schema
    (kept,) = [p for p, _ in lab.fleet.host("EXCH07").files.listdir(INETSRV) if "MetaBase.corrupt-" in p]
    assert text(lab, kept) == corrupt
    # Stopped dependents first and started again after, once per file; SMTPSVC (Disabled) is not this fix's.
    assert running(lab) == up and lab.fleet.host("EXCH07").service("SMTPSVC").state == "stopped"
    assert lab.metrics.snapshot()["EXCH07"]["service_restarts"] == {"IISADMIN": 2, "W3SVC": 2, "RESvc": 2}
    assert sorted(p for p, _ in lab.fleet.host("EXCH07").files.listdir(QUEUE)) == mail
    assert "queue_before: 2" in proc.stdout and "queue_after: 2" in proc.stdout
    doc = fixplay.backup(tmp_path, "EXCH07", CAUSE)
    assert doc["state"] == "verified" and [c["target"]["stop"] for c in doc["changes"]] == [["RESvc", "W3SVC", "IISADMIN"]] * 2
    assert status(lab) == "absent"

    proc = play(lab, tmp_path, *OPT_IN)
    assert proc.returncode == 0 and "changed=0" in proc.stdout


def test_bad_input_fails_before_any_host_is_touched(lab, tmp_path):
    lab.metrics.reset()
    proc = play(lab, tmp_path, "-e", "mailflow_allow_metabase_restore=maybe")
    assert proc.returncode != 0 and "mailflow_allow_metabase_restore" in proc.stdout, proc.stdout[-1500:]
    assert fixplay.winrm_commands(lab, "EXCH07") == 0


def test_a_restore_whose_services_do_not_come_back_is_undone(lab, tmp_path):
    # W3SVC now names a dependency that is not installed: it stops, but does not start again after the copy.
    # The fix must copy the kept file back (IIS stopped around it again) and fail. W3SVC cannot start after
    # that either, so the task says the restore needs an admin, naming what failed.
    corrupt = text(lab, INETSRV + r"\MetaBase.xml")
    lab.fleet.host("EXCH07").service("W3SVC").depends_on = ["IISADMIN", "HTTP"]
    proc = play(lab, tmp_path, *OPT_IN)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "verification failed (the change was not applied)" in proc.stdout, proc.stdout[-2000:]
    assert text(lab, INETSRV + r"\MetaBase.xml") == corrupt
    assert lab.fleet.host("EXCH07").service("IISADMIN").state == "running"
    assert lab.fleet.host("EXCH07").service("RESvc").state == "running"
    doc = fixplay.backup(tmp_path, "EXCH07", CAUSE)
    assert len(doc["changes"]) == 1  # the schema already equals the pair's
    assert doc["state"] == "restore_failed" and doc["restore_failed"] == ["service_control ('W3SVC', 'start')"]


def test_a_metabase_read_only_in_part_is_not_judged(lab):
    # No playbook: a MetaBase.xml larger than collect.metabase.max_bytes is read cut off, and a cut-off file never
    # parses; restoring history over a healthy file would lose its settings, so the plan refuses to judge it.
    facts = knowledge.load({"collect": {"metabase": {"max_bytes": 100}}})
    view = HostView(snapshots.take(lab, "EXCH07", {"collect": {"metabase": {"max_bytes": 100}}}, peers=[]))
    params = metabase_corrupt.fix_params({"allow_restore": True}, facts)
    with pytest.raises(FixError, match="more than the 100 read"):
        metabase_corrupt.plan(view, params)
    assert metabase_corrupt.follow_up_reads(view, facts) == []
