"""Multi-site fleets: the generator's raw AD state (routing groups, bridgeheads, connectors, relays), the decoding of
routing group connectors from what a domain controller returns, and the probe plan over bridgehead routes."""
from __future__ import annotations

import hashlib
import json
import os

import pytest
import yaml

from ansible_collections.mailflow.exchange.plugins.module_utils import audit, knowledge, probe_plan, snapshot
from ansible_collections.mailflow.exchange.plugins.module_utils.causes import common
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import HostView, server_of_dn
from ansible_collections.mailflow.exchange.plugins.module_utils.psrunner import Op, OpResult
from lab.generator import generate
from lab.generator_sites import ring
from lab.scenario import load_scenario_data

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "ad", "routing_group_connectors.yml")
ITEM = "ad_routing_group_connectors"


def site_facts(data: dict) -> dict:
    """What the raw state says of the sites, read back as a directory reader would: each server's routing group
    (msExchHomeRoutingGroup), each connector's ends (its bridgehead DNs) and destination."""
    home = {n: layer["ad"]["server"]["msExchHomeRoutingGroup"] for n, layer in data["hosts"].items()
            if "msExchHomeRoutingGroup" in ((layer.get("ad") or {}).get("server") or {})}
    connectors = {dn: a for dn, a in data["ad_objects"].items() if "msExchRoutingGroupConnector" in a["objectClass"]}
    groups = {dn for dn, a in data["ad_objects"].items() if "msExchRoutingGroup" in a["objectClass"]}
    return {"home": home, "connectors": connectors, "groups": groups}


@pytest.mark.parametrize("hosts,sites", [(12, 2), (40, 3), (300, 7)])
def test_a_multi_site_fleet_is_valid_raw_state_with_a_routing_group_per_site(hosts, sites):
    data = generate(hosts, seed=hosts, sites=sites)
    fleet = load_scenario_data(data, "<generated sites>")  # the schema and the loader's own checks
    assert len(fleet.hosts) == hosts
    facts = site_facts(data)
    assert len(facts["groups"]) == sites and set(facts["home"].values()) == facts["groups"]
    relays = [n for n, layer in data["hosts"].items() if layer["base"] == ["smtp_relay_w2003"]]
    assert len(relays) == sites  # one Windows SMTP relay per site
    # A ring: every site joined to its neighbours, each link two one-way connectors (two sites: one link).
    assert len(facts["connectors"]) == 2 * len(ring(sites)) == (2 if sites == 2 else 2 * sites)
    for dn, conn in facts["connectors"].items():
        source_group = dn.split(",CN=Connections,", 1)[1]
        sources = [server_of_dn(v) for v in conn["msExchSourceBridgeheadServersDN"]]
        targets = [server_of_dn(v) for v in conn["msExchTargetBridgeheadServersDN"]]
        assert 1 <= len(sources) <= 2 and 1 <= len(targets) <= 2
        assert {facts["home"][s] for s in sources} == {source_group}
        assert {facts["home"][t] for t in targets} == {conn["msExchDestinationRGDN"]} != {source_group}
        assert all(v.startswith("CN=1,CN=SMTP,CN=Protocols,CN=") for v in conn["msExchSourceBridgeheadServersDN"])


def test_cross_site_queues_leave_through_bridgeheads_to_remote_bridgeheads():
    data = generate(5000, seed=7, sites=100)
    facts = site_facts(data)
    bridge = {}
    for conn in facts["connectors"].values():
        for s in conn["msExchSourceBridgeheadServersDN"]:
            bridge.setdefault(server_of_dn(s), set()).update(server_of_dn(t) for t in conn["msExchTargetBridgeheadServersDN"])
    crossing = []
    for name, layer in data["hosts"].items():
        for link in ((layer.get("wmi") or {}).get("root\\MicrosoftExchangeV2") or {}).get("Exchange_SMTPLink", []):
            peer = link["LinkName"].split(".")[0].upper()
            if peer in facts["home"] and facts["home"][peer] != facts["home"].get(name):
                crossing.append((name, peer))
    assert crossing, "a 100-site fleet with no stalled queue between sites tests nothing"
    assert all(peer in bridge.get(name, ()) for name, peer in crossing)


def test_the_generator_is_deterministic_and_one_site_is_the_fleet_it_always_was():
    assert generate(60, seed=4, sites=3) == generate(60, seed=4, sites=3)
    assert generate(60, seed=4, sites=3) != generate(60, seed=5, sites=3)
    # Golden snapshots and tests were made from the one-site generator: its output must not move (this digest is
    # that of generate(50, 3) before multi-site fleets existed).
    digest = hashlib.sha256(json.dumps(generate(50, seed=3, sites=1)).encode()).hexdigest()
    assert digest == "2850f063c2bed61b93997b061a4310b105982eb3a345824dcd44678d2eacd13e"


