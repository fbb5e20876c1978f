"""cmd.exe builtins, service control and DS2MB on small hand-built fleets.

Golden strings are the Windows Server 2003 formats cited in lab/shell/cmd.py.
"""
from __future__ import annotations

import pytest

from lab import metabase
from lab.ds2mb import DS2MB_FAILED_EVENT_ID, run_ds2mb
from lab.runtime import Metrics
from lab.services import ServiceError, ServiceManager
from lab.shell.cmd import not_recognized, run_builtin, split_arguments
from lab.state import ActiveDirectory, FleetState, Filesystem, HostState, Registry, Service

QUEUING = r"HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC\Queuing"
SOFTWARE_KEY = r"HKLM\SOFTWARE\Lab Vendor\Mail Tools"
SERVERS = "CN=Servers,CN=First Administrative Group,CN=Administrative Groups,CN=Lab,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=lab,DC=local"
VS_CLASSES = ["top", "protocolCfg", "protocolCfgSMTP", "protocolCfgSMTPServer"]
QUEUE_DIR = r"C:\Program Files\Exchsrvr\Mailroot\vsi 1\Queue"
METABASE = r"C:\WINDOWS\system32\inetsrv\MetaBase.xml"
T0 = "2026-11-20T10:00:00Z"


def vs_dn(server: str, instance: str = "1") -> str:
    return f"CN={instance},CN=SMTP,CN=Protocols,CN={server},{SERVERS}"


def make_host(name: str = "EXCH01", exchange: bool = True) -> HostState:
    registry = Registry()
    registry.set(QUEUING, "GlitchRetrySeconds", "REG_DWORD", 120)
    registry.set(SOFTWARE_KEY, "InstallPath", "REG_SZ", r"C:\Program Files\Lab")
    registry.set(SOFTWARE_KEY, "Relays", "REG_MULTI_SZ", ["10.0.0.5", "10.0.0.6"])
    registry.set(SOFTWARE_KEY, "", "REG_SZ", "default text")
    registry.set(SOFTWARE_KEY + r"\Cache", "Blob", "REG_BINARY", b"\x01\xab\xff")
    registry.set(r"HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC", "Start", "REG_DWORD", 2)
    if exchange:
        registry.set(r"HKLM\SOFTWARE\Microsoft\Exchange\Setup", "ServicePackBuild", "REG_DWORD", 7638)
    files = Filesystem()
    files.write(
        METABASE,
        metabase.render(
            {
                "/LM": {},
                "/LM/SmtpSvc": {},
                "/LM/SmtpSvc/1": {
                    "SmartHost": "[10.0.0.5]",
                    "SmartHostType": "2",
                    "ConnectResponse": "mail.lab.local ready",
                    "QueueDirectory": QUEUE_DIR,
                },
            }
        ),
        T0,
    )
    files.write(QUEUE_DIR + r"\NTFS_0001.EML", b"From: a@lab.local\r\n\r\nqueued 1\r\n", T0)
    files.write(QUEUE_DIR + r"\NTFS_0002.EML", b"From: b@lab.local\r\n\r\nqueued 2\r\n", T0)
    services = {
        "IISADMIN": Service("IISADMIN", "IIS Admin Service"),
        "SMTPSVC": Service("SMTPSVC", "Simple Mail Transfer Protocol (SMTP)"),  # standard table: IISADMIN
        "W3SVC": Service("W3SVC", "World Wide Web Publishing Service", depends_on=["IISADMIN"]),
        "MSExchangeSA": Service("MSExchangeSA", "Microsoft Exchange System Attendant", start_mode="manual"),
    }
    return HostState(
        name=name, fqdn=f"{name.lower()}.lab.local", address="127.0.0.2", username="LAB\\labadmin",
        password="x", os={"computer_name": name, "version": "5.2.3790", "domain": "lab.local"},
        registry=registry, files=files, services=services, events=[], wmi={}, tcp_connections=[],
        smtp_engine={},
    )


