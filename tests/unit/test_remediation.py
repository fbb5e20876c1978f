"""Change kinds (operations to apply and undo), backups on the controller, and the fix record."""
from __future__ import annotations

import json
import os
import time

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils import backups, remediation
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import Change
from ansible_collections.mailflow.exchange.plugins.module_utils.reports import fixrun

REG = Change("registry_value", {"path": r"HKLM\SOFTWARE\X", "name": "V"}, {"exists": False},
             {"exists": True, "type": "REG_DWORD", "data": 180}, restart=["SMTPSVC"])


def ops(changes):
    return [(o.name, o.args) for o in changes]


def test_a_registry_value_that_was_absent_is_deleted_on_restore_and_its_prior_value_comes_from_the_host():
    c = Change.from_dict(REG.to_dict())
    assert ops(c.apply_ops()) == [("reg_write", (r"HKLM\SOFTWARE\X", "V", "DWord", "180"))]
    assert ops(c.restore_ops()) == [("reg_delete", (r"HKLM\SOFTWARE\X", "V"))]
    remediation.record_prev(c, [("prev", {"existed": 1, "type": "DWord", "data": -1})])  # .NET reports a signed Int32
    assert c.before == {"exists": True, "type": "REG_DWORD", "data": 0xFFFFFFFF}
    assert ops(c.restore_ops()) == [("reg_write", (r"HKLM\SOFTWARE\X", "V", "DWord", str(0xFFFFFFFF)))]
    assert "dword:ffffffff" in backups.reg_export([c])


def test_a_key_the_write_created_is_pruned_after_the_value_is_deleted():
    c = Change.from_dict(REG.to_dict())
    remediation.record_prev(c, [("prev", {"existed": 0, "created": r"HKLM\SOFTWARE\X"})])
    assert c.before == {"exists": False, "created": r"HKLM\SOFTWARE\X"}
    assert ops(c.restore_ops()) == [("reg_delete", (r"HKLM\SOFTWARE\X", "V")), ("reg_prune", (r"HKLM\SOFTWARE\X", r"HKLM\SOFTWARE\X"))]
    assert r"; HKEY_LOCAL_MACHINE\SOFTWARE\X did not exist before the change" in backups.reg_export([c])
    # A backup that names a key the value is not under, or a hive, never prunes.
    for created in (r"HKLM\SOFTWARE\Other", "HKLM"):
        c.before = {"exists": False, "created": created}
        assert ops(c.restore_ops()) == [("reg_delete", (r"HKLM\SOFTWARE\X", "V"))]
    # The rollback compares values only: a recorded created key is still "absent".
    assert c.handler.same(c, {"exists": False, "created": r"HKLM\SOFTWARE\X"}, {"exists": False})


def test_services_are_undone_in_reverse_order():
    mode = Change("service_start_mode", {"service": "SMTPSVC"}, "Disabled", "Auto")
    state = Change("service_state", {"service": "SMTPSVC"}, "Stopped", "Running")
    assert ops(mode.apply_ops() + state.apply_ops()) == [("service_control", ("SMTPSVC", "auto", "60")),
                                                          ("service_control", ("SMTPSVC", "start", "60"))]
    assert ops(remediation.restore_plan([mode, state])) == [("service_control", ("SMTPSVC", "stop", "60")),
                                                             ("service_control", ("SMTPSVC", "disabled", "60"))]


