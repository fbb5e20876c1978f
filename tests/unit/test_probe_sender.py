"""The snapshot's SMTP probes: a sender no earlier probe can have had whitelisted by a greylisting peer."""
from __future__ import annotations

import re

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils import knowledge, snapshot

PEERS = [{"name": "EXCH02", "target": "exch02.corp.example"}, {"name": "RELAY01", "target": "relay01.corp.example"}]


def probes(plan) -> list[tuple]:
    return [op.args for item, op in plan if item.startswith("probe:")]


def test_each_plan_probes_with_a_new_clearly_marked_sender():
    facts = knowledge.load()
    first = probes(snapshot.build_plan(facts, PEERS, helo="exch01.corp.example", domain="corp.example"))
    second = probes(snapshot.build_plan(facts, PEERS, helo="exch01.corp.example", domain="corp.example"))
    senders = {args[4] for args in first}
    assert len(senders) == 1  # one run, one sender for all of its peers
    (sender,) = senders
    assert re.fullmatch(r"mailflow-probe-[a-z]{16}@corp\.example", sender)
    assert {args[4] for args in second} != senders  # the next snapshot's triplets are new to every greylister
    assert [args[5] for args in first] == ["postmaster@corp.example", "postmaster@corp.example"]


def test_a_given_run_id_is_used_and_a_sender_without_run_is_refused():
    facts = knowledge.load()
    plan = snapshot.build_plan(facts, PEERS[:1], helo="exch01.corp.example", domain="corp.example", run_id="abc")
    assert probes(plan)[0][4] == "mailflow-probe-abc@corp.example"
    fixed = knowledge.load({"probe": {"mail_from": "postmaster@{domain}"}})
    with pytest.raises(snapshot.PlanError, match=r"probe\.mail_from must contain \{run\}"):
        snapshot.build_plan(fixed, PEERS, helo="exch01.corp.example", domain="corp.example")
    assert snapshot.build_plan(fixed, [], helo="exch01.corp.example", domain="corp.example")  # no probes, no sender
