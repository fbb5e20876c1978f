"""Benchmark: the audit step alone over a large fleet of saved snapshots, as the one audit after sliced or
several controllers' collections (docs/scale.md).

    .venv/bin/python bench/audit_saved.py --site-hosts 50 --sites 100 --block 163

Snapshots a generated fleet of --site-hosts servers in-process (the collection's plan and decoder, the lab's
script emulation and SMTP probes, each server probing the peers the mail probe plan gives it), then stands the
same site up --sites times under other names (every name in the snapshots renamed, "EXCH0007" -> "EXCH0007-S012"),
as saved snapshots from many sites would be. Times the probe plan over the whole fleet, audit.run and writing
the reports, and prints the sizes. Not a test: it asserts nothing about speed.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "collections")]

from ansible_collections.mailflow.exchange.plugins.module_utils import audit, knowledge, probe_plan, reports  # noqa: E402
from lab.core import Lab  # noqa: E402
from lab.generator import generate  # noqa: E402
from lab.scenario import load_scenario_data, relocate  # noqa: E402
from tests.support import snapshots  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--site-hosts", type=int, default=50)
    ap.add_argument("--sites", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--block", type=int, default=163)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="mailflow-bench-saved-")
    fleet_state = load_scenario_data(relocate(generate(args.site_hosts, args.seed), args.block), source="<generated>")
    with Lab(fleet_state, os.path.join(work, "lab"), mail_flow=False) as lab:
        names = list(lab.fleet.hosts)
        managed = [n for n, h in lab.fleet.hosts.items() if h.winrm]
        site_plan = probe_plan.plan(managed, names, {}, {"mode": "mail"})
        with ThreadPoolExecutor(max_workers=8) as pool:
            taken = dict(zip(managed, pool.map(
                lambda n: snapshots.take(lab, n, snapshots.FAST_PROBES, probe_plan.peers_of(site_plan, n)), managed)))
        hosts_one = snapshots.hosts_for(lab, {n: taken.get(n) for n in names})
    text = json.dumps(hosts_one)
    pattern = re.compile("|".join(sorted((re.escape(n) for n in names), key=len, reverse=True)), re.I)
    plan_text = json.dumps(site_plan)

    def renamed(source: str, site: int):
        suffix = f"-S{site:03d}"
        return json.loads(pattern.sub(lambda m: m.group(0) + (suffix if m.group(0).isupper() else suffix.lower()), source))

    t0 = time.monotonic()
    hosts, plans = [], []
    for site in range(args.sites):
        hosts += renamed(text, site)
        plans.append(renamed(plan_text, site))
    t1 = time.monotonic()
    # The plan one controller would draw for the whole fleet (timed); the snapshots follow each site's own.
    whole = probe_plan.plan([h["name"] for h in hosts if h["managed"]], [h["name"] for h in hosts], {}, {"mode": "mail"})
    t2 = time.monotonic()
    plan = probe_plan.merge_plans(plans)
    fleet = audit.fleet_from(hosts, knowledge.load(None), None, plan)
    doc = audit.run(fleet, generated="2026-01-01T00:00:00Z", check_mode=True)
    t3 = time.monotonic()
    paths = reports.write_all(doc, os.path.join(work, "reports"))
    t4 = time.monotonic()
    print(json.dumps({
        "hosts": len(hosts), "sites": args.sites, "site_hosts": args.site_hosts,
        "probes": len(doc["peers"]), "snapshot_bytes_total": len(text) * args.sites,
        "cloning_s": round(t1 - t0, 1), "probe_plan_s": round(t2 - t1, 2), "probe_plan_probes": probe_plan.probed_pairs(whole),
        "probe_plan_max_per_host": max(len(p) for p in whole["pairs"].values()),
        "audit_run_s": round(t3 - t2, 1), "reports_s": round(t4 - t3, 1),
        "report_kib": {k: round(os.path.getsize(p) / 1024) for k, p in sorted(paths.items())},
        "statuses": doc["summary"]["statuses"],
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
