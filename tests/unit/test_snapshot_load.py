"""snapshot.load, the one reader of a saved snapshot, and the two actions that read one through it: the drain
watch's pre-change snapshot and the audit's collection."""
from __future__ import annotations

import json
import os

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.mailflow.exchange.plugins.action.audit_fleet import ActionModule as AuditFleet
from ansible_collections.mailflow.exchange.plugins.module_utils import snapshot
from tests.conftest import ROOT

SNAPSHOTS = os.path.join(ROOT, "tests", "fixtures", "snapshots", "demo", "snapshots")


def test_a_saved_snapshot_loads_as_it_was_written():
    path = os.path.join(SNAPSHOTS, "EXCH05.json")
    with open(path, encoding="utf-8") as fh:
        assert snapshot.load(path) == json.load(fh)


@pytest.mark.parametrize("content", [None, b"{", b"[1, 2]", b'"text"', b"\xff\xfe{}"],
                         ids=["missing", "cut short", "a list", "a string", "not utf-8"])
def test_there_is_no_snapshot_to_read_when_the_file_is_missing_broken_or_not_an_object(tmp_path, content):
    path = tmp_path / "EXCH01.json"
    if content is not None:
        path.write_bytes(content)
    assert snapshot.load(str(path)) is None


def test_no_path_is_no_snapshot(tmp_path):
    assert snapshot.load(None) is None and snapshot.load("") is None and snapshot.load(str(tmp_path)) is None


def _host(name, folder):
    args = {"limit": None, "offline": True, "snapshot_dir": str(folder)}
    return AuditFleet._host(name, True, args, {})


def test_the_audit_takes_a_saved_snapshot_and_says_which_are_missing(tmp_path):
    (tmp_path / "EXCH05.json").write_text(json.dumps(snapshot.load(os.path.join(SNAPSHOTS, "EXCH05.json"))))
    assert _host("EXCH05", tmp_path)["snapshot"]["host"] == "EXCH05"
    missing = _host("EXCH06", tmp_path)
    assert missing["snapshot"] is None and missing["error"].startswith("no saved snapshot")


@pytest.mark.parametrize("content", ["{", "[]"])
def test_the_audit_stops_at_a_snapshot_it_cannot_read_rather_than_call_the_host_unreachable(tmp_path, content):
    (tmp_path / "EXCH05.json").write_text(content)
    with pytest.raises(AnsibleActionFail, match="EXCH05: cannot read its snapshot"):
        _host("EXCH05", tmp_path)