def ad_objects() -> dict:
    return {
        vs_dn("EXCH01"): {
            "objectClass": VS_CLASSES,
            "msExchSmtpSmartHost": "[10.0.0.5]",
            "msExchSmtpSmartHostType": 2,
            "msExchSmtpInboundCommandSupportOptions": 7697601,
            "msExchSmtpQueueDirectory": QUEUE_DIR,
        },
        vs_dn("EXCH02"): {"objectClass": VS_CLASSES, "msExchSmtpSmartHost": "[10.9.9.9]"},
    }


@pytest.fixture
def fleet() -> FleetState:
    return FleetState(hosts={"EXCH01": make_host()}, ad=ActiveDirectory(ad_objects()), network={})


@pytest.fixture
def host(fleet) -> HostState:
    return fleet.host("EXCH01")


@pytest.fixture
def changes() -> list[str]:
    return []


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def manager(fleet, metrics, changes) -> ServiceManager:
    return ServiceManager(fleet, metrics, changes.append)


def run(fleet, command):
    result = run_builtin(fleet, "EXCH01", command)
    assert result is not None, command
    return result


# -- reg query -------------------------------------------------------------------

HEADER = b"\r\n! REG.EXE VERSION 3.0\r\n\r\n"
REG_NOT_FOUND = b"Error:  The system was unable to find the specified registry key or value\r\n"


def test_reg_query_dword_value(fleet):
    out = run(fleet, 'reg query "HKLM\\SYSTEM\\CurrentControlSet\\Services\\SMTPSVC\\Queuing" /v GlitchRetrySeconds')
    assert out == (
        HEADER + b"HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\SMTPSVC\\Queuing\r\n"
        b"    GlitchRetrySeconds\tREG_DWORD\t0x78\r\n\r\n", b"", 0)


def test_reg_query_echoes_key_as_typed_and_accepts_exe_and_long_hive(fleet):
    out, _, rc = run(fleet, r"REG.EXE QUERY hkey_local_machine\system\currentcontrolset\services\smtpsvc\queuing /V glitchretryseconds")
    assert rc == 0
    assert out == HEADER + b"HKEY_LOCAL_MACHINE\\system\\currentcontrolset\\services\\smtpsvc\\queuing\r\n" \
        b"    glitchretryseconds\tREG_DWORD\t0x78\r\n\r\n"


def test_reg_query_key_with_spaces_lists_values_then_subkeys(fleet):
    out, err, rc = run(fleet, f'reg query "{SOFTWARE_KEY}"')
    assert (err, rc) == (b"", 0)
    assert out == (
        HEADER + b"HKEY_LOCAL_MACHINE\\SOFTWARE\\Lab Vendor\\Mail Tools\r\n"
        b"    InstallPath\tREG_SZ\tC:\\Program Files\\Lab\r\n"
        b"    Relays\tREG_MULTI_SZ\t10.0.0.5\\010.0.0.6\r\n"
        b"    <NO NAME>\tREG_SZ\tdefault text\r\n"
        b"\r\n"
        b"HKEY_LOCAL_MACHINE\\SOFTWARE\\Lab Vendor\\Mail Tools\\Cache\r\n")


def test_reg_query_recursive(fleet):
    out, _, rc = run(fleet, f'reg query "{SOFTWARE_KEY}" /s')
    assert rc == 0
    assert out.endswith(
        b"    <NO NAME>\tREG_SZ\tdefault text\r\n\r\n"
        b"HKEY_LOCAL_MACHINE\\SOFTWARE\\Lab Vendor\\Mail Tools\\Cache\r\n"
        b"    Blob\tREG_BINARY\t01ABFF\r\n\r\n")


def test_reg_query_default_value(fleet):
    out, _, rc = run(fleet, f'reg query "{SOFTWARE_KEY}" /ve')
    assert (out, rc) == (HEADER + b"HKEY_LOCAL_MACHINE\\SOFTWARE\\Lab Vendor\\Mail Tools\r\n"
                         b"    <NO NAME>\tREG_SZ\tdefault text\r\n\r\n", 0)


