"""The lab's WinRM listener, driven by the real clients over loopback sockets.

pywinrm (NTLM with message encryption over HTTP, Basic over validated HTTPS),
pytest-testinfra's winrm backend and ansible-core's winrm connection plugin
talk to a WinRMListener whose executor is a stub that records what it ran.
"""
from __future__ import annotations

import base64
import http.client
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import testinfra
import winrm
from cryptography import x509
from winrm.exceptions import InvalidCredentialsError, WinRMOperationTimeoutError, WinRMTransportError, WSManFaultError

from lab.ca import LabCA
from lab.runtime import Metrics
from lab.state import ActiveDirectory, Filesystem, FleetState, HostState, Registry
from lab.wsman.server import WinRMListener
from tests.conftest import _BLOCKS as conftest_blocks

HTTP_PORT, HTTPS_PORT = 45985, 45986
_octets = itertools.count(1)
# 127.<this run's block>.77.n: a block of the run's own range (tests/conftest.py), so two workers, or two
# checkouts tested at once, never bind the same address and port.
_BLOCK = next(conftest_blocks)


class RecordingExecutor:
    """Echoes the command line and stdin back; remembers every call."""

    def __init__(self, exit_code: int = 0) -> None:
        self.calls: list[tuple[str, str, bytes]] = []
        self.logons: list = []  # the shells.Logon each call ran under
        self.exit_code = exit_code
        self.respond = None  # optional (command_line, stdin) -> (stdout, stderr, rc)

    def __call__(self, host_name: str, command_line: str, stdin: bytes, logon=None) -> tuple[bytes, bytes, int]:
        self.calls.append((host_name, command_line, stdin))
        self.logons.append(logon)
        if self.respond is not None:
            return self.respond(command_line, stdin)
        return f"ran: {command_line}".encode() + stdin, b"", self.exit_code

    @property
    def command_lines(self) -> list[str]:
        return [line for _, line, _ in self.calls]


def make_host(name: str, username: str, password: str) -> HostState:
    return HostState(
        name=name, fqdn=f"{name.lower()}.corp.example", address=f"127.{_BLOCK}.77.{next(_octets)}",
        username=username, password=password,
        os={"caption": "Microsoft(R) Windows(R) Server 2003, Enterprise Edition", "version": "5.2.3790",
            "build": "3790", "service_pack": "Service Pack 2", "computer_name": name, "domain": "corp.example"},
        registry=Registry(), files=Filesystem(), services={}, events=[], wmi={}, tcp_connections=[],
        smtp_engine={},
        ports={"http": HTTP_PORT, "https": HTTPS_PORT, "smtp": 25},
    )


class Lab:
    """A two-host fleet (same user name, different passwords) with listeners."""

    def __init__(self, tmp_path: Path) -> None:
        self.exch = make_host("EXCH01", "CORP\\svc-audit", "Exch01-pass")
        self.other = make_host("EXCH02", "CORP\\svc-audit", "Exch02-pass")
        self.fleet = FleetState({h.name: h for h in (self.exch, self.other)}, ActiveDirectory(), {})
        self.metrics = Metrics()
        self.executor = RecordingExecutor()
        self.ca = LabCA(tmp_path / "ca")
        self.listeners: list[WinRMListener] = []

    def listen(self, host: HostState, scheme: str = "http") -> WinRMListener:
        context = self.ca.server_context(host) if scheme == "https" else None
        listener = WinRMListener(self.fleet, self.metrics, host.name, self.executor, scheme, context)
        listener.start()
        self.listeners.append(listener)
        return listener

    def protocol(self, host: HostState, password: str | None = None, **kwargs) -> winrm.Protocol:
        kwargs.setdefault("transport", "ntlm")
        kwargs.setdefault("read_timeout_sec", 10)
        kwargs.setdefault("operation_timeout_sec", 5)
        return winrm.Protocol(f"http://{host.address}:{HTTP_PORT}/wsman", username=host.username,
                              password=password or host.password, **kwargs)

    def counters(self, host: HostState):
        return self.metrics.host(host.name)

    def faults(self, host: HostState):
        return self.metrics.fault(host.name)


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path)
    yield lab
    for listener in lab.listeners:
        listener.stop()


