"""The lab's IOS device (FW01 in the demo) over SSH: the user's known_hosts, its SSH server, cisco.ios over it.

The SSH server is checked with paramiko as a client, and the whole with
ansible-playbook over network_cli and libssh, host key checking on. The CLI
behind the server: test_netdev_cli.
"""
from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import time

import paramiko
import pytest
import yaml

from lab.core import Lab
from lab.netdev import keys
from lab.scenario import load_scenario_data
from tests.conftest import ROOT, demo_data, relocate
from tests.lab.netdev_scenario import fw01_data

ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


# -- the user's known_hosts (keys.trust / keys.untrust on a file of the test's own)

TAG, OTHER_TAG = "mailflow-lab-" + "a" * 12, "mailflow-lab-" + "b" * 12
KEY_A = "AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
KEY_B = "AAAAC3NzaC1lZDI1NTE5AAAAIBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
DEVICE = "[127.0.10.21]:2201"
OURS = f"{DEVICE} ssh-ed25519 {KEY_A}"


def known_hosts(tmp_path, *lines: str):
    path = tmp_path / "known_hosts"
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_trust_adds_tagged_lines_and_untrust_removes_only_them(tmp_path):
    mine = ["# my hosts", "", "gitlab.example ssh-ed25519 " + KEY_B, "[127.0.10.22]:2201 ssh-rsa AAAAB3Nza mine"]
    path = known_hosts(tmp_path, *mine)
    path.chmod(0o644)
    keys.trust(str(path), [OURS], TAG)
    assert path.read_text().splitlines() == mine + [f"{OURS} {TAG}"]
    assert path.stat().st_mode & 0o777 == 0o644  # the file's mode is kept
    keys.trust(str(path), [OURS], TAG)  # again (a restart): still one line
    assert path.read_text().splitlines() == mine + [f"{OURS} {TAG}"]
    keys.untrust(str(path), TAG)
    assert path.read_text().splitlines() == mine


def test_trust_refuses_to_replace_the_users_own_line_for_the_device(tmp_path):
    theirs = f"{DEVICE} ssh-ed25519 {KEY_B}"
    for line in (theirs, f"other.example,{DEVICE} ssh-ed25519 {KEY_B}", f"{DEVICE} ssh-rsa AAAAB3NzaC1yc2E",
                 f"|1|{_hashed(DEVICE)} ssh-ed25519 {KEY_B}"):  # HashKnownHosts yes
        path = known_hosts(tmp_path, "gitlab.example ssh-ed25519 " + KEY_A, line)
        before = path.read_bytes()
        with pytest.raises(keys.KnownHostsConflict) as caught:
            keys.trust(str(path), [OURS, f"127.0.10.23 ssh-ed25519 {KEY_A}"], TAG)
        message = str(caught.value)
        assert str(path) in message and DEVICE in message and "line 2" in message and "not the lab's" in message
        assert path.read_bytes() == before  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == [".mailflow-lab.lock", "known_hosts"]  # no temporary file


def _hashed(host: str) -> str:
    import base64
    import hashlib
    import hmac
    salt = b"0123456789abcdefghij"
    return base64.b64encode(salt).decode() + "|" + base64.b64encode(hmac.new(salt, host.encode(), hashlib.sha1).digest()).decode()


def test_trust_uses_the_users_own_line_when_it_has_the_same_key(tmp_path):
    for theirs in (OURS, f"{OURS} my router", f"|1|{_hashed(DEVICE)} ssh-ed25519 {KEY_A}"):
        path = known_hosts(tmp_path, theirs)
        keys.trust(str(path), [OURS, f"127.0.10.23 ssh-ed25519 {KEY_B}"], TAG)
        assert path.read_text().splitlines() == [theirs, f"127.0.10.23 ssh-ed25519 {KEY_B} {TAG}"]  # nothing added for it
        keys.untrust(str(path), TAG)
        assert path.read_text().splitlines() == [theirs]  # and it stays when the lab stops


def test_trust_replaces_stale_lab_lines_for_its_hosts_only(tmp_path):
    path = known_hosts(tmp_path,
                       f"{DEVICE} ssh-ed25519 {KEY_B} {OTHER_TAG}",  # a lab that crashed on this address
                       f"127.0.99.1 ssh-ed25519 {KEY_B} {OTHER_TAG}",  # another lab, running elsewhere
                       f"127.0.50.1 ssh-ed25519 {KEY_B} {TAG}")  # this lab's, from an earlier address
    keys.trust(str(path), [OURS], TAG)
    assert path.read_text().splitlines() == [f"127.0.99.1 ssh-ed25519 {KEY_B} {OTHER_TAG}", f"{OURS} {TAG}"]


