"""The causes declare themselves once (findings.Cause/Fix in their own modules); everything else follows from that."""
from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.mailflow.exchange.plugins.action.fix_select import _selection
from ansible_collections.mailflow.exchange.plugins.module_utils import causes
from ansible_collections.mailflow.exchange.plugins.module_utils.findings import fix_register
from ansible_collections.mailflow.exchange.plugins.modules import fix as fix_doc
from tests.conftest import ROOT

CAUSES_DIR = os.path.join(ROOT, "plugins", "module_utils", "causes")


def test_every_cause_module_is_in_the_catalog_once_in_its_declared_position():
    files = sorted(f[:-3] for f in os.listdir(CAUSES_DIR) if f.endswith(".py") and not f.startswith("_") and f != "common.py")
    catalog = causes.catalog()
    assert sorted(catalog) == files
    positions = [c.position for c in catalog.values()]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    # KB 919091's six causes first, in its order (the ranking follows it).
    kb = [c.kb919091_cause for c in catalog.values() if c.kb919091_cause]
    assert kb == sorted(kb) and list(catalog)[:len(kb)] == [c.id for c in catalog.values() if c.kb919091_cause]


def test_the_derived_lists_are_the_declarations():
    fixes = {c.id: c.fix for c in causes.catalog().values() if c.fix}
    assert set(causes.FIXABLE) | set(causes.NETWORK_FIXABLE) == set(fixes)
    assert [fixes[c].order for c in causes.FIXABLE] == sorted(fixes[c].order for c in causes.FIXABLE)
    assert causes.FIXABLE[0] == "metabase_corrupt"  # IIS must load its metabase before anything about SMTP verifies
    assert causes.NETWORK_FIXABLE == ("cisco_smtp_inspection",)
    assert causes.CAUSE_IDS == tuple(causes.catalog())


@pytest.mark.parametrize("cause", [c for c in causes.catalog().values() if c.fix], ids=lambda c: c.id)
def test_each_fix_role_calls_the_fix_for_its_cause_and_registers_the_declared_name(cause):
    role = os.path.join(ROOT, "roles", f"fix_{cause.id}")
    assert cause.role == f"mailflow.exchange.fix_{cause.id}" and os.path.isdir(role)
    tasks = yaml.safe_load(open(os.path.join(role, "tasks", "main.yml"), encoding="utf-8"))
    registered = [t for t in tasks if t.get("register") == fix_register(cause.id) == cause.register]
    if cause.fix.on == "server":
        (fix_task,) = registered
        assert fix_task["mailflow.exchange.fix"]["cause"] == cause.id
        # The arguments the role passes are the ones the cause declares.
        assert set(fix_task["mailflow.exchange.fix"]["params"]) == set(cause.fix.args)
        validate = [t for t in tasks if (t.get("mailflow.exchange.fix") or {}).get("validate_only")]
        assert validate and validate[0]["mailflow.exchange.fix"]["cause"] == cause.id
        assert tasks.index(validate[0]) < tasks.index(fix_task)  # every host is checked before any is changed
    else:
        assert registered, f"{cause.id}: no task registers {cause.register}"


def test_the_fix_module_documents_every_server_fix_as_a_choice():
    doc = yaml.safe_load(fix_doc.DOCUMENTATION)
    assert doc["options"]["cause"]["choices"] == list(causes.fixable("server"))


def test_the_selection_is_in_fix_order_and_refuses_unknown_causes():
    fixable = list(causes.NETWORK_FIXABLE + causes.FIXABLE)
    assert _selection(None, fixable) == fixable
    assert _selection(" port25_blocked ,metabase_corrupt", fixable) == ["metabase_corrupt", "port25_blocked"]
    assert _selection(["glitch_retry_short", "cisco_smtp_inspection"], fixable) == ["cisco_smtp_inspection", "glitch_retry_short"]
    for bad in ("glitch_retry", ["x"], [], 5, {"a": 1}):
        with pytest.raises(Exception, match="mailflow_fix"):
            _selection(bad, fixable)
