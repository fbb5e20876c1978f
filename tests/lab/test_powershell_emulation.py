"""Contract: every runner operation exists on both sides and means the same thing.

The PowerShell side is pinned by hash and checked by the PS 2.0 gate; here each
operation goes through real WinRM (pywinrm) to the lab, and what comes back is
checked against the lab's raw state, or what it changed is.
"""
import copy
import hashlib
import re

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils import psrunner, snapshot
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import HostView, Missing
from ansible_collections.mailflow.exchange.plugins.module_utils.psrunner import Op
from lab.shell.powershell import EMULATED, DispatcherEmulation, as_received
from tests.lab.winrm_client import run_ops, run_raw

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
    assert EMULATED == {"bootstrap": sha(psrunner.bootstrap_script()), "dispatcher": sha(as_received(psrunner.dispatcher_script()))}, (
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
    assert ok.first("prev") == {"existed": 0, "created": r"HKLM\SOFTWARE\mailflow"}  # the outermost key it made
    assert lab.fleet.host("EXA").registry.get(key, "Multi").data == ["a", "b"]
    assert bad.error and lab.fleet.host("EXA").registry.get(key, "N") is None


def test_registry_prune_takes_back_only_the_empty_keys_a_write_created(lab):
    reg = lab.fleet.host("EXA").registry
    made, again = run_ops(lab, "EXA", [Op("reg_write", (r"HKLM\SOFTWARE\mailflow\A\B", "V", "DWord", "1")),
                                       Op("reg_write", (r"HKLM\SOFTWARE\mailflow\A", "W", "DWord", "2"))])
    assert made.first("prev")["created"] == r"HKLM\SOFTWARE\mailflow" and again.first("prev") == {"existed": 0}
    # W still sits in A: the prune deletes B and keeps A (and so mailflow).
    _, kept = run_ops(lab, "EXA", [Op("reg_delete", (r"HKLM\SOFTWARE\mailflow\A\B", "V")),
                                  Op("reg_prune", (r"HKLM\SOFTWARE\mailflow\A\B", r"HKLM\SOFTWARE\mailflow"))])
    assert [k for k, _ in kept.rows] == ["deleted", "kept"]
    assert not reg.key_exists(r"HKLM\SOFTWARE\mailflow\A\B") and reg.key_exists(r"HKLM\SOFTWARE\mailflow\A")
    _, gone, twice, outside = run_ops(lab, "EXA", [
        Op("reg_delete", (r"HKLM\SOFTWARE\mailflow\A", "W")),
        Op("reg_prune", (r"HKLM\SOFTWARE\mailflow\A\B", r"HKLM\SOFTWARE\mailflow")),
        Op("reg_prune", (r"HKLM\SOFTWARE\mailflow\A\B", r"HKLM\SOFTWARE\mailflow")),
        Op("reg_prune", (r"HKLM\SOFTWARE\Microsoft", r"HKLM\SOFTWARE\mailflow"))])
    assert [k for k, _ in gone.rows] == ["missing", "deleted", "deleted"]
    assert not reg.key_exists(r"HKLM\SOFTWARE\mailflow") and reg.key_exists(r"HKLM\SOFTWARE")
    assert [k for k, _ in twice.rows] == ["missing", "missing", "missing"]  # a second undo changes nothing
    assert outside.error and reg.key_exists(r"HKLM\SOFTWARE\Microsoft")


def test_registry_binary_and_one_item_multi_string_round_trip(lab):
    # A bare `return $key.GetValue(...)` unrolled these: bytes into numbers, one string out of its list.
    key = r"HKLM\SOFTWARE\mailflow\Kinds"
    run_ops(lab, "EXA", [Op("reg_write", (key, "Bin", "Binary", "00ff10")), Op("reg_write", (key, "One", "MultiString", "only")),
                         Op("reg_write", (key, "Empty", "MultiString", "")), Op("reg_write", (key, "B1", "Binary", "7f"))])
    (read,) = run_ops(lab, "EXA", [Op("reg_read", (key, "0"))])
    values = snapshot._decode(read)[key]["values"]
    assert values["Bin"] == {"type": "REG_BINARY", "data": "00ff10"}
    assert values["B1"] == {"type": "REG_BINARY", "data": "7f"}
    assert values["One"] == {"type": "REG_MULTI_SZ", "data": ["only"]}
    assert values["Empty"] == {"type": "REG_MULTI_SZ", "data": [""]}
    # The prev rows a backup records restore the same bytes and list.
    bin_prev, one_prev = run_ops(lab, "EXA", [Op("reg_write", (key, "Bin", "Binary", "01")), Op("reg_write", (key, "One", "MultiString", "x\0y"))])
    assert bin_prev.first("prev")["data"] == b"\x00\xff\x10" and one_prev.first("prev")["data"] == ["only"]


def test_an_unreadable_subkey_costs_that_subkey_only(lab_factory):
    uninstall = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall"
    data = copy.deepcopy(SCENARIO)
    data["hosts"]["EXA"]["registry_unreadable"] = [uninstall + r"\{5A8E4C1D-7E2B-4C59-A3F1-0B9D6E2F4A17}"]
    lab = lab_factory(data)
    read, feats = run_ops(lab, "EXA", [Op("reg_read", (uninstall, "1")), Op("msi_features", ("*Symantec*",))])
    assert read.error is None
    keys = snapshot._decode(read)
    assert "Requested registry access is not allowed." in keys[uninstall]["denied"]["{5A8E4C1D-7E2B-4C59-A3F1-0B9D6E2F4A17}"]
    assert any(k.endswith("Exchange") or "Exchange" in str(v["values"].get("DisplayName")) for k, v in keys.items())
    view = HostView({"items": {"installed_products": keys}})
    with pytest.raises(Missing, match="could not be read"):
        view.reg_value("installed_products", "DisplayName", r"{5A8E4C1D-7E2B-4C59-A3F1-0B9D6E2F4A17}")
    # The product the account cannot read makes the feature list unknown, not empty.
    assert snapshot.item_error(feats) and "{5A8E4C1D" in snapshot.item_error(feats)


def test_files_arrive_in_chunks_within_the_shell_memory_quota(lab_factory):
    data = copy.deepcopy(SCENARIO)
    big = bytes(range(256)) * 4096  # 1 MiB: 16 chunks
    data["hosts"]["EXA"]["files"] = {r"C:\big.bin": {"hex": big.hex(), "mtime": "now-1h"},
                                     r"C:\Exchsrvr\Queue\a.eml": {"text": "x", "mtime": "now-1h"},
                                     r"C:\Exchsrvr\Queue\b.eml": {"text": "y", "mtime": "now-1h", "transient": True},
                                     r"C:\Exchsrvr\Queue\c.eml": {"text": "z", "mtime": "now-1h"}}
    lab = lab_factory(data)
    host = lab.fleet.host("EXA")
    mb, whole, hist, missing, queue = run_ops(lab, "EXA", [
        Op("file_read", (r"%SystemRoot%\system32\inetsrv\MetaBase.xml", "10000000", "512")),
        Op("file_read", (r"C:\big.bin", "10000000", str(psrunner.FILE_CHUNK_BYTES))),
        Op("file_list", (r"%SystemRoot%\system32\inetsrv\History", "0", "*.xml", "100")),
        Op("file_read", (r"C:\nope.txt", "10", "10")),
        Op("file_list", (r"C:\Exchsrvr\Queue", "0", "*.eml", "100")),
    ])
    meta, content = psrunner.file_data(mb)
    assert content == host.files.read(host.metabase_path).data and len(mb.of_kind("chunk")) > 1
    assert psrunner.file_data(whole)[1] == big and len(whole.of_kind("chunk")) == 16
    names = {r["path"].rsplit("\\", 1)[1] for r in hist.of_kind("file")}
    assert names == {p.rsplit("\\", 1)[1] for p, _ in host.files.listdir(host.system_root + r"\system32\inetsrv\History")}
    assert missing.first("missing")
    # A queue file delivered between the listing and its read costs its own row, not the listing.
    listing = snapshot._decode(queue)
    assert [f["path"].rsplit("\\", 1)[1] for f in listing["files"]] == ["a.eml", "c.eml"] and listing["vanished"] == 1
    assert host.files.read(r"C:\Exchsrvr\Queue\b.eml") is None
    # One row of a whole 8 MiB file would need ~16x it: past WinRM 2.0's MaxMemoryPerShellMB 150, as the old script was.
    host.files.write(r"C:\mb8.xml", b"<" * (8 << 20), "2026-01-01T00:00:00Z")
    chunked, one_row = run_ops(lab, "EXA", [Op("file_read", (r"C:\mb8.xml", str(8 << 20), str(psrunner.FILE_CHUNK_BYTES))),
                                            Op("file_read", (r"C:\mb8.xml", str(8 << 20), str(8 << 20)))])
    assert chunked.error is None and len(psrunner.file_data(chunked)[1]) == 8 << 20
    assert one_row.error == "Exception of type 'System.OutOfMemoryException' was thrown."


def _ad_scenario(**exa):
    data = copy.deepcopy(SCENARIO)
    data["hosts"]["EXA"].update(exa)
    return data


def test_active_directory_over_ntlm_needs_explicit_credentials(lab):
    search = Op("adsi_search", ("", "(&(objectClass=protocolCfgSMTPServer)(cn=1))", ("cn", "msExchSmtpSmartHost")))
    # NTLM: no credentials for the second hop, so LDAP is anonymous and the DC refuses it.
    (anonymous,) = run_ops(lab, "EXA", [search])
    assert "An operations error occurred." in anonymous.error and "0x80072020" in anonymous.error
    hint = snapshot.ad_error_hint(anonymous.error, explicit_bind=False)
    assert "mailflow_ad_username" in hint and "second hop" in hint
    host = lab.fleet.host("EXA")
    good = psrunner.Context(host.username, host.password)
    (found,) = run_ops(lab, "EXA", [search], context=good)
    entries = snapshot._decode(found)
    vs = next(e["dn"] for e in entries if ",CN=EXA," in e["dn"])
    # An attribute the object does not have is null on the wire, [] in the snapshot (it used to be [""]).
    assert next(e for e in entries if e["dn"] == vs)["attrs"]["msExchSmtpSmartHost"] == []
    assert found.first("entry")["a:msExchSmtpSmartHost"] is None
    (wrong,) = run_ops(lab, "EXA", [search], context=psrunner.Context(host.username, "not-it"))
    assert "0x8007052E" in wrong.error and "refused mailflow_ad_username" in snapshot.ad_error_hint(wrong.error, True)
    (write,) = run_ops(lab, "EXA", [Op("adsi_write", (vs, "msExchSmtpSmartHost", ("[10.0.0.5]",), "string"))])
    assert "0x80072020" in write.error and "msExchSmtpSmartHost" not in lab.fleet.ad.get(vs)
    (write,) = run_ops(lab, "EXA", [Op("adsi_write", (vs, "msExchSmtpSmartHost", ("[10.0.0.5]",), "string"))], context=good)
    assert write.first("prev") == {"values": []}
    assert lab.fleet.ad.get(vs)["msExchSmtpSmartHost"] == ["[10.0.0.5]"]
    (read,) = run_ops(lab, "EXA", [Op("adsi_read", (vs, ("msExchSmtpSmartHost", "cn", "nothere")))], context=good)
    assert snapshot._decode(read)[0]["attrs"] == {"msExchSmtpSmartHost": ["[10.0.0.5]"], "cn": ["1"], "nothere": []}
    # Basic over HTTPS is a cleartext logon: the process holds credentials for the DC.
    (basic,) = run_ops(lab, "EXA", [search], scheme="https")
    assert basic.error is None and basic.of_kind("entry")


def test_a_domain_controller_reads_ad_without_the_second_hop(lab_factory):
    lab = lab_factory(_ad_scenario(os={"domain_role": 5}))
    (search,) = run_ops(lab, "EXA", [Op("adsi_search", ("", "(objectClass=msExchExchangeServer)", ("cn",)))])
    assert search.error is None and search.of_kind("entry")


def test_a_host_reads_its_own_server_from_ad_not_the_whole_organisation(lab_factory):
    data = _ad_scenario()
    data["hosts"]["EXB"] = {"base": ["exchange2003_sp2"], "address": "127.0.30.3"}
    lab = lab_factory(data)
    host = lab.fleet.host("EXA")
    good = psrunner.Context(host.username, host.password)
    own, org, vs, relay_vs = run_ops(lab, "EXA", [
        Op("adsi_search", ("", "(&(objectClass=msExchExchangeServer)(cn={computer}))", ("cn",))),
        Op("adsi_search", ("", "(objectClass=msExchExchangeServer)", ("cn",))),
        Op("adsi_search", ("{computer-server}", "(objectClass=protocolCfgSMTPServer)", ("cn",))),
    ], context=good) + run_ops(lab, "RELAY", [
        Op("adsi_search", ("{computer-server}", "(objectClass=protocolCfgSMTPServer)", ("cn",)))], context=good)
    assert [e["attrs"]["cn"] for e in snapshot._decode(own)] == [["EXA"]]
    assert sorted(e["attrs"]["cn"][0] for e in snapshot._decode(org)) == ["EXA", "EXB"]
    # Under EXA's own server object: its virtual server, not EXB's.
    assert [e["dn"].split(",")[3] for e in snapshot._decode(vs)] == ["CN=EXA"]
    # A computer AD has no Exchange server object for reads nothing under it, and that is no error.
    assert relay_vs.error is None and relay_vs.done and snapshot._decode(relay_vs) == []


def test_wmi_eventlog_features_connections(lab):
    os_, links, feats, events, conns, nons = run_ops(lab, "EXA", [
        Op("wmi_query", (r"root\cimv2", "SELECT * FROM Win32_OperatingSystem", ("Version", "CSDVersion"))),
        Op("wmi_query", (r"root\MicrosoftExchangeV2", "SELECT * FROM Exchange_SMTPLink WHERE StateFlags > 0", ("LinkName",))),
        Op("msi_features", ("*Symantec*",)),
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


def test_no_windows_installer_wmi_provider_and_a_wedged_provider(lab_factory):
    lab = lab_factory(_ad_scenario(windows_components={"wmi_installer_provider": False},
                                   wmi_unresponsive=[r"root\MicrosoftExchangeV2"]))
    wmi_features, feats, links, os_ = run_ops(lab, "EXA", [
        Op("wmi_query", (r"root\cimv2", "SELECT * FROM Win32_SoftwareFeature", ("Caption",))),
        Op("msi_features", ("*Symantec*",)),
        Op("wmi_query", (r"root\MicrosoftExchangeV2", "SELECT * FROM Exchange_SMTPLink", ("LinkName",))),
        Op("wmi_query", (r"root\cimv2", "SELECT * FROM Win32_OperatingSystem", ("Version",))),
    ])
    assert wmi_features.error.startswith("Invalid class")
    # Windows Installer itself still answers for the products the Uninstall keys name.
    caps = {f["caption"]: f["state"] for f in feats.of_kind("feature")}
    assert caps["Internet E-mail Auto-Protect"] == 3 and feats.first("feature")["product_code"].startswith("{5A8E4C1D")
    assert "Timed out" in links.error and os_.error is None


def test_a_busy_event_log_is_read_newest_first_and_stops_where_it_wrapped(lab_factory):
    lab = lab_factory(_ad_scenario(event_logs={"Application": {"entries": 40000, "oldest": "now-36h", "source": "Userenv",
                                                                "event_id": 1517, "writes_per_second": 400}}))
    recent, week = run_ops(lab, "EXA", [
        Op("eventlog", ("Application", "MSExchangeTransport", ("4006",), "now", "50")),
        Op("eventlog", ("Application", "MSExchangeTransport", ("4006",), "2000-01-01T00:00:00Z", "50")),
    ])
    # Read back to a week ago the log wraps under the reader: the entries before that point still arrive.
    assert len(week.of_kind("event")) == 1 and week.first("overwritten") and week.error is None
    assert snapshot._decode(week)["overwritten"].startswith('Exception getting "Item"')
    assert recent.first("overwritten") is None  # a bound in the last hours stops long before


def test_a_stop_that_outlasts_its_wait_fails_and_the_copy_after_it_refuses(lab_factory):
    data = _ad_scenario()
    data["hosts"]["EXA"]["services"] = {"IISADMIN": {"display_name": "IIS Admin Service", "stop_seconds": 120}}
    lab = lab_factory(data)
    mb = lab.fleet.host("EXA").metabase_path
    stops = [Op("service_control", (s, "stop", "5")) for s in ("SMTPSVC", "W3SVC", "IISADMIN")]
    *_, iis, copy_ = run_ops(lab, "EXA", stops + [Op("file_copy", (mb, mb + ".bak", "", ("IISADMIN",)))])
    assert iis.first("failed") == {"code": -1, "message": "still Stop Pending after 5 s waiting for Stopped"}
    assert iis.first("service")["state"] == "Stop Pending"
    assert copy_.error == "not copied: IISADMIN is Stop Pending, not Stopped"
    assert lab.fleet.host("EXA").files.read(mb + ".bak") is None


def test_one_reset_connection_and_one_slow_name_cost_their_own_probes_only(lab_factory):
    data = _ad_scenario()
    data["hosts"]["RELAY"]["smtp_engine"] = {"resets_on": ["EHLO"]}
    data["hosts"]["SLOW"] = {"base": ["smtp_relay_w2003"], "address": "127.0.30.3"}
    data["network"] = {"dns_delays": {"slow.corp.example": 900}}
    lab = lab_factory(data)
    reset, slow, fine = run_ops(lab, "EXA", [
        Op("tcp_probe", (t, "25", "1500", "", "postmaster@", "postmaster@")) for t in ("relay.corp.example", "slow.corp.example", "exa.corp.example")])
    assert "forcibly closed" in reset.first("probe")["error"] and reset.first("probe")["ehlo"] == ""
    assert slow.first("probe")["banner"].startswith("220") and slow.first("probe")["total_ms"] >= 900
    assert fine.first("probe")["banner"].startswith("220") and fine.first("probe")["total_ms"] < 900
    assert fine.first("probe")["error"] == ""


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


def test_stdin_that_never_reaches_powershell_is_named(lab):
    out, _err, rc = run_raw(lab, "EXA", psrunner.command_line(), b"only one line\n")
    assert rc == 3
    with pytest.raises(psrunner.RunnerError, match="did not reach it on stdin"):
        psrunner.decode_output(out, [])


def test_echo_and_runtime(lab):
    text = "x" * 30000 + "\u00e9"
    echo, runtime = run_ops(lab, "EXA", [Op("echo", (text,)), Op("runtime", ())])
    assert echo.first("echo") == {"data": text, "length": len(text)}
    rt = runtime.first("runtime")
    assert rt["ps_version"] == "2.0" and rt["user"].endswith("\\Administrator") and rt["auth_type"] == "NTLM"
