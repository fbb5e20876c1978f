"""Rollback: how each change kind reads its current value (in the form its `before`/`after` were recorded), and the
decisions made from it (plugins/module_utils/rollback.py)."""
from __future__ import annotations

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils import change, knowledge, psrunner, remediation
from ansible_collections.mailflow.exchange.plugins.module_utils import rollback as rb
from ansible_collections.mailflow.exchange.plugins.module_utils.causes import metabase_corrupt
from ansible_collections.mailflow.exchange.plugins.module_utils.psrunner import Op, OpResult
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import Change, FixError

FACTS = knowledge.load()
QUEUING = r"HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC\Queuing"
GLITCH = Change("registry_value", {"path": QUEUING, "name": "GlitchRetrySeconds"},
                {"exists": True, "type": "REG_DWORD", "data": 30}, {"exists": True, "type": "REG_DWORD", "data": 180},
                restart=["SMTPSVC"])
METABASE = ('<?xml version ="1.0"?>\r\n<configuration xmlns="urn:microsoft-catalog:XML_Metabase_V64_0">\r\n<MBProperty>\r\n'
            '<IIsSmtpServer\tLocation ="/LM/SmtpSvc/1"\n\t\tConnectResponse=""\n\t>\r\n</IIsSmtpServer>\r\n'
            '<IIsSmtpServer\tLocation ="/LM/SmtpSvc/2"\n\t\tServerComment="second"\n\t>\r\n</IIsSmtpServer>\r\n'
            '</MBProperty>\r\n</configuration>\r\n')


def answer(op: Op, *rows, error=None) -> OpResult:
    """The runner's result of `op`: rows as dispatcher.ps1 writes them."""
    return OpResult(0, op, list(rows), error)


def file_rows(path: str, data: bytes) -> tuple:
    """A file_read's answer: its file row, then its data in chunk rows."""
    return (("file", {"path": path, "size": len(data), "mtime": None, "read": len(data)}),
            *(("chunk", {"offset": i, "data": data[i:i + 4]}) for i in range(0, len(data), 4)))


def current(c: Change, *rows, error=None):
    (op,) = c.handler.read_ops(c, FACTS)
    return c.handler.current(c, [answer(op, *rows, error=error)])


def test_a_registry_value_reads_as_the_fix_recorded_it():
    (op,) = GLITCH.handler.read_ops(GLITCH, FACTS)
    assert (op.name, op.args) == ("reg_read", (QUEUING, "0"))
    signed = ("value", {"key": QUEUING, "name": "glitchretryseconds", "type": "DWord", "data": -1})  # .NET's Int32
    got = current(GLITCH, ("key", {"path": QUEUING}), signed)
    assert got == {"exists": True, "type": "REG_DWORD", "data": 0xFFFFFFFF}
    recorded = Change.from_dict(GLITCH.to_dict())
    remediation.record_prev(recorded, [("prev", {"existed": 1, "type": "DWord", "data": -1})])
    assert recorded.handler.same(recorded, got, recorded.before)
    assert current(GLITCH, ("key", {"path": QUEUING})) == {"exists": False}  # key there, value not
    assert current(GLITCH, ("missing", {"path": QUEUING})) == {"exists": False}
    assert GLITCH.handler.same(GLITCH, {"exists": False}, {"exists": False, "type": "REG_DWORD"})
    assert not GLITCH.handler.same(GLITCH, got, {"exists": True, "type": "REG_SZ", "data": str(0xFFFFFFFF)})
    with pytest.raises(FixError, match="Access is denied"):
        current(GLITCH, error="Requested registry access is not allowed. Access is denied.")


def test_services_read_their_start_mode_and_state_and_a_removed_service_reads_as_none():
    mode = Change("service_start_mode", {"service": "SMTPSVC"}, "Disabled", "Auto")
    state = Change("service_state", {"service": "SMTPSVC"}, "Stopped", "Running")
    row = ("service", {"name": "SMTPSvc", "display_name": "SMTP", "state": "Running", "start_mode": "Auto"})
    assert current(mode, row) == "Auto" and current(state, row) == "Running"
    assert mode.handler.same(mode, "Automatic", "auto") and not mode.handler.same(mode, "Manual", "Auto")
    assert current(mode, ("missing", {"name": "SMTPSVC"})) is None
    assert rb.decide(mode, None) == rb.CHANGED_SINCE


