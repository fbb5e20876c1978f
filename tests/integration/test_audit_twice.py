"""Two audits of an unchanged demo fleet, the second after the greylisting delay has passed: the same verdicts.

The greylisting relay passes a (client IP, sender, recipient) triplet for good once it is retried after its
delay. With one fixed probe sender the second audit's probes were let through and glitch_retry_short and
greylist_hotfix_missing flipped from present to absent on EXCH05 with nothing changed; each snapshot now probes
with a sender of its own (knowledge probe.mail_from, mailflow-probe-{run}@...), a new triplet every time.

The lab runs as a lab does, mail flowing (lab/smtp/delivery.py). RELAY01's delay is 120 s here so the test
waits two minutes rather than five; EXCH05's own mail for RELAY01 is deferred by its first try and its three
30-second glitch retries (all before 120 s) and waits for its first retry 15 minutes on, long after both audits,
so its queue is as unchanged as the rest of the fleet.
"""
from __future__ import annotations

import time

import pytest

from tests.conftest import demo_data
from tests.integration.test_audit_playbook import run_audit

pytestmark = [pytest.mark.slow, pytest.mark.integration]
DELAY = 120


def verdicts(doc) -> dict[tuple[str, str], str]:
    return {(host, f["cause"]): f["status"] for host, d in doc["hosts"].items() for f in d["findings"]}


def greylisted(doc) -> set[tuple[str, str]]:
    return {(p["from"], p["to"]) for p in doc["peers"] if p["result"] == "greylisted"}


def test_two_audits_in_a_row_of_an_unchanged_fleet_give_the_same_verdicts(lab_factory, tmp_path):
    data = demo_data()
    data["hosts"]["RELAY01"]["smtp_engine"]["greylisting"]["delay_seconds"] = DELAY
    lab = lab_factory(data, mail_flow=True)
    for run in ("first", "second"):
        (tmp_path / run).mkdir()
    first_proc, first, _ = run_audit(lab, tmp_path / "first", "--check", report_root=tmp_path / "first" / "reports")
    assert first_proc.returncode == 0, first_proc.stdout[-3000:] + first_proc.stderr[-2000:]
    time.sleep(DELAY + 5)  # every triplet the first audit's probes left with RELAY01 would now pass
    second_proc, second, _ = run_audit(lab, tmp_path / "second", "--check", report_root=tmp_path / "second" / "reports")
    assert second_proc.returncode == 0, second_proc.stdout[-3000:] + second_proc.stderr[-2000:]

    # Greylisting is seen both times, by every host that probes the relay.
    assert ("EXCH05", "RELAY01") in greylisted(first) and greylisted(second) == greylisted(first)
    changed = {k: (v, verdicts(second).get(k)) for k, v in verdicts(first).items() if verdicts(second).get(k) != v}
    assert not changed, changed
    for cause in ("glitch_retry_short", "greylist_hotfix_missing"):
        assert verdicts(second)[("EXCH05", cause)] == "present", cause
    # Nothing was sent: the audits stop every probe before DATA, so RELAY01's queue holds only its own message.
    with lab.fleet.lock:
        relay_queue = lab.fleet.host("RELAY01").files.listdir(r"C:\Inetpub\mailroot\Queue")
    assert len(relay_queue) == 1