def run(protocol: winrm.Protocol, command: str, args=()) -> tuple[bytes, bytes, int]:
    shell = protocol.open_shell()
    command_id = protocol.run_command(shell, command, args)
    result = protocol.get_command_output(shell, command_id)
    protocol.cleanup_command(shell, command_id)
    protocol.close_shell(shell)
    return result


# -- transports and authentication

def test_ntlm_over_http_encrypts_every_message(lab):
    listener = lab.listen(lab.exch)
    lab.executor.exit_code = 3
    session = winrm.Session(f"{lab.exch.address}:{HTTP_PORT}", auth=(lab.exch.username, lab.exch.password),
                            transport="ntlm")
    result = session.run_cmd("ipconfig", ["/all"])
    assert (result.status_code, result.std_out) == (3, b"ran: ipconfig /all")
    assert lab.executor.calls == [("EXCH01", "ipconfig /all", b"")]
    assert listener.stats.sealed_requests >= 5 and listener.stats.plaintext_requests == 0
    assert listener.stats.sealed_responses == listener.stats.sealed_requests
    counters = lab.counters(lab.exch)
    assert (counters.shells_opened, counters.auth_failures, counters.winrm_commands) == (1, 0, 1)
    assert counters.http_requests >= 8  # 3 for the NTLM handshake, 5 SOAP operations


def test_plaintext_soap_over_http_is_refused(lab):
    lab.listen(lab.exch)
    with pytest.raises(InvalidCredentialsError):
        lab.protocol(lab.exch, message_encryption="never").open_shell()
    assert lab.counters(lab.exch).shells_opened == 0


def test_https_basic_with_certificate_validation(lab):
    listener = lab.listen(lab.exch, "https")
    endpoint = f"https://{lab.exch.address}:{HTTPS_PORT}/wsman"
    creds = dict(username=lab.exch.username, password=lab.exch.password, transport="ssl")
    trusted = winrm.Protocol(endpoint, server_cert_validation="validate", ca_trust_path=lab.ca.ca_pem_path, **creds)
    assert run(trusted, "hostname") == (b"ran: hostname", b"", 0)
    assert listener.stats.plaintext_requests > 0 and listener.stats.sealed_requests == 0
    untrusted = winrm.Protocol(endpoint, server_cert_validation="validate", ca_trust_path=None, **creds)
    with pytest.raises(requests.exceptions.SSLError):
        untrusted.open_shell()
    with pytest.raises(InvalidCredentialsError):
        winrm.Protocol(endpoint, ca_trust_path=lab.ca.ca_pem_path, **{**creds, "password": "nope"}).open_shell()
    assert lab.counters(lab.exch).auth_failures == 1


def test_wrong_password_is_rejected_and_counted(lab):
    lab.listen(lab.exch)
    with pytest.raises(InvalidCredentialsError):
        lab.protocol(lab.exch, password="wrong").open_shell()
    assert lab.counters(lab.exch).auth_failures == 1
    assert lab.counters(lab.exch).shells_opened == 0


def test_each_host_checks_its_own_credentials(lab):
    lab.listen(lab.exch)
    lab.listen(lab.other)
    with pytest.raises(InvalidCredentialsError):
        lab.protocol(lab.exch, password=lab.other.password).open_shell()
    assert run(lab.protocol(lab.exch), "hostname")[2] == 0
    assert run(lab.protocol(lab.other), "hostname")[2] == 0
    assert [c[0] for c in lab.executor.calls] == ["EXCH01", "EXCH02"]


# -- commands, stdin and output