def test_trust_writes_through_a_symlinked_known_hosts(tmp_path):
    (tmp_path / "dotfiles").mkdir()
    target = known_hosts(tmp_path / "dotfiles", "gitlab.example ssh-ed25519 " + KEY_B)
    (tmp_path / "ssh").mkdir()
    link = tmp_path / "ssh" / "known_hosts"
    link.symlink_to(target)
    keys.trust(str(link), [OURS], TAG)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text().splitlines() == ["gitlab.example ssh-ed25519 " + KEY_B, f"{OURS} {TAG}"]
    keys.untrust(str(link), TAG)
    assert link.is_symlink() and target.read_text().splitlines() == ["gitlab.example ssh-ed25519 " + KEY_B]


def test_a_lab_leaves_the_users_known_hosts_alone_unless_asked(tmp_path):
    assert Lab(load_scenario_data(fw01_data(), "<fw01>"), str(tmp_path / "lab")).user_known_hosts is None


def test_a_lab_that_cannot_list_its_keys_does_not_start(tmp_path):
    data = relocate(fw01_data())
    address = data["network"]["devices"][0]["address"]
    path = known_hosts(tmp_path, f"{address} ssh-ed25519 {KEY_B}")
    lab = Lab(load_scenario_data(data, "<fw01>"), str(tmp_path / "lab"), user_known_hosts=str(path))
    with pytest.raises(keys.KnownHostsConflict, match=re.escape(f"{path}: line 1 lists {address} ")):
        lab.start()
    assert (lab.ssh, lab.smtp, lab.winrm) == ({}, {}, [])  # closed again
    assert path.read_text() == f"{address} ssh-ed25519 {KEY_B}\n"
    again = Lab(load_scenario_data(data, "<fw01>"), str(tmp_path / "lab")).start()  # its addresses are free
    again.stop()


def test_up_and_demo_list_the_keys_in_known_hosts_unless_told_not_to(monkeypatch):
    import lab.control
    import lab.demo
    from lab import __main__ as lab_cli
    seen = []
    monkeypatch.setattr(lab.demo, "run_demo", lambda scenario, state_dir, user_known_hosts: seen.append(user_known_hosts))
    monkeypatch.setattr(lab.control, "serve", lambda *args, user_known_hosts, **_: seen.append(user_known_hosts))
    for argv in (["demo"], ["demo", "--no-known-hosts"], ["serve"], ["serve", "--no-known-hosts"]):
        lab_cli.main(argv)
    assert seen == [True, False, True, False]


# -- the SSH server


@pytest.fixture
def router_lab(lab_factory):
    """EXCH01 and EXCH05 with FW01 between them (the demo's, on a fresh address block)."""
    return lab_factory(fw01_data())


def ssh(lab, password: str = "Lab-Cisco1!") -> paramiko.SSHClient:
    address, port = lab.ssh["FW01"].endpoint
    client = paramiko.SSHClient()
    client.load_host_keys(lab.known_hosts_path)  # the lab's known_hosts, checked: RejectPolicy by default
    client.connect(address, port, "netadmin", password, look_for_keys=False, allow_agent=False, timeout=5)
    return client


def read_until(channel, suffix: bytes, timeout: float = 5) -> bytes:
    data, deadline = b"", time.monotonic() + timeout
    while not data.endswith(suffix) and time.monotonic() < deadline:
        if channel.recv_ready():
            data += channel.recv(65536)
        else:
            time.sleep(0.01)
    return data


