"""Which ansible-core versions installable on this Python run the audit against the lab (the evidence behind
meta/runtime.yml's requires_ansible; not part of `make test`, which runs the pinned 2.19 only).

    python -m tests.support.core_matrix [--block N] [2.16 2.17 2.18 2.19]

For each version: a virtual environment under ~/.cache/mailflow/core-<version> (ansible-core <version>.*,
pywinrm and pyspnego from requirements.txt's pins, made once), then playbooks/audit.yml --check against the demo
lab on 127.<N>.x.y, the collection from the checkout and its dependencies from this interpreter's site-packages.
Prints, per version, the ansible-core it got and how many servers the audit could snapshot.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import sysconfig
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PINS = ("pywinrm", "pyspnego")


def pin(name: str) -> str:
    with open(os.path.join(ROOT, "requirements.txt"), encoding="utf-8") as fh:
        (line,) = [x.strip() for x in fh if x.lower().startswith(name.lower() + "==")]
    return line


def venv(version: str) -> str:
    path = os.path.expanduser(f"~/.cache/mailflow/core-{version}")
    if not os.path.exists(os.path.join(path, "bin", "ansible-playbook")):
        subprocess.run([sys.executable, "-m", "venv", path], check=True)
        subprocess.run([os.path.join(path, "bin", "pip"), "install", "--quiet", f"ansible-core=={version}.*",
                        *(pin(p) for p in PINS)], check=True)
    return path


def audit(path: str, inventory: str, state: str) -> tuple[str, int, int]:
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=os.pathsep.join([os.path.join(ROOT, "collections"),
                                                         sysconfig.get_paths()["purelib"]]))
    version = subprocess.run([os.path.join(path, "bin", "ansible-playbook"), "--version"], env=env,
                             capture_output=True, text=True, check=True).stdout.split("\n")[0]
    subprocess.run([os.path.join(path, "bin", "ansible-playbook"), "-i", inventory, os.path.join(ROOT, "playbooks", "audit.yml"),
                    "--check", "-e", f"mailflow_state_dir={state}"], env=env, capture_output=True, check=False)
    (report,) = glob.glob(os.path.join(state, "reports", "2*", "audit.json"))
    with open(report, encoding="utf-8") as fh:
        doc = json.load(fh)
    managed = [h for h in doc["hosts"].values() if h["managed"]]
    return version, sum(1 for h in managed if h["reachable"]), len(managed)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--block", type=int, default=200)
    parser.add_argument("versions", nargs="*", default=["2.16", "2.17", "2.18", "2.19"])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mailflow-matrix-") as work:
        inventory, state_dir = os.path.join(work, "hosts.yml"), os.path.join(work, "lab")
        lab = [sys.executable, "-m", "lab", "--state-dir", state_dir]
        subprocess.run(lab + ["up", "--address-block", str(args.block), "--inventory-out", inventory], cwd=ROOT, check=True)
        try:
            for version in args.versions:
                got, snapped, managed = audit(venv(version), inventory, os.path.join(work, version))
                print(f"{version}: {got}: {snapped} of {managed} servers snapshotted")
        finally:
            subprocess.run(lab + ["down"], cwd=ROOT, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
