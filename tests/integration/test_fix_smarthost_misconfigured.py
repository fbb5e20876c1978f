"""mailflow.exchange.fix_smarthost_misconfigured on the lab: EXCH04's smart host is "10.9.9.9" (an IP without
brackets, KB 821911) in AD and its metabase; the inventory expects "[10.9.9.9]". Check mode changes nothing ->
the fix sets AD -> the audit is clean -> a second run changes nothing; with restarts allowed DS2MB copies it into
the metabase (lab: when SMTPSVC starts) and the fix verifies it there; bad input touches nothing; a metabase
DS2MB did not update fails the fix and AD is restored."""
from __future__ import annotations

import json

import pytest

from tests.support import fixplay, snapshots
from ansible_collections.mailflow.exchange.plugins.module_utils import metabase
from ansible_collections.mailflow.exchange.plugins.module_utils.causes import smarthost_misconfigured as cause
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import HostView
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import FixError

pytestmark = [pytest.mark.slow, pytest.mark.integration]
CAUSE = "smarthost_misconfigured"
VS1 = ("CN=1,CN=SMTP,CN=Protocols,CN=EXCH04,CN=Servers,CN=First Administrative Group,CN=Administrative Groups,"
       "CN=Corp,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=corp,DC=example")
EXPECTED = "[10.9.9.9]"


@pytest.fixture
def lab(lab_factory):
    return lab_factory(fixplay.demo_subset("EXCH04"))  # the detector needs no peer: the smart host is not ours


def play(lab, tmp_path, *extra):
    return fixplay.play(lab, tmp_path, CAUSE, *extra, host_vars={"EXCH04": {"mailflow_smarthost_expected": EXPECTED}})


def ad_smarthost(lab):
    return lab.fleet.ad.get(VS1).get("msExchSmtpSmartHost")


def metabase_smarthost(lab):
    h = lab.fleet.host("EXCH04")
    return metabase.parse(h.files.read(h.metabase_path).data.decode("utf-8")).smtp_virtual_servers()["1"].get("SmartHost")


def status(lab):
    return fixplay.status(lab, "EXCH04", CAUSE, declared={"EXCH04": {"smarthost_expected": EXPECTED}})


def backup_of(tmp_path):
    return fixplay.backup(tmp_path, "EXCH04", CAUSE)


