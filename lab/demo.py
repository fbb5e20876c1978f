"""`make demo`: bring up the demo fleet, run the audit against it in check mode, show the numbers, stop."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

from lab.core import Lab
from lab.scenario import load_scenario

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAYBOOK = os.path.join(ROOT, "playbooks", "audit.yml")


def run_demo(scenario: str, state_dir: str, user_known_hosts: bool = True) -> int:
    fleet = load_scenario(scenario)
    workdir = tempfile.mkdtemp(prefix="mailflow-demo-")
    inventory = os.path.join(workdir, "hosts.yml")
    print(f"== lab: {len(fleet.hosts)} simulated servers from {os.path.relpath(scenario, ROOT)}")
    with Lab(fleet, os.path.join(workdir, "lab"), user_known_hosts=user_known_hosts) as lab_:
        lab_.write_inventory(inventory)
        for h in fleet.hosts.values():
            print(f"   {h.name:<10} {h.address:<14} {h.fqdn}")
        for d in fleet.network.get("devices", []):
            where = f"{d['address']}:{d['ports']['ssh']}" if d.get("address") else "(config only)"
            print(f"   {d['name']:<10} {where:<14} {d['kind']} network device")
        print(f"== ansible-playbook {os.path.relpath(PLAYBOOK, ROOT)} --check (WinRM over HTTPS, certificate validation on)")
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
        ansible_playbook = shutil.which("ansible-playbook", path=os.path.dirname(sys.executable)) or "ansible-playbook"
        # Reports land in ./reports/<UTC timestamp>/, with ./reports/latest pointing at them.
        rc = subprocess.call([ansible_playbook, "-i", inventory, PLAYBOOK, "--check"], cwd=ROOT, env=env)
        counters = lab_.metrics.snapshot()
    print("== lab counters (what the collection promised)")
    print(f"   {'host':<10} {'winrm commands':>14} {'longest command line':>21} {'over 8191':>9}")
    for name in sorted(counters):
        c = counters[name]
        if c["winrm_commands"]:
            print(f"   {name:<10} {c['winrm_commands']:>14} {c['max_command_line']:>21} {c['overlong_command_lines']:>9}")
    print(f"   reports:   {os.path.join(ROOT, 'reports', 'latest')}/ (audit.html, audit.json, audit.md, audit.csv, junit.xml)")
    return rc
