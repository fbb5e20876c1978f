"""mailflow.exchange.fix_greylist_hotfix_missing on the lab (EXCH05 needs KB950757, RELAY01 KB934709):
report-only without a package; with packages (local on EXCH05, UNC from EXCH05's admin share on RELAY01)
check mode touches nothing, the install makes the audit absent, a second run changes nothing; bad paths fail
before any host is touched; a verification failure says the package cannot be taken back."""
from __future__ import annotations

import glob
import json
import re

import pytest

from tests.support import fixplay
from ansible_collections.mailflow.exchange.plugins.module_utils import knowledge
from ansible_collections.mailflow.exchange.plugins.module_utils.causes import greylist_hotfix_missing as cause
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import FixError

pytestmark = [pytest.mark.slow, pytest.mark.integration]
CAUSE = "greylist_hotfix_missing"
EXCH_PKG = r"C:\Hotfixes\Exchange2003-KB950757-x86-ENU.exe"
RELAY_PKG = r"C:\Hotfixes\WindowsServer2003-KB934709-x86-ENU.exe"  # on EXCH05; RELAY01 reads it over C$
RELAY_UNC = r"\\EXCH05\C$\Hotfixes\WindowsServer2003-KB934709-x86-ENU.exe"
PACKAGES = {"EXCH05": EXCH_PKG, "RELAY01": RELAY_UNC}


@pytest.fixture
def lab(lab_factory):
    data = fixplay.demo_subset("EXCH05", "RELAY01")
    files = data["hosts"]["EXCH05"].setdefault("files", {})
    for path in (EXCH_PKG, RELAY_PKG):
        files[path] = {"mtime": "now-1d", "text": "MZ - the lab's stand-in for the hotfix package"}
    return lab_factory(data)


def play(lab, tmp_path, *extra, packages=None, limit="EXCH05,RELAY01"):
    host_vars = {host: {"mailflow_greylist_hotfix_package": path} for host, path in (packages or {}).items()}  # per host
    return fixplay.play(lab, tmp_path, CAUSE, *extra, limit=limit, host_vars=host_vars)


def hotfixes(lab, host):
    return {q["HotFixID"] for q in lab.fleet.host(host).wmi["root\\cimv2"]["Win32_QuickFixEngineering"]}


def status(lab):
    found = fixplay.findings(lab, CAUSE)
    return {h: found[h]["status"] for h in ("EXCH05", "RELAY01")}


def processes(lab, host):
    return lab.metrics.snapshot().get(host, {}).get("processes", [])


def test_install_from_local_and_unc_packages_makes_the_audit_clean(lab, tmp_path):
    before = {h: hotfixes(lab, h) for h in ("EXCH05", "RELAY01")}
    assert status(lab) == {"EXCH05": "present", "RELAY01": "present"}
    assert "KB950757" not in before["EXCH05"] and "KB934709" not in before["RELAY01"]

    proc = play(lab, tmp_path, "--check", "--diff", packages=PACKAGES)
    assert proc.returncode == 0 and fixplay.changed(proc) == {"EXCH05": 1, "RELAY01": 1}, proc.stdout[-2000:]
    assert f"KB934709 from {RELAY_UNC} = installed" in proc.stdout
    assert {h: hotfixes(lab, h) for h in before} == before and not processes(lab, "EXCH05") and not processes(lab, "RELAY01")

    proc = play(lab, tmp_path, packages=PACKAGES)
    assert proc.returncode == 0 and fixplay.changed(proc) == {"EXCH05": 1, "RELAY01": 1}, proc.stdout[-3000:]
    assert processes(lab, "EXCH05") == [[EXCH_PKG, "/quiet", "/norestart"]]
    assert processes(lab, "RELAY01") == [[RELAY_UNC, "/quiet", "/norestart"]]
    assert hotfixes(lab, "EXCH05") == before["EXCH05"] | {"KB950757"}
    assert hotfixes(lab, "RELAY01") == before["RELAY01"] | {"KB934709"}
    assert lab.fleet.host("RELAY01").registry.key_exists(r"HKLM\SOFTWARE\Microsoft\Updates\Windows Server 2003\SP3\KB934709")
    out = proc.stdout + proc.stderr
    assert "a reboot is pending" in out and "pending restart of SMTPSVC" in out  # 3010; held mail waits for SMTP
    assert all(c["reboots"] == 0 and not c["service_restarts"] for c in lab.metrics.snapshot().values())
    doc = fixplay.backup(tmp_path, "RELAY01", CAUSE)
    assert doc["state"] == "verified" and doc["changes"][0]["kind"] == "package"
    assert doc["changes"][0]["target"]["path"] == RELAY_UNC and doc["changes"][0]["before"] == "missing"
    assert status(lab) == {"EXCH05": "absent", "RELAY01": "absent"}

    proc = play(lab, tmp_path, packages=PACKAGES)
    assert proc.returncode == 0 and fixplay.changed(proc) == {"EXCH05": 0, "RELAY01": 0}, proc.stdout[-2000:]
    assert len(processes(lab, "EXCH05")) == 1 and len(processes(lab, "RELAY01")) == 1


