"""ansible-playbook playbooks/fix.yml against the demo lab, as a user runs it: audit, fix what is present, record it."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from lab.scenario import fleet_to_plain
from tests.conftest import ROOT, demo_data
from tests.integration.test_audit_playbook import DEMO_PRESENT, present, run_audit
from ansible_collections.mailflow.exchange.plugins.module_utils.causes import FIXABLE, NETWORK_FIXABLE

pytestmark = [pytest.mark.slow, pytest.mark.integration]
PLAYBOOK = os.path.join(ROOT, "playbooks", "fix.yml")
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


# What the inventory would say: EXCH04's smart host (the demo's is the bare, DNS-looked-up 10.9.9.9).
SMARTHOST = {"EXCH04": {"mailflow_smarthost_expected": "[10.9.9.9]"}}


def run_fix(lab, tmp_path, *extra, host_vars=None):
    inv = lab.inventory()
    for host, hv in (host_vars or {}).items():
        inv["all"]["children"]["mailflow_servers"]["hosts"][host].update(hv)
    inv_path = tmp_path / "hosts.yml"
    inv_path.write_text(yaml.safe_dump(inv))
    root = tmp_path / "reports"
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(inv_path), PLAYBOOK, "-e", f"mailflow_report_root={root}",
                           "-e", f"mailflow_backup_dir={tmp_path / 'backups'}", *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    record = root / "latest" / "fix.json"
    return proc, (json.loads(record.read_text()) if record.exists() else None)


def rows(record) -> dict[tuple[str, str], dict]:
    return {(h, r["cause"]): r for h, rs in record["hosts"].items() for r in rs}


def test_check_mode_plans_every_present_cause_and_changes_nothing(lab_factory, tmp_path):
    lab = lab_factory(demo_data())
    before = fleet_to_plain(lab.fleet)
    # Without EXCH04's smart host (an operator input): the dry run says what to set there, and still succeeds.
    proc, record = run_fix(lab, tmp_path, "--check", "--diff")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert fleet_to_plain(lab.fleet) == before
    assert record["check_mode"] is True
    planned = rows(record)
    for host, causes in DEMO_PRESENT.items():
        if host == "EXCH55":  # unmanaged: nothing runs on it
            assert host not in record["hosts"]
            continue
        assert {c for (h, c) in planned if h == host} == causes & set(FIXABLE), host
    assert planned[("EXCH05", "glitch_retry_short")]["status"] == "changed"
    assert planned[("EXCH04", "smarthost_misconfigured")]["status"] == "needs_input"
    assert "mailflow_smarthost" in json.dumps(planned[("EXCH04", "smarthost_misconfigured")])
    assert not any(r.get("backup") for r in planned.values())  # check mode writes no backup
    # What a person reads (the shipped ansible.cfg): plain-text summaries within 100 columns, no skipped host
    # listed one by one, and the progress of the snapshot and fix phases.
    out = proc.stdout
    assert "skipping:" not in out and "\\_" not in out and "-\\>" not in out
    # The msg literal blocks (indented by 8) that follow each Summary task's header.
    summaries = [[line for line in block.split("\nTASK [")[0].split("\n")[3:] if line.startswith(" " * 8) or not line]
                 for block in out.split("TASK [Summary]")[1:]]
    assert len(summaries) == 2  # the audit's, the fix run's
    for block in summaries:
        # Every line but the one naming the report folder (a path as long as tmp_path makes it).
        assert max(len(line) for line in block if str(tmp_path) not in line) <= 100, block
    fix_summary = "\n".join(summaries[1])
    assert "        EXCH05   glitch_retry_short              changed" in fix_summary
    assert "mailflow snapshot: 9/9 hosts done" in out and "mailflow fix glitch_retry_short: 1/1 hosts done (EXCH05 changed)" in out


def test_a_narrowed_run_fixes_only_what_was_asked_and_the_audit_agrees(lab_factory, tmp_path):
    lab = lab_factory(demo_data())
    proc, record = run_fix(lab, tmp_path, "-e", "mailflow_fix=glitch_retry_short", "--limit", "EXCH05",
                           "-e", "mailflow_change_id=CHG7")
    assert proc.returncode == 0, proc.stdout[-4000:]
    (row,) = [r for rs in record["hosts"].values() for r in rs]
    assert row["cause"] == "glitch_retry_short" and row["status"] == "changed" and row["verified"]
    assert "CHG7" in row["backup"] and record["change_id"] == "CHG7"
    md = (tmp_path / "reports" / "latest" / "fix.md").read_text()
    assert "glitch\\_retry\\_short" in md and "pending restart of SMTPSVC" in md
    _, doc, _ = run_audit(lab, tmp_path, "-e", f"mailflow_backup_dir={tmp_path / 'backups'}")
    assert present(doc)["EXCH05"] == DEMO_PRESENT["EXCH05"] - {"glitch_retry_short"}
    (pending,) = doc["hosts"]["EXCH05"]["pending_restart"]
    assert pending["cause"] == "glitch_retry_short" and pending["services"] == ["SMTPSVC"] and pending["change_id"] == "CHG7"


def test_an_unknown_cause_fails_before_any_host_is_touched(lab_factory, tmp_path):
    lab = lab_factory(demo_data())
    for bad in ('{"mailflow_fix": ["glitch_retry_short", "stnef"]}', '{"mailflow_fix": ["nope"]}',
                '{"mailflow_change_id": "../etc"}'):
        proc, record = run_fix(lab, tmp_path, "-e", bad)
        assert proc.returncode != 0 and record is None
        assert ("mailflow_fix must list causes" in proc.stdout) or ("mailflow_change_id" in proc.stdout), proc.stdout[-2000:]
    assert all(c["winrm_commands"] == 0 for c in lab.metrics.snapshot().values())


def test_fixing_everything_leaves_only_what_no_fix_can_change(lab_factory, tmp_path):
    lab = lab_factory(demo_data())
    opt_in = {"mailflow_allow_service_restart": True, "mailflow_allow_metabase_restore": True,
              "mailflow_allow_enable_disabled_smtp": True}
    proc, record = run_fix(lab, tmp_path, "-e", json.dumps(opt_in), host_vars=SMARTHOST)
    assert record is not None, proc.stdout[-4000:]
    done = rows(record)
    assert not [k for k, r in done.items() if r["status"] in ("failed", "interrupted", "unreachable")], proc.stdout[-4000:]
    before = present(json.loads(open(record["audit_report"]).read()))
    _, doc, _ = run_audit(lab, tmp_path)
    after = present(doc)
    for (host, cause), r in done.items():
        if r["status"] == "changed" and r.get("verified") and cause in FIXABLE:
            assert cause not in after[host], (host, cause, r)
    # The IOS firewall's fix cleared the path it was on; the PIX (lines to paste) still masks.
    assert done[("FW01", "cisco_smtp_inspection")]["status"] == "changed"
    assert "cisco_smtp_inspection" not in after["EXCH01"] and "cisco_smtp_inspection" in after["EXCH04"]
    changed_hosts = {h for (h, _), r in done.items() if r["status"] == "changed"}
    for host, causes in after.items():
        # A cause the fixes uncovered (EXCH07 sends mail again, now to a greylisting peer) is for the next run,
        # and only where a fix changed something.
        assert not causes - before[host] or host in changed_hosts, (host, causes - before[host])
        for cause in causes & before[host]:
            r = done.get((host, cause))
            # Still present: not fixable here, on an unmanaged host, or a fix that only advises.
            assert cause not in FIXABLE or host == "EXCH55" or (r and r["status"] == "ok" and r.get("advice")), (host, cause, r)