@pytest.mark.parametrize("command", [
    r'reg query "HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC\Nope"',
    r'reg query "HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC\Queuing" /v CatRetryMinutes',
    # The C runtime reads \" as a literal quote: the key becomes ...Tools" (a real reg.exe pitfall).
    f'reg query "{SOFTWARE_KEY}\\"',
])
def test_reg_query_missing_key_or_value(fleet, command):
    assert run(fleet, command) == (b"", REG_NOT_FOUND, 1)


def test_reg_query_rejects_v_with_s_like_xp(fleet):
    assert run(fleet, f'reg query "{SOFTWARE_KEY}" /v InstallPath /s') == (
        b"", b"Error:  Invalid command-line parameters\r\n", 1)


def test_split_arguments_follows_c_runtime_rules():
    assert split_arguments(r'query "HKLM\A B" /v "Name With Space"') == ["query", r"HKLM\A B", "/v", "Name With Space"]
    assert split_arguments(r'a\\"b c"') == [r"a\b c"]


# -- sc ------------------------------------------------------------------------------

SC_RUNNING = (
    b"\r\nSERVICE_NAME: SMTPSVC\r\n"
    b"        TYPE               : 20  WIN32_SHARE_PROCESS \r\n"
    b"        STATE              : 4  RUNNING \r\n"
    b"                                (STOPPABLE,PAUSABLE,ACCEPTS_SHUTDOWN)\r\n"
    b"        WIN32_EXIT_CODE    : 0  (0x0)\r\n"
    b"        SERVICE_EXIT_CODE  : 0  (0x0)\r\n"
    b"        CHECKPOINT         : 0x0\r\n"
    b"        WAIT_HINT          : 0x0\r\n\r\n"
)


def test_sc_query_running(fleet):
    assert run(fleet, "sc query SMTPSVC") == (SC_RUNNING, b"", 0)


def test_sc_query_stopped(fleet, manager):
    manager.stop("EXCH01", "SMTPSVC")
    out, _, rc = run(fleet, "sc.exe query SMTPSVC")
    assert rc == 0
    assert b"        STATE              : 1  STOPPED \r\n" \
           b"                                (NOT_STOPPABLE,NOT_PAUSABLE,IGNORES_SHUTDOWN)\r\n" in out


def test_sc_qc(fleet):
    out, err, rc = run(fleet, "sc qc SMTPSVC")
    assert (err, rc) == (b"", 0)
    assert out == (
        b"[SC] GetServiceConfig SUCCESS\r\n\r\n"
        b"SERVICE_NAME: SMTPSVC\r\n"
        b"        TYPE               : 20  WIN32_SHARE_PROCESS \r\n"
        b"        START_TYPE         : 2   AUTO_START\r\n"
        b"        ERROR_CONTROL      : 1   NORMAL\r\n"
        b"        BINARY_PATH_NAME   : C:\\WINDOWS\\system32\\inetsrv\\inetinfo.exe  \r\n"
        b"        LOAD_ORDER_GROUP   :   \r\n"
        b"        TAG                : 0  \r\n"
        b"        DISPLAY_NAME       : Simple Mail Transfer Protocol (SMTP)  \r\n"
        b"        DEPENDENCIES       : IISADMIN  \r\n"
        b"        SERVICE_START_NAME : LocalSystem  \r\n")


@pytest.mark.parametrize("mode, shown", [("manual", b"3   DEMAND_START"), ("disabled", b"4   DISABLED")])
def test_sc_qc_start_types(fleet, manager, host, mode, shown):
    manager.set_start_mode("EXCH01", "SMTPSVC", mode)
    assert b"        START_TYPE         : " + shown + b"\r\n" in run(fleet, "sc qc SMTPSVC")[0]
    start_value = {"manual": 3, "disabled": 4}[mode]
    assert host.registry.get(r"HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC", "Start").data == start_value


