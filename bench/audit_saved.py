"""Benchmark: the audit step alone over a large multi-site fleet of saved snapshots, as the one audit after sliced or
several controllers' collections (docs/scale.md).

    .venv/bin/python bench/audit_saved.py --hosts 5000 --sites 100 --block 163 --parallel 4

Generates one fleet of --hosts servers over --sites sites (lab.generator: a routing group per site, bridgeheads,
routing group connectors in a ring, a relay per site) and collects it as slicing by site would: one lab per site
(its servers, plus the remote bridgeheads its connectors name, which its bridgeheads probe), each snapshotted
in-process (the collection's plan and decoder, the lab's script emulation and SMTP probes) with the probe plan that
slice draws. The routes the plans follow are the connectors' bridgehead pairs as a snapshot read them from AD (what
the previous audit's routes would hold). Then times the probe plan over the whole fleet, audit.run over every
snapshot with the slices' plans merged, and writing the reports, and prints the sizes. Not a test: it asserts
nothing about speed.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "collections")]

from ansible_collections.mailflow.exchange.plugins.module_utils import audit, knowledge, probe_plan, reports  # noqa: E402
from ansible_collections.mailflow.exchange.plugins.module_utils.causes import common  # noqa: E402
from lab.core import Lab  # noqa: E402
from lab.generator import generate  # noqa: E402
from lab.generator_sites import site_members  # noqa: E402
from lab.scenario import load_scenario_data  # noqa: E402
from tests.support import snapshots  # noqa: E402

MAIL = {"mode": "mail"}
ORG_READERS = 3  # mailflow_ad_org_readers: the first hosts of each slice, by name, read the scope: org items


def slice_of(data: dict, members: list[str], visitors: list[str], block: int) -> dict:
    """The site's own scenario: its hosts and the remote bridgeheads (visitors, probe targets only), addressed anew
    in 127.<block>.x.y, the organisation's routing objects, and the network rules between hosts it holds."""
    names = members + [v for v in visitors if v not in members]
    hosts = {}
    for i, name in enumerate(names):
        hosts[name] = dict(copy.deepcopy(data["hosts"][name]), address=f"127.{block}.{i // 250}.{1 + i % 250}")
    keep = set(names)
    network = copy.deepcopy(data["network"])
    network["blocked"] = [p for p in network.get("blocked") or [] if set(p) <= keep]
    for device in network.get("devices") or []:
        device["paths"] = [p for p in device["paths"] if set(p) <= keep]
    network["devices"] = [d for d in network.get("devices") or [] if d["paths"]]
    return dict(data, hosts=hosts, network=network)


def read_routes(data: dict, server: str, block: int, work: str) -> dict:
    """The bridgehead routes as one server's snapshot reads the connectors from AD (the previous audit's routes)."""
    with Lab(load_scenario_data(slice_of(data, [server], [], block), source="<routes>"), os.path.join(work, "routes"),
             mail_flow=False) as lab:
        snap = snapshots.take(lab, server, snapshots.FAST_PROBES, [])
    read = audit.fleet_from([{"name": n, "snapshot": snap if n == server else None} for n in data["hosts"]],
                            knowledge.load(None))
    return common.connector_routes(read)


def snapshot_site(data: dict, site: str, members: list[str], routes: dict, block: int, workers: int, work: str):
    """(the site's hosts with their snapshots, as the audit takes them, and the probe plan its slice drew)."""
    visitors = sorted({t for s in members for t in routes.get(s, {})} - set(members))
    scenario = slice_of(data, members, visitors, block)
    with Lab(load_scenario_data(scenario, source=f"<{site}>"), os.path.join(work, site), mail_flow=False) as lab:
        managed = [n for n in members if lab.fleet.hosts[n].winrm]
        site_plan = probe_plan.plan(managed, members + visitors, routes, MAIL)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            taken = dict(zip(managed, pool.map(
                lambda n: snapshots.take(lab, n, snapshots.FAST_PROBES, probe_plan.peers_of(site_plan, n),
                                         org_reads=n in sorted(managed)[:ORG_READERS]), managed)))
        hosts = [h for h in snapshots.hosts_for(lab, taken) if h["name"] in members]
    for h in hosts:  # the inventory's addresses, not this lab's
        h["address"] = data["hosts"][h["name"]]["address"]
    return hosts, site_plan


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=5000)
    ap.add_argument("--sites", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--block", type=int, default=163, help="first address block (127.<block>.x.y)")
    ap.add_argument("--parallel", type=int, default=1, help="sites collected at once, each on its own block from --block")
    ap.add_argument("--workers", type=int, default=32, help="snapshots taken at once in a site (forks)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="mailflow-bench-saved-")
    t0 = time.monotonic()
    data = generate(args.hosts, args.seed, sites=args.sites)
    by_site = site_members(data)
    routes = read_routes(data, next(iter(by_site.values()))[0], args.block, work)
    done: dict[str, tuple] = {}
    sites = list(by_site)

    def collect(lane: int) -> None:
        # One lane per block: a lab's addresses are its block's, so two labs at once need two blocks.
        for site in sites[lane::args.parallel]:
            done[site] = snapshot_site(data, site, by_site[site], routes, args.block + lane, args.workers, work)
    with ThreadPoolExecutor(max_workers=args.parallel) as lanes:
        list(lanes.map(collect, range(args.parallel)))
    hosts = [h for site in sites for h in done[site][0]]
    plans = [done[site][1] for site in sites]
    order = {n: i for i, n in enumerate(data["hosts"])}
    hosts.sort(key=lambda h: order[h["name"]])
    t1 = time.monotonic()
    # The plan one controller would draw for the whole fleet (timed); the snapshots follow each slice's own.
    whole = probe_plan.plan([h["name"] for h in hosts if h["managed"]], [h["name"] for h in hosts], routes, MAIL)
    t2 = time.monotonic()
    plan = probe_plan.merge_plans(plans)
    fleet = audit.fleet_from(hosts, knowledge.load(None), None, plan)
    doc = audit.run(fleet, generated="2026-01-01T00:00:00Z", check_mode=True)
    t3 = time.monotonic()
    paths = reports.write_all(doc, os.path.join(work, "reports"))
    t4 = time.monotonic()
    snaps = [h["snapshot"] for h in hosts if h["snapshot"]]
    bridgehead_pairs = {(s, t) for s, peers in routes.items() for t in peers}
    print(json.dumps({
        "hosts": len(hosts), "sites": len(by_site), "snapshots": len(snaps),
        "snapshot_bytes_total": sum(len(json.dumps(s)) for s in snaps),
        "collect_s": round(t1 - t0, 1), "probes": len(doc["peers"]),
        "probe_plan_s": round(t2 - t1, 2), "probe_plan_probes": probe_plan.probed_pairs(whole),
        "probe_plan_max_per_host": max(len(p) for p in whole["pairs"].values()),
        "bridgehead_pairs": len(bridgehead_pairs),
        "bridgehead_pairs_probed_both_ends": sum(fleet.probed(s, t) and fleet.probed(t, s) for s, t in bridgehead_pairs),
        "audit_run_s": round(t3 - t2, 1), "reports_s": round(t4 - t3, 1),
        "report_kib": {k: round(os.path.getsize(p) / 1024) for k, p in sorted(paths.items())},
        "statuses": doc["summary"]["statuses"],
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
