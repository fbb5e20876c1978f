"""mailflow.exchange.fix_port25_blocked on the lab: EXCH03's Windows Firewall is on without TCP 25; the network drops
TCP between EXCH08 and EXCH05. Audit present -> check mode touches nothing -> EXCH03 opened, EXCH05 report-only with
its side of the evidence -> audit: EXCH03 absent, EXCH05 still present -> second run changes nothing; bad scopes
touch nothing; a verification failure deletes the opening again."""
from __future__ import annotations

import glob
import json
import os
import re

import pytest
import yaml

from lab import firewall
from tests.conftest import ROOT
from tests.support import fixplay
from ansible_collections.mailflow.exchange.plugins.module_utils.causes import port25_blocked
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import FixError

pytestmark = [pytest.mark.slow, pytest.mark.integration]
CAUSE = "port25_blocked"


@pytest.fixture
def lab(lab_factory):
    return lab_factory(fixplay.demo_subset("EXCH03", "EXCH05", "EXCH08", network={"blocked": [["EXCH08", "EXCH05"]]}))


def play(lab, tmp_path, *extra, limit="EXCH03"):
    return fixplay.play(lab, tmp_path, CAUSE, *extra, limit=limit)


def port25(lab, host="EXCH03"):
    v = lab.fleet.host(host).registry.get(firewall.OPEN_PORTS, "25:TCP")
    return None if v is None else v.data


def findings(lab):
    return fixplay.findings(lab, CAUSE)


def test_fix_opens_the_host_firewall_and_reports_the_network_block(lab, tmp_path):
    found = findings(lab)
    assert found["EXCH03"]["status"] == "present" and found["EXCH03"]["evidence"]["blocker"] == "windows_firewall"
    assert found["EXCH05"]["status"] == "present" and found["EXCH05"]["evidence"]["blocker"] == "network"
    others = firewall.open_ports(lab.fleet.host("EXCH03").registry)
    assert port25(lab) is None and len(others) == 3

    proc = play(lab, tmp_path, "--check", "--diff", "-e", '{"mailflow_port25_scope": "LocalSubnet, 10.0.0.0/255.0.0.0"}')
    assert proc.returncode == 0 and "changed=1" in proc.stdout, proc.stdout[-2000:]
    assert "+Windows Firewall port 25/TCP (standard profile) = enabled, scope LocalSubnet,10.0.0.0/255.0.0.0" in proc.stdout
    assert port25(lab) is None and not lab.metrics.snapshot()["EXCH03"]["processes"]

    proc = play(lab, tmp_path, "-v", limit="EXCH03,EXCH05")
    assert proc.returncode == 0 and "changed=1" in proc.stdout, proc.stdout[-3000:]
    assert port25(lab) == "25:TCP:*:Enabled:SMTP"
    assert firewall.open_ports(lab.fleet.host("EXCH03").registry)[:3] == others  # the other openings are kept
    assert lab.metrics.snapshot()["EXCH03"]["processes"][-1][:4] == ["netsh.exe", "firewall", "add", "portopening"]
    # EXCH05: nothing changed, and its side of the evidence for the network team.
    out = proc.stdout + proc.stderr
    assert "EXCH05 itself lets SMTP in: SMTPSVC running, bound to port 25; Windows Firewall: StandardProfile off" in out
    assert "the block is on the network path" in out and not lab.metrics.snapshot()["EXCH05"]["processes"]
    doc = fixplay.backup(tmp_path, "EXCH03", CAUSE)
    assert doc["state"] == "verified" and doc["changes"][0]["before"] == {"exists": False}
    assert not glob.glob(str(tmp_path / "backups" / "*" / "EXCH05"))

    found = findings(lab)
    assert found["EXCH03"]["status"] == "absent"  # the peers' probes now get through to a real listener
    assert found["EXCH05"]["status"] == "present" and found["EXCH05"]["evidence"]["blocker"] == "network"

    proc = play(lab, tmp_path)
    assert proc.returncode == 0 and "changed=0" in proc.stdout


def test_bad_scope_fails_before_any_host_is_touched(lab, tmp_path):
    lab.metrics.reset()
    proc = play(lab, tmp_path, "-e", "mailflow_port25_scope=10.0.0.0/255.0.255.0")  # not a contiguous mask
    assert proc.returncode != 0 and "mailflow_port25_scope must be" in proc.stdout, proc.stdout[-1500:]
    assert fixplay.winrm_commands(lab, "EXCH03") == 0 and port25(lab) is None


@pytest.mark.parametrize("scope, ok", [
    ("*", "*"), ("localsubnet", "LocalSubnet"), ("10.1.2.3", "10.1.2.3"), ("10.0.0.0/8, LocalSubnet", "10.0.0.0/8,LocalSubnet"),
    ("192.168.0.0/255.255.255.0", "192.168.0.0/255.255.255.0"),
    ("", None), ("*,10.0.0.1", None), ("10.0.0.0/33", None), ("10.0.0.0/255.0.255.0", None), ("127.0.0.1", None),
    ("0.0.0.0", None), ("10.0.0.1-10.0.0.9", None), ("fe80::1", None), ("10.0.0.256", None), ("10.0.0.1,,10.0.0.2", None),
])
def test_scope_validation_and_the_role_pattern_agree(scope, ok):
    with open(os.path.join(ROOT, "roles", "fix_port25_blocked", "vars", "main.yml")) as fh:
        assert yaml.safe_load(fh)["fix_port25_blocked_scope_item"] == port25_blocked.SCOPE_ITEM
    if ok is None:
        with pytest.raises(FixError, match="mailflow_port25_scope"):
            port25_blocked.fix_params({"scope": scope}, {})
        if scope.strip() != "*":  # what the role's assert does with the same pattern
            assert not all(re.match(port25_blocked.SCOPE_ITEM, i.strip()) for i in scope.split(","))
    else:
        assert port25_blocked.fix_params({"scope": scope}, {}) == {"scope": ok}


def test_failed_verification_deletes_the_opening_again(lab, tmp_path):
    # The verifying read stops short of GloballyOpenPorts\List (as a wrong knowledge override would), so the new
    # opening is never seen: the fix must delete it again and fail, saying so.
    override = json.dumps({"mailflow_knowledge": {"collect": {"firewall_policy": {"depth": 2}}}})
    proc = play(lab, tmp_path, "-e", override)
    assert proc.returncode != 0
    assert "verification failed" in proc.stdout and "restored from the backup" in proc.stdout, proc.stdout[-2000:]
    assert port25(lab) is None
    assert [p[2] for p in lab.metrics.snapshot()["EXCH03"]["processes"]] == ["add", "delete"]
    assert fixplay.backup(tmp_path, "EXCH03", CAUSE)["state"] == "restored"
