"""Benchmark: snapshot a generated fleet with ansible-playbook and report figures.

    .venv/bin/python bench/snapshot_fleet.py --hosts 300 --seed 7 --peers 10 --forks 20

Reports lab start-up time, playbook wall time, hosts per second, WinRM commands
per host, the longest command line, the stdin and stdout sizes. Not a test: it
asserts nothing about speed, only prints what it measured.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import yaml  # noqa: E402

from lab.core import Lab  # noqa: E402
from lab.generator import generate  # noqa: E402
from lab.scenario import load_scenario_data  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--sites", type=int, default=1)
    ap.add_argument("--peers", type=int, default=10, help="SMTP peers each host probes")
    ap.add_argument("--forks", type=int, default=20)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="mailflow-bench-")
    t0 = time.monotonic()
    fleet = load_scenario_data(generate(hosts=args.hosts, seed=args.seed, sites=args.sites), source="generated")
    t_load = time.monotonic() - t0
    with Lab(fleet, os.path.join(work, "lab")) as lab:
        t_up = time.monotonic() - t0
        inv = lab.inventory()
        rng = random.Random(args.seed)
        names = sorted(fleet.hosts)
        for name, hv in inv["all"]["children"]["mailflow_servers"]["hosts"].items():
            hv["mailflow_probe_peers"] = rng.sample([n for n in names if n != name], min(args.peers, len(names) - 1))
        inv_path = os.path.join(work, "hosts.yml")
        with open(inv_path, "w") as fh:
            yaml.safe_dump(inv, fh)
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_FORKS=str(args.forks))
        t1 = time.monotonic()
        proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inv_path,
                               os.path.join(ROOT, "playbooks", "snapshot.yml"), "-e", f"mailflow_snapshot_save_dir={work}/snaps"],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        t_play = time.monotonic() - t1
        counters = lab.metrics.snapshot()
    snaps = [json.load(open(os.path.join(work, "snaps", f))) for f in os.listdir(os.path.join(work, "snaps"))]
    managed = len(inv["all"]["children"]["mailflow_servers"]["hosts"])
    cmds = [c["winrm_commands"] for c in counters.values() if c["winrm_commands"]]
    print(json.dumps({
        "hosts": args.hosts, "managed": managed, "peers_per_host": args.peers, "forks": args.forks,
        "playbook_rc": proc.returncode, "snapshots_written": len(snaps),
        "scenario_load_s": round(t_load, 2), "lab_up_s": round(t_up, 2), "playbook_s": round(t_play, 1),
        "hosts_per_s": round(managed / t_play, 1),
        "winrm_commands_per_host": {"min": min(cmds), "max": max(cmds)},
        "longest_command_line": max(c["max_command_line"] for c in counters.values()),
        "overlong_command_lines": sum(c["overlong_command_lines"] for c in counters.values()),
        "stdin_bytes_median": statistics.median(s["transport"]["stdin_bytes"] for s in snaps),
        "snapshot_json_bytes_median": statistics.median(len(json.dumps(s)) for s in snaps),
        "host_duration_ms_median": statistics.median(s["duration_ms"] for s in snaps),
    }, indent=1))
    if proc.returncode:
        print(proc.stdout[-3000:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