def test_ssh_shell_echoes_and_prompts_like_a_router(router_lab):
    with ssh(router_lab) as client:
        assert client.get_transport().remote_version == "SSH-2.0-Cisco-1.25"
        shell = client.invoke_shell()
        assert read_until(shell, b"FW01#") == b"\r\n\r\nFW01#"
        shell.send(b"terminal length 0\rshow run | include ^hostname\r")  # two commands in one write, as CR-ended lines
        assert read_until(shell, b"hostname FW01\r\nFW01#") == (
            b"terminal length 0\r\nFW01#show run | include ^hostname\r\nhostname FW01\r\nFW01#")
        shell.send(b"conf t\r\nno ip inspect name MAILFW smtp\r\nend\r\n")  # CRLF is one line end, not two
        out = read_until(shell, b"end\r\nFW01#")
        assert out.count(b"FW01(config)#") == 2 and b"Invalid" not in out
        _, stdout, _ = client.exec_command("show running-config | include MAILFW smtp")
        assert stdout.read() == b"\r\n" and stdout.channel.recv_exit_status() == 0
    counters = router_lab.metrics.device("FW01")
    assert (counters.ssh_logins, counters.config_commands, counters.cli_commands) == (1, 1, 6)
    assert "ip inspect name MAILFW smtp" not in router_lab.fleet.network["devices"][0]["config"]


def test_the_enable_password_is_not_echoed(router_lab):
    with ssh(router_lab) as client:
        shell = client.invoke_shell()
        read_until(shell, b"FW01#")
        shell.send(b"disable\renable\r")
        assert read_until(shell, b"Password: ").endswith(b"FW01>enable\r\nPassword: ")
        shell.send(b"Lab-Cisco1!\r")
        assert read_until(shell, b"FW01#") == b"\r\nFW01#"


def test_a_wrong_password_is_refused(router_lab):
    with pytest.raises(paramiko.AuthenticationException):
        ssh(router_lab, password="cisco")
    assert router_lab.metrics.device("FW01").ssh_auth_failures == 1


def test_host_key_files_inventory_and_saved_configs(tmp_path):
    data = relocate(demo_data())
    known = tmp_path / "user_known_hosts"
    known.write_text("10.1.1.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeep\n")
    lab = Lab(load_scenario_data(data, "<demo>"), str(tmp_path / "lab"), user_known_hosts=str(known)).start()
    try:
        address, port = lab.ssh["FW01"].endpoint
        key_line = f"{address} ssh-ed25519 {paramiko.Ed25519Key(filename=str(tmp_path / 'lab/ssh/FW01.key')).get_base64()}"
        assert open(lab.known_hosts_path).read() == key_line + "\n" and port == 22
        assert open(lab.ssh_config_path).read().endswith(
            f"Host *\n  UserKnownHostsFile {lab.known_hosts_path}\n  StrictHostKeyChecking yes\n")
        assert known.read_text() == "10.1.1.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeep\n" \
            f"{key_line} {keys.lab_tag(lab.workdir)}\n"
        firewalls = lab.inventory()["all"]["children"]["firewalls"]
        assert firewalls["vars"] == {"mailflow_firewall_config_dir": str(tmp_path / "lab/firewall-configs")}
        assert firewalls["hosts"]["FW01"] == {
            "ansible_host": address, "ansible_port": 22, "ansible_connection": "ansible.netcommon.network_cli",
            "ansible_network_os": "cisco.ios.ios", "ansible_user": "netadmin", "ansible_password": "Lab-Cisco1!",
            "ansible_network_cli_ssh_type": "libssh", "ansible_libssh_config_file": lab.ssh_config_path,
            "ansible_host_key_checking": True, "mailflow_firewall_platform": "ios",
            "mailflow_firewall_segments": {"FastEthernet0/0": ["EXCH05"], "FastEthernet0/1": ["EXCH01"]}}
        assert firewalls["hosts"]["PIX01"] == {
            "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "mailflow_firewall_config_source": "file", "mailflow_firewall_platform": "pix",
            "mailflow_firewall_segments": {"outside": ["EXCH08"], "inside": ["EXCH04"]}}
        for device in lab.fleet.network["devices"]:
            assert (tmp_path / "lab/firewall-configs" / f"{device['name']}.cfg").read_text() == device["config"]
    finally:
        lab.stop()
    assert known.read_text() == "10.1.1.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeep\n"  # the lab's lines go with it
    again = Lab(load_scenario_data(data, "<demo>"), str(tmp_path / "lab"), user_known_hosts=False).start()
    try:
        assert open(again.known_hosts_path).read() == key_line + "\n"  # same workdir, same host key
    finally:
        again.stop()


# -- Ansible: cisco.ios over network_cli and libssh


