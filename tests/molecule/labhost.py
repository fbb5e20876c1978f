"""For molecule verify steps: a testinfra host on a lab server through the winrm backend (cmd-level commands).

It reads the inventory the scenario's create step wrote, and checks the lab's
certificate against the lab's CA (REQUESTS_CA_BUNDLE, which pywinrm honours):
the verifier sees the host the way an admin's `reg query` would, independently
of the collection's own PowerShell.
"""
from __future__ import annotations

import os
from urllib.parse import quote

import testinfra
import yaml


def inventory() -> dict:
    path = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "lab", "hosts.yml")
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def host(name: str):
    inv = inventory()
    common = inv["all"]["vars"]
    hv = {**common, **inv["all"]["children"]["mailflow_servers"]["hosts"][name]}
    os.environ["REQUESTS_CA_BUNDLE"] = common["ansible_winrm_ca_trust_path"]
    user, password = quote(hv["ansible_user"], safe=""), quote(hv["ansible_password"], safe="")
    return testinfra.get_host(f"winrm://{user}:{password}@{hv['ansible_host']}:{hv.get('ansible_port', 5986)}")