def test_stdin_reaches_the_executor_once_complete(lab):
    lab.listen(lab.exch)
    protocol = lab.protocol(lab.exch)
    shell = protocol.open_shell()
    command_id = protocol.run_command(shell, "findstr", ["x"], console_mode_stdin=False)
    with pytest.raises(WinRMOperationTimeoutError):  # stdin still open: nothing has run
        protocol.get_command_output_raw(shell, command_id)
    protocol.send_command_input(shell, command_id, b"first line\r\n\x00\xff", end=False)
    protocol.send_command_input(shell, command_id, b"second line", end=True)
    stdout, _, rc = protocol.get_command_output(shell, command_id)
    assert lab.executor.calls == [("EXCH01", "findstr x", b"first line\r\n\x00\xffsecond line")]
    assert (stdout, rc) == (b"ran: findstr xfirst line\r\n\x00\xffsecond line", 0)


def test_cmd_exe_refuses_command_lines_over_8191_characters(lab):
    lab.listen(lab.exch)
    protocol = lab.protocol(lab.exch)
    assert run(protocol, "echo", ["x" * (8192 - 5)]) == (b"", b"", 0)
    assert lab.executor.calls == []
    assert run(protocol, "echo", ["x" * (8191 - 5)])[0].startswith(b"ran: echo xxx")
    counters = lab.counters(lab.exch)
    assert counters.command_line_lengths == [8192, 8191]
    assert (counters.overlong_command_lines, counters.max_command_line) == (1, 8192)


def test_large_output_is_paged_within_max_envelope_size(lab):
    listener = lab.listen(lab.exch)
    big_out, big_err = os.urandom(1024 * 1024), os.urandom(200_000)
    lab.executor.respond = lambda line, stdin: (big_out, big_err, 7)
    stdout, stderr, rc = run(lab.protocol(lab.exch), "type", ["big.bin"])
    assert (stdout == big_out, stderr == big_err, rc) == (True, True, 7)
    assert listener.stats.receive_responses >= 9  # 1.2 MB / ~113 KB raw per 150 KB envelope
    assert listener.stats.largest_envelope <= 153600


def test_slow_command_answers_operation_timeout_until_done(lab):
    listener = lab.listen(lab.exch)
    lab.executor.respond = lambda line, stdin: (time.sleep(1.3), (b"slow", b"", 0))[1]
    protocol = lab.protocol(lab.exch, operation_timeout_sec=1, read_timeout_sec=3)
    assert run(protocol, "slow.exe") == (b"slow", b"", 0)
    assert listener.stats.operation_timeouts >= 1


def test_a_request_over_max_envelope_size_is_answered_413(lab):
    """WinRM 2.0's MaxEnvelopeSizekb (150 by default) bounds what one Send may carry; ansible.windows#391/#620."""
    listener = lab.listen(lab.exch)
    protocol = lab.protocol(lab.exch)
    shell = protocol.open_shell()
    fits, too_big = b"a" * 110_000, b"a" * 120_000  # base64 in the envelope: about 147 KB and 160 KB
    command_id = protocol.run_command(shell, "more", console_mode_stdin=False)
    protocol.send_command_input(shell, command_id, fits, end=True)
    assert protocol.get_command_output(shell, command_id)[0].endswith(fits)
    command_id = protocol.run_command(shell, "more", console_mode_stdin=False)
    with pytest.raises(WinRMTransportError, match="Code 413"):
        protocol.send_command_input(shell, command_id, too_big, end=True)
    assert listener.stats.oversize_requests == 1 and 150 * 1024 < listener.stats.largest_request
    lab.exch.winrm_config["MaxEnvelopeSizekb"] = 500  # as `winrm set winrm/config @{MaxEnvelopeSizekb="500"}`
    protocol.send_command_input(shell, command_id, too_big, end=True)
    assert protocol.get_command_output(shell, command_id)[0].endswith(too_big)


def test_an_operation_timeout_over_max_timeoutms_is_cut_to_it(lab):
    """MS-WSMAN 3.1.4.1.x: an OperationTimeout above MaxTimeoutms is not refused, the server uses MaxTimeoutms."""
    listener = lab.listen(lab.exch)
    lab.exch.winrm_config["MaxTimeoutms"] = 500
    lab.executor.respond = lambda line, stdin: (time.sleep(1.2), (b"late", b"", 0))[1]
    protocol = lab.protocol(lab.exch, operation_timeout_sec=20, read_timeout_sec=30)
    started = time.monotonic()
    assert run(protocol, "slow.exe") == (b"late", b"", 0)
    assert listener.stats.operation_timeouts >= 2 and time.monotonic() - started < 5