def test_sc_missing_service(fleet):
    message = b"The specified service does not exist as an installed service.\r\n\r\n"
    assert run(fleet, "sc query NoSuchSvc") == (
        b"[SC] EnumQueryServicesStatus:OpenService FAILED 1060:\r\n\r\n" + message, b"", 1060)
    assert run(fleet, "sc qc NoSuchSvc") == (b"[SC] OpenService FAILED 1060:\r\n\r\n" + message, b"", 1060)


# -- type, hostname, echo, ver ----------------------------------------------------

def test_type_metabase_through_systemroot(fleet, host):
    assert run(fleet, r"type %SystemRoot%\system32\inetsrv\MetaBase.xml") == (host.files.read(METABASE).data, b"", 0)
    assert run(fleet, r'type "%windir%\system32\inetsrv\MetaBase.xml"')[0] == host.files.read(METABASE).data


def test_type_quoted_path_with_spaces(fleet):
    assert run(fleet, f'type "{QUEUE_DIR}\\NTFS_0001.EML"') == (b"From: a@lab.local\r\n\r\nqueued 1\r\n", b"", 0)


def test_type_missing_file(fleet):
    assert run(fleet, r"type C:\WINDOWS\nothing.txt") == (b"", b"The system cannot find the file specified.\r\n", 1)


def test_type_unquoted_path_with_spaces_is_two_files(fleet):
    out, err, rc = run(fleet, r"type C:\Program Files\x.txt")
    assert (out, rc) == (b"", 1)
    assert err == (b"The system cannot find the file specified.\r\nError occurred while processing: C:\\Program.\r\n"
                   b"The system cannot find the file specified.\r\nError occurred while processing: Files\\x.txt.\r\n")


def test_hostname_echo_ver(fleet):
    assert run(fleet, "hostname") == (b"EXCH01\r\n", b"", 0)
    assert run(fleet, 'echo "quoted"  text') == (b'"quoted"  text\r\n', b"", 0)
    assert run(fleet, "echo.") == (b"\r\n", b"", 0)
    assert run(fleet, "echo") == (b"ECHO is on.\r\n", b"", 0)
    assert run(fleet, "echo %COMPUTERNAME% %NOT_DEFINED%") == (b"EXCH01 %NOT_DEFINED%\r\n", b"", 0)
    assert run(fleet, "ver") == (b"\r\nMicrosoft Windows [Version 5.2.3790]\r\n", b"", 0)


def test_chaining_and_redirection(fleet):
    assert run(fleet, r"reg query HKLM\SOFTWARE\Nope 2>nul || echo absent") == (b"absent\r\n", b"", 0)
    assert run(fleet, r"reg query HKLM\SOFTWARE\Nope 2>&1") == (REG_NOT_FOUND, b"", 1)
    assert run(fleet, "hostname >nul & ver")[0] == b"\r\nMicrosoft Windows [Version 5.2.3790]\r\n"


@pytest.mark.parametrize("command", ["uname -s", "Get-Service SMTPSVC", "systeminfo | findstr OS", "hostname > out.txt",
                                     "sc start SMTPSVC", "reg add HKLM\\X"])
def test_not_emulated_returns_none(fleet, command):
    assert run_builtin(fleet, "EXCH01", command) is None


def test_not_recognized():
    assert not_recognized("uname -s") == (
        b"", b"'uname' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", 1)


# -- service control -----------------------------------------------------------------

def test_start_starts_dependencies_first(fleet, manager, host, changes, monkeypatch):
    seen = []
    monkeypatch.setattr("lab.services.run_ds2mb", lambda f, h: seen.append(h.service("IISADMIN").state))
    manager.stop("EXCH01", "IISADMIN")
    manager.start("EXCH01", "SMTPSVC")
    assert seen == ["running"]  # IISADMIN was up before SMTPSVC started
    assert host.service("SMTPSVC").state == "running"
    assert host.service("W3SVC").state == "stopped"  # not asked for
    assert changes == ["EXCH01", "EXCH01"]