def test_an_ad_attribute_is_read_from_its_own_object_not_its_children():
    dn = "CN=1,CN=SMTP,CN=Protocols,CN=EXCH04,CN=Servers,CN=Configuration,DC=corp,DC=example"
    c = Change("adsi_attribute", {"dn": dn, "attribute": "msExchSmtpSmartHost", "syntax": "string"}, [], ["[10.0.0.5]"])
    (op,) = c.handler.read_ops(c, FACTS)
    assert (op.name, op.args) == ("adsi_search", (dn, "(objectClass=*)", ("msExchSmtpSmartHost",)))
    child = ("entry", {"dn": "CN=Child," + dn, "a:msExchSmtpSmartHost": ["other"]})
    assert current(c, child, ("entry", {"dn": dn.upper(), "a:msExchSmtpSmartHost": ["[10.0.0.5]"]})) == ["[10.0.0.5]"]
    assert current(c, ("entry", {"dn": dn, "a:msExchSmtpSmartHost": []})) == []
    with pytest.raises(FixError, match="not found"):
        current(c, child)


def test_an_iis_property_is_read_from_metabase_xml():
    c = Change("adsi_attribute", {"dn": "IIS://localhost/SMTPSVC/1", "attribute": "ConnectResponse"}, [""], ["mx ready"])
    (op,) = c.handler.read_ops(c, FACTS)
    assert op.name == "file_read" and op.args[0] == FACTS["collect"]["metabase"]["path"]
    row = file_rows("MetaBase.xml", METABASE.encode())
    assert current(c, *row) == [""]  # set but empty, as the fix recorded it
    assert rb.decide(c, [""]) == rb.ALREADY
    other = Change("adsi_attribute", {"dn": "IIS://localhost/SMTPSVC/2", "attribute": "connectresponse"}, [], ["x"])
    assert current(other, *row) == []  # not set there
    with pytest.raises(FixError, match="no such metabase key"):
        current(Change("adsi_attribute", {"dn": "IIS://localhost/SMTPSVC/9", "attribute": "X"}, [], ["x"]), *row)
    with pytest.raises(FixError, match="not well-formed"):
        current(c, *file_rows("MetaBase.xml", b"<broken"))


def test_an_msi_feature_is_found_by_product_code_and_name_with_like_wildcards_escaped():
    c = Change("msi_feature", {"product_code": "{ABC}", "product": "Symantec_AV 10% [CE]", "feature": "Pop3Smtp"}, 3, 2)
    (op,) = c.handler.read_ops(c, FACTS)
    assert op.args == ("Symantec_AV 10% [[]CE]",)  # a -like wildcard: only * ? [ are special
    rows = [("feature", {"product_code": "{abc}", "name": "Pop3Smtp", "state": 2}),
            ("feature", {"product_code": "{ABC}", "name": "Other", "state": 3})]
    assert current(c, *rows) == 2 and rb.decide(c, 2) == rb.RESTORE
    assert current(c, rows[1]) is None  # the feature (or product) is gone


def test_a_firewall_opening_is_read_from_its_profile_and_compared_with_netsh_spellings():
    c = Change("firewall_port", {"port": 25, "protocol": "TCP", "name": "SMTP", "scope": "LocalSubnet", "profile": "DOMAIN"},
               {"exists": False}, {"exists": True, "scope": "LocalSubnet,10.0.0.0/8", "enabled": True, "name": "SMTP"})
    (op,) = c.handler.read_ops(c, FACTS)
    key = FACTS["collect"]["firewall_policy"]["path"] + r"\DomainProfile\GloballyOpenPorts\List"
    assert (op.name, op.args) == ("reg_read", (key, "0"))
    opened = ("value", {"key": key, "name": "25:TCP", "type": "String", "data": "25:TCP:localsubnet, 10.0.0.0/8:Enabled:SMTP"})
    got = current(c, ("key", {"path": key}), opened)
    assert got == {"exists": True, "scope": "localsubnet, 10.0.0.0/8", "enabled": True, "name": "SMTP"}
    assert rb.decide(c, got) == rb.RESTORE
    assert rb.decide(c, current(c, ("key", {"path": key}))) == rb.ALREADY
    disabled = dict(opened[1], data="25:TCP:LocalSubnet,10.0.0.0/8:Disabled:SMTP")
    assert rb.decide(c, current(c, ("value", disabled))) == rb.CHANGED_SINCE
    current_profile = Change("firewall_port", {"port": 25, "protocol": "TCP", "name": "SMTP"}, {"exists": False}, {"exists": True})
    assert current_profile.handler.read_ops(current_profile, FACTS) == []
    items = [rb.Item(current_profile)]
    rb.decide_all(items, rb.currents(items, [], [[]]))
    assert items[0].decision == rb.UNREAD and "no firewall profile" in items[0].why


