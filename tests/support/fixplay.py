"""What the fix roles' integration tests share: a trimmed demo lab, running one fix role (or a playbook) over it
with ansible-playbook, the audit's finding of one cause, the backup a fix wrote, and the play recap."""
from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys

import yaml

from tests.conftest import ROOT, demo_data
from tests.support import snapshots
from ansible_collections.mailflow.exchange.plugins.module_utils import audit

ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
ENV = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")


def demo_subset(*hosts: str, network: dict | None = None) -> dict:
    """The demo scenario with only these hosts and (unless given) no network rules."""
    data = demo_data()
    data["hosts"] = {n: data["hosts"][n] for n in hosts}
    data["network"] = network or {}
    return data


def write_inventory(lab, tmp_path, host_vars: dict[str, dict] | None = None):
    """tmp_path/hosts.yml: the lab's inventory, with per-host variables added (as host_vars would set them)."""
    inventory = lab.inventory()
    for host, hv in (host_vars or {}).items():
        inventory["all"]["children"]["mailflow_servers"]["hosts"][host].update(hv)
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path


def ansible_playbook(inventory, playbook, *args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(inventory), str(playbook), *args],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


def play(lab, tmp_path, cause: str, *extra, limit: str | None = None, host_vars: dict[str, dict] | None = None,
         hosts: str = "mailflow_servers") -> subprocess.CompletedProcess:
    """One play running the role mailflow.exchange.fix_<cause> on `hosts` of the lab (--limit `limit` when given),
    its backups under tmp_path/backups."""
    pb = tmp_path / "fix.yml"
    pb.write_text(yaml.safe_dump([{"name": "fix", "hosts": hosts, "gather_facts": False,
                                   "roles": [{"role": f"mailflow.exchange.fix_{cause}"}]}]))
    limited = ("--limit", limit) if limit else ()
    return ansible_playbook(write_inventory(lab, tmp_path, host_vars), pb, *limited,
                            "-e", f"mailflow_backup_dir={tmp_path / 'backups'}", *extra)


def findings(lab, cause: str, knowledge_overrides: dict | None = None, declared: dict | None = None) -> dict[str, dict]:
    """{host: the audit's finding of `cause`} from fresh snapshots of every lab host, read with these overrides."""
    snaps = snapshots.take_fleet(lab, knowledge_overrides)
    doc = audit.run(snapshots.fleet(lab, snaps, knowledge_overrides, declared), generated="x")
    return {h: f for h, d in doc["hosts"].items() for f in d["findings"] if f["cause"] == cause}


def finding(lab, host: str, cause: str, **kw) -> dict:
    return findings(lab, cause, **kw)[host]


def status(lab, host: str, cause: str, **kw) -> str:
    return finding(lab, host, cause, **kw)["status"]


def backup_file(tmp_path, host: str, cause: str) -> str:
    """The one backup JSON the fix of `cause` wrote for `host` (under any change id)."""
    (path,) = glob.glob(str(tmp_path / "backups" / "*" / host / f"{cause}.json"))
    return path


def backup(tmp_path, host: str, cause: str) -> dict:
    with open(backup_file(tmp_path, host, cause), encoding="utf-8") as fh:
        return json.load(fh)


def backup_reg(tmp_path, host: str, cause: str) -> str:
    """The .reg export written next to the backup JSON."""
    with open(backup_file(tmp_path, host, cause)[:-5] + ".reg", encoding="utf-16") as fh:
        return fh.read()


def recap(proc) -> dict[str, dict[str, int]]:
    """{host: {ok: n, changed: n, unreachable: n, failed: n, ...}} from the play recap (the controller's own
    localhost, which checks the inventory first, left out)."""
    return {m[1]: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m[2])}
            for m in re.finditer(r"^(\w+)\s+:\s+(ok=.*)$", proc.stdout, re.M) if m[1] != "localhost"}


def changed(proc) -> dict[str, int]:
    """{host: changed=N} from the play recap."""
    return {host: r["changed"] for host, r in recap(proc).items()}


def winrm_commands(lab, host: str) -> int:
    """WinRM commands the lab counted for `host` (0 when it never saw one)."""
    return lab.metrics.snapshot().get(host, {}).get("winrm_commands", 0)
