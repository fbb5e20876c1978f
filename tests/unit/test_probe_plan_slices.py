"""Probe plans of AWX job slices (probe_plan.plan's others and unaddressed, for_inventory's fleet): a slice sees
only its own servers, so it completes the fleet from the earlier audit, draws the whole fleet's plan, and runs its
own rows; a server of another slice is probed at the name the audit recorded, or listed as not probed, with why."""
from __future__ import annotations

import copy

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils import audit, knowledge, probe_plan
from tests.support import golden


def names(n: int) -> list[str]:
    return [f"EX{i:04d}" for i in range(n)]


def slices(hosts: list[str], k: int) -> list[list[str]]:
    return [hosts[i::k] for i in range(k)]


@pytest.mark.parametrize("n, mode", [(20, "auto"), (120, "mail"), (400, "mail")])
def test_the_slices_plans_merge_into_the_whole_fleets_plan(n, mode):
    hosts = names(n)
    routes = {hosts[1]: {hosts[2]: ["queue"]}, hosts[3]: {hosts[n - 1]: ["2 x Event 4006"]}}
    whole = probe_plan.plan(hosts, hosts, routes, {"mode": mode}, slow=[hosts[5]])
    parts = [probe_plan.plan(part, hosts, routes, {"mode": mode}, slow=[hosts[5]],
                             others=[h for h in hosts if h not in part]) for part in slices(hosts, 4)]
    assert all(set(p["pairs"]) == set(part) for p, part in zip(parts, slices(hosts, 4)))
    merged = probe_plan.merge_plans(parts)
    assert merged["pairs"] == whole["pairs"] and merged["dropped"] == whole["dropped"]
    assert merged["short"] == whole["short"] and merged["mode"] == whole["mode"]


def test_a_route_between_two_slices_is_probed_from_both_ends_and_coverage_is_not_repeated_per_slice():
    hosts = names(120)
    a, b = slices(hosts, 2)
    routes = {a[0]: {b[0]: ["queue ex-b"]}}
    alone = probe_plan.plan(a, a, routes, {"mode": "mail"})  # what a slice planned before: its own servers only
    assert b[0] not in alone["pairs"][a[0]]
    in_a = probe_plan.plan(a, hosts, routes, {"mode": "mail"}, others=b)
    in_b = probe_plan.plan(b, hosts, routes, {"mode": "mail"}, others=a)
    assert in_a["pairs"][a[0]][b[0]] == ["queue ex-b"]
    assert in_b["pairs"][b[0]][a[0]] == [f"route back: {a[0]} sends to it (queue ex-b)"]
    probers: dict[str, int] = {}
    for p in (in_a, in_b):
        for peers in p["pairs"].values():
            for t in peers:
                probers[t] = probers.get(t, 0) + 1
    # Each slice giving every server its three probers would be six or more; planned as one fleet, it is three.
    assert sorted(set(probers.values()))[0] == probe_plan.DEFAULTS["min_inbound"]
    assert sum(probers.values()) < 2 * probe_plan.DEFAULTS["min_inbound"] * len(hosts)


def test_a_server_there_is_no_address_for_is_not_probed_and_not_counted():
    hosts = names(12)
    mine, theirs = hosts[:6], hosts[6:]
    plan = probe_plan.plan(mine, hosts, {}, {"mode": "mesh"}, others=theirs, unaddressed=[theirs[0]])
    assert all(theirs[0] not in peers for peers in plan["pairs"].values())
    assert plan["unaddressed"] == {s: {theirs[0]: ["mesh"]} for s in mine}
    # Its five probers in the other slice are left: still enough. Left with two, it is short of the three.
    assert theirs[0] not in plan["short"]
    few = probe_plan.plan(hosts[:10], hosts, {}, {"mode": "mesh"}, others=hosts[10:], unaddressed=[hosts[10]])
    assert few["short"] == {hosts[10]: 1}
    assert "gave no name or address to connect to" in probe_plan.not_planned(few, hosts[0], hosts[10])


AUDIT = {"generated": "2026-01-01T00:00:00Z", "hosts": {
    "EXCH01": {"managed": True, "probe_target": "exch01.corp.example", "platform": {"fqdn": "exch01.corp.example"}},
    "EXCH02": {"managed": True, "probe_target": "10.0.0.2", "platform": {"fqdn": "exch02.corp.example"}},
    "EXCH03": {"managed": True, "platform": {"fqdn": "exch03.corp.example"}},  # an audit from before probe_target
    "EXCH55": {"managed": False, "probe_target": None, "platform": {"computer_name": "EXCH55"}},
}}


