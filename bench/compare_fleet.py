"""Benchmark: the floor, a naive baseline and the mailflow audit on the same generated lab, in one run.

    .venv/bin/python bench/compare_fleet.py --sizes 30,100,300 --seed 7 --block 160

For each fleet size it starts one lab (a generated fleet relocated to 127.<block>.x.y) and runs, in turn:

- the floor: bench/floor.yml, one `raw: echo ok` per server (what ansible itself needs for one command per host);
- the naive baseline: bench/naive_audit.yml, one `raw` per check (30 commands per host), what an admin writes
  when ansible.windows cannot run on PowerShell 2.0; it decides nothing. Twice: as written there (one task looping
  over the 30 commands, so ansible forks one worker and opens one connection per host), and as issue 16 measured it,
  one task per check (30 workers and connections per host; the playbook is written from the same list);
- the audit without a single probe (mailflow_probe_plan=mail, no sample, no inbound coverage, no earlier
  routes): the controller's own cost beside the floor;
- the audit, twice: playbooks/audit.yml --check with the default probe plan. The first run of a fleet knows no
  routes yet (the mail plan probes a sample and the minimum inbound coverage); the second follows the routes the
  first recorded, as every later audit does. Both are timed.

Prints one JSON object per size (wall times, probes, probes per host, WinRM commands per host) and a table of
the ratios audit/floor and naive/audit. Not a test: it asserts nothing about speed. --skip-naive-above N skips
the baseline on larger fleets (it is the slowest part); --mesh also times the audit with mailflow_probe_plan=mesh.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import yaml  # noqa: E402

from lab.core import Lab  # noqa: E402
from lab.generator import generate  # noqa: E402
from lab.scenario import load_scenario_data, relocate  # noqa: E402

PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def play(inv_path: str, playbook: str, env: dict, *extra: str) -> tuple[float, int, str]:
    t0 = time.monotonic()
    proc = subprocess.run([PLAYBOOK, "-i", inv_path, playbook, *extra], cwd=ROOT, env=env, capture_output=True, text=True)
    return time.monotonic() - t0, proc.returncode, proc.stdout[-2000:] + proc.stderr[-1000:]


def naive_tasks_playbook(work: str) -> str:
    """bench/naive_audit.yml's checks as one task each (what an admin who names each check writes)."""
    with open(os.path.join(ROOT, "bench", "naive_audit.yml"), encoding="utf-8") as fh:
        (source,) = yaml.safe_load(fh)
    checks = source["vars"]["naive_checks"]
    play = {"name": "Read what the causes need, one task per check", "hosts": "mailflow_servers", "gather_facts": False,
            "tasks": [{"name": f"Check {i + 1}: {c[:60]}", "ansible.builtin.raw": f"type nul 2>nul & {c}",
                       "register": f"naive_check_{i + 1}", "changed_when": False, "failed_when": False}
                      for i, c in enumerate(checks)]}
    path = os.path.join(work, "naive_tasks.yml")
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump([play], fh, sort_keys=False)
    return path


def commands_per_host(lab) -> dict:
    cmds = [c["winrm_commands"] for c in lab.metrics.snapshot().values() if c["winrm_commands"]]
    return {"min": min(cmds, default=0), "max": max(cmds, default=0)}


def audit_figures(state: str) -> dict:
    with open(os.path.join(state, "reports", "latest", "audit.json"), encoding="utf-8") as fh:
        doc = json.load(fh)
    per_host: dict[str, int] = {}
    for p in doc["peers"]:
        per_host[p["from"]] = per_host.get(p["from"], 0) + 1
    return {"plan": doc["probe_plan"]["mode"], "probes": len(doc["peers"]), "probes_per_host_max": max(per_host.values(), default=0),
            "not_probed": len(doc["probe_plan"]["not_probed"]), "statuses": doc["summary"]["statuses"],
            "verdicts": {(h, f["cause"]): f["status"] for h, d in doc["hosts"].items() for f in d["findings"]}}


