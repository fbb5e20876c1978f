"""change_window and change_record as a playbook uses them, on localhost (no lab): inside the window the run goes on
and the record is written; outside it fails naming the variables and records the refusal; an override lets it run
and is recorded."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.integration]

ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
ENV = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
CHANGE = "CHG0042"
GATE_ARGS = {
    "change_id": "{{ mailflow_change_id | default('') }}",
    "window_start": "{{ mailflow_window_start | default(omit) }}",
    "window_end": "{{ mailflow_window_end | default(omit) }}",
    "window_name": "{{ mailflow_window | default(omit) }}",
    "windows": "{{ mailflow_windows | default({}) }}",
    "override_reason": "{{ mailflow_window_override_reason | default(omit) }}",
    "record_root": "{{ record_root }}",
}
PLAYBOOK = [{"name": "change", "hosts": "mailflow_servers", "connection": "local", "gather_facts": False, "tasks": [
    {"name": "Refuse outside the change window", "mailflow.exchange.change_window": GATE_ARGS, "run_once": True},
    {"name": "May the next batch start?", "mailflow.exchange.change_window": dict(GATE_ARGS, stage="check"),
     "register": "window_check", "run_once": True},
    {"name": "Keep what check said", "ansible.builtin.copy": {"content": "{{ window_check | to_json }}",
                                                              "dest": "{{ record_root }}/check.json"}, "run_once": True},
    {"name": "Record the plan", "mailflow.exchange.change_record": {
        "change_id": "{{ mailflow_change_id }}", "record_root": "{{ record_root }}",
        "event": {"type": "plan", "causes": ["glitch_retry_short"], "changes": [], "restart": [], "reboot": False}},
     "register": "recorded"},
    {"name": "Show what was recorded", "ansible.builtin.debug": {
        "msg": "recorded {{ recorded.event.type }} for {{ recorded.event.host }}: {{ recorded.host_status }}"}},
]}]


def iso(t: datetime) -> str:
    return t.astimezone(timezone(timedelta(hours=1))).isoformat(timespec="seconds")


def run(tmp_path, **extra_vars) -> tuple[subprocess.CompletedProcess, dict | None]:
    now = datetime.now(timezone.utc)
    inventory = {"mailflow_servers": {
        "hosts": {"EXCH01": {}, "EXCH02": {}},
        # as group_vars would hold them
        "vars": {"ansible_python_interpreter": sys.executable,
                 "mailflow_windows": {"now": {"start": iso(now - timedelta(hours=1)), "end": iso(now + timedelta(hours=2))}}}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "change.yml").write_text(yaml.safe_dump(PLAYBOOK, sort_keys=False))
    (tmp_path / "vars.json").write_text(json.dumps({"mailflow_change_id": CHANGE, "record_root": str(tmp_path), **extra_vars}))
    out = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "change.yml"),
                          "-e", f"@{tmp_path / 'vars.json'}"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    record = tmp_path / "changes" / CHANGE / "record.json"
    return out, json.loads(record.read_text()) if record.exists() else None


def tomorrow() -> dict:
    start = datetime.now(timezone.utc) + timedelta(days=1)
    return {"mailflow_window_start": iso(start), "mailflow_window_end": iso(start + timedelta(hours=4))}


def test_inside_a_named_window_the_run_goes_on_and_the_record_is_written(tmp_path):
    out, record = run(tmp_path, mailflow_window="now")
    assert out.returncode == 0, out.stdout + out.stderr
    assert [e["type"] for e in record["events"]] == ["run_started", "plan", "plan"]
    started = record["events"][0]
    assert started["playbook"] == "change.yml" and started["check_mode"] is False and started["override_reason"] is None
    assert record["window"]["name"] == "now" and record["override_reason"] is None
    assert {h: s["status"] for h, s in record["hosts"].items()} == {"EXCH01": "planned", "EXCH02": "planned"}
    check = json.loads((tmp_path / "check.json").read_text())
    assert (check["open"], check["state"], check["in_window"], check["override"]) == (True, "open", True, False)
    assert 2 * 3600 - 120 < check["seconds_left"] <= 2 * 3600
    md = (tmp_path / "changes" / CHANGE / "record.md").read_text()
    assert "msg: 'recorded plan for EXCH02: planned'" in out.stdout  # change_record returns the event and the host's status
    assert "named window `now`" in md and "| EXCH02 | planned, not changed yet |" in md


def test_outside_the_window_the_run_is_refused_naming_the_variables_and_the_refusal_is_recorded(tmp_path):
    out, record = run(tmp_path, **tomorrow())
    assert out.returncode == 2, out.stdout + out.stderr
    for words in ("change CHG0042: outside the change window (it opens at", "mailflow_window_start/mailflow_window_end",
                  "mailflow_window_override_reason"):
        assert words in out.stdout
    assert "May the next batch start?" not in out.stdout  # the play stopped at the gate
    assert [(e["type"], e["state"]) for e in record["events"]] == [("refused", "before")]
    assert record["hosts"] == {} and not (tmp_path / "check.json").exists()


def test_outside_the_window_an_override_reason_lets_the_run_go_on_and_is_recorded(tmp_path):
    out, record = run(tmp_path, mailflow_window_override_reason="P1: queues growing on EXCH05", **tomorrow())
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[WARNING]: change CHG0042 runs outside the change window" in out.stdout + out.stderr
    assert record["override_reason"] == "P1: queues growing on EXCH05"
    started = record["events"][0]
    assert (started["type"], started["state"], started["override_reason"]) == ("run_started", "before",
                                                                              "P1: queues growing on EXCH05")
    check = json.loads((tmp_path / "check.json").read_text())
    assert (check["open"], check["in_window"], check["override"]) == (True, False, True)
    assert "**P1: queues growing on EXCH05**" in (tmp_path / "changes" / CHANGE / "record.md").read_text()
