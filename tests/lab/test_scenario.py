"""Scenario format: the demo's raw state, templates, validation messages, round trip, generator."""
from __future__ import annotations

import copy
import ipaddress
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from lab import firewall
from lab import metabase
from lab.generator import generate
from lab.scenario import (
    DEMO_SCENARIO, TEMPLATE_DIR, ScenarioError, Templates, dump_state, fleet_from_plain, fleet_to_plain,
    load_scenario, load_scenario_data, load_state, server_dn,
)
from lab.scenario_schema import read_yaml

NOW = datetime(2026, 11, 20, 12, 0, 0, tzinfo=timezone.utc)
ORG = {"name": "Corp", "administrative_group": "First Administrative Group", "domain_dn": "DC=corp,DC=example"}
QUEUING = r"HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC\Queuing"
EXCHANGE_V2 = "root\\MicrosoftExchangeV2"
TEMPLATE_NAMES = sorted(p.stem for p in Path(TEMPLATE_DIR).glob("*.yml"))


@pytest.fixture(scope="module")
def demo():
    return load_scenario(DEMO_SCENARIO, now=NOW)


@pytest.fixture(scope="module")
def demo_data():
    return read_yaml(DEMO_SCENARIO)


def vs1(host) -> dict:
    return metabase.parse(host.files.read(host.metabase_path).data.decode())["/lm/smtpsvc/1"]


def iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


# --------------------------------------------------------------------------- the demo's raw state

def test_demo_hosts_and_addresses(demo):
    assert sorted(demo.hosts) == ["EXCH01", "EXCH02", "EXCH03", "EXCH04", "EXCH05", "EXCH06", "EXCH07", "EXCH08",
                                  "EXCH55", "RELAY01"]
    for host in demo.hosts.values():
        assert host.address.startswith("127.0.10.")
        assert host.fqdn == f"{host.name.lower()}.corp.example"
        assert host.username and host.password
        assert host.os["domain"] == "corp.example"
    assert len({h.address for h in demo.hosts.values()}) == len(demo.hosts)


def test_healthy_hosts_are_clean(demo):
    for name in ("EXCH01", "EXCH02"):
        host = demo.host(name)
        assert host.events == [] and host.tcp_connections == []
        assert host.wmi[EXCHANGE_V2]["Exchange_SMTPLink"] == []
        assert not host.registry.key_exists(QUEUING)
        assert firewall.enabled(host.registry) is False
        assert host.service("SMTPSVC").state == "running"
        props = vs1(host)
        assert "ConnectResponse" not in props and "SmartHost" not in props
    # Products present with safe settings: detectors must read values, not presence.
    assert demo.host("EXCH01").registry.get(r"HKLM\SOFTWARE\Symantec\SMSMSE\4.5\Server", "EnableBloodhound").data == 0
    features = demo.host("EXCH02").wmi["root\\cimv2"]["Win32_SoftwareFeature"]
    assert {f["Caption"]: f["InstallState"] for f in features}["Internet E-mail Auto-Protect"] == 2  # Win32_SoftwareFeature.InstallState 2 = Absent


def test_demo_antivirus_and_mail_security(demo):
    exch03 = demo.host("EXCH03")
    features = exch03.wmi["root\\cimv2"]["Win32_SoftwareFeature"]
    iea = next(f for f in features if "Internet E-mail" in f["Caption"])
    assert iea["InstallState"] == 3 and iea["ProductName"] == "Symantec AntiVirus"
    uninstall = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\{5A8E4C1D-7E2B-4C59-A3F1-0B9D6E2F4A17}"
    assert exch03.registry.get(uninstall, "DisplayVersion").data.startswith("9.0.")
    rts = r"HKLM\SOFTWARE\Intel\LANDesk\VirusProtect6\CurrentVersion\Storages\Filesystem\RealTimeScan"
    assert exch03.registry.get(rts, "HaveExceptionDirs").data == 0
    assert demo.host("EXCH04").registry.get(r"HKLM\SOFTWARE\Symantec\SMSMSE\4.5\Server", "EnableBloodhound").data == 1


