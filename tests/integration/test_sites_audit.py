"""A generated three-site fleet audited twice through playbooks/audit.yml: the first audit's snapshots (its first
hosts') read the routing group connectors' bridgeheads from AD (the lab answers the dispatcher's directory search from the scenario's
AD objects), its audit.json records bridgehead -> remote bridgehead routes, and the second audit's probe plan, which
follows them, probes every bridgehead pair from both ends."""
from __future__ import annotations

import json

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import HostView
from lab.generator import generate
from tests.integration.test_audit_playbook import run_audit

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def bridgehead_pairs_in_ad(lab) -> dict[str, tuple[set[str], set[str]]]:
    """{connector name: (local bridgeheads, remote bridgeheads)} from the lab's raw AD: each bridgehead DN names an
    SMTP virtual server object, three levels below its server object, whose cn is the server's name."""
    def server(vsi_dn: str) -> str:
        assert lab.fleet.ad.get(vsi_dn) is not None, vsi_dn  # a connector names an existing virtual server
        return lab.fleet.ad.get(vsi_dn.split(",", 3)[3])["cn"][0]
    return {attrs["cn"][0]: ({server(d) for d in attrs["msExchSourceBridgeheadServersDN"]},
                             {server(d) for d in attrs["msExchTargetBridgeheadServersDN"]})
            for _dn, attrs in lab.fleet.ad.search("", "msExchRoutingGroupConnector")}


def test_the_next_audit_probes_every_bridgehead_pair_its_connectors_name(lab_factory, tmp_path):
    lab = lab_factory(generate(40, seed=2, sites=3))
    in_ad = bridgehead_pairs_in_ad(lab)
    assert len(in_ad) == 6  # three sites in a ring: three links, two one-way connectors each
    pairs = {(s, t) for sources, targets in in_ad.values() for s in sources for t in targets}

    (tmp_path / "first").mkdir()
    proc, first, latest = run_audit(lab, tmp_path / "first", "--check", "-e",
                                    f"mailflow_probe_routes_from={tmp_path / 'no-earlier-audit.json'}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    # The first hosts of the run by name read the organisation's connectors for all (scope org,
    # mailflow_ad_org_readers: 3), with the servers behind their bridgehead DNs; the others do not carry them.
    for name in ("EXCH0001", "EXCH0002", "EXCH0003"):
        view = HostView(json.loads((latest / "snapshots" / f"{name}.json").read_text()))
        assert {c["name"]: (set(c["source"]), set(c["target"])) for c in view.routing_group_connectors()} == in_ad
    for name in ("EXCH0004", "EXCH0036"):
        assert "ad_routing_group_connectors" not in json.loads((latest / "snapshots" / f"{name}.json").read_text())["items"]
    recorded = {(s, t) for s, peers in first["routes"].items() for t, why in peers.items()
                if any(w.startswith("routing group connector ") for w in why)}
    assert recorded == pairs
    assert not first["probe_plan"]["routes_source"]  # the first audit knew no routes: its probes could not follow

    (tmp_path / "second").mkdir()
    proc, second, _ = run_audit(lab, tmp_path / "second", "--check", "-e",
                                f"mailflow_probe_routes_from={latest / 'audit.json'}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    probed = {(p["from"], p["to"]): p["why"] for p in second["peers"]}
    for s, t in pairs:  # both ends: the connector's own direction and the route back
        assert any("routing group connector" in w for w in probed[(s, t)]), (s, t, probed.get((s, t)))
        assert (t, s) in probed, (t, s)
    limit = second["probe_plan"]["settings"]["max_peers"]
    assert max(sum(1 for f, _t in probed if f == s) for s, _t in probed) <= limit