def ansible(lab, tmp_path, play: list[dict]) -> tuple[subprocess.CompletedProcess, dict]:
    """ansible-playbook over the lab's inventory; the process and FW01's recap counts."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(lab.inventory()))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               # network_cli's connection daemon: its own socket directory, short timeouts
               ANSIBLE_PERSISTENT_CONTROL_PATH_DIR=str(tmp_path / "pc"), ANSIBLE_PERSISTENT_CONNECT_TIMEOUT="10",
               ANSIBLE_PERSISTENT_COMMAND_TIMEOUT="10")
    proc = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    m = re.search(r"^FW01\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)",
                  proc.stdout, re.M)
    recap = dict(zip(("ok", "changed", "unreachable", "failed", "skipped"), map(int, m.groups()))) if m else {}
    # ansible-playbook closes network_cli's connection daemon as it ends: no socket (and no process) is left. The
    # daemon removes its socket as it exits, which on a loaded machine can come a moment after ansible-playbook's.
    deadline = time.monotonic() + 10
    while (tmp_path / "pc").exists() and list((tmp_path / "pc").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not (tmp_path / "pc").exists() or not list((tmp_path / "pc").iterdir())
    return proc, recap


# What a network team's playbook does to take SMTP out of CBAC rule MAILFW. ios_config compares
# lines with the running config, so a `no` line is always "missing" and always sent: the `when`
# is what makes the second run change nothing.
REMOVE_SMTP_INSPECTION = [{"hosts": "FW01", "gather_facts": False, "tasks": [
    {"name": "read", "cisco.ios.ios_command": {"commands": ["show running-config | include ^ip inspect name"]},
     "register": "inspect"},
    {"name": "fix", "cisco.ios.ios_config": {"lines": ["no ip inspect name MAILFW smtp"], "save_when": "modified"},
     "when": "'ip inspect name MAILFW smtp' in inspect.stdout[0]"},
]}]


def masked(lab, src: str, dst: str) -> bool:
    spec = {"target": dst, "port": 25, "timeout_ms": 3000, "helo": f"{src.lower()}.corp.example",
            "mail_from": "postmaster@corp.example", "rcpt_to": "postmaster@corp.example"}
    result = lab.probe(src, [spec])[0]
    assert result["connect"] == "ok", result
    return result["banner"].startswith("220 ****") or result["ehlo"].startswith("500")


@pytest.mark.slow
def test_ansible_removes_smtp_inspection_and_smtp_sees_it_at_once(router_lab, tmp_path):
    assert masked(router_lab, "EXCH05", "EXCH01") and not masked(router_lab, "EXCH01", "EXCH05")
    proc, recap = ansible(router_lab, tmp_path / "first", REMOVE_SMTP_INSPECTION)
    assert recap == {"ok": 2, "changed": 1, "unreachable": 0, "failed": 0, "skipped": 0}, proc.stdout[-3000:]
    device = router_lab.fleet.network["devices"][0]
    assert "ip inspect name MAILFW smtp" not in device["config"] and "ip inspect name MAILFW tcp" in device["config"]
    assert device["startup_config"] == device["config"]  # save_when: modified wrote memory
    assert not masked(router_lab, "EXCH05", "EXCH01")
    proc, recap = ansible(router_lab, tmp_path / "second", REMOVE_SMTP_INSPECTION)
    assert recap == {"ok": 1, "changed": 0, "unreachable": 0, "failed": 0, "skipped": 1}, proc.stdout[-3000:]
    assert router_lab.metrics.device("FW01").ssh_logins == 2 and router_lab.metrics.device("FW01").ssh_auth_failures == 0


@pytest.mark.slow
def test_ansible_refuses_a_router_whose_host_key_is_not_the_known_one(router_lab, tmp_path):
    address, port = router_lab.ssh["FW01"].endpoint
    impostor = keys.host_key(str(tmp_path / "impostor.key"))
    keys.trust(router_lab.user_known_hosts, [keys.known_hosts_line(address, port, impostor)],
               keys.lab_tag(router_lab.workdir))  # replaces the lab's own line; the lab removes it when it stops
    before = copy.deepcopy(router_lab.fleet.network["devices"][0])
    proc, recap = ansible(router_lab, tmp_path, REMOVE_SMTP_INSPECTION)
    assert recap["failed"] == 1 and "Host key for server has changed" in proc.stdout, proc.stdout[-3000:]
    assert router_lab.fleet.network["devices"][0] == before and router_lab.metrics.device("FW01").ssh_logins == 0
