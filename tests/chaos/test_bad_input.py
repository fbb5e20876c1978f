"""Bad input is refused, naming the host and the variable, before any host is contacted; a run that saw nothing
does not pass.

Before: an FQDN with CR/LF became the probes' EHLO name and a read-only audit queued real mail; a host named
../../../x wrote its backup outside the backup folder; a missing inventory, or a fleet refusing the password,
exited 0; a change id with a trailing newline passed the pattern; a nested-repetition pattern hung the run.
"""
from __future__ import annotations

import os

import pytest

from tests.chaos.conftest import inventory, run, winrm_total
from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.integration]
MARK = "mailflow-chaos-injected"


def rename(old: str, new: str):
    def edit(inv):
        hosts = inv["all"]["children"]["mailflow_servers"]["hosts"]
        hosts[new] = hosts.pop(old)
    return edit


def set_var(host: str, var: str, value):
    def edit(inv):
        inv["all"]["children"]["mailflow_servers"]["hosts"][host][var] = value
    return edit


def every_file(lab) -> str:
    with lab.fleet.lock:
        return "\n".join(f.data.decode("latin-1") for h in lab.fleet.hosts.values() for _, f in h.files.listdir("C:\\", True))


@pytest.mark.parametrize("name", ["../../../x", "/tmp/mailflow-abs", "x" * 300, ".hidden"])
@pytest.mark.parametrize("playbook", ["audit.yml", "fix.yml"])
def test_a_host_name_that_cannot_name_its_files_is_refused_before_any_host_is_contacted(lab, tmp_path, name, playbook):
    inv = inventory(lab, tmp_path, rename("RELAY01", name))
    lab.metrics.reset()
    proc = run(playbook, inv, tmp_path, *(("-e", "mailflow_change_id=CHG920") if playbook == "fix.yml" else ()))
    assert proc.returncode != 0 and "cannot name its backup, snapshot and report files" in proc.stdout, proc.stdout[-2000:]
    assert name[:60] in proc.stdout
    assert winrm_total(lab) == 0
    assert not (tmp_path / "reports").exists() and not (tmp_path / "backups").exists()  # nothing written anywhere
    assert not os.path.exists("/tmp/mailflow-abs.json")


def test_an_fqdn_carrying_smtp_commands_is_refused_and_nothing_is_sent(lab, tmp_path):
    bad = f"exch05.corp.example\r\nMAIL FROM:<{MARK}@evil.example>\r\nRCPT TO:<postmaster@corp.example>\r\nDATA"
    inv = inventory(lab, tmp_path, set_var("EXCH05", "mailflow_fqdn", bad))
    lab.metrics.reset()
    proc = run("audit.yml", inv, tmp_path)
    assert proc.returncode != 0 and "EXCH05: mailflow_fqdn" in proc.stdout and "control character" in proc.stdout, proc.stdout[-2000:]
    assert winrm_total(lab) == 0 and MARK not in every_file(lab)


def test_a_run_that_matches_no_server_or_reads_none_fails(lab, tmp_path):
    # A missing inventory leaves Ansible only its implicit localhost: the inventory check fails the run.
    missing = run("audit.yml", str(tmp_path / "no-such-inventory.yml"), tmp_path)
    assert missing.returncode != 0 and "no hosts in mailflow_servers" in missing.stdout, missing.stdout[-2000:]

    empty = tmp_path / "empty.yml"
    empty.write_text("all:\n  children:\n    mailflow_servers:\n      hosts: {}\n")
    proc = run("audit.yml", str(empty), tmp_path)
    assert proc.returncode != 0 and "no hosts in mailflow_servers" in proc.stdout, proc.stdout[-2000:]

    def wrong_password(inv):
        inv["all"]["vars"]["ansible_password"] = "not-the-password"
    proc = run("audit.yml", inventory(lab, tmp_path, wrong_password), tmp_path)
    assert proc.returncode != 0 and "no server could be read" in proc.stdout, proc.stdout[-2000:]


def test_a_change_id_with_a_trailing_newline_and_a_runaway_pattern_are_refused_before_any_host(lab, tmp_path):
    inv = inventory(lab, tmp_path)
    lab.metrics.reset()
    proc = run("fix.yml", inv, tmp_path, "-e", '{"mailflow_change_id": "CHG1\\n"}')
    assert proc.returncode != 0 and "cannot name the record folder" in proc.stdout, proc.stdout[-2000:]
    proc = run("remediate.yml", inv, tmp_path, "-e", "mailflow_change_id=CHG" + "1" * 30 + "x",
               "-e", "mailflow_change_id_pattern=^CHG(\\d+)+$", "-e", "mailflow_window_override_reason=chaos", timeout=120)
    assert proc.returncode != 0 and "took more than" in proc.stdout, proc.stdout[-2000:]
    assert winrm_total(lab) == 0


def test_ssh_host_keys_are_checked_by_the_shipped_configuration():
    import configparser
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "ansible.cfg"))
    assert cfg.getboolean("defaults", "host_key_checking") is True
