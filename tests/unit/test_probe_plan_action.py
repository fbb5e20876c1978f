"""How the probe plan is written: probe_plan.write, which the probe_plan action and the golden cases use."""
from __future__ import annotations

import json
import os

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils import probe_plan


def test_the_plan_is_written_whole_and_leaves_no_temporary_file(tmp_path):
    dest = tmp_path / "run" / "probe_plan.json"
    plan = probe_plan.plan(["A", "B"], ["A", "B", "C"], {}, {"mode": "mesh"})
    probe_plan.write(str(dest), plan)
    assert json.loads(dest.read_text(encoding="utf-8")) == plan
    assert os.listdir(dest.parent) == ["probe_plan.json"]


def test_a_plan_that_cannot_be_written_leaves_the_earlier_one_and_no_temporary_file(tmp_path):
    dest = tmp_path / "probe_plan.json"
    probe_plan.write(str(dest), {"mode": "mesh", "pairs": {}})
    earlier = dest.read_text(encoding="utf-8")
    with pytest.raises(TypeError):
        probe_plan.write(str(dest), {"mode": "mesh", "pairs": {"A": {"B": object()}}})  # not JSON
    assert dest.read_text(encoding="utf-8") == earlier
    assert os.listdir(tmp_path) == ["probe_plan.json"]