def test_a_replaced_file_hashes_as_metabase_corrupt_recorded_it():
    c = Change("file_replace", {"path": r"C:\WINDOWS\system32\inetsrv\MetaBase.xml", "source": "h", "keep_as": "k"}, {}, {})
    (op,) = c.handler.read_ops(c, FACTS)
    assert op.args == (c.target["path"], str(FACTS["collect"]["metabase"]["max_bytes"]), str(psrunner.FILE_CHUNK_BYTES))
    data = b"\xef\xbb\xbf" + METABASE.encode()
    got = current(c, *file_rows(c.target["path"], data))
    assert got == metabase_corrupt._file({"text": METABASE, "size": len(data)}) and got["size"] == len(data)
    binary = current(c, *file_rows("x", b"\xff\x00\xfe"))
    assert binary == metabase_corrupt._file({"base64": "/wD+", "size": 3})
    assert current(c, ("missing", {"path": "x"})) == {} and c.handler.same(c, {}, {})


def test_decisions_and_what_cannot_be_undone():
    assert rb.decide(GLITCH, {"exists": True, "type": "REG_DWORD", "data": 180}) == rb.RESTORE
    assert rb.decide(GLITCH, {"exists": True, "type": "REG_DWORD", "data": 30}) == rb.ALREADY
    assert rb.decide(GLITCH, {"exists": True, "type": "REG_DWORD", "data": 600}) == rb.CHANGED_SINCE
    assert rb.decide(GLITCH, {"exists": False}) == rb.CHANGED_SINCE
    for kind in ("service_restart", "package"):
        c = Change(kind, {"service": "X", "path": "p", "kb": "KB1"}, "a", "b")
        assert rb.decide(c, None) == rb.NOT_REVERSIBLE and c.handler.read_ops(c, FACTS) == []


def doc(cause, state, changes, **extra):
    return (f"b/CHG1/H/{cause}.json", {"cause": cause, "state": state, **extra}, [Change.from_dict(c.to_dict()) for c in changes])


BANNER = Change("adsi_attribute", {"dn": "IIS://localhost/SMTPSVC/1", "attribute": "ConnectResponse"}, [""], ["mx"], ["SMTPSVC"])
SMART = Change("adsi_attribute", {"dn": "IIS://localhost/SMTPSVC/1", "attribute": "SmartHost"}, [], ["relay"], ["SMTPSVC"])
START = Change("service_state", {"service": "SMTPSVC"}, "Stopped", "Running")
IMS = Change("service_restart", {"service": "MSExchangeIMC"}, "running", "restarted")


def test_backups_load_in_fix_order_and_settled_ones_read_nothing():
    docs = [doc("glitch_retry_short", "verified", [GLITCH]), doc("ims_connection_leak", "verified", [IMS]),
            doc("smarthost_misconfigured", "interrupted", [SMART]), doc("smtp_banner_missing", "applied", [BANNER]),
            doc("peer_smtp_unavailable", "rolled_back", [START]), doc("port25_blocked", "planned", [])]
    rollbacks = rb.load(docs)
    assert [r.cause for r in rollbacks] == ["peer_smtp_unavailable", "port25_blocked", "smtp_banner_missing",
                                            "smarthost_misconfigured", "glitch_retry_short", "ims_connection_leak"]
    assert rollbacks[0].settled == "already rolled back" and "never applied" in rollbacks[1].settled
    items = rb.to_decide(rollbacks)
    assert [i.change for i in items] == [BANNER, SMART, GLITCH]
    assert rollbacks[-1].items[0].decision == rb.NOT_REVERSIBLE
    ops, slots = rb.read_request(items, FACTS)
    assert [o.name for o in ops] == ["file_read", "reg_read"] and slots == [[0], [0], [1]]  # one MetaBase.xml read


