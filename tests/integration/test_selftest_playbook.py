"""ansible-playbook playbooks/selftest.yml against the lab: it passes on the demo fleet, changes nothing, uses one
command per host, and names the failing operation and host when a lab host is given a fault."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest
import yaml

from lab.scenario import fleet_to_plain
from tests.conftest import ROOT, demo_data

pytestmark = [pytest.mark.slow, pytest.mark.integration]
PLAYBOOK = os.path.join(ROOT, "playbooks", "selftest.yml")
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def run_selftest(lab, tmp_path, mutate_inventory=None):
    inv = lab.inventory()
    if mutate_inventory:
        mutate_inventory(inv)
    inv_path = tmp_path / "hosts.yml"
    inv_path.write_text(yaml.safe_dump(inv))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(inv_path), PLAYBOOK, "-e", f"mailflow_report_root={tmp_path / 'reports'}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    found = sorted((tmp_path / "reports").glob("selftest-*/selftest.json")) if (tmp_path / "reports").exists() else []
    doc = json.loads(found[-1].read_text()) if found else None
    return proc, doc


def rows(doc, host) -> dict[str, dict]:
    return {r["check"]: r for r in doc["hosts"][host]["rows"]}


def small_fleet() -> dict:
    data = demo_data()
    data["hosts"] = {n: data["hosts"][n] for n in ("EXCH01", "EXCH02", "RELAY01")}
    data["network"] = {}
    return data


def test_the_demo_fleet_passes_read_only_in_one_command_per_host(lab_factory, tmp_path):
    lab = lab_factory(demo_data())
    before = copy.deepcopy(fleet_to_plain(lab.fleet))
    lab.metrics.reset()
    proc, doc = run_selftest(lab, tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    managed = sorted(n for n, h in lab.fleet.hosts.items() if h.winrm)
    assert sorted(doc["hosts"]) == managed and doc["failed"] == []
    for host in managed:
        checks = rows(doc, host)
        assert all(r["status"] in ("ok", "warn", "n/a") for r in checks.values() if r["needed_by"] == "audit"), (host, checks)
        assert checks["stdin"]["status"] == "ok" and checks["request_size"]["status"] == "ok"
        assert lab.metrics.snapshot()[host]["winrm_commands"] == 1
    ex1 = rows(doc, "EXCH01")
    assert "this host's (EXCH01) among them" in ex1["ldap"]["detail"] and ex1["metabase"]["status"] == "ok"
    assert rows(doc, "RELAY01")["exchange_wmi"]["status"] == "n/a"
    ex7 = rows(doc, "EXCH07")
    assert ex7["probe"]["status"] == "warn"  # its SMTP service is stopped: the audit's business
    # Its MetaBase.xml is cut short, so IIS Admin serves no metabase: the fixes' ADSI writes would fail there.
    assert ex7["iis_adsi"]["status"] == "failed" and doc["hosts"]["EXCH07"]["status"] == "warn"
    assert fleet_to_plain(lab.fleet) == before
    md = next((tmp_path / "reports").glob("selftest-*/selftest.md")).read_text()
    assert "## EXCH01: ok" in md and "| ldap | audit | ok |" in md
    assert "EXCH03: " in proc.stdout.split("TASK [Matrix]")[1]


def test_a_fault_names_the_host_the_operation_and_what_to_do(lab_factory, tmp_path):
    data = small_fleet()
    data["hosts"]["EXCH02"]["windows_components"] = {"wmi_installer_provider": False}  # harmless now: COM answers
    data["hosts"]["EXCH02"]["wmi_unresponsive"] = ["root\\MicrosoftExchangeV2"]
    data["hosts"]["RELAY01"]["winrm_config"] = {"MaxMemoryPerShellMB": 40}
    lab = lab_factory(data)

    def ntlm_without_ad_credentials(inv):
        inv["all"]["vars"].update(ansible_winrm_transport="ntlm", ansible_winrm_scheme="http", ansible_port=5985,
                                  mailflow_ad_username="")

    proc, doc = run_selftest(lab, tmp_path, ntlm_without_ad_credentials)
    assert proc.returncode != 0
    assert sorted(doc["failed"]) == ["EXCH01", "EXCH02", "RELAY01"]
    # The second hop: LDAP refused on every host, with the variable to set.
    for host in ("EXCH01", "EXCH02", "RELAY01"):
        ldap = rows(doc, host)["ldap"]
        assert ldap["status"] == "failed" and "0x80072020" in ldap["detail"] and "mailflow_ad_username" in ldap["todo"]
    ex2 = rows(doc, "EXCH02")
    assert ex2["exchange_wmi"]["status"] == "failed" and "Timed out" in ex2["exchange_wmi"]["detail"]
    assert ex2["msi"]["status"] == "ok"  # no Win32_SoftwareFeature provider, Windows Installer still answers
    relay = rows(doc, "RELAY01")
    assert relay["metabase"]["status"] == "failed" and "OutOfMemoryException" in relay["metabase"]["detail"]
    assert "MaxMemoryPerShellMB" in relay["metabase"]["todo"]
    out = proc.stdout
    assert "EXCH02: ldap:" in out and "EXCH02: exchange_wmi:" in out and "RELAY01: metabase:" in out


def test_a_host_whose_winrm_takes_less_than_the_runner_sends_is_named(lab_factory, tmp_path):
    data = small_fleet()
    data["hosts"]["EXCH02"]["winrm_config"] = {"MaxEnvelopeSizekb": 100}
    lab = lab_factory(data)
    lab.metrics.reset()
    proc, doc = run_selftest(lab, tmp_path)
    assert proc.returncode != 0 and doc["failed"] == ["EXCH02"]
    size = rows(doc, "EXCH02")["request_size"]
    assert size["status"] == "failed" and "mailflow_winrm_max_envelope_kb" in size["todo"]
    # The small second command still tried everything else.
    assert rows(doc, "EXCH02")["ldap"]["status"] == "ok" and lab.metrics.snapshot()["EXCH02"]["winrm_commands"] == 2
    # Told the host's size, the runner sends what it takes, and the self-test passes.
    (tmp_path / "again").mkdir()
    proc, doc = run_selftest(lab, tmp_path / "again",
                             lambda inv: inv["all"]["children"]["mailflow_servers"]["hosts"]["EXCH02"].update(
                                 mailflow_winrm_max_envelope_kb=100))
    assert proc.returncode == 0, proc.stdout[-3000:]
