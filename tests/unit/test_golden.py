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