def test_adsi_msi_firewall_file_and_package_changes_become_runner_operations():
    ad = Change("adsi_attribute", {"dn": "IIS://localhost/SMTPSVC/1", "attribute": "ConnectResponse"}, [], ["mail.example.com ready"])
    assert ops(ad.restore_ops()) == [("adsi_write", ("IIS://localhost/SMTPSVC/1", "ConnectResponse", (), "string"))]
    msi = Change("msi_feature", {"product_code": "{P}", "product": "SAV", "feature": "Pop3Smtp"}, 3, 2)
    assert ops(msi.apply_ops())[0][1][:2] == ("msiexec.exe", ("/i", "{P}", "REMOVE=Pop3Smtp", "/qn", "REBOOT=ReallySuppress"))
    assert "ADDLOCAL=Pop3Smtp" in ops(msi.restore_ops())[0][1][1]
    fw = Change("firewall_port", {"port": 25, "protocol": "TCP", "name": "SMTP"}, {"exists": False}, {"exists": True, "scope": "LocalSubnet"})
    assert ops(fw.apply_ops())[0][1][1] == ("firewall", "add", "portopening", "protocol=TCP", "port=25", "name=SMTP", "mode=ENABLE",
                                            "scope=SUBNET")
    assert ops(fw.restore_ops())[0][1][1][:3] == ("firewall", "delete", "portopening")
    mb = Change("file_replace", {"path": "M.xml", "source": "H.xml", "keep_as": "M.bad", "stop": ["SMTPSVC", "IISADMIN"],
                                 "start": ["IISADMIN", "SMTPSVC"]}, {"size": 1}, {"size": 2})
    names = [(o.name, o.args[:2]) for o in mb.restore_ops()]
    assert names == [("service_control", ("SMTPSVC", "stop")), ("service_control", ("IISADMIN", "stop")),
                     ("file_copy", ("M.bad", "M.xml")), ("service_control", ("IISADMIN", "start")), ("service_control", ("SMTPSVC", "start"))]
    pkg = Change("package", {"path": r"\\srv\kb950757.exe", "args": ["/quiet", "/norestart"], "kb": "KB950757"}, "missing", "installed")
    assert pkg.restore_ops() == [] and not pkg.reversible
    with pytest.raises(remediation.FixError):
        Change("nonsense", {}, None, None).apply_ops()


def test_an_interrupted_backup_is_found_until_a_later_run_finishes(tmp_path):
    root = str(tmp_path)
    folder = os.path.join(root, "CHG1", "EXCH05")
    path = backups.write_backup(folder, backups.backup_document("EXCH05", "glitch_retry_short", "CHG1", [REG], "interrupted"))
    found = backups.incomplete_backup(root, "EXCH05", "glitch_retry_short")
    assert found and found[0] == path and found[2][0].before == {"exists": False}
    assert backups.incomplete_backup(root, "EXCH06", "glitch_retry_short") is None
    time.sleep(0.01)
    later = backups.write_backup(os.path.join(root, "CHG2", "EXCH05"),
                                 backups.backup_document("EXCH05", "glitch_retry_short", "CHG2", [REG], "verified", pending_restart=["SMTPSVC"]))
    assert backups.incomplete_backup(root, "EXCH05", "glitch_retry_short") is None
    assert backups.fleet_pending_restarts(root, ["EXCH05"], ["glitch_retry_short"]) == {
        "EXCH05": [{"cause": "glitch_retry_short", "services": ["SMTPSVC"], "backup": later, "change_id": "CHG2"}]}
    with open(path, "w") as fh:
        json.dump({"schema": "other"}, fh)
    with pytest.raises(remediation.FixError):
        backups.read_backup(path)


def test_the_fix_record_keeps_what_the_hosts_answered():
    registered = {
        "EXCH05": {"glitch_retry_short": {"changed": True, "changes": ["a -> b"], "verified": True, "backup": "b.json",
                                          "pending_restart": ["SMTPSVC"]},
                   "port25_blocked": {"changed": False, "skipped": True, "false_condition": "x in todo"}},
        "EXCH07": {"metabase_corrupt": {"failed": True, "interrupted": True, "msg": "lost | the connection"}},
    }
    doc = fixrun.build(registered, generated="2026-11-23T00:00:00Z", change_id="CHG", check_mode=False)
    assert [r["cause"] for r in doc["hosts"]["EXCH05"]] == ["glitch_retry_short"]  # not selected: left out
    assert doc["hosts"]["EXCH07"][0]["status"] == "interrupted"
    assert doc["summary"]["changed"] == 1 and doc["summary"]["interrupted"] == 1
    md = fixrun.render_md(doc)
    assert "pending restart of SMTPSVC" in md and "lost \\| the connection" in md


def test_a_backup_restores_binary_and_one_item_multi_string_values_as_they_were():
    """The prev row brings a REG_BINARY as bytes and a REG_MULTI_SZ as a list (the dispatcher no longer unrolls
    them); the backup keeps them as the snapshot does, and the restore writes the same bytes and list back."""
    for kind, raw, kept, wire in (("Binary", b"\x00\xff\x10", "00ff10", "00ff10"), ("MultiString", ["only"], ["only"], "only")):
        c = Change("registry_value", {"path": r"HKLM\SOFTWARE\V", "name": "X"}, None,
                   {"exists": True, "type": "REG_SZ", "data": "new"})
        remediation.record_prev(c, [("prev", {"existed": 1, "type": kind, "data": raw})])
        assert c.before["data"] == kept
        (op,) = c.restore_ops()
        assert op.args == (r"HKLM\SOFTWARE\V", "X", kind, wire)
