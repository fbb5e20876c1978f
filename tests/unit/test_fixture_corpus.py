"""The fixture corpus (tests/fixtures): device configs written after published captures and Cisco's documents,
banners and Event 4006 texts, each with the result decided from the documentation (the .yml beside it), not from
what the parser happens to do. tests/fixtures/SOURCES.md names the source of every file's structure."""
from __future__ import annotations

import glob
import os

import pytest
import yaml

from ansible_collections.mailflow.exchange.plugins.module_utils import audit, ciscoconf, firewalls, knowledge, symptoms
from ansible_collections.mailflow.exchange.plugins.module_utils.fleet import classify_probe
from tests.conftest import ROOT

FIXTURES = os.path.join(ROOT, "tests", "fixtures")
DEVICES = sorted(glob.glob(os.path.join(FIXTURES, "devices", "*", "*.cfg")))
DETECT = knowledge.load()["detect"]


def _rel(path: str) -> str:
    return os.path.relpath(path, FIXTURES)


def test_the_corpus_covers_every_platform_and_names_its_sources():
    by_dir: dict[str, int] = {}
    for path in DEVICES:
        by_dir[os.path.basename(os.path.dirname(path))] = by_dir.get(os.path.basename(os.path.dirname(path)), 0) + 1
    assert len(DEVICES) >= 20 and set(by_dir) == {"pix6", "pix7", "fwsm", "asa", "ios"}, by_dir
    ios = [p for p in DEVICES if "/ios/" in p]
    assert any("zbf" in p for p in ios) and any("cbac" in p for p in ios)
    sources = open(os.path.join(FIXTURES, "SOURCES.md"), encoding="utf-8").read()
    for path in sorted(glob.glob(os.path.join(FIXTURES, "**", "*.*"), recursive=True)):
        if path.endswith("SOURCES.md") or (path.endswith(".yml") and os.path.exists(path[:-4] + ".cfg")):
            continue  # the index itself, and the expected results beside the configs
        if _rel(path).split(os.sep)[0] == "snapshots":
            continue  # captured audit cases, not written: each case.json names where it came from
        assert f"`{_rel(path)}`" in sources, f"{_rel(path)} is not listed in SOURCES.md"
    for path in DEVICES:
        assert os.path.exists(path[:-4] + ".yml"), f"{_rel(path)} has no expected result beside it"


def _inspections(facts: dict) -> list[dict]:
    out = []
    for i in facts["inspections"]:
        row = {"rule": i["rule"], "protocol": i["protocol"], "ports": i["ports"],
               "bindings": [f"{b['interface']}/{b['direction']}" for b in i["bindings"]]}
        if i.get("scope"):
            row["acl"] = ", ".join(c["acl"] for c in i["scope"])
        out.append(row)
    return out


def _met(fw: firewalls.Firewall, protocols: dict, path: dict) -> list[str]:
    src_if, dst_if = fw.segment_of((), path["from"]), fw.segment_of((), path["to"])
    assert src_if and dst_if, f"{path}: no interface holds one of the addresses"
    if src_if == dst_if:
        return []
    return [c.rule for c in fw.crossings(src_if, dst_if, protocols, path["from"], path["to"])]


@pytest.mark.parametrize("path", DEVICES, ids=_rel)
def test_device_config(path):
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    with open(path[:-4] + ".yml", encoding="utf-8") as fh:
        expected = yaml.safe_load(fh)
    assert ciscoconf.platform_of(text) == expected["platform"]
    if expected.get("error"):
        with pytest.raises(ciscoconf.ConfigError) as exc:
            firewalls.facts_from_config(os.path.basename(path), text, source="file")
        for part in expected["error"]:
            assert part in str(exc.value)
        return
    facts = firewalls.facts_from_config(os.path.basename(path), text, source="file")
    assert facts["platform"] == expected["platform"]
    assert _inspections(facts) == expected["inspections"]
    for name in expected.get("shutdown", []):
        assert facts["interfaces"][name]["shutdown"] is True
    fw = firewalls.Firewall(facts)
    for p in expected.get("paths", []):
        assert _met(fw, DETECT["cisco_breaking_inspections"]["value"], p) == p["blamed"], p
        if "disputed" in p:
            assert _met(fw, DETECT["cisco_disputed_inspections"]["value"], p) == p["disputed"], p


with open(os.path.join(FIXTURES, "banners.yml"), encoding="utf-8") as _fh:
    BANNERS = yaml.safe_load(_fh)


@pytest.mark.parametrize("case", BANNERS, ids=[c["id"] for c in BANNERS])
def test_banner(case):
    probe = {"connect": "ok", "banner": case["banner"], "ehlo": case.get("ehlo", "250 OK"), "mail": "250 OK", "rcpt": "250 OK"}
    assert classify_probe(probe) == case["result"]


with open(os.path.join(FIXTURES, "events_4006.yml"), encoding="utf-8") as _fh:
    EVENTS = yaml.safe_load(_fh)


def _fleet():
    hosts = [{"name": n, "fqdn": f"{n.lower()}.corp.example", "address": a, "snapshot": None, "managed": True}
             for n, a in (("EXCH01", "10.1.1.11"), ("EXCH02", "10.1.1.12"), ("RELAY01", "10.1.1.20"))]
    return audit.fleet_from(hosts, knowledge.load())


@pytest.mark.parametrize("case", EVENTS, ids=[c["id"] for c in EVENTS])
def test_event_4006(case):
    fleet = _fleet()
    assert symptoms.reason_4006(case["text"]) == case["reason"]
    remote, _, host = symptoms.remote_4006(fleet, case["text"])
    assert host == case["host"] and (remote or None) == case.get("remote", remote)
