"""ansible-playbook playbooks/snapshot.yml against the lab, as a user runs it."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from lab.metabase import MetabaseCorrupt, parse as parse_metabase
from lab.shell import powershell
from tests.conftest import ROOT, demo_data

pytestmark = [pytest.mark.slow, pytest.mark.integration]
PLAYBOOK = os.path.join(ROOT, "playbooks", "snapshot.yml")
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def run_playbook(lab, tmp_path, mutate_inventory=None, extra=()):
    inv = lab.inventory()
    if mutate_inventory:
        mutate_inventory(inv)
    inv_path = tmp_path / "hosts.yml"
    inv_path.write_text(yaml.safe_dump(inv))
    snaps = tmp_path / "snapshots"
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(inv_path), PLAYBOOK, "-e", f"mailflow_snapshot_save_dir={snaps}", *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    files = {p[:-5]: json.loads((snaps / p).read_text()) for p in os.listdir(snaps)} if snaps.exists() else {}
    return proc, files


def failure_block(out: str, host: str) -> str:
    """The `fatal: [host]: ...` line and the YAML result printed under it."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"fatal: [{host}]"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i] and not lines[i].startswith(" ")), len(lines))
    return "\n".join(lines[start:end])


def managed(lab):
    return sorted(h.name for h in lab.fleet.hosts.values() if h.winrm)


def test_demo_fleet_one_command_per_host(lab_factory, tmp_path):
    # A lab of its own: the session's demo lab has been probed before, and a greylisting peer accepts a
    # retry once its delay has passed, which a long test session can outlast.
    demo_lab = lab_factory(demo_data())
    proc, snaps = run_playbook(demo_lab, tmp_path, extra=("--check",))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert sorted(snaps) == managed(demo_lab)
    counters = demo_lab.metrics.snapshot()
    for host in managed(demo_lab):
        assert counters[host]["winrm_commands"] == 1, (host, counters[host])
        assert counters[host]["overlong_command_lines"] == 0
        assert counters[host]["max_command_line"] < 8191
    assert "changed=0" in proc.stdout and "EXCH01" in proc.stdout.split("Per-host snapshot table")[1]

    # What the snapshots hold comes from raw state, seen through WinRM and SMTP.
    ex1 = snaps["EXCH01"]
    assert ex1["schema"] == "mailflow.snapshot/1" and ex1["errors"] == {}
    assert ex1["platform"]["kind"] == "exchange2003" and ex1["platform"]["exchange"]["build"] == "7638.2"
    assert snaps["RELAY01"]["platform"]["kind"] == "smtp_relay"
    probes = {p["peer"]: p for p in ex1["probes"]}
    assert set(probes) == {h for h in demo_lab.fleet.hosts} - {"EXCH01"}
    assert probes["EXCH02"]["banner"].startswith("220 ") and "XEXCH50" in probes["EXCH02"]["ehlo"]
    assert probes["EXCH07"]["connect"] == "refused"  # SMTPSVC stopped in its state
    assert probes["EXCH06"]["connect"] == "ok" and probes["EXCH06"]["banner"] == ""  # empty ConnectResponse
    assert probes["EXCH03"]["connect"] == "timeout"  # Windows Firewall without TCP 25...
    fw = snaps["EXCH03"]["items"]["firewall_policy"]  # ...which its own snapshot shows, from the registry
    policy = next(v for k, v in fw.items() if k.endswith("StandardProfile"))
    open_list = next(v for k, v in fw.items() if k.endswith("GloballyOpenPorts\\List"))
    assert policy["values"]["EnableFirewall"]["data"] == 1 and "25:TCP" not in open_list["values"]
    assert "3389:TCP" in open_list["values"]
    assert probes["RELAY01"]["rcpt"].startswith("450")  # greylisting on first sight
    assert "Exchange Internet Mail Service 5.5" in probes["EXCH55"]["banner"]
    ex5 = snaps["EXCH05"]
    queuing = ex5["items"]["smtpsvc_queuing"]
    assert next(iter(queuing.values()))["values"]["GlitchRetrySeconds"] == {"type": "REG_DWORD", "data": 30}
    ex8 = {p["peer"]: p for p in snaps["EXCH08"]["probes"]}
    assert ex8["EXCH04"]["ehlo"].startswith("500") and "*" in ex8["EXCH04"]["banner"]  # PIX on that path...
    assert ex8["EXCH05"]["connect"] == "timeout"  # ...and a blocked pair
    ex7 = demo_lab.fleet.host("EXCH07")  # its MetaBase.xml arrives byte for byte, still not well-formed
    assert snaps["EXCH07"]["items"]["metabase"]["text"] == ex7.files.read(ex7.metabase_path).data.decode()
    with pytest.raises(MetabaseCorrupt):
        parse_metabase(snaps["EXCH07"]["items"]["metabase"]["text"])
    parse_metabase(snaps["EXCH01"]["items"]["metabase"]["text"])


def test_wrong_password_fails_that_host_only(lab_factory, tmp_path):
    lab = lab_factory(demo_data())

    def wrong_password(inv):
        inv["all"]["children"]["mailflow_servers"]["hosts"]["EXCH02"]["ansible_password"] = "not-the-password"

    proc, snaps = run_playbook(lab, tmp_path, wrong_password)
    assert proc.returncode != 0
    out = proc.stdout
    assert "EXCH02" in out and ("credentials were rejected" in out or "401" in out), out[-3000:]
    assert "EXCH02" not in snaps and set(snaps) == set(managed(lab)) - {"EXCH02"}
    assert lab.metrics.snapshot()["EXCH02"]["auth_failures"] >= 1
    recap = {line.split()[0]: line for line in out.split("PLAY RECAP")[1].splitlines() if ":" in line}
    assert "unreachable=1" in recap["EXCH02"]
    assert all("unreachable=0" in recap[h] and "failed=0" in recap[h] for h in set(managed(lab)) - {"EXCH02"})


def test_unreachable_and_broken_hosts_are_named_with_the_reason(lab_factory, tmp_path):
    lab = lab_factory(demo_data())
    lab.metrics.fault("EXCH04").http_500 = 1000  # WinRM answering 500 to everything

    def add_ghost(inv):
        # A host where nothing listens at all.
        inv["all"]["children"]["mailflow_servers"]["hosts"]["GHOST"] = {"ansible_host": "127.250.250.250", "mailflow_fqdn": "ghost.corp.example"}

    proc, snaps = run_playbook(lab, tmp_path, add_ghost)
    out = proc.stdout
    ghost = failure_block(out, "GHOST")
    assert "127.250.250.250" in ghost and "connect" in ghost.lower(), ghost
    assert "500" in failure_block(out, "EXCH04")
    assert "EXCH04" not in snaps and "GHOST" not in snaps
    assert "EXCH01" in snaps  # the others went on


def test_output_the_runner_cannot_decode_fails_the_host_saying_why(lab_factory, tmp_path):
    lab = lab_factory(demo_data())
    original = dict(powershell.EMULATED)
    powershell.EMULATED["dispatcher"] = "0" * 64  # the host runs a different dispatcher: no protocol output
    try:
        proc, snaps = run_playbook(lab, tmp_path)
    finally:
        powershell.EMULATED.update(original)
    assert proc.returncode != 0 and not snaps
    assert "no output" in proc.stdout and "dispatcher not emulated" in proc.stdout