def test_fix_sets_ad_and_reports_the_metabase_pending_then_changes_nothing(lab, tmp_path):
    assert status(lab) == "present" and ad_smarthost(lab) == ["10.9.9.9"] and metabase_smarthost(lab) == "10.9.9.9"

    proc = play(lab, tmp_path, "--check", "--diff")
    assert proc.returncode == 0 and "changed=1" in proc.stdout, proc.stdout[-2000:]
    assert f"{VS1} msExchSmtpSmartHost = '10.9.9.9'" in proc.stdout and f"msExchSmtpSmartHost = '{EXPECTED}'" in proc.stdout
    assert ad_smarthost(lab) == ["10.9.9.9"]  # check mode touched nothing

    proc = play(lab, tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "changed=1" in proc.stdout, proc.stdout[-3000:]
    assert ad_smarthost(lab) == [EXPECTED]
    # No restart allowed: DS2MB has not run, the metabase keeps the old copy and the result says so.
    assert metabase_smarthost(lab) == "10.9.9.9" and not lab.metrics.snapshot()["EXCH04"]["service_restarts"]
    assert "pending restart of SMTPSVC" in out and "until DS2MB copies" in " ".join(out.split())
    doc = backup_of(tmp_path)
    assert doc["state"] == "verified" and doc["changes"][0]["before"] == ["10.9.9.9"]
    assert status(lab) == "absent"  # Exchange reads AD; the audit notes the metabase copy differs

    proc = play(lab, tmp_path)
    assert proc.returncode == 0 and "changed=0" in proc.stdout, proc.stdout[-2000:]


def test_with_restarts_allowed_ds2mb_copies_it_into_the_metabase_and_the_queue_is_kept(lab, tmp_path):
    lab.metrics.reset()
    queue = r"C:\Program Files\Exchsrvr\Mailroot\vsi 1\Queue"
    before = sorted(p for p, _ in lab.fleet.host("EXCH04").files.listdir(queue))
    proc = play(lab, tmp_path, "-e", "mailflow_allow_service_restart=true", "-v")
    assert proc.returncode == 0 and "changed=1" in proc.stdout, proc.stdout[-3000:]
    assert ad_smarthost(lab) == [EXPECTED] and metabase_smarthost(lab) == EXPECTED
    counters = lab.metrics.snapshot()["EXCH04"]
    assert counters["service_restarts"].get("SMTPSVC") == 1 and counters["winrm_commands"] == 3  # read; apply; restart + verify
    assert sorted(p for p, _ in lab.fleet.host("EXCH04").files.listdir(queue)) == before and len(before) == 1
    assert "queue_before: 1" in proc.stdout and "queue_after: 1" in proc.stdout
    assert "until DS2MB copies" not in proc.stdout + proc.stderr


def test_a_later_run_with_restarts_allowed_plans_the_restart_ds2mb_needs(lab):
    # In-process, on the host's real snapshot: AD already right (an earlier run without restarts), metabase behind.
    lab.fleet.ad.set_attr(VS1, "msExchSmtpSmartHost", [EXPECTED])
    view = HostView(snapshots.take(lab, "EXCH04", peers=[]))
    (restart,) = cause.plan(view, {"smarthost": EXPECTED, "restart_allowed": True})
    assert restart.kind == "service_restart" and restart.target == {"service": "SMTPSVC"} and "'10.9.9.9'" in restart.before
    assert cause.plan(view, {"smarthost": EXPECTED, "restart_allowed": False}) == []
    (behind,) = cause.advice(view, {"smarthost": EXPECTED, "restart_allowed": False})
    assert "{'1': '10.9.9.9'}" in behind and "DS2MB" in behind


def test_a_bare_ip_address_fails_before_any_host_is_touched(lab, tmp_path):
    lab.metrics.reset()
    proc = play(lab, tmp_path, "-e", "mailflow_smarthost=10.9.9.9")
    assert proc.returncode != 0 and "mailflow_smarthost must be an FQDN" in proc.stdout, proc.stdout[-1500:]
    assert fixplay.winrm_commands(lab, "EXCH04") == 0 and ad_smarthost(lab) == ["10.9.9.9"]


@pytest.mark.parametrize("bad", ["", "10.9.9.9", "relay", "[10.9.9.300]", "[relay.corp.example]", "smart host.corp.example",
                                 "a.corp.example,b.corp.example", "[10.0.0.1];relay.corp.example", "relay.corp.example\r\nx",
                                 "[::1]", None])
def test_the_action_refuses_what_kb_821911_does_not_allow(bad):
    # fix_params runs before the action reads the host; it also checks what the role's assert cannot (FQDNs first).
    with pytest.raises(FixError, match="mailflow_smarthost"):
        cause.fix_params({"smarthost": bad}, {})
    ok = cause.fix_params({"smarthost": " relay.corp.example;[10.0.0.1] ", "allow_service_restart": True}, {})
    assert ok == {"smarthost": "relay.corp.example;[10.0.0.1]", "restart_allowed": True}


def test_a_metabase_ds2mb_did_not_update_fails_and_ad_is_restored(lab, tmp_path):
    # With restarts allowed the fix checks the metabase after SMTPSVC's restart. Here the verifying read looks at a
    # copy of MetaBase.xml that DS2MB never writes, as if DS2MB had not copied the value: AD must be put back.
    h = lab.fleet.host("EXCH04")
    h.files.write(h.metabase_path[:-4] + ".copy.xml", h.files.read(h.metabase_path).data, "2007-01-01T00:00:00Z")
    override = {"mailflow_knowledge": {"collect": {"metabase": {"path": r"%SystemRoot%\system32\inetsrv\MetaBase.copy.xml"}}},
                "mailflow_allow_service_restart": True}
    proc = play(lab, tmp_path, "-e", json.dumps(override))
    assert proc.returncode != 0
    assert "verification failed (service SMTPSVC: metabase /LM/SmtpSvc/1 SmartHost '10.9.9.9'" in proc.stdout, proc.stdout[-2000:]
    assert "restored from the backup" in proc.stdout
    assert ad_smarthost(lab) == ["10.9.9.9"] and backup_of(tmp_path)["state"] == "restored"


NTLM = {"ansible_winrm_transport": "ntlm", "ansible_winrm_scheme": "http", "ansible_port": 5985}


def test_over_ntlm_the_ad_write_binds_with_the_winrm_credentials_and_fails_clearly_without_them(lab, tmp_path):
    """The second hop: an NTLM logon has nothing to pass to the DC. The fix's AD read and write bind explicitly as
    mailflow_ad_username (default: the WinRM account); bound as the logon itself, the DC refuses and nothing changes."""
    host_vars = {"mailflow_smarthost_expected": EXPECTED, **NTLM}
    proc = fixplay.play(lab, tmp_path, CAUSE, host_vars={"EXCH04": dict(host_vars, mailflow_ad_username="")})
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0 and ad_smarthost(lab) == ["10.9.9.9"]
    assert "mailflow_ad_username" in out and "0x80072020" in out, out[-3000:]
    (tmp_path / "explicit").mkdir()
    proc = fixplay.play(lab, tmp_path / "explicit", CAUSE, host_vars={"EXCH04": host_vars})
    assert proc.returncode == 0 and "changed=1" in proc.stdout, proc.stdout[-3000:]
    assert ad_smarthost(lab) == [EXPECTED]