def test_stop_stops_running_dependents_first(manager, host):
    manager.stop("EXCH01", "IISADMIN")
    assert {s: host.service(s).state for s in ("IISADMIN", "SMTPSVC", "W3SVC", "MSExchangeSA")} == {
        "IISADMIN": "stopped", "SMTPSVC": "stopped", "W3SVC": "stopped", "MSExchangeSA": "running"}


def test_restart_brings_back_running_dependents_and_counts(manager, host, metrics):
    manager.stop("EXCH01", "W3SVC")
    manager.restart("EXCH01", "IISADMIN")
    assert host.service("IISADMIN").state == host.service("SMTPSVC").state == "running"
    assert host.service("W3SVC").state == "stopped"
    assert metrics.host("EXCH01").service_restarts == {"IISADMIN": 1, "SMTPSVC": 1}


def test_stop_then_start_counts_as_one_restart(manager, metrics):
    manager.stop("EXCH01", "SMTPSVC")
    manager.start("EXCH01", "SMTPSVC")
    manager.restart("EXCH01", "SMTPSVC")
    assert metrics.host("EXCH01").service_restarts == {"SMTPSVC": 2}


@pytest.mark.parametrize("action, service, code, message", [
    ("start", "NoSuchSvc", 1060, "The specified service does not exist as an installed service."),
    ("start", "SMTPSVC", 1056, "An instance of the service is already running."),
])
def test_service_errors(manager, action, service, code, message):
    with pytest.raises(ServiceError) as err:
        getattr(manager, action)("EXCH01", service)
    assert (err.value.code, err.value.message) == (code, message)


def test_starting_disabled_service_fails_1058(manager, host):
    manager.stop("EXCH01", "SMTPSVC")
    manager.set_start_mode("EXCH01", "SMTPSVC", "disabled")
    with pytest.raises(ServiceError) as err:
        manager.start("EXCH01", "SMTPSVC")
    assert err.value.code == 1058
    assert err.value.message == ("The service cannot be started, either because it is disabled or because it "
                                 "has no enabled devices associated with it.")
    assert host.service("SMTPSVC").state == "stopped"


def test_disabled_dependency_fails_1068_and_stop_of_stopped_fails_1062(manager):
    manager.stop("EXCH01", "IISADMIN")
    manager.set_start_mode("EXCH01", "IISADMIN", "disabled")
    with pytest.raises(ServiceError) as err:
        manager.start("EXCH01", "SMTPSVC")
    assert err.value.code == 1068
    with pytest.raises(ServiceError) as err:
        manager.stop("EXCH01", "SMTPSVC")
    assert err.value.code == 1062


def test_missing_explicit_dependency_fails_1075(manager, host):
    host.services["W3SVC"].depends_on = ["HTTP"]
    manager.stop("EXCH01", "W3SVC")
    with pytest.raises(ServiceError) as err:
        manager.start("EXCH01", "W3SVC")
    assert err.value.code == 1075


def test_set_start_mode_validates(manager):
    with pytest.raises(ValueError):
        manager.set_start_mode("EXCH01", "SMTPSVC", "boot")


def test_queue_files_survive_restart(manager, host):
    before = [(path, f.data, f.mtime) for path, f in host.files.listdir(QUEUE_DIR)]
    manager.restart("EXCH01", "SMTPSVC")
    manager.restart("EXCH01", "IISADMIN")
    assert [(path, f.data, f.mtime) for path, f in host.files.listdir(QUEUE_DIR)] == before
    assert len(before) == 2


# -- DS2MB ---------------------------------------------------------------------------

def vs1(host) -> dict:
    return metabase.parse(host.files.read(METABASE).data.decode())["/lm/smtpsvc/1"]


def edit_metabase(host, prop, value):
    text = host.files.read(METABASE).data.decode()
    host.files.write(METABASE, metabase.set_property(text, "/LM/SmtpSvc/1", prop, value), T0)


