"""For molecule verify steps: a testinfra host on a lab server through the winrm backend (cmd-level commands).

It reads the inventory the scenario's create step wrote, and checks the lab's
certificate against the lab's CA (REQUESTS_CA_BUNDLE, which pywinrm honours):
the verifier sees the host the way an admin's `reg query` would, independently
of the collection's own PowerShell.
"""
from __future__ import annotations

import json
import os
import urllib.request
import xml.etree.ElementTree as ET
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


def smtp_virtual_servers(name: str) -> dict[str, dict[str, str]]:
    """{metabase Location: attributes} of the IIsSmtpServer nodes, from `type` of the host's MetaBase.xml."""
    out = host(name).run(r"type %SystemRoot%\system32\inetsrv\MetaBase.xml")
    assert out.rc == 0, out.stderr
    root = ET.fromstring(out.stdout.lstrip("\ufeff"))
    return {node.get("Location"): node.attrib for node in root.iter() if node.tag.split("}")[-1] == "IIsSmtpServer"}


def control(path: str, body=None):
    """The lab's control API (lab/control.py; the port is in the lab's run file): GET `path`, or POST `body` as JSON."""
    with open(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "lab", "run.json"), encoding="utf-8") as fh:
        port = json.load(fh)["control_port"]
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def device_run(name: str, command: str) -> str:
    """One exec command on a lab network device over SSH (paramiko), its host key checked against the lab's
    known_hosts (unknown or changed keys are refused), the way an admin's `ssh netadmin@fw01 show ...` would."""
    import paramiko

    hv = inventory()["all"]["children"]["firewalls"]["hosts"][name]
    client = paramiko.SSHClient()
    client.load_host_keys(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "lab", "ssh", "known_hosts"))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(hv["ansible_host"], port=int(hv.get("ansible_port", 22)), username=hv["ansible_user"],
                   password=hv["ansible_password"], look_for_keys=False, allow_agent=False, timeout=30)
    try:
        _, stdout, _ = client.exec_command(command, timeout=30)
        return stdout.read().decode("utf-8", "replace").replace("\r\n", "\n")
    finally:
        client.close()
