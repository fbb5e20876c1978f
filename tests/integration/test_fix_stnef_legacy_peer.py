"""mailflow.exchange.fix_stnef_legacy_peer on the lab (EXCH05 has mail for the Exchange 5.5 EXCH55, unmanaged).

KB 254089's entries are not known, so every entry here is a stand-in the test names itself: the role only
advises without mailflow_stnef_setting; with entries (a registry value and an AD attribute) check mode
touches nothing, the fix sets both, the audit reading the same entries says absent, a second run changes
nothing; bad input touches nothing; a verification failure puts the prior value back."""
from __future__ import annotations

import glob
import json
import re

import pytest

from tests.support import fixplay
from ansible_collections.mailflow.exchange.plugins.module_utils import knowledge
from ansible_collections.mailflow.exchange.plugins.module_utils.causes import stnef_legacy_peer as cause

pytestmark = [pytest.mark.slow, pytest.mark.integration]
CAUSE = "stnef_legacy_peer"
TRANSPORT = r"HKLM\SYSTEM\CurrentControlSet\Services\MSExchangeTransport\Parameters"
IMF = ("CN=Default,CN=Internet Message Formats,CN=Global Settings,CN=Corp,CN=Microsoft Exchange,CN=Services,"
       "CN=Configuration,DC=corp,DC=example")
# Stand-ins: which value or attribute KB 254089 sets is not known (the names say so).
REG_ENTRY = {"layer": "registry", "path": TRANSPORT, "name": "LabStandInForKB254089", "value": 1}
AD_ENTRY = {"layer": "ad", "dn": IMF, "attribute": "labStandInForKB254089", "value": "1", "restart": ["SMTPSVC"]}


@pytest.fixture
def lab(lab_factory):
    data = fixplay.demo_subset("EXCH05", "EXCH55")
    data["hosts"]["EXCH05"]["ad"] = {"objects": {IMF: {"objectClass": ["top", "msExchDomainContentConfig"], "cn": "Default",
                                                       "domainName": "*"}}}
    return lab_factory(data)


def play(lab, tmp_path, *extra, setting=None):
    given = ("-e", json.dumps({"mailflow_stnef_setting": setting})) if setting is not None else ()
    return fixplay.play(lab, tmp_path, CAUSE, *given, *extra, limit="EXCH05")


def changed(proc) -> int:
    return fixplay.changed(proc)["EXCH05"]


def reg(lab):
    v = lab.fleet.host("EXCH05").registry.get(TRANSPORT, REG_ENTRY["name"])
    return None if v is None else (v.type, v.data)


def ad(lab):
    return (lab.fleet.ad.get(IMF) or {}).get(AD_ENTRY["attribute"])


def finding(lab, setting=None):
    """The audit's finding on EXCH05, reading the entries the way the fix does when they are in mailflow_knowledge."""
    return fixplay.finding(lab, "EXCH05", CAUSE, knowledge_overrides=cause.setting_knowledge(setting))


def test_without_entries_it_only_advises(lab, tmp_path):
    f = finding(lab)
    assert f["status"] == "present" and "could not be checked" in f["summary"]
    proc = play(lab, tmp_path)
    assert proc.returncode == 0 and changed(proc) == 0, proc.stdout[-2000:]
    out = proc.stdout + proc.stderr
    assert "KB 254089" in out and "Set mailflow_stnef_setting" in out
    assert reg(lab) is None and ad(lab) is None and not glob.glob(str(tmp_path / "backups" / "*"))


def test_registry_and_ad_entries_are_set_and_the_audit_agrees(lab, tmp_path):
    entries = [REG_ENTRY, AD_ENTRY]
    assert finding(lab, entries)["status"] == "present"  # read and found not set, now that the audit knows them

    proc = play(lab, tmp_path, "--check", "--diff", setting=entries)
    assert proc.returncode == 0 and changed(proc) == 1, proc.stdout[-2000:]
    assert f"{REG_ENTRY['name']} = REG_DWORD 1" in proc.stdout and f"{IMF} labStandInForKB254089 = '1'" in proc.stdout
    assert reg(lab) is None and ad(lab) is None

    proc = play(lab, tmp_path, setting=entries)
    assert proc.returncode == 0 and changed(proc) == 1, proc.stdout[-3000:]
    assert reg(lab) == ("REG_DWORD", 1) and ad(lab) == ["1"]
    assert "pending restart of SMTPSVC" in proc.stdout + proc.stderr  # the AD entry names it; restarts not allowed
    assert not lab.metrics.snapshot()["EXCH05"]["service_restarts"]
    doc = fixplay.backup(tmp_path, "EXCH05", CAUSE)
    assert doc["state"] == "verified" and [c["before"] for c in doc["changes"]] == [{"exists": False}, []]
    assert f'"{REG_ENTRY["name"]}"=-' in fixplay.backup_reg(tmp_path, "EXCH05", CAUSE)
    assert finding(lab, entries)["status"] == "absent"

    proc = play(lab, tmp_path, setting=entries)
    assert proc.returncode == 0 and changed(proc) == 0, proc.stdout[-2000:]


