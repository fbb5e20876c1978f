"""Who a host is comes from the host: the demo inventory, rewritten to name its hosts by IP address and by DNS alias,
gives exactly the demo's audit verdicts; and over NTLM without AD credentials the audit says which AD items are
unknown and which variable to set."""
from __future__ import annotations

import json

import pytest

from tests.conftest import demo_data
from tests.integration.test_audit_playbook import DEMO_PRESENT, DEMO_UNKNOWN, run_audit

pytestmark = [pytest.mark.slow, pytest.mark.integration]

# Two hosts go by a DNS alias (a CNAME-style name that is not the computer's), the others by address.
ALIASES = {"EXCH02": "mail-hub.corp.example", "RELAY01": "smarthost.corp.example"}


def statuses(doc, rename=None) -> dict[str, dict[str, str]]:
    back = {v: k for k, v in (rename or {}).items()}
    return {back.get(h, h): {f["cause"]: f["status"] for f in d["findings"]} for h, d in doc["hosts"].items()}


def renamed_inventory(lab) -> tuple[dict, dict]:
    """(the lab's inventory with every host named by address or alias and no mailflow_fqdn, {old name: new name})."""
    inv = lab.inventory()
    children = inv["all"]["children"]
    rename = {}
    for group in ("mailflow_servers", "mailflow_unmanaged"):
        hosts = children[group]["hosts"]
        for name in list(hosts):
            hv = hosts.pop(name)
            address = lab.fleet.host(name).address
            new = ALIASES.get(name, address)
            hv.pop("mailflow_fqdn", None)
            hv["ansible_host"] = address
            hosts[new] = hv
            rename[name] = new
    for device in children["firewalls"]["hosts"].values():
        for segment, members in (device.get("mailflow_firewall_segments") or {}).items():
            device["mailflow_firewall_segments"][segment] = [rename.get(m, m) for m in members]
    return inv, rename


def test_an_inventory_of_addresses_and_aliases_gives_the_demos_verdicts(lab_factory, tmp_path):
    for sub in ("named", "addressed"):
        (tmp_path / sub).mkdir()
    named_lab, addressed_lab = lab_factory(demo_data()), lab_factory(demo_data())
    proc, named, _ = run_audit(named_lab, tmp_path / "named", "--check")
    assert proc.returncode == 0, proc.stdout[-3000:]
    inventory, rename = renamed_inventory(addressed_lab)
    proc, addressed, _ = run_audit(addressed_lab, tmp_path / "addressed", "--check",
                                   mutate_inventory=lambda inv: inv.update(inventory))
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert set(addressed["hosts"]) == set(rename.values())
    assert statuses(addressed, rename) == statuses(named)
    present = {h: {c for c, s in v.items() if s == "present"} for h, v in statuses(addressed, rename).items()}
    assert present == DEMO_PRESENT
    unknown = {h: {c for c, s in v.items() if s == "unknown"} for h, v in statuses(addressed, rename).items()}
    assert {h: c for h, c in unknown.items() if c} == DEMO_UNKNOWN
    # The host said who it is; the inventory name is not where the computer name came from.
    ex1 = addressed["hosts"][rename["EXCH01"]]["platform"]
    assert ex1["computer_name"] == "EXCH01" and ex1["kind"] == "exchange2003"


def ntlm_over_http(inv):
    """The example inventory's transport: NTLM (over HTTP here, with message encryption)."""
    hosts = inv["all"]["children"]["mailflow_servers"]["hosts"]
    for name, hv in hosts.items():
        hv.pop("ansible_port", None)
    inv["all"]["vars"].update(ansible_winrm_transport="ntlm", ansible_winrm_scheme="http", ansible_port=5985)


def test_over_ntlm_without_ad_credentials_the_audit_names_the_ad_items_and_the_variable(lab_factory, tmp_path):
    for sub in ("anonymous", "explicit"):
        (tmp_path / sub).mkdir()
    lab = lab_factory(demo_data())

    def no_ad_credentials(inv):
        ntlm_over_http(inv)
        inv["all"]["vars"]["mailflow_ad_username"] = ""  # bind as the WinRM logon, which has nothing to pass on

    proc, doc, _ = run_audit(lab, tmp_path / "anonymous", "--check", mutate_inventory=no_ad_credentials)
    assert proc.returncode == 0, proc.stdout[-3000:]
    ex1 = doc["hosts"]["EXCH01"]
    assert ex1["platform"]["kind"] == "exchange"  # the version lives in AD, which refused the caller
    unknown = {f["cause"]: f["reason"] for f in ex1["findings"] if f["status"] == "unknown"}
    assert "smarthost_misconfigured" in unknown
    for reason in unknown.values():
        assert "mailflow_ad_username" in reason and "ad_exchange_servers" in reason, reason
    # No AD-dependent cause was decided absent for want of AD.
    assert all(f["status"] != "absent" for f in ex1["findings"] if f["cause"] == "smarthost_misconfigured")

    # The default: the WinRM credentials bind explicitly, and NTLM gives the demo's verdicts.
    proc, doc, latest = run_audit(lab, tmp_path / "explicit", "--check", mutate_inventory=ntlm_over_http)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert {h: {f["cause"] for f in d["findings"] if f["status"] == "present"} for h, d in doc["hosts"].items()} == DEMO_PRESENT
    snap = (latest / "snapshots" / "EXCH01.json").read_text()
    password = lab.fleet.host("EXCH01").password
    assert password not in snap and json.loads(snap)["transport"]["ad_bind"] == "explicit"