def test_demo_metabase_conditions(demo):
    assert vs1(demo.host("EXCH06"))["ConnectResponse"] == ""
    exch07 = demo.host("EXCH07")
    with pytest.raises(metabase.MetabaseCorrupt):
        metabase.parse(exch07.files.read(exch07.metabase_path).data.decode())
    history = r"C:\WINDOWS\system32\inetsrv\History"
    good = exch07.files.read(history + r"\MetaBase_0000000005_0000000000.xml")
    assert "/lm/smtpsvc/1" in metabase.parse(good.data.decode())
    assert exch07.files.read(history + r"\MBSchema_0000000005_0000000000.xml") is not None
    smtp = exch07.service("SMTPSVC")
    assert (smtp.state, smtp.start_mode) == ("stopped", "disabled")
    assert exch07.registry.get(r"HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC", "Start").data == 4


def test_demo_smart_host_in_ad_and_metabase(demo):
    vs_dn = "CN=1,CN=SMTP,CN=Protocols," + server_dn(ORG, "EXCH04")
    attrs = demo.ad.get(vs_dn)
    assert "protocolCfgSMTPServer" in attrs["objectClass"]
    assert attrs["msExchSmtpSmartHost"] == ["10.9.9.9"] and attrs["msExchSmtpSmartHostType"] == [2]
    props = vs1(demo.host("EXCH04"))
    assert (props["SmartHost"], props["SmartHostType"]) == ("10.9.9.9", "2")
    server = demo.ad.get(server_dn(ORG, "EXCH01"))
    assert server["serialNumber"] == ["Version 6.5 (Build 7638.2: Service Pack 2)"]


def test_demo_exchange55_and_relay(demo):
    legacy = demo.host("EXCH55")
    assert not legacy.winrm and "http" not in legacy.ports and "https" not in legacy.ports
    assert legacy.service("SMTPSVC") is None and legacy.service("MSExchangeIMC") is not None
    assert legacy.registry.get(r"HKLM\SOFTWARE\Microsoft\Exchange\Setup", "ServicePackBuild").data == 1960
    assert legacy.os["version"].startswith("4.0")  # Windows NT 4.0: 5.5 before SP3 is unsupported on Windows 2000 (Q253249)
    established = [c for c in legacy.tcp_connections if c["remote"].endswith(":25") and c["state"] == "ESTABLISHED"]
    assert len(established) >= 3
    exch05 = demo.host("EXCH05")
    assert exch05.registry.get(QUEUING, "GlitchRetrySeconds").type == "REG_DWORD"
    assert exch05.registry.get(QUEUING, "GlitchRetrySeconds").data == 30
    relay = demo.host("RELAY01")
    assert relay.smtp_engine == {"greylisting": {"delay_seconds": 300}}
    assert "KB934709" not in {q["HotFixID"] for q in relay.wmi["root\\cimv2"]["Win32_QuickFixEngineering"]}
    assert not relay.registry.key_exists(r"HKLM\SOFTWARE\Microsoft\Exchange\Setup")
    assert vs1(relay)["QueueDirectory"] == r"C:\Inetpub\mailroot\Queue"


def test_demo_network(demo):
    assert demo.is_blocked("EXCH05", "EXCH08")
    (pix,) = demo.devices_on_path("EXCH04", "EXCH08")
    assert pix["kind"] == "pix" and "\nfixup protocol smtp 25\n" in pix["config"]
    assert pix["paths"] == [["EXCH08", "EXCH04"]] and "address" not in pix  # from its segments; config only
    (fw,) = demo.devices_on_path("EXCH01", "EXCH05")
    assert (fw["name"], fw["kind"], fw["address"], fw["ports"], fw["username"]) == (
        "FW01", "ios", "127.0.10.21", {"ssh": 22}, "netadmin")
    assert fw["startup_config"] == fw["config"] and "\nip inspect name MAILFW smtp\n" in fw["config"]
    assert [d["name"] for d in demo.network["devices"]] == ["PIX01", "FW01"]


