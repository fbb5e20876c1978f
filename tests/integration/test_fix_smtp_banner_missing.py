"""mailflow.exchange.fix_smtp_banner_missing on the lab: the peers' probes say EXCH06 is mute -> check mode
changes nothing -> the fix sets ConnectResponse (and only where it is empty) -> the peers get a banner ->
a second run changes nothing; a banner with CR/LF touches nothing; a failed verification puts the empty
value back."""
from __future__ import annotations

import glob
import json

import pytest

from tests.support import fixplay
from ansible_collections.mailflow.exchange.plugins.module_utils import metabase
from ansible_collections.mailflow.exchange.plugins.module_utils.causes import smtp_banner_missing
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import FixError

pytestmark = [pytest.mark.slow, pytest.mark.integration]
CAUSE = "smtp_banner_missing"
# EXCH06's ConnectResponse is set but empty; EXCH01 and EXCH02 are the peers whose probes find it mute
# (the detector decides from them) and whose own ConnectResponse is not set (the default banner).
HOSTS = ("EXCH06", "EXCH01", "EXCH02")
BANNER = "exch06.corp.example Microsoft ESMTP MAIL Service ready"  # the role's default for EXCH06


@pytest.fixture
def lab(lab_factory):
    return lab_factory(fixplay.demo_subset(*HOSTS))


def play(lab, tmp_path, *extra, limit="EXCH06"):
    return fixplay.play(lab, tmp_path, CAUSE, *extra, limit=limit)


def metabase_text(lab, host="EXCH06") -> str:
    h = lab.fleet.host(host)
    return h.files.read(h.metabase_path).data.decode("utf-8")


def connect_response(lab, host="EXCH06"):
    """ConnectResponse of /LM/SmtpSvc/1 as MetaBase.xml on the host holds it (None: not set)."""
    return metabase.parse(metabase_text(lab, host)).smtp_virtual_servers()["1"].get("ConnectResponse")


def finding(lab):
    return fixplay.finding(lab, "EXCH06", CAUSE)


def test_fix_gives_the_mute_server_a_banner_and_a_second_run_changes_nothing(lab, tmp_path):
    f = finding(lab)
    assert f["status"] == "present" and connect_response(lab) == ""
    assert sorted(p["from"] for p in f["evidence"]["probes"] if p["result"] == "no_banner") == ["EXCH01", "EXCH02"]
    healthy = metabase_text(lab, "EXCH01")
    assert connect_response(lab, "EXCH01") is None  # not set: the default banner, nothing wrong to change

    before = metabase_text(lab)
    proc = play(lab, tmp_path, "--check", "--diff", limit="EXCH06,EXCH01")
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert fixplay.changed(proc) == {"EXCH06": 1, "EXCH01": 0}
    assert f"IIS://localhost/SMTPSVC/1 ConnectResponse = '{BANNER}'" in proc.stdout
    assert metabase_text(lab) == before  # check mode touched nothing

    proc = play(lab, tmp_path, limit="EXCH06,EXCH01")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert fixplay.changed(proc) == {"EXCH06": 1, "EXCH01": 0}
    assert connect_response(lab) == BANNER and metabase_text(lab, "EXCH01") == healthy
    assert "pending restart of SMTPSVC" in proc.stdout + proc.stderr and not lab.metrics.snapshot()["EXCH06"]["service_restarts"]
    doc = fixplay.backup(tmp_path, "EXCH06", CAUSE)
    assert doc["state"] == "verified" and doc["changes"][0]["before"] == [""]  # what the host said it replaced
    assert not glob.glob(str(tmp_path / "backups" / "*" / "EXCH01" / "*"))

    f = finding(lab)
    assert f["status"] == "absent" and sorted(f["evidence"]["answered_from"]) == ["EXCH01", "EXCH02"]

    proc = play(lab, tmp_path)
    assert proc.returncode == 0 and fixplay.changed(proc)["EXCH06"] == 0


def test_a_banner_with_a_line_break_fails_before_any_host_is_touched(lab, tmp_path):
    lab.metrics.reset()
    before = metabase_text(lab)
    proc = play(lab, tmp_path, "-e", json.dumps({"mailflow_smtp_banner": "mx.corp.example\r\nMAIL FROM:<x@corp.example>"}))
    assert proc.returncode != 0 and "mailflow_smtp_banner must be one line of printable ASCII" in proc.stdout, proc.stdout[-1500:]
    assert fixplay.winrm_commands(lab, "EXCH06") == 0 and metabase_text(lab) == before


@pytest.mark.parametrize("bad", ["", "   ", "two\nlines", "tab\there", "caf\u00e9", "x" * 251, None, 220])
def test_the_action_refuses_what_the_role_refuses(bad):
    # The action checks too (fix_params runs before it reads the host), for callers that skip the role.
    with pytest.raises(FixError, match="mailflow_smtp_banner"):
        smtp_banner_missing.fix_params({"banner": bad}, {})
    assert smtp_banner_missing.fix_params({"banner": "x" * 250}, {}) == {"banner": "x" * 250}


def test_failed_verification_puts_the_empty_value_back(lab, tmp_path):
    # The verifying read looks at a copy of MetaBase.xml that the write never reaches (as a wrong knowledge
    # override would), so the banner is never seen: the fix must write the empty value back and fail.
    h = lab.fleet.host("EXCH06")
    h.files.write(h.metabase_path[:-4] + ".copy.xml", metabase_text(lab), "2007-01-01T00:00:00Z")
    override = {"mailflow_knowledge": {"collect": {"metabase": {"path": r"%SystemRoot%\system32\inetsrv\MetaBase.copy.xml"}}}}
    proc = play(lab, tmp_path, "-e", json.dumps(override))
    assert proc.returncode != 0
    assert "verification failed" in proc.stdout and "restored from the backup" in proc.stdout, proc.stdout[-2000:]
    assert connect_response(lab) == ""  # written back as it was: set, and empty (not removed)
    assert fixplay.backup(tmp_path, "EXCH06", CAUSE)["state"] == "restored"
