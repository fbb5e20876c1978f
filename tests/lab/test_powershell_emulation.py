"""Contract: every runner operation exists on both sides and means the same thing.

The PowerShell side is pinned by hash and checked by the PS 2.0 gate; here each
operation goes through real WinRM (pywinrm) to the lab, and what comes back is
checked against the lab's raw state, or what it changed is.
"""
import hashlib
import re

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils import psrunner, snapshot
from ansible_collections.mailflow.exchange.plugins.module_utils.psrunner import Op
from lab.shell.powershell import EMULATED, DispatcherEmulation
from tests.lab.winrm_client import run_ops

QUEUING = r"HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC\Queuing"
SCENARIO = {
    "organization": {"name": "Corp", "administrative_group": "First Administrative Group", "domain_dn": "DC=corp,DC=example"},
    "defaults": {"username": "Administrator", "password": "Lab-Passw0rd!"},
    "hosts": {
        "EXA": {"base": ["exchange2003_sp2", "symantec_antivirus_ce9"], "address": "127.0.30.1",
                "registry": {QUEUING: {"GlitchRetrySeconds": {"type": "REG_DWORD", "data": 30}}},
                "tcp_connections": [{"local": "127.0.30.1:1042", "remote": "127.0.30.2:25", "state": "ESTABLISHED"},
                                    {"local": "127.0.30.1:1043", "remote": "127.0.30.2:80", "state": "ESTABLISHED"}],
                "events": [{"log": "Application", "source": "MSExchangeTransport", "event_id": 4006, "type": "Warning",
                            "category": "Connection Manager", "time": "now-1h", "message": "The connection was dropped by the remote host 127.0.30.2, relay.corp.example; the semaphore timeout period has expired."},
                           {"log": "Application", "source": "MSExchangeIS", "event_id": 9523, "type": "Error", "time": "now-1h", "message": "other"}]},
        "RELAY": {"base": ["smtp_relay_w2003"], "address": "127.0.30.2"},
    },
}


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def test_the_lab_emulates_exactly_the_shipped_scripts():
    assert EMULATED == {"bootstrap": sha(psrunner.bootstrap_script()), "dispatcher": sha(psrunner.dispatcher_script())}, (
        "the PowerShell changed: review lab/shell/powershell.py against it, then pin with `python -m lab pin`")


def test_every_operation_exists_on_both_sides():
    main = psrunner.read_script("main.ps1")
    table = dict(re.findall(r"'(\w+)' = '(Op-\w+)'", main))
    defined = set(re.findall(r"^function (Op-\w+)", psrunner.read_script("dispatcher.ps1"), re.M))
    assert set(table) | {"tcp_probe"} == set(psrunner.OPERATIONS)
    assert set(table.values()) <= defined
    assert "function Probe-Batch" in psrunner.read_script("probe.ps1")
    for name in set(psrunner.OPERATIONS) - {"tcp_probe"}:
        assert hasattr(DispatcherEmulation, "op_" + name), name


@pytest.fixture
def lab(lab_factory):
    return lab_factory(SCENARIO)


def test_registry_read_write_delete(lab):
    host = lab.fleet.host("EXA")
    w, r, d, gone = run_ops(lab, "EXA", [
        Op("reg_write", (QUEUING, "GlitchRetrySeconds", "DWord", "4294967295")),
        Op("reg_read", (QUEUING, "0")),
        Op("reg_delete", (QUEUING, "GlitchRetrySeconds")),
        Op("reg_read", (r"HKLM\SOFTWARE\NoSuchVendor", "0")),
    ])
    assert w.first("prev") == {"existed": 1, "type": "DWord", "data": 30}
    value = r.first("value")
    assert (value["name"], value["type"], value["data"]) == ("GlitchRetrySeconds", "DWord", -1)  # .NET Int32
    assert snapshot._decode(r)[r.rows[0][1]["path"]]["values"]["GlitchRetrySeconds"] == {"type": "REG_DWORD", "data": 4294967295}
    assert d.first("prev")["data"] == -1
    assert host.registry.get(QUEUING, "GlitchRetrySeconds") is None
    assert gone.first("missing") == {"path": r"HKLM\SOFTWARE\NoSuchVendor"}


def test_registry_write_creates_the_key_and_refuses_bad_numbers(lab):
    key = r"HKLM\SOFTWARE\mailflow\Test"
    ok, bad = run_ops(lab, "EXA", [Op("reg_write", (key, "Multi", "MultiString", "a\0b")),
                                   Op("reg_write", (key, "N", "DWord", "-5"))])
    assert ok.first("prev") == {"existed": 0}
    assert lab.fleet.host("EXA").registry.get(key, "Multi").data == ["a", "b"]
    assert bad.error and lab.fleet.host("EXA").registry.get(key, "N") is None


