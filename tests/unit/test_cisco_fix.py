"""The IOS fix's decisions: plan, backup before anything is sent, verify, and a rollback that respects later changes."""
from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils import cisco_fix
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import FixError
from tests.unit.test_cisco_detector import IOS, PIX


def apply(text: str, lines) -> str:
    """What IOS does with these global lines: `no X` removes line X, anything else is added."""
    out = text.splitlines()
    for line in lines:
        if line.startswith("no "):
            out = [x for x in out if not x.startswith(line[3:])]
        else:
            out.insert(out.index("!", 3), line)
    return "\n".join(out) + "\n"


def test_plan_touches_only_applied_smtp_rules_and_restores_exactly():
    p = cisco_fix.plan("FW01", IOS, None, use_esmtp=True)
    assert p.commands == ("no ip inspect name MAILFW smtp", "ip inspect name MAILFW esmtp")
    fixed = apply(IOS, p.commands)
    assert cisco_fix.plan("FW01", fixed, None, True).commands == ()          # a second run sends nothing
    assert apply(fixed, p.restore).count("ip inspect name MAILFW smtp alert on timeout 300") == 1
    assert "esmtp" not in apply(fixed, p.restore)


def test_plan_errors_name_the_device_and_variable():
    with pytest.raises(FixError, match="FW01: mailflow_cisco_rules .*NOPE"):
        cisco_fix.plan("FW01", IOS, ["NOPE"], False)
    with pytest.raises(FixError, match="PIX01: .* pix, not IOS"):
        cisco_fix.plan("PIX01", PIX, None, False)


def test_diff_shows_the_rule_before_and_after():
    p = cisco_fix.plan("FW01", IOS, None, True)
    d = cisco_fix.diff("FW01", IOS, p)
    assert "ip inspect name MAILFW smtp alert on timeout 300" in d["before"]
    assert d["after"] == "ip inspect name MAILFW esmtp\n"


def test_backup_keeps_the_config_private_and_rollback_respects_later_changes(tmp_path):
    p = cisco_fix.plan("FW01", IOS, None, True)
    path = cisco_fix.write_backup(str(tmp_path), "CHG0001", "FW01", IOS, p)
    cfg = os.path.join(os.path.dirname(path), "running-config.cfg")
    assert stat.S_IMODE(os.stat(cfg).st_mode) == 0o600 and open(cfg).read() == IOS
    doc = cisco_fix.read_backup(path)
    assert doc["state"] == "planned" and doc["device"]["commands"] == list(p.commands)
    fixed = apply(IOS, p.commands)
    assert cisco_fix.rollback_plan("FW01", fixed, doc) == ([], [])           # never applied: nothing to undo
    cisco_fix.mark(path, "verified")
    doc = cisco_fix.read_backup(path)
    assert cisco_fix.rollback_plan("FW01", fixed, doc) == (list(p.restore), [])
    # Someone put smtp back by hand since: left alone, and said so.
    by_hand = apply(apply(fixed, ["no ip inspect name MAILFW esmtp"]), ["ip inspect name MAILFW smtp"])
    assert cisco_fix.rollback_plan("FW01", by_hand, doc) == ([], ["MAILFW"])
    assert cisco_fix.change_backups(str(tmp_path), "CHG0001", "FW01") == [path]
    assert json.load(open(path))["cause"] == "cisco_smtp_inspection"


def test_a_change_being_sent_is_rolled_back_where_the_device_holds_it(tmp_path):
    p = cisco_fix.plan("FW01", IOS, None, False)
    path = cisco_fix.write_backup(str(tmp_path), "CHG0002", "FW01", IOS, p)
    cisco_fix.mark(path, "applied")      # the controller died after sending
    doc = cisco_fix.read_backup(path)
    assert cisco_fix.rollback_plan("FW01", apply(IOS, p.commands), doc) == (list(p.restore), [])
    assert cisco_fix.rollback_plan("FW01", IOS, doc) == ([], ["MAILFW"])   # the lines never arrived


def test_restore_lines_follow_what_the_failure_left():
    p = cisco_fix.plan("FW01", IOS, None, True)
    doc = {"device": {"restore": list(p.restore), "rules": list(p.rules)}}
    original = "ip inspect name MAILFW smtp alert on timeout 300"
    # An image without esmtp refused the second line: only the smtp line goes back (its `no esmtp` would be refused too).
    assert cisco_fix.restore_lines(apply(IOS, p.commands[:1]), doc) == [original]
    # Both lines arrived, then the verification failed: both are undone.
    assert cisco_fix.restore_lines(apply(IOS, p.commands), doc) == ["no ip inspect name MAILFW esmtp", original]
    # Nothing arrived: nothing to send.
    assert cisco_fix.restore_lines(IOS, doc) == []


def test_check_after_wants_esmtp_when_asked():
    p = cisco_fix.plan("FW01", IOS, None, True)
    doc = {"device": {"rules": list(p.rules)}}
    assert cisco_fix.check_after("FW01", apply(IOS, p.commands), doc, ["MAILFW"], True) == []
    assert cisco_fix.check_after("FW01", apply(IOS, p.commands[:1]), doc, ["MAILFW"], True) == ["rule MAILFW has no esmtp inspection"]
    assert cisco_fix.check_after("FW01", IOS, doc, ["MAILFW"], False) == ["still needs `no ip inspect name MAILFW smtp`"]


def test_unsaved_changes_are_refused_and_a_change_id_is_not_reused(tmp_path):
    saved = IOS.replace("! x\n", "")
    cisco_fix.check_unsaved("FW01", IOS, saved.replace("!\nversion", "!\n!\nversion"), False)   # only comments differ
    with pytest.raises(FixError, match="FW01: .*unsaved.*mailflow_cisco_save_unsaved_changes"):
        cisco_fix.check_unsaved("FW01", IOS, IOS.replace("ip inspect name MAILFW tcp\n", ""), False)
    cisco_fix.check_unsaved("FW01", IOS, IOS.replace("ip inspect name MAILFW tcp\n", ""), True)
    p = cisco_fix.plan("FW01", IOS, None, False)
    path = cisco_fix.write_backup(str(tmp_path), "CHG0003", "FW01", IOS, p)
    cisco_fix.write_backup(str(tmp_path), "CHG0003", "FW01", IOS, p)      # still only planned: may be rewritten
    cisco_fix.mark(path, "verified")
    with pytest.raises(FixError, match="FW01: change CHG0003 already changed this device"):
        cisco_fix.write_backup(str(tmp_path), "CHG0003", "FW01", IOS, p)
