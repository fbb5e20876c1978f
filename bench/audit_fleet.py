"""Benchmark: the controller side of the audit on a generated fleet - detection and reports.

    .venv/bin/python bench/audit_fleet.py --hosts 100 --seed 7

Snapshots are taken in-process (the collection's plan and decoder, the lab's
script emulation and SMTP probes, every host probing every other) so the
figures are about deciding and writing, not WinRM. Reports the time of
audit.run and of writing the five reports, their sizes, and the status counts.
Not a test: it asserts nothing about speed.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "collections")]

from ansible_collections.mailflow.exchange.plugins.module_utils import audit, reports  # noqa: E402
from lab.core import Lab  # noqa: E402
from lab.generator import generate  # noqa: E402
from lab.scenario import load_scenario_data  # noqa: E402
from tests.support import snapshots  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--sites", type=int, default=1)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="mailflow-bench-audit-")
    fleet_state = load_scenario_data(generate(args.hosts, args.seed, sites=args.sites), source="<generated>")
    t0 = time.monotonic()
    with Lab(fleet_state, os.path.join(work, "lab")) as lab:
        t1 = time.monotonic()
        snaps = snapshots.take_fleet(lab)
        t2 = time.monotonic()
        fleet = snapshots.fleet(lab, snaps)
        doc = audit.run(fleet, generated="2026-01-01T00:00:00Z", check_mode=True)
        t3 = time.monotonic()
        paths = reports.write_all(doc, os.path.join(work, "reports"))
        t4 = time.monotonic()
    probes = sum(len(s["probes"]) for s in snaps.values() if s)
    print(f"hosts {args.hosts} (seed {args.seed}), {sum(1 for s in snaps.values() if s)} snapshots, {probes} probes")
    print(f"lab start {t1 - t0:.1f} s, in-process snapshots {t2 - t1:.1f} s")
    print(f"audit.run (13 detectors, symptoms, ranking) {t3 - t2:.2f} s; writing 5 reports {t4 - t3:.2f} s")
    for kind, path in sorted(paths.items()):
        print(f"  {kind:<5} {os.path.getsize(path) / 1024:8.0f} KiB  {path}")
    print("statuses:", doc["summary"]["statuses"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
