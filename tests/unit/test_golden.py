"""Approval tests: the saved snapshot folders under tests/fixtures/snapshots/ give the approved audit and reports.

No lab: a detector change that moves a verdict shows up here as a diff of expected/ (regenerate with `make golden`
and read the diff before committing it).
"""
from __future__ import annotations

import json
import os

import pytest

from tests.support import golden

CASES = golden.cases()


def test_there_is_a_golden_case():
    assert "demo" in CASES


@pytest.mark.parametrize("case", CASES)
def test_the_audit_of_the_saved_snapshots_is_the_approved_one(case):
    with open(os.path.join(golden.CASES, case, "expected", "audit.json"), encoding="utf-8") as fh:
        approved = json.load(fh)
    doc = json.loads(json.dumps(golden.audit_doc(case)))  # as the JSON writer would give it back
    for host in approved["hosts"]:
        assert doc["hosts"][host] == approved["hosts"][host], host
    assert doc == approved


@pytest.mark.parametrize("case", CASES)
def test_every_report_of_it_is_the_approved_one(case, tmp_path):
    written = golden.render(case, str(tmp_path))
    for kind, path in written.items():
        name = os.path.basename(path)
        with open(path, encoding="utf-8") as got, open(os.path.join(golden.CASES, case, "expected", name), encoding="utf-8") as want:
            assert got.read() == want.read(), f"{case}: {name} differs from the approved one (make golden, then read the diff)"


def test_the_audit_builds_one_view_and_one_set_of_symptoms_per_host_and_parses_each_metabase_once(monkeypatch):
    """Derived facts are derived once: 240 HostViews, 3 parses of each MetaBase.xml and 52 computations of the
    symptoms for a 9-host audit, before views and symptoms were kept per fleet."""
    from ansible_collections.mailflow.exchange.plugins.module_utils import audit, hostview, metabase

    counts = {"views": 0, "parses": 0}
    real_init, real_parse = hostview.HostView.__init__, metabase.parse

    def counting_init(self, *a, **kw):
        counts["views"] += 1
        real_init(self, *a, **kw)

    def counting_parse(*a, **kw):
        counts["parses"] += 1
        return real_parse(*a, **kw)
    monkeypatch.setattr(hostview.HostView, "__init__", counting_init)
    monkeypatch.setattr(hostview.mb, "parse", counting_parse)
    computed = []
    fleet = golden.fleet("demo")
    original = fleet.derived

    def counting_derived(what, name, compute):
        return original(what, name, lambda: (computed.append((what, name)), compute())[1])
    monkeypatch.setattr(fleet, "derived", counting_derived)
    audit.run(fleet, generated=golden.GENERATED, check_mode=True)
    snapshotted = [e for e in fleet if e.snapshot is not None]
    with_metabase = [e for e in snapshotted if (e.snapshot["items"].get("metabase") or {}).get("text")]
    assert counts["views"] == len(snapshotted)
    assert counts["parses"] == len(with_metabase)
    assert len(computed) == len(set(computed)) and {w for w, _ in computed} <= {
        "events_4006", "queue_retry", "stale_messages", "routes", "connector_routes", "unprobed_senders"}


@pytest.mark.parametrize("case", CASES)
def test_each_case_keeps_the_probe_plan_its_inventory_gives_and_the_audit_reports_its_reasons(case):
    """A run of the playbook always saves a plan beside its snapshots: the case keeps the one the role makes for
    case.json's inventory (make golden-reports writes it), and every probe of the approved audit has its reason."""
    saved = golden.probe_plan_of(case)
    assert saved == json.loads(json.dumps(golden.planned(case)))
    with open(os.path.join(golden.CASES, case, "expected", "audit.json"), encoding="utf-8") as fh:
        approved = json.load(fh)
    assert approved["probe_plan"]["mode"] == saved["mode"]
    assert all(p["why"] == saved["pairs"][p["from"]][p["to"]] for p in approved["peers"])
