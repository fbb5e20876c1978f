"""What the snapshot makes of each answer the runner brings back, including the ones a real host gives and the
lab rarely does: a REG_BINARY or one-item REG_MULTI_SZ, an unreadable subkey, an absent LDAP attribute, a queue file
gone before it was read, a log that wrapped under the reader, a product Windows Installer could not read, a DC that
refused the caller; and who the host is, whatever the inventory calls it."""
from __future__ import annotations

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils import snapshot
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import HostView, Missing
from ansible_collections.mailflow.exchange.plugins.module_utils.psrunner import Op, OpResult

KEY = r"HKLM\SOFTWARE\Vendor"


def result(op: Op, *rows, error=None) -> OpResult:
    return OpResult(0, op, list(rows), error)


def test_registry_values_are_kept_whole_and_in_one_form():
    res = result(Op("reg_read", (KEY, "1")),
                 ("key", {"path": KEY}),
                 ("value", {"key": KEY, "name": "Bin", "type": "Binary", "data": b"\x00\xff"}),
                 ("value", {"key": KEY, "name": "One", "type": "MultiString", "data": ["only"]}),
                 ("value", {"key": KEY, "name": "Old", "type": "MultiString", "data": "unrolled"}),
                 ("value", {"key": KEY, "name": "None", "type": "MultiString", "data": None}),
                 ("value", {"key": KEY, "name": "Dw", "type": "DWord", "data": -1}))
    values = snapshot._decode(res)[KEY]["values"]
    assert values["Bin"] == {"type": "REG_BINARY", "data": "00ff"}
    assert values["One"]["data"] == ["only"] and values["Old"]["data"] == ["unrolled"] and values["None"]["data"] == []
    assert values["Dw"]["data"] == 0xFFFFFFFF


def test_an_unreadable_subkey_is_unknown_never_absent():
    res = result(Op("reg_read", (KEY, "2")),
                 ("key", {"path": KEY}),
                 ("denied", {"key": KEY, "name": "Locked", "message": "Requested registry access is not allowed."}),
                 ("key", {"path": KEY + r"\Open"}),
                 ("value", {"key": KEY + r"\Open", "name": "X", "type": "String", "data": "1"}))
    keys = snapshot._decode(res)
    assert keys[KEY]["denied"] == {"Locked": "Requested registry access is not allowed."}
    assert sorted(keys[KEY]["subkeys"]) == ["Locked", "Open"]
    view = HostView({"items": {"vendor": keys}})
    assert view.reg_value("vendor", "X", "Open") == "1"
    assert view.reg_value("vendor", "X", "Elsewhere") is None  # not there, and readable: absent
    for below in ("Locked", r"Locked\Deeper"):
        with pytest.raises(Missing, match=r"Vendor\\Locked could not be read on the host: Requested registry access"):
            view.reg_value("vendor", "X", below)


def test_an_absent_ldap_attribute_is_an_empty_list():
    res = result(Op("adsi_search", ("", "(objectClass=x)", ("cn", "msExchSmtpSmartHost"))),
                 ("entry", {"dn": "CN=1,CN=SMTP", "a:cn": ["1"], "a:msExchSmtpSmartHost": None}))
    assert snapshot._decode(res) == [{"dn": "CN=1,CN=SMTP", "attrs": {"cn": ["1"], "msExchSmtpSmartHost": []}}]


def test_a_vanished_queue_file_costs_its_row_only():
    res = result(Op("file_list", (r"C:\Queue", "0", "*.eml", "100")),
                 ("file", {"path": r"C:\Queue\a.eml", "size": 1, "mtime": "x", "ctime": "x"}),
                 ("vanished", {"path": r"C:\Queue\b.eml", "message": "Could not find file"}))
    listing = snapshot._decode(res)
    assert len(listing["files"]) == 1 and listing["vanished"] == 1


def test_an_event_log_that_wrapped_keeps_what_was_read_and_says_so():
    res = result(Op("eventlog", ("Application", "", (), "2000-01-01T00:00:00Z", "10")),
                 ("event", {"id": 4006}), ("overwritten", {"scanned": 9000, "message": "Index 3 is out of bounds."}))
    decoded = snapshot._decode(res)
    assert decoded["events"] == [{"id": 4006}] and decoded["overwritten"] == "Index 3 is out of bounds."


