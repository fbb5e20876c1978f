"""What the chaos tests share: the playbooks run as an operator runs them, on a lab of the demo's EXCH05 story
(EXCH05 short GlitchRetrySeconds toward the greylisting RELAY01, EXCH55 unmanaged), with faults and bad input."""
from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from tests.conftest import ROOT
from tests.support import fixplay

QUEUING = r"HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC\Queuing"


@pytest.fixture
def lab(lab_factory):
    return lab_factory(fixplay.demo_subset("EXCH05", "EXCH55", "RELAY01"))


def glitch(lab):
    v = lab.fleet.host("EXCH05").registry.get(QUEUING, "GlitchRetrySeconds")
    return None if v is None else (v.type, v.data)


def inventory(lab, tmp_path, edit=None) -> str:
    inv = lab.inventory()
    if edit:
        edit(inv)
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inv))
    return str(path)


def command(playbook: str, inv: str, tmp_path, *extra, reports: str = "reports") -> list[str]:
    """ansible-playbook for one of the collection's playbooks, its backups in tmp_path/backups and its reports (and
    change records) in tmp_path/<reports>."""
    return [fixplay.ANSIBLE_PLAYBOOK, "-i", inv, os.path.join(ROOT, "playbooks", playbook),
            "-e", f"mailflow_report_root={tmp_path / reports}", "-e", f"mailflow_backup_dir={tmp_path / 'backups'}",
            "-e", f"mailflow_record_root={tmp_path / reports}", *extra]


def run(playbook: str, inv: str, tmp_path, *extra, timeout=600, reports: str = "reports") -> subprocess.CompletedProcess:
    return subprocess.run(command(playbook, inv, tmp_path, *extra, reports=reports), cwd=ROOT, env=fixplay.ENV,
                          capture_output=True, text=True, timeout=timeout)


def latest_audit(tmp_path) -> dict:
    with open(tmp_path / "reports" / "latest" / "audit.json", encoding="utf-8") as fh:
        return json.load(fh)


def winrm_total(lab) -> int:
    return sum(c.get("winrm_commands", 0) for c in lab.metrics.snapshot().values())