@pytest.mark.parametrize("hosts,sites", [(5, 3), (100, 1000)])
def test_too_few_hosts_for_the_sites_is_refused(hosts, sites):
    with pytest.raises(ValueError, match="sites"):
        generate(hosts, seed=1, sites=sites)


# --------------------------------------------------------------------------- what a DC returns, decoded

def as_dispatcher_rows(result: dict, attrs: list[str]) -> list:
    """The rows Op-AdsiSearch makes of one SearchResult: AttrValues looks each asked-for name up in lower case and
    gives $null for one the result lacks; the DN comes from distinguishedName, else ADsPath."""
    dn = (result.get("distinguishedname") or [result["adspath"][0]])[0]
    return [("entry", {"dn": dn, **{"a:" + a: result.get(a.lower()) for a in attrs}})]


def test_routing_group_connectors_decode_from_what_a_domain_controller_returns():
    fixture = yaml.safe_load(open(FIXTURE, encoding="utf-8"))
    item = knowledge.load(None)["collect"][ITEM]
    assert {a.lower() for a in ["distinguishedName", *item["attrs"]]} == {a.lower() for a in fixture["properties_to_load"]}
    op = snapshot.build_plan({"collect": {ITEM: item}, "probe": {}}, [], "h", "d")[0][1]
    rows = [row for r in fixture["search_results"] for row in as_dispatcher_rows(r, list(op.args[2]))]
    decoded = snapshot._decode(OpResult(0, op, rows, None))
    got = HostView({"items": {ITEM: decoded}}).routing_group_connectors()
    assert [{k: c[k] for k in ("name", "source", "target")} for c in got] == fixture["expected"]


def test_server_of_dn_reads_virtual_server_and_server_dns_and_nothing_else():
    base = "CN=Servers,CN=AG,CN=Administrative Groups,CN=Org,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=x"
    assert server_of_dn(f"CN=1,CN=SMTP,CN=Protocols,CN=exch01,{base}") == "EXCH01"
    assert server_of_dn(f"CN=EXCH02,{base}") == "EXCH02"
    assert server_of_dn("CN=Site01,CN=Routing Groups,CN=AG,DC=x") is None
    assert server_of_dn("") is None


# --------------------------------------------------------------------------- routes and the plan

def fleet_reading_ad(data: dict):
    """An audit fleet whose snapshots hold only what the connectors search and the computer's name would give:
    every Exchange server reads the organisation's connectors (as decoded by snapshot._decode)."""
    entries = [{"dn": dn, "attrs": {a: (v if isinstance(v, list) else [v]) for a, v in attrs.items()
                                     if a in ("cn", "msExchSourceBridgeheadServersDN", "msExchTargetBridgeheadServersDN")}}
               for dn, attrs in data["ad_objects"].items() if "msExchRoutingGroupConnector" in attrs["objectClass"]]
    hosts = []
    for name, layer in data["hosts"].items():
        exchange = layer["base"] == ["exchange2003_sp2"]
        items = {"computer": [{"Name": name, "Domain": "corp.example"}], **({ITEM: entries} if exchange else {})}
        snap = {"schema": snapshot.SCHEMA, "host": name, "items": items, "platform": snapshot.platform_of(items, name)}
        hosts.append({"name": name, "managed": True, "snapshot": snap})
    return audit.fleet_from(hosts, knowledge.load(None))


@pytest.mark.parametrize("hosts,sites", [(40, 3), (5000, 100)])
def test_every_bridgehead_pair_is_probed_from_both_ends_within_the_bound(hosts, sites):
    data = generate(hosts, seed=11, sites=sites)
    fleet = fleet_reading_ad(data)
    routes = common.connector_routes(fleet)
    pairs = {(s, t) for conn in site_facts(data)["connectors"].values()
             for s in map(server_of_dn, conn["msExchSourceBridgeheadServersDN"])
             for t in map(server_of_dn, conn["msExchTargetBridgeheadServersDN"])}
    assert {(s, t) for s, peers in routes.items() for t in peers} == pairs
    assert all(len(why) == 1 and why[0].startswith("routing group connector Site") for p in routes.values() for why in p.values())
    names = list(data["hosts"])
    options = {"mode": "mail"}
    plan = probe_plan.plan(names, names, routes, options)
    for s, t in pairs:
        assert t in plan["pairs"][s] and s in plan["pairs"][t], (s, t)
    assert not plan["dropped"]
    assert max(len(p) for p in plan["pairs"].values()) <= probe_plan.settings(options)["max_peers"]


def test_the_audit_records_connector_routes_for_the_next_plan():
    data = generate(40, seed=2, sites=3)
    doc = audit.run(fleet_reading_ad(data), generated="2026-01-01T00:00:00Z", check_mode=True)
    routes = probe_plan.routes_from_audit(doc)
    reasons = {w for peers in routes.values() for why in peers.values() for w in why}
    assert reasons == {f"routing group connector Site0{a} to Site0{b}" for a, b in ring(3) + [(b, a) for a, b in ring(3)]}