def test_the_shell_remembers_how_its_user_logged_on(lab):
    """NTLM over HTTP is a network logon with no credentials for a second hop; Basic over HTTPS is a cleartext one."""
    lab.listen(lab.exch)
    lab.listen(lab.exch, "https")
    run(lab.protocol(lab.exch), "hostname")
    https = winrm.Protocol(f"https://{lab.exch.address}:{HTTPS_PORT}/wsman", transport="basic", username=lab.exch.username,
                           password=lab.exch.password, server_cert_validation="validate", ca_trust_path=lab.ca.ca_pem_path)
    run(https, "hostname")
    (ntlm, basic) = lab.executor.logons
    assert (ntlm.mechanism, ntlm.network_credentials) == ("ntlm", False)
    assert (basic.mechanism, basic.network_credentials) == ("basic", True)


def test_unknown_shell_or_command_is_a_wsman_fault(lab):
    lab.listen(lab.exch)
    protocol = lab.protocol(lab.exch)
    with pytest.raises(WSManFaultError) as shell_fault:
        protocol.run_command("6B1D1B7A-0000-4000-8000-000000000000", "hostname")
    assert (shell_fault.value.code, shell_fault.value.wsman_fault_code) == (500, 2150858843)
    shell = protocol.open_shell()
    with pytest.raises(WSManFaultError) as command_fault:
        protocol.get_command_output_raw(shell, "6B1D1B7A-0000-4000-8000-000000000001")
    assert command_fault.value.fault_subcode == "w:InvalidParameter"
    protocol.close_shell(shell)
    with pytest.raises(WSManFaultError):
        protocol.close_shell(shell, close_session=False)  # already gone


# -- faults

def test_latency_fault_delays_every_request(lab):
    lab.listen(lab.exch)
    lab.faults(lab.exch).latency_ms = 100
    started = time.monotonic()
    run(lab.protocol(lab.exch), "hostname")
    assert time.monotonic() - started >= 0.1 * lab.counters(lab.exch).http_requests


def test_http_500_fault_answers_the_next_requests_then_recovers(lab):
    lab.listen(lab.exch)
    lab.faults(lab.exch).http_500 = 1
    with pytest.raises(WinRMTransportError) as error:
        lab.protocol(lab.exch).open_shell()
    assert error.value.code == 500 and lab.faults(lab.exch).http_500 == 0
    # Mid-session too: the encrypted session must survive the refused request.
    protocol = lab.protocol(lab.exch)
    shell = protocol.open_shell()
    lab.faults(lab.exch).http_500 = 1
    with pytest.raises(WinRMTransportError):
        protocol.run_command(shell, "refused")
    command_id = protocol.run_command(shell, "hostname")
    assert protocol.get_command_output(shell, command_id) == (b"ran: hostname", b"", 0)
    assert lab.executor.command_lines == ["hostname"]


def test_drop_connections_fault_closes_without_answer(lab):
    lab.listen(lab.exch)
    lab.faults(lab.exch).drop_connections = 2
    for _ in range(2):
        with pytest.raises(requests.exceptions.ConnectionError):
            lab.protocol(lab.exch).open_shell()
    assert run(lab.protocol(lab.exch), "hostname")[2] == 0


def test_timeout_fault_holds_requests_but_stop_is_prompt(lab):
    listener = lab.listen(lab.exch)
    lab.faults(lab.exch).timeout = True
    connection = http.client.HTTPConnection(lab.exch.address, HTTP_PORT, timeout=0.5)
    connection.request("POST", "/wsman", body=b"", headers={"Content-Type": "application/soap+xml"})
    with pytest.raises(socket.timeout):
        connection.getresponse()
    started = time.monotonic()
    listener.stop()
    assert time.monotonic() - started < 1.0
    connection.sock.settimeout(1.0)
    assert connection.sock.recv(1) == b""  # closed by the server, never answered
    connection.close()