def test_a_product_windows_installer_could_not_read_makes_the_features_unknown():
    op = Op("msi_features", ("*Symantec*",))
    fine = result(op, ("feature", {"name": "Pop3Smtp", "state": 3}))
    assert snapshot.item_error(fine) is None
    bad = result(op, ("feature", {"name": "Pop3Smtp", "state": 3}),
                 ("product_error", {"product": "Symantec AntiVirus", "product_code": "{X}", "message": "Unknown product."}))
    assert snapshot.item_error(bad) == "Symantec AntiVirus {X}: Unknown product."
    plan = [("msi_features", op)]
    snap = snapshot.assemble("H", plan, [bad], collected_at="", duration_ms=0, transport={})
    assert "msi_features" not in snap["items"] and "Unknown product" in snap["errors"]["msi_features"]


@pytest.mark.parametrize("pattern, wildcard", [("%Symantec%", "*Symantec*"), ("Sym_ntec", "Sym?ntec"),
                                               ("10[%] [[]CE]", "10% [[]CE]"), ("a*b?", "a[*]b[?]")])
def test_wql_like_patterns_become_powershell_wildcards(pattern, wildcard):
    assert snapshot.like_to_wildcard(pattern) == wildcard


ANONYMOUS = ('Exception calling "FindAll" with "0" argument(s): "An operations error occurred.\r\n" (0x80072020) '
             "000004DC: LdapErr: DSID-0C0906DC, comment: In order to perform this operation a successful bind must be "
             "completed on the connection., data 0, vece")
BAD_LOGON = 'Exception calling "Contains" with "1" argument(s): "Logon failure: unknown user name or bad password.\r\n" (0x8007052E)'


def test_ad_failures_say_which_variable_to_set():
    assert "mailflow_ad_username and mailflow_ad_password" in snapshot.ad_error_hint(ANONYMOUS, explicit_bind=False)
    assert "rights" in snapshot.ad_error_hint(ANONYMOUS, explicit_bind=True)
    assert "refused mailflow_ad_username" in snapshot.ad_error_hint(BAD_LOGON, explicit_bind=True)
    assert snapshot.ad_error_hint("Invalid class ", explicit_bind=False) is None


def _exchange_items(with_ad: bool) -> tuple[dict, dict]:
    items = {"computer": [{"Name": "EXCH01", "Domain": "corp.example"}],
             "services": {"SMTPSVC": {"state": "Running"}},
             "exchange_setup": {r"HKLM\SOFTWARE\Microsoft\Exchange\Setup": {"values": {"ServicePackBuild": {"data": 7638}}}}}
    errors = {}
    if with_ad:
        items["ad_exchange_servers"] = [{"dn": "CN=EXCH01", "attrs": {"cn": ["EXCH01"],
                                                                     "serialNumber": ["Version 6.5 (Build 7638.2: Service Pack 2)"]}}]
    else:
        errors["ad_exchange_servers"] = ANONYMOUS + " -- " + snapshot.ad_error_hint(ANONYMOUS, False)
    return items, errors


def test_an_exchange_version_ad_could_not_give_is_unknown_with_the_reason():
    items, errors = _exchange_items(with_ad=False)
    platform = snapshot.platform_of(items, "EXCH01", errors)
    assert platform["kind"] == "exchange" and "mailflow_ad_username" in platform["kind_note"]
    items, errors = _exchange_items(with_ad=True)
    assert snapshot.platform_of(items, "EXCH01", errors)["kind"] == "exchange2003"


def test_assemble_adds_the_hint_to_ad_items_only():
    ops = [("ad_exchange_servers", Op("adsi_search", ("", "(objectClass=msExchExchangeServer)", ("cn",)))),
           ("os", Op("wmi_query", ("root\\cimv2", "SELECT * FROM Win32_OperatingSystem", ())))]
    results = [result(ops[0][1], error=ANONYMOUS), result(ops[1][1], error="0x80072020 in a WMI error, by chance")]
    snap = snapshot.assemble("EXCH01", ops, results, collected_at="", duration_ms=0, transport={"ad_bind": "process"})
    assert "set mailflow_ad_username" in snap["errors"]["ad_exchange_servers"]
    assert snap["errors"]["os"] == "0x80072020 in a WMI error, by chance"


