"""The probe plan (plugins/module_utils/probe_plan.py): bounded per host, every server probed by at least k peers,
deterministic, the mesh when asked; and the audit of the demo decides the same under the mail plan as under the mesh."""
from __future__ import annotations

import copy

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils import audit, knowledge, probe_plan, psrunner, snapshot
from tests.support import golden


def names(n: int) -> list[str]:
    return [f"EX{i:04d}" for i in range(n)]


def inbound(plan: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for peers in plan["pairs"].values():
        for t in peers:
            out[t] = out.get(t, 0) + 1
    return out


def test_mesh_mode_is_every_server_probing_every_other():
    hosts = names(6)
    plan = probe_plan.plan(hosts[:5], hosts, {}, {"mode": "mesh"})
    assert plan["mode"] == "mesh"
    assert {s: set(p) for s, p in plan["pairs"].items()} == {s: set(hosts) - {s} for s in hosts[:5]}
    assert all(why == ["mesh"] for p in plan["pairs"].values() for why in p.values())


def test_auto_is_the_mesh_for_a_small_fleet_and_the_mail_plan_above():
    assert probe_plan.plan(names(30), names(30))["mode"] == "mesh"
    assert probe_plan.plan(names(31), names(31))["mode"] == "mail"
    assert probe_plan.plan(names(10), names(10), options={"mode": "auto", "mesh_max_hosts": 5})["mode"] == "mail"


@pytest.mark.parametrize("n", [31, 100, 300, 1000, 5000])
def test_the_probes_per_host_are_bounded_whatever_the_fleet_and_every_server_has_k_probers(n):
    hosts = names(n)
    # A hub that sends to everyone and everyone sends to: its routes alone would be N - 1 probes.
    routes = {hosts[0]: {t: ["queue"] for t in hosts[1:]}}
    routes.update({s: {hosts[0]: ["smart host"]} for s in hosts[1:]})
    plan = probe_plan.plan(hosts, hosts, routes, {"mode": "mail"})
    assert max(len(p) for p in plan["pairs"].values()) <= probe_plan.DEFAULTS["max_peers"]
    assert not plan["short"]
    assert min(inbound(plan).get(t, 0) for t in hosts) >= probe_plan.DEFAULTS["min_inbound"]
    assert len(plan["dropped"][hosts[0]]) == n - 1 - probe_plan.DEFAULTS["max_peers"]
    # Every server still sends its own route to the hub: the routes come first.
    assert all(hosts[0] in plan["pairs"][s] for s in hosts[1:])


def test_a_larger_fleet_does_not_make_a_host_probe_more():
    per_host = [max(len(p) for p in probe_plan.plan(names(n), names(n), {}, {"mode": "mail"})["pairs"].values())
                for n in (50, 500, 5000)]
    assert per_host[-1] <= probe_plan.DEFAULTS["max_peers"] and per_host[-1] <= per_host[0] + 2


def test_the_plan_is_deterministic_whatever_the_order_it_is_given_in():
    hosts = names(200)
    routes = {hosts[5]: {hosts[7]: ["queue exch7"]}}
    a = probe_plan.plan(hosts, hosts, routes, {"mode": "mail"})
    b = probe_plan.plan(list(reversed(hosts)), list(reversed(hosts)), copy.deepcopy(routes), {"mode": "mail"})
    assert a == b


def test_routes_are_probed_from_both_ends_with_their_reasons():
    hosts = names(100)
    plan = probe_plan.plan(hosts, hosts, {hosts[1]: {hosts[2]: ["2 x Event 4006", "queue ex0002"]}}, {"mode": "mail"})
    assert plan["pairs"][hosts[1]][hosts[2]] == ["2 x Event 4006", "queue ex0002"]
    assert plan["pairs"][hosts[2]][hosts[1]] == [f"route back: {hosts[1]} sends to it (2 x Event 4006)"]
    reasons = {w for p in plan["pairs"].values() for why in p.values() for w in why}
    assert {"sample", "inbound coverage"} <= reasons | {"inbound coverage"}


def test_unmanaged_hosts_are_probed_but_never_probe():
    hosts = names(60)
    plan = probe_plan.plan(hosts[:50], hosts, {}, {"mode": "mail"})
    assert set(plan["pairs"]) == set(hosts[:50])
    assert all(inbound(plan).get(t, 0) >= 3 for t in hosts[50:])


def test_bad_settings_are_refused():
    with pytest.raises(probe_plan.PlanError):
        probe_plan.settings({"mode": "ring"})
    with pytest.raises(probe_plan.PlanError):
        probe_plan.settings({"min_inbound": 20, "max_peers": 16})


def test_inventory_routes_name_inventory_hosts_by_name_fqdn_or_address():
    hv = {"A": {"mailflow_sends_to": ["b.corp.example", "nowhere"], "mailflow_smarthost_expected": "[10.0.0.3]"},
          "B": {"mailflow_fqdn": "b.corp.example"}, "C": {"ansible_host": "10.0.0.3"}}
    assert probe_plan.routes_from_inventory(hv, ["A", "B", "C"]) == {
        "A": {"B": ["inventory mailflow_sends_to"], "C": ["inventory mailflow_smarthost_expected"]}}


def test_a_host_of_a_1000_host_fleet_sends_its_probes_in_one_command_within_winrm_2_defaults():
    """WinRM 2.0's MaxEnvelopeSizekb is 150 by default: with the bounded plan, one host's whole request
    (every knowledge item and its probes) is one command whose stdin fits one envelope, at any fleet size."""
    hosts = names(1000)
    plan = probe_plan.plan(hosts, hosts, {hosts[0]: {t: ["queue"] for t in hosts[1:]}}, {"mode": "mail"})
    facts = knowledge.load(None)
    limits = psrunner.Limits()
    for host in (hosts[0], hosts[500]):
        peers = [{"name": p, "target": f"{p.lower()}.{'x' * 50}.corp.example"} for p in probe_plan.peers_of(plan, host)]
        ops = [op for _unused, op in snapshot.build_plan(facts, peers, helo=f"{host.lower()}.corp.example",
                                                         domain="corp.example")]
        commands = psrunner.batches(ops, None, limits)
        assert len(commands) == 1
        assert len(psrunner.stdin_payload(commands[0], None)) <= limits.max_stdin


# -- the audit under the plan, on the demo's saved snapshots (golden case): the mesh's probes, thinned to a plan


def _audit_under(plan, hosts, firewalls):
    thinned = copy.deepcopy(hosts)
    for h in thinned:
        if h["snapshot"]:
            h["snapshot"]["probes"] = [p for p in h["snapshot"]["probes"] if p["peer"] in plan["pairs"].get(h["name"], {})]
    return audit.run(audit.fleet_from(thinned, knowledge.load(None), firewalls, plan), generated=golden.GENERATED)


def _verdicts(doc):
    return {(h, f["cause"]): (f["status"], f.get("rank")) for h, d in doc["hosts"].items() for f in d["findings"]}


def test_the_demo_verdicts_are_the_same_under_the_mail_plan_as_under_the_mesh():
    hosts, firewalls = golden.load_case("demo")
    mesh = audit.run(audit.fleet_from(copy.deepcopy(hosts), knowledge.load(None), firewalls), generated=golden.GENERATED)
    managed = [h["name"] for h in hosts if h["managed"]]
    plan = probe_plan.plan(managed, [h["name"] for h in hosts], probe_plan.routes_from_audit(mesh), {"mode": "mail"},
                           slow=probe_plan.slow_from_audit(mesh))
    plan["routes_source"] = "the mesh audit"
    assert plan["slow"]  # the demo's filtered and mute servers
    mail = _audit_under(plan, hosts, firewalls)
    assert len(mail["peers"]) < len(mesh["peers"])
    assert _verdicts(mail) == _verdicts(mesh)
    assert mail["probe_plan"]["mode"] == "mail" and not mail["probe_plan"]["not_probed"]
    assert all(p["why"] and p["why"] != ["not in the probe plan"] for p in mail["peers"])


def test_a_sender_that_did_not_probe_its_peer_leaves_the_inbound_verdict_unknown_not_absent():
    hosts, firewalls = golden.load_case("demo")
    mesh = audit.run(audit.fleet_from(copy.deepcopy(hosts), knowledge.load(None), firewalls), generated=golden.GENERATED)
    routes = mesh["routes"]
    # A receiver whose port 25 every prober reached, and one server that sends it mail.
    target, sender = next((t, s) for s, peers in routes.items() for t in peers
                          if next(f for f in mesh["hosts"][t]["findings"] if f["cause"] == "port25_blocked")["status"] == "absent")
    managed = [h["name"] for h in hosts if h["managed"]]
    plan = probe_plan.plan(managed, [h["name"] for h in hosts], {}, {"mode": "mail"})  # no routes known yet
    plan["pairs"][sender].pop(target, None)
    plan["routes_source"] = None
    doc = _audit_under(plan, hosts, firewalls)
    finding = next(f for f in doc["hosts"][target]["findings"] if f["cause"] == "port25_blocked")
    assert finding["status"] == "unknown"
    assert f"{sender} did not probe {target}: not in this run's mail probe plan" in finding["summary"]


def test_slow_servers_are_probed_by_hosts_already_waiting_and_left_out_of_the_sample():
    hosts = names(200)
    slow = hosts[10:20]
    plan = probe_plan.plan(hosts, hosts, {}, {"mode": "mail"}, slow=slow)
    waiting = {s for s, peers in plan["pairs"].items() if set(peers) & set(slow)}
    assert all(inbound(plan)[t] >= 3 for t in slow)
    assert len(waiting) <= 4  # 10 slow servers x 3 probers, packed onto as few hosts as the bound allows
    assert not any(why == ["sample"] for p in plan["pairs"].values() for t, why in p.items() if t in slow)
    assert plan["slow"] == sorted(slow)


def test_slow_servers_come_from_the_earlier_audits_timed_out_probes():
    doc = {"peers": [{"from": "A", "to": "B", "result": "filtered", "ms": 5001},
                     {"from": "A", "to": "C", "result": "banner", "ms": 12},
                     {"from": "A", "to": "D", "result": "no_banner", "ms": 5003},
                     {"from": "B", "to": "E", "result": "banner", "ms": 2500}]}
    assert probe_plan.slow_from_audit(doc) == ["B", "D", "E"]


def test_the_plans_of_job_slices_merge_into_one():
    hosts = names(80)
    a = probe_plan.plan(hosts[:40], hosts[:40], {}, {"mode": "mail"})
    b = probe_plan.plan(hosts[40:], hosts[40:], {}, {"mode": "mail"}, slow=[hosts[45]])
    merged = probe_plan.merge_plans([a, b])
    assert merged["pairs"] == {**a["pairs"], **b["pairs"]} and merged["slow"] == [hosts[45]]
    assert probe_plan.merge_plans([]) is None and probe_plan.merge_plans([a]) is a


def test_a_host_the_inventory_gives_peers_probes_exactly_those_in_either_mode():
    hosts = names(40)
    pinned = [hosts[1], hosts[2], "relay.partner.example"]  # a peer outside the fleet is probed too
    for mode in ("mesh", "mail"):
        plan = probe_plan.plan(hosts, hosts, {hosts[0]: {hosts[9]: ["queue ex0009"]}}, {"mode": mode},
                               fixed={hosts[0]: pinned + [hosts[0]]})
        assert plan["pairs"][hosts[0]] == {p: [probe_plan.FIXED] for p in sorted(pinned)}
        assert hosts[0] not in plan["dropped"]
        # Its route is still probed from the other end.
        assert hosts[0] in plan["pairs"][hosts[9]]


def test_a_pinned_hosts_peers_decide_who_is_short_of_probers():
    # Four servers, each needing three probers: A is pinned to one peer, so only the other three can cover the
    # rest, and the one A does not probe has two.
    hosts = ["A", "B", "C", "D"]
    settings = {"mode": "mail", "min_inbound": 3, "sample": 0}
    to_b = probe_plan.plan(hosts, hosts, {}, settings, fixed={"A": ["B"]})
    to_c = probe_plan.plan(hosts, hosts, {}, settings, fixed={"A": ["C"]})
    assert to_b["short"] == {"C": 2, "D": 2} and to_c["short"] == {"B": 2, "D": 2}
    assert inbound(to_b) == {"A": 3, "B": 3, "C": 2, "D": 2}
    # Without the pin, A covers its share and no one is short.
    assert probe_plan.plan(hosts, hosts, {}, settings)["short"] == {}
    # The mesh counts the pin the same way.
    assert probe_plan.plan(hosts, hosts, {}, dict(settings, mode="mesh"), fixed={"A": ["B"]})["short"] == {"C": 2, "D": 2}


def test_a_pinned_host_is_never_drawn_as_a_prober():
    hosts = names(200)
    plan = probe_plan.plan(hosts, hosts, {}, {"mode": "mail"}, fixed={h: [hosts[0]] for h in hosts[:150]})
    assert all(plan["pairs"][h] == {hosts[0]: [probe_plan.FIXED]} for h in hosts[1:150])
    # The 50 free hosts cover everyone else, within the bound.
    assert all(inbound(plan).get(t, 0) >= 3 for t in hosts) and not plan["short"]
    assert max(len(plan["pairs"][h]) for h in hosts[150:]) <= probe_plan.DEFAULTS["max_peers"]


def test_the_inventorys_pinned_peers_reach_the_planner_as_names_whichever_form_they_take():
    hostvars = {"A": {"mailflow_probe_peers": ["B", {"name": "C", "target": "c.corp.example"}]},
                "B": {"mailflow_probe_peers": []}, "C": {}}
    assert probe_plan.fixed_peers(hostvars, ["A", "B", "C", "D"]) == {"A": ["B", "C"]}
    plan = probe_plan.for_inventory(["A", "B", "C"], ["D"], hostvars, {"mode": "mail"})
    assert plan["pairs"]["A"] == {"B": [probe_plan.FIXED], "C": [probe_plan.FIXED]}


def test_a_plan_for_the_inventory_follows_the_earlier_audits_routes_and_the_declared_ones_and_says_whence():
    hosts = names(40)
    hostvars = {h: {"mailflow_fqdn": f"{h.lower()}.corp.example"} for h in hosts}
    hostvars[hosts[1]]["mailflow_sends_to"] = [f"{hosts[2].lower()}.corp.example"]
    earlier = {"routes": {hosts[3]: {hosts[4]: ["queue ex0004"]}}, "peers": [{"from": hosts[5], "to": hosts[6], "result": "filtered"}]}
    plan = probe_plan.for_inventory(hosts, [], hostvars, {"mode": "mail"}, earlier, "the audit of 2026-01-01")
    assert plan["pairs"][hosts[1]][hosts[2]] == ["inventory mailflow_sends_to"]
    assert plan["pairs"][hosts[3]][hosts[4]] == ["queue ex0004"] and plan["slow"] == [hosts[6]]
    assert plan["routes_source"] == "the audit of 2026-01-01 and the inventory"
    assert probe_plan.for_inventory(hosts, [], {}, {"mode": "mail"})["routes_source"] is None
