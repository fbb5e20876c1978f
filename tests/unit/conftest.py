"""Unit tests run on saved snapshots and other artifacts: none of them may start a lab (the integration tests do)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_lab(monkeypatch):
    from lab.core import Lab

    def refuse(self):
        raise AssertionError("a unit test started a lab: use the golden snapshots (tests/fixtures/snapshots) instead")
    monkeypatch.setattr(Lab, "start", refuse)
