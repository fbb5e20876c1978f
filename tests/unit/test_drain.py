"""Did the stuck mail leave? drain.report over the demo's saved EXCH05 snapshot (three links in Retry) as the
state before a change, and edited copies of it as the state after."""
from __future__ import annotations

import copy
import json
import os

from ansible_collections.mailflow.exchange.plugins.action.drain_watch import _before
from ansible_collections.mailflow.exchange.plugins.module_utils import drain
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import HostView
from tests.conftest import ROOT

SNAPSHOT = os.path.join(ROOT, "tests", "fixtures", "snapshots", "demo", "snapshots", "EXCH05.json")


def before() -> dict:
    with open(SNAPSHOT, encoding="utf-8") as fh:
        return json.load(fh)


def after(gone: set[str]) -> HostView:
    """EXCH05 with the links in `gone` removed (Exchange drops an empty link) and the queue folders emptied."""
    snap = copy.deepcopy(before())
    snap["items"]["smtp_links"] = [link for link in snap["items"]["smtp_links"] if link["LinkName"] not in gone]
    for item in drain.QUEUE_ITEMS:
        if snap["items"].get(item):
            snap["items"][item]["files"] = []
    return HostView(snap)


def test_links_stuck_before_the_change_that_left_before_the_watch_count_as_drained():
    first = HostView(before())
    assert drain.stuck(first) == ["exch01.corp.example", "exch55.corp.example", "relay01.corp.example"]
    last = after({"exch01.corp.example", "relay01.corp.example"})
    doc = drain.report("EXCH05", first, last, 0.0)
    assert {r["link"]: r["drained"] for r in doc["links"]} == {
        "exch01.corp.example": True, "relay01.corp.example": True, "exch55.corp.example": False}
    assert doc["stuck_after"] == ["exch55.corp.example"] and doc["drained"] is False
    assert doc["queued_before"] > 0 and doc["delivered"] == doc["queued_before"] and doc["queued_after"] == 0
    # Started from the watch's own read instead, the mail that had already left would not be counted at all.
    assert [r["link"] for r in drain.report("EXCH05", last, last, 0.0)["links"]] == ["exch55.corp.example"]


def test_the_pre_change_snapshot_is_read_only_when_it_has_the_links(tmp_path):
    assert _before(SNAPSHOT).item("smtp_links")
    assert _before(str(tmp_path / "none.json")) is None and _before(None) is None
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert _before(str(broken)) is None