@pytest.mark.parametrize("inventory_name, fqdn, expected", [
    ("127.0.10.11", None, ("EXCH01", "exch01.corp.example", "host (Win32_ComputerSystem)")),
    ("mail-alias.corp.example", "mail-alias.corp.example", ("EXCH01", "exch01.corp.example", "host (Win32_ComputerSystem)")),
])
def test_the_host_says_who_it_is_whatever_the_inventory_calls_it(inventory_name, fqdn, expected):
    snap = {"items": {"computer": [{"Name": "exch01", "Domain": "CORP.example"}]}}
    who = snapshot.identity(snap, inventory_name, fqdn)
    assert (who["computer_name"], who["fqdn"], who["source"]) == expected


def test_without_the_hosts_word_the_inventory_stands_in_labelled():
    assert snapshot.identity(None, "EXCH02", "exch02.corp.example")["source"].startswith("inventory mailflow_fqdn")
    by_name = snapshot.identity({"items": {}}, "exch02.corp.example")
    assert (by_name["computer_name"], by_name["fqdn"]) == ("EXCH02", "exch02.corp.example")
    by_address = snapshot.identity(None, "127.0.10.12", "127.0.10.12")
    assert by_address["fqdn"] is None and "address" in by_address["source"]
    workgroup = snapshot.identity({"items": {"computer": [{"Name": "RELAY", "Domain": "WORKGROUP"}]}}, "10.0.0.5")
    assert (workgroup["computer_name"], workgroup["fqdn"]) == ("RELAY", None)


@pytest.mark.parametrize("banner, name", [
    ("220 exch55.corp.example Microsoft Exchange Internet Mail Service 5.5.2232.0 ready", "exch55.corp.example"),
    ("220-relay.corp.example ESMTP\n220 ready", "relay.corp.example"),
    ("220 ****************************0*2*****", None),  # PIX Mailguard masks it
    ("220 127.0.10.19 ready", None), ("", None), ("554 no", None),
])
def test_a_greeting_names_its_server(banner, name):
    assert snapshot.greeting_name(banner) == name


def test_a_host_without_a_snapshot_is_known_by_its_greeting_before_the_inventory():
    who = snapshot.identity(None, "127.0.10.19", None, greeting="exch55.corp.example")
    assert (who["computer_name"], who["source"]) == ("EXCH55", "host (its SMTP greeting)")
    reported = snapshot.identity({"items": {"computer": [{"Name": "EXCH01", "Domain": "corp.example"}]}}, "x", None, "other.example")
    assert reported["computer_name"] == "EXCH01"


@pytest.mark.parametrize("serial,version,build,sp,kind", [
    (["Version 6.5 (Build 7638.2: Service Pack 2)"], "6.5", "7638.2", "Service Pack 2", "exchange2003"),
    (["Version 6.0 (Build 6249.4: Service Pack 3)"], "6.0", "6249.4", "Service Pack 3", "exchange2000"),
    (["Version 5.5 (Build 2653.23)"], "5.5", "2653.23", None, "exchange55"),
    (["Version 8.1 (Build 30240.5)"], "8.1", "30240.5", None, "exchange"),
])
def test_exchange_version_from_the_server_objects_serial_number(serial, version, build, sp, kind):
    found = snapshot.exchange_from_serial({"serialNumber": serial}, "ad:serialNumber")
    assert found == {"version": version, "build": build, "service_pack": sp, "source": "ad:serialNumber"}
    assert snapshot.kind_of_version(found["version"]) == kind


def test_no_serial_number_is_no_version():
    assert snapshot.exchange_from_serial({"serialNumber": []}, "x") is None
    assert snapshot.exchange_from_serial({}, "x") is None


def test_a_file_read_only_up_to_its_limit_is_too_large_not_a_cut_off_text():
    op = Op("file_read", (r"C:\WINDOWS\system32\inetsrv\MetaBase.xml", "16", "8"))
    head = b'<?xml version="1.0"'[:16]
    res = OpResult(0, op, rows=[("file", {"path": op.args[0], "size": 52428800, "mtime": "2026-12-05T10:00:00Z", "read": 16}),
                                ("chunk", {"offset": 0, "data": head[:8]}), ("chunk", {"offset": 8, "data": head[8:]})], done=True)
    item = snapshot._decode(res)  # what change_kinds imports as decode_result
    assert item["text"] is None and item["too_large"] == 16 and item["size"] == 52428800
    view = HostView({"items": {"metabase": item}})
    with pytest.raises(Missing, match="too large to read"):
        view.metabase()