def test_files(lab):
    host = lab.fleet.host("EXA")
    mb, hist, missing = run_ops(lab, "EXA", [
        Op("file_read", (r"%SystemRoot%\system32\inetsrv\MetaBase.xml", "10000000")),
        Op("file_list", (r"%SystemRoot%\system32\inetsrv\History", "0", "*.xml", "100")),
        Op("file_read", (r"C:\nope.txt", "10")),
    ])
    assert mb.first("file")["data"] == host.files.read(host.metabase_path).data
    names = {r["path"].rsplit("\\", 1)[1] for r in hist.of_kind("file")}
    assert names == {p.rsplit("\\", 1)[1] for p, _ in host.files.listdir(host.system_root + r"\system32\inetsrv\History")}
    assert missing.first("missing")


def test_active_directory_search_and_write(lab):
    (search,) = run_ops(lab, "EXA", [Op("adsi_search", ("", "(&(objectClass=protocolCfgSMTPServer)(cn=1))", ("cn", "msExchSmtpSmartHost")))])
    dns = [e["dn"] for e in search.of_kind("entry")]
    assert any(",CN=EXA," in dn for dn in dns)
    vs = next(dn for dn in dns if ",CN=EXA," in dn)
    write, = run_ops(lab, "EXA", [Op("adsi_write", (vs, "msExchSmtpSmartHost", ("[10.0.0.5]",), "string"))])
    assert write.first("prev") == {"values": []}
    assert lab.fleet.ad.get(vs)["msExchSmtpSmartHost"] == ["[10.0.0.5]"]


def test_wmi_eventlog_features_connections(lab):
    os_, links, feats, events, conns, nons = run_ops(lab, "EXA", [
        Op("wmi_query", (r"root\cimv2", "SELECT * FROM Win32_OperatingSystem", ("Version", "CSDVersion"))),
        Op("wmi_query", (r"root\MicrosoftExchangeV2", "SELECT * FROM Exchange_SMTPLink WHERE StateFlags > 0", ("LinkName",))),
        Op("msi_features", ("%Symantec%",)),
        Op("eventlog", ("Application", "MSExchangeTransport", ("4006",), "2000-01-01T00:00:00Z", "50")),
        Op("tcp_connections", ("25",)),
        Op("wmi_query", (r"root\NoSuch", "SELECT * FROM X", ())),
    ])
    assert os_.first("object") == {"Version": "5.2.3790", "CSDVersion": "Service Pack 2"}
    assert links.error is None
    assert any("mail" in (f["caption"] or "").lower() for f in feats.of_kind("feature"))
    (event,) = events.of_kind("event")
    assert event["id"] == 4006 and "semaphore timeout" in event["message"]
    assert [c["remote"] for c in conns.of_kind("conn")] == ["127.0.30.2:25"]
    assert nons.error.startswith("Invalid namespace")


def test_service_control_changes_what_peers_see(lab):
    stop, = run_ops(lab, "RELAY", [Op("service_control", ("SMTPSVC", "stop", "30"))])
    assert stop.first("prev")["state"] == "Running" and stop.first("service")["state"] == "Stopped"
    probe, = run_ops(lab, "EXA", [Op("tcp_probe", ("relay.corp.example", "25", "800", "exa.corp.example", "a@corp.example", "b@corp.example"))])
    assert probe.first("probe")["connect"] == "refused"
    _, disabled, start = run_ops(lab, "RELAY", [Op("service_control", ("SMTPSVC", "disabled", "30")),
                                                 Op("service_control", ("SMTPSVC", "start", "30")),
                                                 Op("service_query", (("SMTPSVC", "NoSuchSvc"),))])
    assert disabled.first("failed") == {"code": 14}  # Win32_Service: Service Disabled
    assert start.first("service")["start_mode"] == "Disabled" and start.first("missing") == {"name": "NoSuchSvc"}


def test_service_control_stop_of_a_stopped_service_is_a_no_op_as_in_the_dispatcher(lab):
    # dispatcher.ps1 skips StopService when the service is Stopped and StartService when it is Running.
    first, again, start, start_again = run_ops(lab, "RELAY", [Op("service_control", ("SMTPSVC", "stop", "30")),
                                                              Op("service_control", ("SMTPSVC", "stop", "30")),
                                                              Op("service_control", ("SMTPSVC", "start", "30")),
                                                              Op("service_control", ("SMTPSVC", "start", "30"))])
    assert first.first("failed") is None and again.first("failed") is None and again.first("service")["state"] == "Stopped"
    assert start_again.first("failed") is None and start_again.first("service")["state"] == "Running"
