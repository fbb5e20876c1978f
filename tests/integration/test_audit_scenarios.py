"""The audit over lab scenarios that combine causes on one host, several virtual servers, and hosts that are down.

Snapshots are taken in-process (tests/support/snapshots.py: the collection's
own plan, scripts as the lab runs them, and decoder), and decided by the same
audit.run the playbook uses.
"""
from __future__ import annotations

import copy

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils import audit
from tests.conftest import demo_data
from tests.support import snapshots

pytestmark = [pytest.mark.integration]


def audit_of(lab, snaps=None, **kw):
    snaps = snaps if snaps is not None else snapshots.take_fleet(lab)
    return audit.run(snapshots.fleet(lab, snaps, **kw), generated="2026-11-23T00:00:00Z", check_mode=True)


def findings(doc, host):
    return {f["cause"]: f for f in doc["hosts"][host]["findings"]}


def small_fleet(extra_exch02: dict) -> dict:
    """EXCH01, EXCH02 (with `extra_exch02` layered on), EXCH55 and RELAY01 from the demo scenario."""
    data = demo_data()
    data["hosts"] = {n: data["hosts"][n] for n in ("EXCH01", "EXCH02", "EXCH55", "RELAY01")}
    data["network"] = {}
    ex2 = data["hosts"]["EXCH02"]
    for key, value in extra_exch02.items():
        if isinstance(value, dict) and isinstance(ex2.get(key), dict):
            ex2[key] = {**ex2[key], **copy.deepcopy(value)}
        else:
            ex2[key] = copy.deepcopy(value)
    return data


def test_four_causes_on_one_host_are_all_found_and_ranked(lab_factory):
    data = small_fleet({
        "base": ["exchange2003_sp2", "symantec_antivirus_ce9"],
        # No folder exclusions, and a smart host list with an unbracketed IP before an FQDN.
        "registry": {r"HKLM\SOFTWARE\Intel\LANDesk\VirusProtect6\CurrentVersion\Storages\Filesystem\RealTimeScan":
                     {"HaveExceptionDirs": {"type": "REG_DWORD", "data": 0}}},
        "metabase": {"locations": {"/LM/SmtpSvc/1": {"SmartHost": "10.1.1.1;mail.partner.example", "SmartHostType": 2,
                                                     "ConnectResponse": ""}}},
        "ad": {"smtp_virtual_servers": {"1": {"msExchSmtpSmartHost": "10.1.1.1;mail.partner.example", "msExchSmtpSmartHostType": 2}}},
    })
    # EXCH02's own SAV 10.1 (feature absent) gives way to the template's SAV CE 9 (feature installed).
    ex2 = data["hosts"]["EXCH02"]
    del ex2["wmi"]["root\\cimv2"]["Win32_SoftwareFeature"]
    ex2["registry"] = {k: v for k, v in ex2["registry"].items() if "Uninstall" not in k}
    lab = lab_factory(data)
    doc = audit_of(lab)
    got = {c for c, f in findings(doc, "EXCH02").items() if f["status"] == "present"}
    assert got == {"sav_internet_email_autoprotect", "av_scans_iis_folders", "smarthost_misconfigured", "smtp_banner_missing"}
    f = findings(doc, "EXCH02")
    problems = " ".join(f["smarthost_misconfigured"]["evidence"]["problems"])
    assert "must be in brackets" in problems and "FQDN entries must come before IP entries" in problems
    assert sorted(x["rank"] for x in f.values() if x["status"] == "present") == [1, 2, 3, 4]
    assert f["sav_internet_email_autoprotect"]["rank"] < f["smtp_banner_missing"]["rank"]  # KB 919091 order
    # The neighbours are untouched by EXCH02's troubles.
    assert all(x["status"] != "present" for x in findings(doc, "EXCH01").values())


def test_several_virtual_servers_each_read(lab_factory):
    lab = lab_factory(small_fleet({
        "metabase": {"locations": {
            "/LM/SmtpSvc/2": {"ServerComment": "Partner relay", "ServerBindings": ":2525:", "SmartHost": "[10.2.2.2]", "SmartHostType": 2},
        }},
        "ad": {"smtp_virtual_servers": {"2": {"msExchSmtpSmartHost": "relayhost", "msExchSmtpSmartHostType": 2}}},
    }))
    doc = audit_of(lab)
    f = findings(doc, "EXCH02")["smarthost_misconfigured"]
    assert f["status"] == "present"
    servers = f["evidence"]["virtual_servers"]
    assert set(servers) == {"1", "2"} and servers["2"]["smart_host"] == "relayhost" and servers["2"]["source"] == "AD"
    assert servers["2"]["note"].startswith("the metabase differs from AD")
    assert any("relayhost: not a fully qualified domain name" in p for p in f["evidence"]["problems"])


def test_a_host_that_is_down_is_unknown_locally_and_unavailable_to_its_peers(lab_factory):
    data = small_fleet({})
    data["hosts"]["EXCH02"]["services"] = {"SMTPSVC": {"display_name": "Simple Mail Transfer Protocol (SMTP)", "state": "stopped"}}
    lab = lab_factory(data)
    snaps = snapshots.take_fleet(lab)
    snaps["EXCH02"] = None  # WinRM did not answer either
    doc = audit_of(lab, snaps)
    f = findings(doc, "EXCH02")
    assert f["peer_smtp_unavailable"]["status"] == "present" and f["peer_smtp_unavailable"]["confidence"] == "inferred"
    assert f["sav_internet_email_autoprotect"]["status"] == "unknown"
    assert "unreachable" in f["sav_internet_email_autoprotect"]["reason"]
    assert doc["hosts"]["EXCH02"]["reachable"] is False