def decided(*pairs):
    """Backups whose items got these decisions: pairs of (cause, state, [(change, decision)], extra)."""
    out = []
    for cause, state, items, extra in pairs:
        cr = rb.CauseRollback(cause, f"{cause}.json", {"cause": cause, "state": state, **extra})
        for c, d in items:
            cr.items.append(rb.Item(c, d, c.after if d == rb.RESTORE else None))
        out.append(cr)
    return out


def test_restores_run_last_change_first_and_restart_only_what_ran_with_the_change():
    mode = Change("service_start_mode", {"service": "SMTPSVC"}, "Disabled", "Auto", ["SMTPSVC"])
    rollbacks = decided(("peer_smtp_unavailable", "verified", [(mode, rb.RESTORE), (START, rb.RESTORE)], {}),
                        ("smtp_banner_missing", "verified", [(BANNER, rb.RESTORE)], {}),
                        ("glitch_retry_short", "verified", [(GLITCH, rb.CHANGED_SINCE)], {}))
    ops = rb.restore_ops(rollbacks)
    assert [(o.name, o.args[:2]) for _, o in ops] == [("adsi_write", ("IIS://localhost/SMTPSVC/1", "ConnectResponse")),
                                                      ("service_control", ("SMTPSVC", "stop")),
                                                      ("service_control", ("SMTPSVC", "disabled"))]
    assert rb.restarts(rollbacks) == []  # SMTPSVC was just put back to stopped: a restart would undo that
    rollbacks = decided(("smtp_banner_missing", "verified", [(BANNER, rb.RESTORE)], {"pending_restart": ["SMTPSVC"]}),
                        ("av_scans_iis_folders", "verified", [(Change("registry_value", {"path": "K", "name": "N"},
                                                                      {"exists": False}, {"exists": True}, ["SAV"]), rb.RESTORE)], {}))
    assert rb.restarts(rollbacks) == ["SAV"]  # the banner's restart never happened: SMTPSVC never ran with it


def test_what_the_backup_and_the_record_say_afterwards():
    (cr,) = decided(("glitch_retry_short", "verified", [(GLITCH, rb.RESTORE), (BANNER, rb.CHANGED_SINCE), (IMS, rb.NOT_REVERSIBLE)],
                     {"pending_restart": ["SMTPSVC"]}))
    cr.items[1].current = ["by hand"]
    fields = rb.outcome(cr, [], "T", ["SMTPSVC"], [])
    assert fields["state"] == rb.ROLLED_BACK and fields["pending_restart"] == []
    assert fields["rollback"]["restored"] == [r"HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC\Queuing\GlitchRetrySeconds: "
                                              "REG_DWORD 180 -> REG_DWORD 30"]
    assert "the change set 'mx', it is now 'by hand' (changed since" in fields["rollback"]["changed_since"][0]
    assert "cannot be undone" in fields["rollback"]["not_reversible"][0]
    ev = change.check_event(rb.event("EXCH05", cr, []))
    assert ev["ok"] and ev["cause"] == "glitch_retry_short" and len(ev["changed_since"]) == 1 and ev["reason"] == ""
    failed = rb.outcome(cr, ["GlitchRetrySeconds is REG_DWORD 180, not REG_DWORD 30"], "T", [], [])
    assert failed["state"] == rb.RESTORE_FAILED and "pending_restart" not in failed and failed["rollback"]["failed"]
    assert not rb.event("EXCH05", cr, ["x"])["ok"]
    cr.items[1].decision, cr.items[1].why = rb.UNREAD, "access denied"
    assert rb.outcome(cr, [], "T", [], [])["state"] == "verified"  # a re-run decides again
    bad = rb.event("EXCH05", cr, [])
    assert not bad["ok"] and "access denied" in bad["reason"]


def test_a_value_that_did_not_come_back_is_named():
    items = [rb.Item(GLITCH, rb.RESTORE), rb.Item(START, rb.RESTORE), rb.Item(BANNER, rb.RESTORE)]
    found = [({"exists": True, "type": "REG_DWORD", "data": 30}, None), ("Running", None), (None, "RPC server unavailable")]
    bad = rb.not_back(items, found)
    assert [i.change for i, _ in bad] == [START, BANNER]
    assert bad[0][1] == "service SMTPSVC state is Running, not Stopped" and "not read back: RPC" in bad[1][1]