def test_segments_put_a_device_between_every_two_hosts_behind_different_interfaces(demo_data):
    data = copy.deepcopy(demo_data)
    data["network"] = {"devices": [{"name": "R1", "kind": "ios", "config": "hostname R1\n",
                                    "segments": {"Fa0/0": ["EXCH01", "EXCH02"], "Fa0/1": ["EXCH03"], "Fa0/2": []},
                                    "startup_config": "hostname OLD\n"}]}
    (r1,) = load_scenario_data(data, "<segments>", now=NOW).network["devices"]
    assert r1["paths"] == [["EXCH01", "EXCH03"], ["EXCH02", "EXCH03"]]
    assert r1["startup_config"] == "hostname OLD\n" and "ports" not in r1
    data["network"]["devices"][0]["paths"] = [["EXCH04", "EXCH05"]]  # given paths win
    assert load_scenario_data(data, "<paths>", now=NOW).network["devices"][0]["paths"] == [["EXCH04", "EXCH05"]]


def test_demo_symptoms_are_raw_evidence(demo):
    exch03 = demo.host("EXCH03")
    event = exch03.events[0]
    assert (event["source"], event["event_id"]) == ("MSExchangeTransport", 4006)
    assert event["category"] == "Connection Manager"
    assert event["message"] == ("The connection was dropped by the remote host 127.0.10.12, exch02.corp.example; "
                                "the semaphore timeout period has expired.")
    assert iso(event["time"]) == NOW - timedelta(hours=5, minutes=50)
    (link,) = exch03.wmi[EXCHANGE_V2]["Exchange_SMTPLink"]
    assert link["StateFlags"] & 0x4 and link["LinkName"] == "exch02.corp.example"
    assert re.fullmatch(r"\d{14}\.000000\+000", link["OldestMessage"])
    queue = exch03.files.listdir(r"C:\Program Files\Exchsrvr\Mailroot\vsi 1\Queue")
    assert queue and all(NOW - iso(f.mtime) > timedelta(hours=3) for _, f in queue)


# --------------------------------------------------------------------------- templates

@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_every_template_loads(name):
    layer = Templates().expand(name)
    base = [name] if "os" in layer else ["windows2003_sp2", name]  # add-on products need an OS under them
    data = {"organization": ORG, "hosts": {"H1": {"base": base, "address": "127.0.99.1",
                                                  "username": "Administrator", "password": "x"}}}
    host = load_scenario_data(data, f"<{name}>").host("H1")
    assert host.os["version"] and host.services


def test_template_merge_rules(tmp_path):
    (tmp_path / "a.yml").write_text(yaml.safe_dump({
        "os": {"caption": "A", "version": "5.2.3790", "build": "3790", "service_pack": "SP2"},
        "services": {"SMTPSVC": {"display_name": "SMTP"}, "W3SVC": {"display_name": "WWW"}},
        "tcp_connections": [{"local": "127.0.0.1:1", "remote": "127.0.0.2:25", "state": "ESTABLISHED"}],
        "registry": {r"HKEY_LOCAL_MACHINE\SOFTWARE\X": {"A": {"type": "REG_SZ", "data": "a"}}},
    }))
    (tmp_path / "b.yml").write_text(yaml.safe_dump({"base": ["a"], "services": {"W3SVC": None}, "tcp_connections": []}))
    own_registry = {r"hklm\software\x": {"a": {"type": "REG_SZ", "data": "b"}}}
    data = {"hosts": {"H1": {"base": ["b"], "fqdn": "h1.lab.example", "address": "127.0.99.1", "username": "u",
                             "password": "p", "registry": own_registry}}}
    host = load_scenario_data(data, "<merge>", template_dir=tmp_path).host("H1")
    assert list(host.services) == ["SMTPSVC"]  # null deleted W3SVC; dicts merged
    assert host.tcp_connections == []  # lists replace
    assert host.registry.get(r"HKLM\SOFTWARE\X", "A").data == "b"  # HKEY_LOCAL_MACHINE == hklm, names case-insensitive


# --------------------------------------------------------------------------- validation messages

def _error(demo_data, mutate) -> str:
    data = copy.deepcopy(demo_data)
    mutate(data)
    with pytest.raises(ScenarioError) as info:
        load_scenario_data(data, "lab/scenarios/x.yml")
    return str(info.value)