def one_size(hosts: int, args, work: str) -> dict:
    data = relocate(generate(hosts, args.seed, sites=args.sites), args.block)
    out: dict = {"hosts": hosts, "seed": args.seed}
    with Lab(load_scenario_data(data, source="generated"), os.path.join(work, "lab")) as lab:
        inv = lab.inventory()
        out["managed"] = len(inv["all"]["children"]["mailflow_servers"]["hosts"])
        inv_path = os.path.join(work, "hosts.yml")
        with open(inv_path, "w", encoding="utf-8") as fh:
            yaml.safe_dump(inv, fh)
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
        if args.forks:
            env["ANSIBLE_FORKS"] = str(args.forks)
        runs = [("floor", os.path.join(ROOT, "bench", "floor.yml"), ())]
        if not args.skip_naive_above or hosts <= args.skip_naive_above:
            runs.append(("naive", os.path.join(ROOT, "bench", "naive_audit.yml"), ()))
            runs.append(("naive_tasks", naive_tasks_playbook(work), ()))
        state = os.path.join(work, "state")
        audit = (os.path.join(ROOT, "playbooks", "audit.yml"), ("--check", "-e", f"mailflow_state_dir={state}"))
        # Without a single probe (no routes, no sample, no coverage): the controller's own cost, for the floor.
        noprobe = (audit[0], ("--check", "-e", f"mailflow_state_dir={os.path.join(work, 'state-noprobe')}",
                              "-e", "mailflow_probe_plan=mail", "-e", "mailflow_probe_min_inbound=0",
                              "-e", "mailflow_probe_sample=0"))
        runs += [("audit_noprobe", *noprobe), ("audit_first", *audit), ("audit", *audit)]
        if args.mesh:
            mesh_state = os.path.join(work, "state-mesh")
            runs.append(("audit_mesh", audit[0], ("--check", "-e", f"mailflow_state_dir={mesh_state}",
                                                  "-e", "mailflow_probe_plan=mesh")))
        for name, playbook, extra in runs:
            lab.metrics.reset()
            seconds, rc, tail = play(inv_path, playbook, env, *extra)
            out[f"{name}_s"] = round(seconds, 1)
            out[f"{name}_commands_per_host"] = commands_per_host(lab)
            if rc:
                out[f"{name}_rc"] = rc
                out[f"{name}_tail"] = tail
            if name.startswith("audit"):
                figures = audit_figures({"audit_mesh": mesh_state if args.mesh else "",
                                         "audit_noprobe": noprobe[1][2].split("=", 1)[1]}.get(name, state))
                out[f"{name}_verdicts"] = figures.pop("verdicts")
                out.update({f"{name}_{k}": v for k, v in figures.items()})
    if "audit_mesh_verdicts" in out:
        out["verdicts_same_as_mesh"] = out["audit_verdicts"] == out["audit_mesh_verdicts"]
    for key in [k for k in out if k.endswith("_verdicts")]:
        del out[key]
    out["audit_over_floor"] = round(out["audit_s"] / out["floor_s"], 2)
    out["noprobe_over_floor"] = round(out["audit_noprobe_s"] / out["floor_s"], 2)
    if "naive_s" in out:
        out["naive_over_audit"] = round(out["naive_s"] / out["audit_s"], 2)
        out["naive_tasks_over_audit"] = round(out["naive_tasks_s"] / out["audit_s"], 2)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="30,100,300", help="comma-separated fleet sizes")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--sites", type=int, default=1)
    ap.add_argument("--block", type=int, default=160, help="the lab's loopback block, 127.<block>.x.y")
    ap.add_argument("--forks", type=int, default=0, help="ANSIBLE_FORKS (default: ansible.cfg's)")
    ap.add_argument("--skip-naive-above", type=int, default=0)
    ap.add_argument("--mesh", action="store_true", help="also time the audit with the full probe mesh")
    args = ap.parse_args()
    rows = []
    for hosts in (int(s) for s in args.sizes.split(",") if s.strip()):
        work = tempfile.mkdtemp(prefix=f"mailflow-bench-compare-{hosts}-")
        row = one_size(hosts, args, work)
        print(json.dumps(row), flush=True)
        rows.append(row)
    print(f"\n{'hosts':>5} {'floor s':>8} {'naive s':>8} {'naive tasks s':>13} {'no-probe s':>10} {'audit s':>8} "
          f"{'1st audit s':>11} {'mesh s':>7} {'probes':>7} {'per host':>8} {'no-probe/floor':>14} {'audit/floor':>11} "
          f"{'naive/audit':>11} {'tasks/audit':>11} {'same as mesh':>12}")
    for r in rows:
        print(f"{r['hosts']:>5} {r['floor_s']:>8} {r.get('naive_s', '-'):>8} {r.get('naive_tasks_s', '-'):>13} "
              f"{r['audit_noprobe_s']:>10} {r['audit_s']:>8} {r['audit_first_s']:>11} {r.get('audit_mesh_s', '-'):>7} "
              f"{r['audit_probes']:>7} {r['audit_probes_per_host_max']:>8} {r['noprobe_over_floor']:>14} "
              f"{r['audit_over_floor']:>11} {r.get('naive_over_audit', '-'):>11} {r.get('naive_tasks_over_audit', '-'):>11} "
              f"{str(r.get('verdicts_same_as_mesh', '-')):>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