def test_the_rest_of_the_fleet_is_read_from_the_earlier_audit_with_the_names_its_probes_connected_to():
    assert probe_plan.fleet_from_audit(AUDIT) == {
        "EXCH01": {"managed": True, "target": "exch01.corp.example"}, "EXCH02": {"managed": True, "target": "10.0.0.2"},
        "EXCH03": {"managed": True, "target": "exch03.corp.example"}, "EXCH55": {"managed": False, "target": None}}
    assert probe_plan.fleet_from_audit(None) == {} and probe_plan.fleet_from_audit({"hosts": []}) == {}


def test_a_slice_probes_the_other_slices_servers_at_their_recorded_names_and_says_which_it_cannot():
    hostvars = {"EXCH04": {"mailflow_fqdn": "exch04.corp.example"}, "EXCH01": {"mailflow_fqdn": "exch01.corp.example"}}
    plan = probe_plan.for_inventory(["EXCH04", "EXCH01"], [], hostvars, {"mode": "mesh"}, None, None, AUDIT,
                                    "the audit of X")
    assert set(plan["pairs"]) == {"EXCH01", "EXCH04"}  # the sources stay this slice's own
    assert plan["addresses"] == {"EXCH02": "10.0.0.2", "EXCH03": "exch03.corp.example"}
    assert probe_plan.probe_peers(plan, "EXCH04") == [
        "EXCH01", {"name": "EXCH02", "target": "10.0.0.2"}, {"name": "EXCH03", "target": "exch03.corp.example"}]
    assert plan["unaddressed"] == {"EXCH01": {"EXCH55": ["mesh"]}, "EXCH04": {"EXCH55": ["mesh"]}}
    assert probe_plan.not_planned(plan, "EXCH04", "EXCH55") == (
        "EXCH04 did not probe EXCH55: EXCH55 is not in this job slice's inventory and the audit of X gave no name "
        "or address to connect to")
    # Without an earlier audit to complete it, the slice is the fleet, as before.
    alone = probe_plan.for_inventory(["EXCH04", "EXCH01"], [], hostvars, {"mode": "mesh"})
    assert alone["pairs"] == {"EXCH01": {"EXCH04": ["mesh"]}, "EXCH04": {"EXCH01": ["mesh"]}} and not alone["addresses"]


def test_the_audit_lists_a_pair_no_slice_could_address_as_not_probed_with_why():
    hosts, firewalls = golden.load_case("demo")
    managed = [h["name"] for h in hosts if h["managed"]]
    mine, theirs = managed[:5], managed[5:]
    everyone = [h["name"] for h in hosts]
    unmanaged = [n for n in everyone if n not in managed]
    parts = [probe_plan.plan(mine, everyone, {}, {"mode": "mesh"}, others=theirs, unaddressed=[theirs[0]]),
             probe_plan.plan(theirs, everyone, {}, {"mode": "mesh"}, others=mine)]
    merged = probe_plan.merge_plans(parts)
    thinned = copy.deepcopy(hosts)
    for h in thinned:
        if h["snapshot"]:
            h["snapshot"]["probes"] = [p for p in h["snapshot"]["probes"] if p["peer"] in merged["pairs"][h["name"]]]
    doc = audit.run(audit.fleet_from(thinned, knowledge.load(None), firewalls, merged), generated=golden.GENERATED)
    missed = doc["probe_plan"]["not_probed"]
    assert {(m["from"], m["to"]) for m in missed} == {(s, theirs[0]) for s in mine}
    assert all("is not in this job slice's inventory" in m["reason"] for m in missed)
    assert unmanaged and all(any(p["to"] == u for p in doc["peers"]) for u in unmanaged)


def test_an_audit_records_for_every_host_the_name_its_probes_connect_to_which_a_later_slice_reads():
    hosts, _unused = golden.load_case("demo")
    fleet = probe_plan.fleet_from_audit(golden.audit_doc("demo"))
    # The snapshot action connects to mailflow_fqdn, else ansible_host: unmanaged hosts (no platform.fqdn) too.
    assert fleet == {h["name"]: {"managed": h["managed"], "target": h["fqdn"] or h["address"]} for h in hosts}
    assert any(not h["managed"] for h in hosts)
