"""Each host reads its own part of AD; a few read what is the same from every host (issue 16: the whole
organisation's lists in every snapshot grew as N^2). The audit must decide the same from either shape."""
from __future__ import annotations

import copy
import json
import os
import re
import time

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils import audit, knowledge, snapshot
from tests.support import golden


def _own_only(snaps: dict, readers: tuple[str, ...]) -> None:
    """Rewrite older snapshots (every host read the whole org into ad_exchange_servers) into what hosts read now:
    their own server object, with the org's list on the readers only."""
    for name, snap in snaps.items():
        items = (snap or {}).get("items") or {}
        if "ad_exchange_servers" not in items:
            continue
        whole = items["ad_exchange_servers"] or []
        computer = snapshot.identity(snap, name)["computer_name"].lower()
        items["ad_exchange_servers"] = [e for e in whole if str(e["attrs"]["cn"][0]).lower() == computer]
        if name in readers:
            items["ad_org_exchange_servers"] = copy.deepcopy(whole)


def _verdicts(fleet) -> dict:
    """Every finding's status and evidence; which host read the org's list from AD is the one thing that may move."""
    doc = audit.run(fleet, generated=golden.GENERATED, check_mode=True)
    return {(h, f["cause"]): (f["status"], re.sub(r"\(read by [^)]*\)", "(read by ...)", json.dumps(f.get("evidence"), sort_keys=True)))
            for h, d in doc["hosts"].items() for f in d["findings"]}


def test_own_server_reads_and_one_org_reader_decide_as_the_whole_list_on_every_host(demo_fleet):
    before = _verdicts(demo_fleet())
    assert _verdicts(demo_fleet(lambda snaps: _own_only(snaps, ("EXCH02",)))) == before


def test_without_an_org_reader_the_servers_without_a_snapshot_lose_their_ad_version_only(demo_fleet):
    whole = demo_fleet()
    alone = demo_fleet(lambda snaps: _own_only(snaps, ()))
    unmanaged = [n for n, e in whole.entries.items() if e.snapshot is None]
    assert unmanaged, "the demo has servers the audit does not log in to"
    for name, entry in whole.entries.items():
        if entry.snapshot:  # a server that was read knows its own version from its own server object
            assert alone.exchange_of(name) == whole.exchange_of(name), name
    ad_known = [n for n in unmanaged if (whole.exchange_of(n) or {}).get("source", "").startswith("AD serialNumber")]
    assert ad_known, "the demo's unmanaged Exchange server is known from AD"
    for name in ad_known:  # no list read: AD cannot answer for it; its greeting may, or nothing does
        assert not (alone.exchange_of(name) or {}).get("source", "").startswith("AD serialNumber"), name


def test_org_scoped_items_are_collected_by_the_readers_only():
    facts = knowledge.load()
    org = {i for i, item in facts["collect"].items() if item.get("scope") == "org"}
    assert "ad_org_exchange_servers" in org and "ad_exchange_servers" not in org
    reader = {i for i, _op in snapshot.build_plan(facts, [], helo="", domain="")}
    others = {i for i, _op in snapshot.build_plan(facts, [], helo="", domain="", org_reads=False)}
    assert reader - others == org
    own = dict(snapshot.build_plan(facts, [], helo="", domain="", org_reads=False))
    assert "{computer}" in own["ad_exchange_servers"].args[1]
    assert own["ad_smtp_virtual_servers"].args[0] == "{computer-server}"


def test_a_scope_the_format_does_not_know_is_refused():
    with pytest.raises(knowledge.KnowledgeError, match="scope must be host or org"):
        knowledge.load({"collect": {"os": {"scope": "fleet"}}})


def test_the_knowledge_file_is_parsed_once_and_every_caller_gets_its_own_copy(tmp_path):
    path = tmp_path / "knowledge.yml"
    with open(knowledge.KNOWLEDGE_FILE, encoding="utf-8") as fh:
        path.write_text(fh.read(), encoding="utf-8")
    first = knowledge.load(path=str(path))
    first["collect"]["os"]["query"] = "changed by a caller"
    assert knowledge.load(path=str(path))["collect"]["os"]["query"] != "changed by a caller"
    # The file changed: read again, not the parse of before.
    path.write_text(path.read_text(encoding="utf-8").replace("SELECT * FROM Win32_OperatingSystem",
                                                              "SELECT Caption FROM Win32_OperatingSystem"), encoding="utf-8")
    stamp = time.time() + 5
    os.utime(path, (stamp, stamp))
    assert knowledge.load(path=str(path))["collect"]["os"]["query"] == "SELECT Caption FROM Win32_OperatingSystem"
