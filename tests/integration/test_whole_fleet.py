"""The whole demo fleet in one change window, as an operator runs it: every permission and the inputs an admin would
have, one remediate.yml run, then an audit, the change record, and rollback.yml twice.

Mail flows in this lab (time factor 3600: an hour of Exchange's retry schedule is a second), so the record's proof
is the one an Exchange admin wants: the stuck mail left, where the fixes could reach, and stayed where they could
not (the S-TNEF setting no one has, the blocked network path, the PIX whose lines are pasted by hand).
"""
from __future__ import annotations

import json
import re

import pytest

from tests.integration.test_remediate_playbook import run, window
from tests.conftest import demo_data

pytestmark = [pytest.mark.slow, pytest.mark.integration]
CHANGE = "CHG4242"
PERMISSIONS = {"mailflow_allow_service_restart": True, "mailflow_allow_reboot": True,
               "mailflow_allow_metabase_restore": True, "mailflow_allow_enable_disabled_smtp": True,
               "mailflow_max_fail_percentage": 100, "mailflow_drain_wait": 40, "mailflow_drain_poll": 1}
# What the admin knows that the audit cannot: EXCH04's right smart host (the demo's is the bare 10.9.9.9).
HOST_VARS = {"EXCH04": {"mailflow_smarthost_expected": "[10.9.9.9]"}}
# What is left after the window, and why: each needs something from outside the run.
NEEDS_OUTSIDE_HELP = {
    "stnef_legacy_peer",        # KB 254089's setting is unconfirmed, and none was given
    "greylist_hotfix_missing",  # no hotfix package was given
    "ims_connection_leak",      # the Exchange 5.5 service pack
}


def settings(lab) -> dict:
    """What the fixes change, per host: registry, services' start modes, MetaBase.xml; AD; the devices' configs.
    (Queues, events and links move with the mail and are not settings.)"""
    with lab.fleet.lock:
        out = {}
        for name, h in lab.fleet.hosts.items():
            mb = h.files.read(h.metabase_path) if h.winrm else None
            # IIS numbers every save of the metabase (HistoryMajorVersionNumber): a count of saves, not a setting. And
            # a restart of SMTPSVC lets DS2MB write AD's SMTP settings into it (SmartHostType="0" where AD says none).
            text = re.sub(rb'HistoryMajorVersionNumber="\d+"|\s*SmartHostType="0"', b"", mb.data) if mb else None
            # Keys too: a rollback deletes the values a fix created and then the keys it created, once empty.
            out[name] = {"registry": h.registry.to_plain(),
                         "start_modes": {s.name: s.start_mode for s in h.services.values()},
                         "metabase": text}
        out["AD"] = lab.fleet.ad.to_plain()
        # A device's running config, without the comment lines IOS rewrites on every change (when and by whom).
        out["devices"] = {d["name"]: [line for line in (d.get("config") or "").splitlines() if not line.startswith("!")]
                          for d in lab.fleet.network.get("devices", [])}
        return out


def present(doc):
    return {(h, f["cause"]): f for h, d in doc["hosts"].items() for f in d["findings"] if f["status"] == "present"}


def test_one_window_fixes_the_fleet_the_mail_leaves_and_the_rollback_puts_it_back(lab_factory, tmp_path):
    data = demo_data()
    data["time_factor"] = 3600
    lab = lab_factory(data, mail_flow=True)
    before = settings(lab)

    proc = run(lab, tmp_path, "remediate.yml", {"mailflow_change_id": CHANGE, **window(), **PERMISSIONS}, host_vars=HOST_VARS)
    assert proc.returncode == 0, proc.stdout[-6000:]

    # The audit after the window: only what needs outside help is left.
    proc = run(lab, tmp_path, "audit.yml", {}, host_vars=HOST_VARS)
    assert proc.returncode == 0, proc.stdout[-4000:]
    doc = json.loads((tmp_path / "reports" / "latest" / "audit.json").read_text())
    left = present(doc)
    for (host, cause), f in left.items():
        assert cause in NEEDS_OUTSIDE_HELP or f.get("outside_help"), (host, cause, f["summary"])
    assert any(f.get("outside_help") for f in left.values())  # the network team has work: port 25, the PIX lines

    # The record: every host planned, changed and verified on fresh evidence; the mail left where fixed.
    record = json.loads((tmp_path / "reports" / "changes" / CHANGE / "record.json").read_text())
    hosts = record["hosts"]
    assert {h for h, r in hosts.items() if r["status"] == "failed"} == set(), {h: r["status"] for h, r in hosts.items()}
    for inbound in ("EXCH03", "EXCH06"):  # verified on the peers' fresh probes of them
        (v,) = hosts[inbound]["verifications"]
        assert v["fresh_from"] and not v["still_present"], (inbound, v)
    drains = {h: r["drains"][-1] for h, r in hosts.items() if r.get("drains")}
    stuck = {(h, link["link"]) for h, d in drains.items() for link in d["links"] if not link["drained"]}
    drained = {(h, link["link"]) for h, d in drains.items() for link in d["links"] if link["drained"]}
    assert drained, drains
    # What stays stuck is only what needs outside help: S-TNEF to the 5.5 server, the blocked EXCH08 -> EXCH05 path.
    for host, link in stuck:
        assert (host, link.split(".")[0].upper()) in {("EXCH05", "EXCH55"), ("EXCH08", "EXCH05")}, (host, link, drains)
    md = (tmp_path / "reports" / "changes" / CHANGE / "record.md").read_text()
    assert "drained" in md

    # Rollback puts back every reversible change; a second one changes nothing.
    proc = run(lab, tmp_path, "rollback.yml", {"mailflow_change_id": CHANGE, "mailflow_allow_service_restart": True})
    assert proc.returncode == 0, proc.stdout[-4000:]
    after = settings(lab)
    record = json.loads((tmp_path / "reports" / "changes" / CHANGE / "record.json").read_text())
    rewritten = {e["host"] for e in record["events"] if e["type"] == "rollback" and e.get("cause") == "metabase_corrupt"
                 and e.get("changed_since")}
    for key in before:
        if isinstance(before[key], dict) and "registry" in before[key]:
            for part in before[key]:
                changed = {k for k in set(before[key][part] or {}) | set(after[key][part] or {})
                           if (before[key][part] or {}).get(k) != (after[key][part] or {}).get(k)} \
                    if isinstance(before[key][part], dict) else ({part} if before[key][part] != after[key][part] else set())
                if part == "metabase" and changed and key in rewritten:
                    continue  # IIS rewrote the restored file once it loaded it: the rollback says so and leaves it
                assert not changed, (key, part, {k: ((before[key][part] or {}).get(k), (after[key][part] or {}).get(k))
                                                 for k in sorted(changed)[:5]} if isinstance(before[key][part], dict) else part)
        elif key == "devices":
            for name in before[key]:
                assert sorted(after[key][name]) == sorted(before[key][name]), (
                    name, set(before[key][name]) ^ set(after[key][name]))
        else:
            assert after[key] == before[key], key
    proc = run(lab, tmp_path, "rollback.yml", {"mailflow_change_id": CHANGE})
    assert proc.returncode == 0 and "changed=1" not in proc.stdout, proc.stdout[-3000:]