def test_bad_entry_fails_before_any_host_is_touched(lab, tmp_path):
    lab.metrics.reset()
    proc = play(lab, tmp_path, setting={"layer": "registry", "path": r"HKCU\Software\X", "name": "N", "value": 1})
    assert proc.returncode != 0 and "mailflow_stnef_setting.path must be a registry key under HKLM" in proc.stdout, \
        proc.stdout[-1500:]
    assert fixplay.winrm_commands(lab, "EXCH05") == 0 and reg(lab) is None


@pytest.mark.parametrize("setting, why", [
    ({"layer": "file", "path": "C:\\x"}, "layer: registry or layer: ad"),
    ({"layer": "registry", "path": TRANSPORT, "name": "N", "value": -1}, "from 0 to 4294967295"),
    ({"layer": "registry", "path": TRANSPORT, "name": "N", "value": "a\nb"}, "one line of text"),
    ({"layer": "registry", "path": TRANSPORT, "name": "N", "value": 1, "type": "REG_BINARY"}, "REG_DWORD, REG_SZ"),
    ({"layer": "registry", "path": TRANSPORT, "name": "N", "value": 1, "data": 2}, "keys data"),
    ({"layer": "ad", "dn": "not a dn", "attribute": "x", "value": "1"}, "distinguished name"),
    ({"layer": "ad", "dn": IMF, "attribute": "x y", "value": "1"}, "lDAPDisplayName"),
    ({"layer": "ad", "dn": IMF, "attribute": "x", "value": "1", "restart": "SMTPSVC"}, "list of service names"),
    ([REG_ENTRY] * 9, "at most 8"),
])
def test_entries_the_action_refuses(setting, why):
    with pytest.raises(cause.FixError, match=re.escape(why)) as exc:
        cause.var_entries(setting)
    assert "mailflow_stnef_setting" in str(exc.value)


def test_failed_verification_puts_the_prior_value_back(lab, tmp_path):
    # The verifying read looks at another key than the write (as a wrong knowledge override would):
    # the new value is never seen, so the fix must remove it again and fail, saying so.
    override = json.dumps({"mailflow_knowledge": {"collect": {"stnef_tnef_location_1": {"path": TRANSPORT + "\\Elsewhere"}}}})
    proc = play(lab, tmp_path, "-e", override, setting=REG_ENTRY)
    assert proc.returncode != 0
    assert "verification failed" in proc.stdout and "restored from the backup" in proc.stdout, proc.stdout[-2000:]
    assert reg(lab) is None
    assert fixplay.backup(tmp_path, "EXCH05", CAUSE)["state"] == "restored"


def test_entries_named_only_in_the_knowledge_are_what_the_fix_sets():
    # The audit's own form (detect.stnef_tnef_setting over a collect item) drives the fix without the variable;
    # the key to write is the item's path plus the entry's suffix.
    facts = knowledge.load({"detect": {"stnef_tnef_setting": {"value": {
        "item": "transport_parameters", "suffix": "Sub", "name": "X", "data": "on"}}}})
    params = cause.fix_params({"setting": None}, facts)
    assert params["from_var"] is False and cause.setting_items(facts) == ["transport_parameters"]
    (entry,) = params["setting"]
    assert entry["path"] == TRANSPORT + "\\Sub" and entry["type"] == "REG_SZ"
    with pytest.raises(cause.FixError, match="must name a collect item"):
        cause.fix_params({}, knowledge.load({"detect": {"stnef_tnef_setting": {"value": {"item": "nowhere", "data": 1}}}}))