def test_ds2mb_reverts_ad_owned_edit_and_keeps_other_properties(manager, host):
    edit_metabase(host, "SmartHost", "[192.0.2.1]")
    edit_metabase(host, "ConnectResponse", "edited banner")
    assert vs1(host)["SmartHost"] == "[192.0.2.1]"
    manager.restart("EXCH01", "SMTPSVC")
    props = vs1(host)
    assert props["SmartHost"] == "[10.0.0.5]"  # AD wins
    assert props["ConnectResponse"] == "edited banner"  # not AD-owned: survives
    assert props["SmtpInboundCommandSupportOptions"] == "7697601"
    assert "BadMailDirectory" not in props  # absent in AD, absent in metabase


def test_ds2mb_removes_property_absent_in_ad_and_keeps_history(fleet, host):
    fleet.ad.set_attr(vs_dn("EXCH01"), "msExchSmtpSmartHost", None)
    before = host.files.read(METABASE).data
    assert run_ds2mb(fleet, host) is True
    assert "SmartHost" not in vs1(host)
    history = host.files.read(r"C:\WINDOWS\system32\inetsrv\History\MetaBase_0000000001_0000000000.xml")
    assert history.data == before
    assert b'HistoryMajorVersionNumber="2"' in host.files.read(METABASE).data
    assert run_ds2mb(fleet, host) is False  # nothing left to change: no write


def test_ds2mb_ignores_other_servers_and_adds_new_instances(fleet, host):
    fleet.ad.put(vs_dn("EXCH01", "2"), {"objectClass": VS_CLASSES, "msExchSmtpSmartHost": "[10.0.0.7]"})
    run_ds2mb(fleet, host)
    parsed = metabase.parse(host.files.read(METABASE).data.decode())
    assert parsed["/lm/smtpsvc/1"]["SmartHost"] == "[10.0.0.5]"
    assert parsed["/lm/smtpsvc/2"]["SmartHost"] == "[10.0.0.7]"
    assert parsed["/lm/smtpsvc/2"]["_tag"] == "IIsSmtpServer"


def test_ds2mb_leaves_corrupt_metabase_and_logs_event(manager, host):
    host.files.write(METABASE, "<configuration><MBProperty>", T0)
    manager.restart("EXCH01", "SMTPSVC")
    assert host.files.read(METABASE).data == b"<configuration><MBProperty>"
    [event] = host.events
    assert (event["log"], event["source"], event["event_id"], event["type"]) == (
        "Application", "MSExchangeMU", DS2MB_FAILED_EVENT_ID, "Error")


def test_ds2mb_does_nothing_without_exchange():
    plain = make_host(exchange=False)
    fleet = FleetState(hosts={"EXCH01": plain}, ad=ActiveDirectory(ad_objects()), network={})
    before = plain.files.read(METABASE).data
    edit_metabase(plain, "SmartHost", "[192.0.2.1]")
    edited = plain.files.read(METABASE).data
    assert before != edited
    assert run_ds2mb(fleet, plain) is False
    assert plain.files.read(METABASE).data == edited


def test_wmic_reads_the_same_wmi_instances_as_the_dispatcher():
    import yaml
    from lab.scenario import load_scenario_data
    from lab.shell.cmd import run_builtin
    from tests.conftest import DEMO

    fleet = load_scenario_data(yaml.safe_load(open(DEMO)), source="demo")
    out, err, rc = run_builtin(fleet, "EXCH02", "wmic path Win32_SoftwareFeature where \"Name='Pop3Smtp'\" get InstallState /format:list")
    assert rc == 0 and out.decode().split() == ["InstallState=2"]
    out, err, rc = run_builtin(fleet, "EXCH02", "wmic path Win32_SoftwareFeature where \"Name='NoSuch'\" get Name")
    assert out == b"" and b"No Instance(s) Available." in err
    out, _, _ = run_builtin(fleet, "EXCH05", "wmic qfe get HotFixID /format:list")
    assert "HotFixID=KB950757" not in out.decode() and "HotFixID=" in out.decode()