def test_error_names_file_host_and_registry_field(demo_data):
    message = _error(demo_data, lambda d: d["hosts"]["EXCH05"]["registry"][QUEUING]["GlitchRetrySeconds"].update(
        type="REG_DWROD"))
    assert message.startswith(
        "lab/scenarios/x.yml: host EXCH05: registry['HKLM\\\\SYSTEM\\\\CurrentControlSet\\\\Services\\\\SMTPSVC"
        "\\\\Queuing']['GlitchRetrySeconds'].type: 'REG_DWROD' is not one of [")


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["hosts"]["EXCH05"]["registry"][QUEUING]["GlitchRetrySeconds"].update(data="30"),
     r"host EXCH05: registry\[.*\]\['GlitchRetrySeconds'\]\.data: '30' is not of type 'integer'"),
    (lambda d: d["hosts"]["EXCH02"].update(address="127.0.10.11"),
     r"host EXCH02: address: 127\.0\.10\.11 is already used by host EXCH01"),
    (lambda d: d["network"]["blocked"].append(["EXCH01", "EXCH99"]), r"network\.blocked\[1\]: unknown host 'EXCH99'"),
    (lambda d: d["network"]["devices"][0].update(paths=[["EXCH01", "NOPE"]]),
     r"network\.devices\[0\]\.paths\[0\]: unknown host 'NOPE'"),
    (lambda d: d["network"]["devices"][0]["segments"]["inside"].append("NOPE"),
     r"network\.devices\[0\]\.segments\['inside'\]: unknown host 'NOPE'"),
    (lambda d: d["network"]["devices"][0]["segments"]["inside"].append("EXCH08"),
     r"network\.devices\[0\]\.segments\['inside'\]: host 'EXCH08' is also behind 'outside'"),
    (lambda d: d["network"]["devices"][1].update(address="127.0.10.11"),
     r"network\.devices\[1\]\.address: 127\.0\.10\.11 is already used by host EXCH01"),
    (lambda d: d["network"]["devices"][1].pop("password"), r"network\.devices\[1\]: 'password' is a dependency of 'address'"),
    (lambda d: d["network"]["devices"][1].update(name="exch05"), r"network\.devices\[1\]\.name: 'exch05' is already the name of host EXCH05"),
    (lambda d: d["network"]["devices"][1].update(ports={"ssh": 0}), r"network\.devices\[1\]\.ports\.ssh: 0 is less than"),
    (lambda d: d["network"]["devices"][0].pop("segments"), r"network\.devices\[0\]: .* is not valid under any of the given schemas"),
    (lambda d: d["hosts"]["EXCH02"].update(base=["exchange2007"]),
     r"host EXCH02: base: unknown template 'exchange2007'"),
    (lambda d: d["hosts"]["EXCH03"]["events"][0].update(time="yesterday"),
     r"host EXCH03: events\[0\]\.time: 'yesterday'"),
    (lambda d: d["hosts"]["EXCH07"]["services"]["SMTPSVC"].update(start_mode="auto"),
     r"host EXCH07: registry\[.*SMTPSVC'\]\['Start'\]: 4 disagrees with services\['SMTPSVC'\]\.start_mode 'auto'"),
    (lambda d: d["hosts"]["EXCH02"].update(address="10.0.0.2"), r"host EXCH02: address: 10\.0\.0\.2 is not a 127"),
    (lambda d: d.pop("defaults"), r"host EXCH01: 'username' is a required property"),
    (lambda d: d["hosts"]["EXCH06"]["metabase"]["locations"]["/LM/SmtpSvc/1"].update(ConnectResponse=[]),
     r"host EXCH06: metabase\.locations\['/LM/SmtpSvc/1'\]\['ConnectResponse'\]: \[\] is not of type"),
    (lambda d: d["hosts"]["EXCH02"].update(exchange_healthy=True), r"host EXCH02: .*'exchange_healthy' was unexpected"),
    (lambda d: d["hosts"].update(exch01={"base": ["exchange2003_sp2"], "address": "127.0.10.99"}),
     r"host exch01: same name as host EXCH01"),
])
def test_errors_name_file_host_and_field(demo_data, mutate, expected):
    message = _error(demo_data, mutate)
    assert message.startswith("lab/scenarios/x.yml: ")
    assert re.search(expected, message), message


