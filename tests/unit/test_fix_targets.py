"""A fix aims at what the audit judges by: the same AD objects, the same expected value, the same threshold.

On saved snapshots (tests/fixtures/snapshots/demo): a fix that writes somewhere the detector does not read, or a
value the detector still calls wrong, "verifies" and is then rolled back by the audit that follows."""
from __future__ import annotations

import copy
import json
import os

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils import knowledge
from ansible_collections.mailflow.exchange.plugins.module_utils.causes import smarthost_misconfigured as smarthost
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import HostView
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import FixError, NeedsInput
from tests.conftest import ROOT

SNAPSHOTS = os.path.join(ROOT, "tests", "fixtures", "snapshots", "demo", "snapshots")


def snapshot(host: str) -> dict:
    with open(os.path.join(SNAPSHOTS, f"{host}.json"), encoding="utf-8") as fh:
        return json.load(fh)


def test_the_smarthost_fix_refuses_a_value_the_audit_would_still_call_wrong():
    facts = knowledge.load({})
    with pytest.raises(FixError, match="mailflow_smarthost_expected"):
        smarthost.fix_params({"smarthost": "relay.corp.example", "expected": "[10.9.9.9]"}, facts)
    # The same value, as the detector compares it (case and outer spaces aside), is accepted.
    assert smarthost.fix_params({"smarthost": "RELAY.corp.example", "expected": " relay.corp.example "}, facts)["smarthost"] \
        == "RELAY.corp.example"
    assert smarthost.fix_params({"smarthost": "[10.9.9.9]", "expected": None}, facts)["smarthost"] == "[10.9.9.9]"
    with pytest.raises(NeedsInput):
        smarthost.fix_params({"smarthost": " ", "expected": None}, facts)


def test_the_smarthost_fix_finds_the_server_the_detector_judged_when_the_inventory_names_it_by_address():
    snap = snapshot("EXCH04")
    snap["host"] = "10.20.0.4"  # the inventory's name for it; the host reports EXCH04 itself (Win32_ComputerSystem)
    view = HostView(snap)
    servers = view.ad_virtual_servers()
    assert list(servers) == ["1"] and ",CN=EXCH04,CN=Servers," in servers["1"][0]
    assert servers == view.ad_virtual_servers("EXCH04")  # what the detector reads, through the fleet's identity
    changes = smarthost.plan(view, {"smarthost": "[10.9.9.9]", "restart_allowed": False})
    assert [c.target["dn"] for c in changes] == [servers["1"][0]]
    assert changes[0].before == ["10.9.9.9"] and changes[0].after == ["[10.9.9.9]"]


def test_without_its_own_name_the_smarthost_fix_changes_nothing_rather_than_another_server():
    snap = copy.deepcopy(snapshot("EXCH04"))
    snap["host"] = "10.20.0.4"
    snap["items"]["computer"] = []  # Win32_ComputerSystem unread: an address names no computer
    with pytest.raises(FixError, match="no SMTP virtual server of this computer"):
        smarthost.plan(HostView(snap), {"smarthost": "[10.9.9.9]", "restart_allowed": False})