def test_without_a_package_it_only_advises_and_bad_paths_touch_nothing(lab, tmp_path):
    before = {h: hotfixes(lab, h) for h in ("EXCH05", "RELAY01")}
    proc = play(lab, tmp_path)
    assert proc.returncode == 0 and fixplay.changed(proc) == {"EXCH05": 0, "RELAY01": 0}, proc.stdout[-2000:]
    out = proc.stdout + proc.stderr
    assert "KB950757 is not installed and nothing was installed" in out and "KB934709 is not installed" in out
    assert "mailflow_greylist_hotfix_package" in out
    assert {h: hotfixes(lab, h) for h in before} == before and not processes(lab, "EXCH05") and not processes(lab, "RELAY01")
    assert not glob.glob(str(tmp_path / "backups" / "*"))

    lab.metrics.reset()
    proc = play(lab, tmp_path, "-e", r"mailflow_greylist_hotfix_package=C:\Hotfixes\notes.txt")
    assert proc.returncode != 0 and "mailflow_greylist_hotfix_package must be" in proc.stdout, proc.stdout[-1500:]
    assert all(c["winrm_commands"] == 0 for c in lab.metrics.snapshot().values())
    assert {h: hotfixes(lab, h) for h in before} == before


@pytest.mark.parametrize("path, why", [
    (r"C:\Hotfixes\Exchange2003-KB950757-x86-ENU.txt", "an .exe or .msp"),
    ('C:\\Hotfixes\\Exchange2003-KB950757-x86-ENU.exe" /extract:C:\\x', "without quotes"),
    ("C:\\Hotfixes\\Exchange2003-KB950757\r\n-x86-ENU.exe", "line breaks"),
    (r"Exchange2003-KB950757-x86-ENU.exe", "local (C:\\...) or UNC"),
    (r"\\fileserver\Exchange2003-KB950757-x86-ENU.exe", "local (C:\\...) or UNC"),
    (r"C:\Hotfixes\Exchange2003-KB123456-x86-ENU.exe", "names KB123456"),
    (r"C:\Hotfixes\hotfix.exe", "names no KB article"),
])
def test_package_paths_the_action_refuses(path, why):
    with pytest.raises(FixError, match=re.escape(why)) as exc:
        cause.fix_params({"package": path}, knowledge.load())
    assert "mailflow_greylist_hotfix_package" in str(exc.value)


def test_a_package_the_verifying_read_cannot_see_is_reported_as_not_undone(lab, tmp_path):
    # The verifying read asks WMI for another hotfix than the one installed (as a wrong knowledge override
    # would): the package has run and cannot be taken back, and the task must say so.
    override = json.dumps({"mailflow_knowledge": {"collect": {"hotfixes": {
        "query": "SELECT * FROM Win32_QuickFixEngineering WHERE HotFixID = 'KB000000'"}}}})
    proc = play(lab, tmp_path, "-e", override, packages=PACKAGES, limit="EXCH05")
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "verification failed" in proc.stdout and "not reversible on the host, left as applied: KB950757" in proc.stdout
    assert "KB950757" in hotfixes(lab, "EXCH05")  # it did install: nothing on the host takes a hotfix back
    doc = fixplay.backup(tmp_path, "EXCH05", CAUSE)
    assert doc["changes"][0]["target"]["path"] == EXCH_PKG and doc["state"] == "not_restored"
    assert "nothing to restore" in proc.stdout