def test_drop_after_commands_kills_the_connection_mid_change(lab):
    lab.listen(lab.exch)
    lab.faults(lab.exch).drop_after_commands = 2
    protocol = lab.protocol(lab.exch)
    shell = protocol.open_shell()
    first = protocol.run_command(shell, "reg", ["add", "one"])
    assert protocol.get_command_output(shell, first)[2] == 0
    with pytest.raises(requests.exceptions.ConnectionError):
        protocol.run_command(shell, "reg", ["add", "two"])
    assert lab.executor.command_lines == ["reg add one"]
    assert lab.faults(lab.exch).drop_after_commands == -1


def test_stop_closes_idle_keepalive_connections_and_restarts(lab):
    listener = lab.listen(lab.exch)
    protocol = lab.protocol(lab.exch)
    run(protocol, "hostname")  # leaves an authenticated keep-alive connection open
    started = time.monotonic()
    listener.stop()
    assert time.monotonic() - started < 1.0
    # Only this listener's threads: other labs in the session may have an EXCH01 too.
    assert not [t for t in threading.enumerate() if t.name.startswith("winrm-EXCH01") and t.name.endswith("@%s:%s" % listener.address)]
    listener.start()
    assert run(lab.protocol(lab.exch), "hostname")[2] == 0


# -- other clients

def test_testinfra_winrm_backend(lab):
    lab.exch.username = "auditor"  # testinfra's URL form has no room for DOMAIN\user
    lab.listen(lab.exch)
    host = testinfra.get_host(f"winrm://auditor:{lab.exch.password}@{lab.exch.address}:{HTTP_PORT}?no_ssl=true")
    result = host.run("echo hi")
    assert (result.rc, result.stdout) == (0, "ran: echo hi")
    assert lab.executor.command_lines == ["echo hi"]


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_ansible_winrm_connection_plugin_runs_raw(lab, tmp_path, scheme):
    lab.listen(lab.exch, scheme)
    lab.executor.respond = lambda line, stdin: (b"corp\\svc-audit\r\n", b"", 0)
    connection = {
        "http": {"ansible_port": HTTP_PORT, "ansible_winrm_transport": "ntlm"},
        "https": {"ansible_port": HTTPS_PORT, "ansible_winrm_transport": "basic",
                  "ansible_winrm_ca_trust_path": lab.ca.ca_pem_path},  # validation stays on
    }[scheme]
    extra_vars = {"ansible_connection": "winrm", "ansible_user": lab.exch.username,
                  "ansible_password": lab.exch.password, "ansible_winrm_scheme": scheme, **connection}
    env = {**os.environ, "ANSIBLE_HOME": str(tmp_path / "ansible-home"), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
           "ANSIBLE_NOCOLOR": "1"}
    env.pop("ANSIBLE_CONFIG", None)
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "all", "-i", f"{lab.exch.address},", "-m", "raw",
         "-a", "whoami", *itertools.chain.from_iterable(("-e", f"{k}={v}") for k, v in extra_vars.items())],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "corp\\svc-audit" in completed.stdout
    (line,) = lab.executor.command_lines
    prefix = "PowerShell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand "
    assert line.startswith(prefix)
    assert base64.b64decode(line[len(prefix):]).decode("utf-16-le") == "whoami"


# -- the CA

def test_lab_ca_persists_and_names_hosts(tmp_path, lab):
    again = LabCA(tmp_path / "ca")
    assert again.certificate == lab.ca.certificate
    assert Path(again.ca_pem_path).read_bytes() == Path(lab.ca.ca_pem_path).read_bytes()
    context = again.server_context(lab.exch)
    assert again.server_context(lab.exch) is context
    leaf = x509.load_pem_x509_certificate((tmp_path / "ca" / "exch01.pem").read_bytes())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [lab.exch.address]
    assert san.get_values_for_type(x509.DNSName) == ["exch01.corp.example", "EXCH01"]
    assert oct((tmp_path / "ca" / "ca.key").stat().st_mode & 0o777) == "0o600"