def test_yaml_duplicate_key_and_bad_template_file(tmp_path):
    path = tmp_path / "dup.yml"
    path.write_text("hosts:\n  EXCH01: {address: 127.0.0.2}\n  EXCH01: {address: 127.0.0.3}\n")
    with pytest.raises(ScenarioError, match=r"dup\.yml: not valid YAML: duplicate key 'EXCH01'"):
        load_scenario(path)
    (tmp_path / "bad.yml").write_text("services:\n  SMTPSVC: {display_name: SMTP, state: paused}\n")
    host = {"base": ["bad"], "fqdn": "h1.x.example", "address": "127.0.0.2", "username": "u", "password": "p"}
    data = {"hosts": {"H1": host}}
    with pytest.raises(ScenarioError, match=r"bad\.yml: services\['SMTPSVC'\]\.state: 'paused' is not one of"):
        load_scenario_data(data, "s.yml", template_dir=tmp_path)


# --------------------------------------------------------------------------- round trip

@pytest.mark.parametrize("source", ["demo", "generated"])
def test_round_trip_is_identical(demo, source):
    fleet = demo if source == "demo" else load_scenario_data(generate(50, seed=3), "<generated>", now=NOW)
    plain = fleet_to_plain(fleet)
    again = fleet_from_plain(copy.deepcopy(plain))
    assert fleet_to_plain(again) == plain
    without_winrm = {n for n, h in fleet.hosts.items() if not h.winrm}
    assert {n for n, h in again.hosts.items() if not h.winrm} == without_winrm


@pytest.mark.parametrize("suffix", [".json", ".yml"])
def test_dump_and_load_state(tmp_path, suffix):
    fleet = load_scenario(DEMO_SCENARIO, now=NOW)
    # A running lab's state drifts from its scenario; the dump must carry the drift.
    fleet.host("EXCH05").registry.delete(QUEUING, "GlitchRetrySeconds")
    fleet.host("EXCH06").files.write(r"C:\bin.dat", b"\x00\xff", "2026-11-20T12:00:00Z")
    path = tmp_path / f"state{suffix}"
    dump_state(fleet, path)
    assert fleet_to_plain(load_state(path)) == fleet_to_plain(fleet)


# --------------------------------------------------------------------------- generator

def test_generator_is_deterministic():
    assert generate(120, seed=7) == generate(120, seed=7)
    assert generate(120, seed=7) != generate(120, seed=8)


@pytest.mark.parametrize("count", [1, 50, 300])
def test_generated_scenarios_are_valid(count):
    fleet = load_scenario_data(generate(count, seed=count), f"<generated {count}>")
    addresses = [h.address for h in fleet.hosts.values()]
    assert len(fleet.hosts) == count and len(set(addresses)) == count
    assert all(ipaddress.IPv4Address(a).is_loopback for a in addresses)


def test_generator_scales_and_sprinkles_conditions():
    data = generate(1000, seed=11)
    addresses = [layer["address"] for layer in data["hosts"].values()]
    assert len(set(addresses)) == 1000
    bases = [b for layer in data["hosts"].values() for b in layer["base"]]
    assert bases.count("exchange2003_sp2") >= 990 and "exchange55_sp4" in bases and "smtp_relay_w2003" in bases
    plain_keys = {"base", "address", "wmi"}  # wmi: hotfix lists only
    touched = [n for n, layer in data["hosts"].items() if set(layer) - plain_keys or len(layer["base"]) > 1]
    assert 0.1 * 1000 < len(touched) < 0.4 * 1000  # mostly healthy, a sprinkling of conditions
    assert data["network"]["blocked"] and data["network"]["devices"]


# --------------------------------------------------------------------------- no cause labels

_LABEL_WORDS = re.compile(
    r"cause|healthy|broken|symptom|condition|problem|faulty|issue|diagnos|verdict|expected|label", re.I)


def _keys(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield f"{path}/{key}", str(key)
            yield from _keys(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _keys(value, f"{path}[{i}]")


@pytest.mark.parametrize("source", ["demo.yml", *(f"templates/{n}.yml" for n in TEMPLATE_NAMES), "generated",
                                    "generated sites"])
def test_no_cause_labels_in_scenarios(source):
    if source.startswith("generated"):
        data = generate(300, seed=5, sites=7 if source.endswith("sites") else 1)
    else:
        data = read_yaml(Path(DEMO_SCENARIO) if source == "demo.yml" else Path(TEMPLATE_DIR).parent / source)
    labelled = [path for path, key in _keys(data) if _LABEL_WORDS.search(key)]
    assert labelled == []


def test_an_address_block_moves_every_host_so_two_labs_of_one_scenario_can_run_at_once():
    moved = load_scenario(DEMO_SCENARIO, now=NOW, address_block=33)
    assert all(h.address.startswith("127.33.") for h in moved.hosts.values())
    assert [d.get("address") for d in moved.network["devices"]] == [None, "127.33.10.21"]
    assert {h.address.split(".", 2)[2] for h in moved.hosts.values()} == \
        {h.address.split(".", 2)[2] for h in load_scenario(DEMO_SCENARIO, now=NOW).hosts.values()}
    with pytest.raises(ScenarioError, match="address block 0"):
        load_scenario(DEMO_SCENARIO, now=NOW, address_block=0)


# --------------------------------------------------------------------------- what a real host limits

def test_what_a_real_host_limits_is_raw_state_that_loads_and_round_trips(demo_data):
    data = copy.deepcopy(demo_data)
    ex1 = data["hosts"]["EXCH01"]
    ex1.update({
        "winrm_config": {"MaxEnvelopeSizekb": 100},
        "windows_components": {"wmi_installer_provider": False},
        "event_logs": {"Application": {"entries": 30000, "oldest": "now-2d", "source": "Userenv", "writes_per_second": 50}},
        "registry_unreadable": [r"HKLM\SOFTWARE\Symantec"],
        "wmi_unresponsive": [EXCHANGE_V2],
        "files": {r"C:\Program Files\Exchsrvr\Mailroot\vsi 1\Queue\x.eml": {"text": "x", "mtime": "now-1h", "transient": True}},
        "services": {"IISADMIN": {"display_name": "IIS Admin Service", "stop_seconds": 90}},
        "smtp_engine": {"resets_on": ["EHLO"]},
    })
    ex1.setdefault("os", {})["domain_role"] = 5
    data["network"]["dns_delays"] = {"exch02.corp.example": 2000}
    fleet = load_scenario_data(data, "<test>", now=NOW)
    host = fleet.host("EXCH01")
    assert host.winrm_config == {"MaxEnvelopeSizekb": 100, "MaxMemoryPerShellMB": 150, "MaxTimeoutms": 60000}
    assert fleet.host("EXCH02").winrm_config["MaxEnvelopeSizekb"] == 150  # WinRM 2.0's default
    assert not host.component("wmi_installer_provider") and fleet.host("EXCH02").component("wmi_installer_provider")
    assert host.event_logs["Application"]["oldest"] == "2026-11-18T12:00:00Z"
    assert not host.registry_readable(r"HKLM\SOFTWARE\Symantec\SMSMSE") and host.registry_readable(r"HKLM\SOFTWARE\Microsoft")
    assert host.service("IISADMIN").stop_seconds == 90 and host.os["domain_role"] == 5
    assert host.files.read(r"C:\Program Files\Exchsrvr\Mailroot\vsi 1\Queue\x.eml").transient
    plain = fleet_to_plain(fleet)
    assert fleet_to_plain(fleet_from_plain(copy.deepcopy(plain))) == plain


@pytest.mark.parametrize("mutate, expected", [
    (lambda h: h.update(winrm_config={"MaxEnvelopeSizekb": 8}), r"winrm_config\.MaxEnvelopeSizekb: 8 is less than the minimum of 32"),
    (lambda h: h.update(windows_components={"msi": False}), r"windows_components: Additional properties"),
    (lambda h: h.update(event_logs={"Application": {"entries": 5}}), r"event_logs\['Application'\]: 'oldest' is a required property"),
    (lambda h: h.update(registry_unreadable=["SOFTWARE\\x"]), r"registry_unreadable\[0\]: 'SOFTWARE.*x' does not match"),
])
def test_the_limits_are_checked_by_name(demo_data, mutate, expected):
    data = copy.deepcopy(demo_data)
    mutate(data["hosts"]["EXCH01"])
    with pytest.raises(ScenarioError, match=expected):
        load_scenario_data(data, "s.yml", now=NOW)
