"""Host detectors on the real demo snapshots, and on edited copies of them.

smsmse_heuristics, av_scans_iis_folders, greylist_hotfix_missing,
ims_connection_leak and metabase_corrupt: each test asserts one finding per
host, the demo's exact statuses, and what the evidence and confidence say.
"""
from __future__ import annotations

import copy

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils.causes import (
    av_scans_iis_folders, greylist_hotfix_missing, ims_connection_leak, metabase_corrupt, smsmse_heuristics)

HOSTS = ["EXCH01", "EXCH02", "EXCH03", "EXCH04", "EXCH05", "EXCH06", "EXCH07", "EXCH08", "EXCH55", "RELAY01"]
EXCHANGE_2003 = HOSTS[:8]
UNINSTALL = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall"
RTS = "HKLM\\SOFTWARE\\Intel\\LANDesk\\VirusProtect6\\CurrentVersion\\Storages\\Filesystem\\RealTimeScan"
SMSMSE_SERVER = "HKLM\\SOFTWARE\\Symantec\\SMSMSE\\4.5\\Server"


def run(module, fleet) -> dict:
    found = module.detect(fleet)
    assert sorted(f.host for f in found) == sorted(HOSTS), "exactly one finding per inventory host"
    return {f.host: f for f in found}


def statuses(found: dict) -> dict:
    return {h: f.status for h, f in found.items()}


def fail_item(snaps, host, item, message="Access is denied"):
    snaps[host]["items"].pop(item, None)
    snaps[host]["errors"][item] = message


def set_value(snaps, host, item, key, name, rtype, data):
    keys = snaps[host]["items"][item]
    keys.setdefault(key, {"values": {}, "subkeys": []})["values"][name] = {"type": rtype, "data": data}


def add_product(snaps, host, guid, name, version):
    keys = snaps[host]["items"].get("installed_products") or {UNINSTALL: {"values": {}, "subkeys": []}}
    keys[f"{UNINSTALL}\\{guid}"] = {"values": {"DisplayName": {"type": "REG_SZ", "data": name},
                                               "DisplayVersion": {"type": "REG_SZ", "data": version}}, "subkeys": []}
    snaps[host]["items"]["installed_products"] = keys


# -- KB 919091 cause 3: SMSMSE heuristics


def test_smsmse_demo(demo_fleet):
    found = run(smsmse_heuristics, demo_fleet())
    assert statuses(found) == {**{h: "absent" for h in EXCHANGE_2003}, "EXCH04": "present",
                               "EXCH55": "not_applicable", "RELAY01": "not_applicable"}
    f = found["EXCH04"]
    assert f.evidence["values"] == [{"key": SMSMSE_SERVER, "name": "EnableBloodhound", "type": "REG_DWORD", "data": 1}]
    assert f.confidence == "unconfirmed"  # the switch's location is a lab assumption
    assert "lab assumption" in f.summary and "smsmse_heuristics_value" in f.summary
    assert f.explains == ["EXCH01"]  # its queue to EXCH01 is in retry, with Event 4006
    # EXCH01 carries the product with the switch off: read from the value, not from the product's presence.
    assert found["EXCH01"].evidence["values"][0]["data"] == 0 and found["EXCH01"].confidence == "unconfirmed"
    assert "not installed" in found["EXCH02"].summary and found["EXCH02"].confidence == "inferred"


def test_smsmse_value_absent_is_unknown(demo_fleet):
    def edit(s):
        del s["EXCH04"]["items"]["smsmse_settings"][SMSMSE_SERVER]["values"]["EnableBloodhound"]
    f = run(smsmse_heuristics, demo_fleet(edit=edit))["EXCH04"]
    assert f.status == "unknown"
    assert "EnableBloodhound" in f.reason and SMSMSE_SERVER in f.reason and "detect.smsmse_heuristics_value" in f.reason


def test_smsmse_key_missing_is_unknown(demo_fleet):
    def edit(s):
        s["EXCH04"]["items"]["smsmse_settings"] = None
    f = run(smsmse_heuristics, demo_fleet(edit=edit))["EXCH04"]
    assert f.status == "unknown" and "does not exist" in f.reason


@pytest.mark.parametrize("data", ["1", "0"])
def test_smsmse_string_where_a_dword_is_expected_is_unknown(demo_fleet, data):
    # A REG_SZ is not what the switch is; how SMSMSE would read it is not known, so it is not guessed either way.
    f = run(smsmse_heuristics, demo_fleet(edit=lambda s: set_value(
        s, "EXCH04", "smsmse_settings", SMSMSE_SERVER, "EnableBloodhound", "REG_SZ", data)))["EXCH04"]
    assert f.status == "unknown" and "REG_SZ" in f.reason


@pytest.mark.parametrize("item", ["smsmse_settings", "installed_products"])
def test_smsmse_item_failed(demo_fleet, item):
    f = run(smsmse_heuristics, demo_fleet(edit=lambda s: fail_item(s, "EXCH04", item)))["EXCH04"]
    assert f.status == "unknown" and item in f.reason


def test_smsmse_unreachable(demo_fleet):
    def edit(s):
        s["EXCH04"] = None
    found = run(smsmse_heuristics, demo_fleet(edit=edit))
    assert found["EXCH04"].status == "unknown" and "EXCH04" in found["EXCH04"].reason


def test_smsmse_knowledge_override_moves_the_switch(demo_fleet):
    def edit(s):
        del s["EXCH04"]["items"]["smsmse_settings"][SMSMSE_SERVER]["values"]["EnableBloodhound"]
        set_value(s, "EXCH04", "smsmse_settings", SMSMSE_SERVER + "\\Scan", "HeuristicsLevel", "REG_DWORD", 2)
    found = run(smsmse_heuristics, demo_fleet(edit=edit, knowledge={"detect": {"smsmse_heuristics_value": {
        "value": {"name": "HeuristicsLevel", "off": [0]}}}}))
    assert found["EXCH04"].status == "present"
    assert found["EXCH01"].status == "unknown"  # EXCH01 has no HeuristicsLevel value


# -- chicagotech.net Event ID 4006 case 3: AV scanning the IIS folders


def test_av_demo(demo_fleet):
    found = run(av_scans_iis_folders, demo_fleet())
    assert statuses(found) == {**{h: "absent" for h in EXCHANGE_2003}, "EXCH03": "present",
                               "EXCH55": "not_applicable", "RELAY01": "absent"}
    f = found["EXCH03"]
    assert f.evidence["HaveExceptionDirs"] == {"type": "REG_DWORD", "data": 0}
    assert f.evidence["folders_to_exclude"] == ["%SystemRoot%\\system32\\inetsrv", "\\Inetpub", "\\Exchsrvr\\Mailroot"]
    assert f.evidence["products"][0]["version"] == "9.0.3.1000" and f.evidence["automatic_exchange_exclusions"] is False
    assert f.confidence == "inferred" and f.severity is None and f.explains == ["EXCH02"]
    assert "TECH101713" in found["EXCH02"].summary and found["EXCH02"].evidence["automatic_exchange_exclusions"] is True
    assert "other AV products are not inspected" in found["EXCH01"].summary and found["EXCH01"].confidence == "inferred"


def test_av_sav101_with_exclusions_off_is_present_at_low_severity(demo_fleet):
    f = run(av_scans_iis_folders, demo_fleet(edit=lambda s: set_value(
        s, "EXCH02", "sav_realtime_scan", RTS, "HaveExceptionDirs", "REG_DWORD", 0)))["EXCH02"]
    assert (f.status, f.severity, f.confidence) == ("present", "low", "inferred")


def test_av_sav9_with_exclusions_on_is_absent_but_unverified(demo_fleet):
    f = run(av_scans_iis_folders, demo_fleet(edit=lambda s: set_value(
        s, "EXCH03", "sav_realtime_scan", RTS, "HaveExceptionDirs", "REG_DWORD", 1)))["EXCH03"]
    assert f.status == "absent" and f.confidence == "inferred" and "\\Inetpub" in f.summary


def test_av_value_absent_wrong_type_key_missing(demo_fleet):
    def no_value(s):
        del s["EXCH03"]["items"]["sav_realtime_scan"][RTS]["values"]["HaveExceptionDirs"]
    assert run(av_scans_iis_folders, demo_fleet(edit=no_value))["EXCH03"].status == "unknown"
    # Without the value, SAV 10.1 on Exchange still makes its own exclusions.
    def no_value_101(s):
        del s["EXCH02"]["items"]["sav_realtime_scan"][RTS]["values"]["HaveExceptionDirs"]
    assert run(av_scans_iis_folders, demo_fleet(edit=no_value_101))["EXCH02"].status == "absent"
    f = run(av_scans_iis_folders, demo_fleet(edit=lambda s: set_value(
        s, "EXCH03", "sav_realtime_scan", RTS, "HaveExceptionDirs", "REG_SZ", "0")))["EXCH03"]
    assert f.status == "unknown" and "REG_SZ" in f.reason

    def no_key(s):
        s["EXCH03"]["items"]["sav_realtime_scan"] = None
    f = run(av_scans_iis_folders, demo_fleet(edit=no_key))["EXCH03"]
    assert f.status == "unknown" and "RealTimeScan" in f.reason


def test_av_item_failed_and_unreachable(demo_fleet):
    f = run(av_scans_iis_folders, demo_fleet(edit=lambda s: fail_item(s, "EXCH03", "sav_realtime_scan")))["EXCH03"]
    assert f.status == "unknown" and "sav_realtime_scan" in f.reason

    def gone(s):
        s["EXCH03"] = None
    assert run(av_scans_iis_folders, demo_fleet(edit=gone))["EXCH03"].status == "unknown"


def test_av_sav101_on_a_relay_makes_no_exchange_exclusions(demo_fleet):
    def edit(s):
        add_product(s, "RELAY01", "{8C1B6F30-2D4A-4E7C-B5A2-93E0F1D6C458}", "Symantec AntiVirus", "10.1.5.5000")
        s["RELAY01"]["items"]["sav_realtime_scan"] = {RTS: {"values": {"HaveExceptionDirs": {"type": "REG_DWORD", "data": 0}},
                                                           "subkeys": []}}
    f = run(av_scans_iis_folders, demo_fleet(edit=edit))["RELAY01"]
    assert f.status == "present" and f.severity is None and f.evidence["automatic_exchange_exclusions"] is False


# -- KB 950757 / KB 934709: greylisting hotfix


def _no_greylisting(snaps):
    for snap in snaps.values():
        for p in (snap or {}).get("probes") or []:
            if str(p.get("rcpt") or "").startswith("450"):
                p["rcpt"] = "250 2.1.5 postmaster@corp.example"


def test_greylist_demo(demo_fleet):
    found = run(greylist_hotfix_missing, demo_fleet())
    # Every Exchange host's probe is greylisted by RELAY01, but only EXCH05 has mail for it; RELAY01 shows
    # KB 934709's own symptom (a day-old file in its queue folder while SMTP runs).
    assert statuses(found) == {"EXCH01": "absent", "EXCH02": "absent", **{h: "absent" for h in EXCHANGE_2003[2:]},
                               "EXCH05": "present", "EXCH55": "not_applicable", "RELAY01": "present"}
    for h in EXCHANGE_2003:  # KB 934709 "does not apply to Windows 2003 servers that are running Exchange"
        assert found[h].evidence["hotfix"] == "KB950757" and "934709" not in found[h].summary
    assert found["EXCH01"].evidence["hotfix_ids"] == ["KB950757"]
    assert found["EXCH05"].explains == ["RELAY01"] and found["EXCH05"].severity is None
    assert found["EXCH03"].explains == [] and "has no mail for it" in found["EXCH03"].summary
    assert "RELAY01" in found["EXCH03"].evidence["greylisting_peers"]
    assert all(found[h].confidence == "inferred" for h in EXCHANGE_2003)  # Win32_QuickFixEngineering is unconfirmed
    relay = found["RELAY01"]
    assert relay.evidence["hotfix"] == "KB934709" and relay.evidence["stale_queue_messages"]["count"] == 1
    assert "KB934709's symptom" in relay.summary and relay.confidence == "inferred"


def test_greylist_relay_declared_peer_and_no_symptom(demo_fleet):
    f = run(greylist_hotfix_missing, demo_fleet(declared={"RELAY01": {"greylisting_peers": ["partner.example"]}}))["RELAY01"]
    assert f.status == "present" and "KB934709" in f.summary and f.severity is None

    def no_stale(s):
        s["RELAY01"]["items"]["queue_iis"]["files"] = []
    f = run(greylist_hotfix_missing, demo_fleet(edit=no_stale))["RELAY01"]
    assert f.status == "absent" and "no greylisting peer seen" in f.summary


def test_greylist_never_suggests_kb934709_on_exchange(demo_fleet):
    def edit(s):
        s["EXCH05"]["items"]["hotfixes"].append({"HotFixID": "KB934709", "Description": "Hotfix", "InstalledOn": None})
    found = run(greylist_hotfix_missing, demo_fleet(edit=edit, declared={"EXCH05": {"greylisting_peers": ["partner.example"]}}))
    f = found["EXCH05"]
    assert f.status == "present" and f.evidence["hotfix"] == "KB950757" and "934709" not in f.summary
    assert f.evidence["hotfix_ids"] == []


@pytest.mark.parametrize("hotfix_id, installed", [("kb950757", True), ("Q950757", True), ("KB950757-v2", True),
                                                  ("KB9507570", False), ("KB95075", False)])
def test_greylist_hotfix_id_variants(demo_fleet, hotfix_id, installed):
    def edit(s):
        s["EXCH05"]["items"]["hotfixes"].append({"HotFixID": hotfix_id, "Description": "Hotfix", "InstalledOn": None})
    f = run(greylist_hotfix_missing, demo_fleet(edit=edit))["EXCH05"]
    assert f.status == ("absent" if installed else "present")


def test_greylist_no_greylisting_anywhere(demo_fleet):
    found = run(greylist_hotfix_missing, demo_fleet(edit=_no_greylisting))
    assert statuses(found)["EXCH03"] == "absent" and "not needed" in found["EXCH03"].summary
    # EXCH07's old queue files are explained by its stopped SMTP service, not by held messages.
    assert found["EXCH07"].status == "absent"
    found = run(greylist_hotfix_missing, demo_fleet(edit=_no_greylisting, declared={"RELAY01": {"greylists": True}}))
    assert found["EXCH05"].status == "present" and found["EXCH05"].evidence["greylisting_peers"]["RELAY01"].startswith("inventory")
    assert found["EXCH03"].status == "absent"  # it greylists, but EXCH03 has no mail for it


def _smtp_runs(snaps, host):
    snaps[host]["items"]["services"]["SMTPSVC"].update(state="running", start_mode="auto")


def test_greylist_old_queue_files_alone_are_not_kb950757(demo_fleet):
    """KB 950757's held messages sit in the store's SMTP Temp tables, invisible in ESM, after a greylisting 4.7.1:
    old .EML files in an Exchange 2003 queue folder are not its signature, with SMTP running or not."""
    def edit(s):
        _no_greylisting(s)
        _smtp_runs(s, "EXCH07")  # the case: a corrupt MetaBase.xml, SMTP up, files hours old
        s["EXCH05"]["items"]["smtp_links"] = []  # old files, no link in retry: "in no visible queue"
    found = run(greylist_hotfix_missing, demo_fleet(edit=edit))
    for host in ("EXCH05", "EXCH07"):
        f = found[host]
        assert f.status == "absent" and f.evidence["stale_queue_messages"]["count"] >= 1, host
        assert "not KB 950757's signature" in f.summary, host


def test_greylist_relay_queue_files_explained_by_a_corrupt_metabase_or_stopped_smtp(demo_fleet):
    def corrupt(s):
        s["RELAY01"]["items"]["metabase"]["text"] = s["RELAY01"]["items"]["metabase"]["text"][:400]
    f = run(greylist_hotfix_missing, demo_fleet(edit=corrupt))["RELAY01"]
    assert f.status == "absent" and "metabase_corrupt" in f.evidence["stale_queue_messages"]["explained_by"]

    def stopped(s):
        s["RELAY01"]["items"]["services"]["SMTPSVC"]["state"] = "stopped"
    f = run(greylist_hotfix_missing, demo_fleet(edit=stopped))["RELAY01"]
    assert f.status == "absent" and f.evidence["stale_queue_messages"]["explained_by"] == "SMTPSVC is not running"


def test_greylist_hotfixes_failed_unreachable_and_kinds(demo_fleet):
    f = run(greylist_hotfix_missing, demo_fleet(edit=lambda s: fail_item(s, "EXCH03", "hotfixes")))["EXCH03"]
    assert f.status == "unknown" and "hotfixes" in f.reason

    def edit(s):
        s["EXCH03"] = None
        s["EXCH04"]["platform"]["kind"] = "exchange2000"
        s["RELAY01"]["platform"]["os"]["version"] = "5.0.2195"
    found = run(greylist_hotfix_missing, demo_fleet(edit=edit))
    assert found["EXCH03"].status == "unknown"
    assert found["EXCH04"].status == "not_applicable" and found["RELAY01"].status == "not_applicable"


# -- Q175982: Exchange 5.x IMS connection leak


def _serial(snaps, text):
    for snap in snaps.values():
        for entry in ((snap or {}).get("items") or {}).get("ad_exchange_servers") or []:
            if entry["attrs"]["cn"] == ["EXCH55"]:
                entry["attrs"]["serialNumber"] = [text] if text else []


def test_ims_demo(demo_fleet):
    found = run(ims_connection_leak, demo_fleet())
    assert statuses(found) == {**{h: "not_applicable" for h in HOSTS}, "EXCH55": "present"}
    f = found["EXCH55"]
    # Q242221 (the 5.5 SP1 fix list) names Q175982: SP1, build 2232, is the first fixed 5.5 build.
    assert (f.evidence["build"], f.evidence["fixed_build"]) == (1960, 2232)
    assert f.evidence["connections"] is None and "not managed" in f.evidence["connections_note"]
    assert "could not be read" in f.summary and f.severity == "medium" and f.confidence == "confirmed"
    assert f.evidence["exchange"]["service_pack"] is None and "unsupported" not in f.evidence
    assert f.evidence["windows_version"] is None  # unmanaged and not declared: nothing said about Q253249


@pytest.mark.parametrize("serial", ["Version 5.5 (Build 2232.4: Service Pack 1)", "Version 5.5 (Build 2448.8: Service Pack 2)",
                                    "Version 5.5 (Build 2653.23: Service Pack 4)"])
def test_ims_build_at_or_past_the_fix_is_absent(demo_fleet, serial):
    f = run(ims_connection_leak, demo_fleet(edit=lambda s: _serial(s, serial)))["EXCH55"]
    assert f.status == "absent" and f.confidence == "confirmed"


@pytest.mark.parametrize("serial,status,unsupported", [
    ("Version 5.5 (Build 2232.4: Service Pack 1)", "present", True),   # leak fixed, but below SP3 on Windows 2000
    ("Version 5.5 (Build 2448.8: Service Pack 2)", "present", True),
    ("Version 5.5 (Build 2650.24: Service Pack 3)", "absent", False),
    ("Version 5.5 (Build 1960.4)", "present", True),                   # leaky and unsupported: both said
])
def test_ims_exchange55_below_sp3_on_windows_2000_is_unsupported(demo_fleet, serial, status, unsupported):
    """Q253249: on Windows 2000 only Exchange 5.5 SP3 (2650) or later is supported; the inventory says the OS."""
    f = run(ims_connection_leak, demo_fleet(edit=lambda s: _serial(s, serial),
                                            declared={"EXCH55": {"windows_version": "5.0"}}))["EXCH55"]
    assert f.status == status and ("unsupported" in f.evidence) is unsupported
    if unsupported:
        assert "Q253249" in f.summary and f.evidence["unsupported"]["min_build_on_windows_2000"] == 2650
    if unsupported and "1960" not in serial:
        assert f.summary.startswith("unsupported:") and "Q175982 fix" in f.summary and f.severity == "medium"
        assert f.explains == []  # no leak: no peer's stalled mail is put on it
    # On Windows NT 4.0 the same SP1 build is simply fixed.
    f = run(ims_connection_leak, demo_fleet(edit=lambda s: _serial(s, "Version 5.5 (Build 2232.4: Service Pack 1)"),
                                            declared={"EXCH55": {"windows_version": "4.0"}}))["EXCH55"]
    assert f.status == "absent"


def test_ims_build_from_the_banner_then_nothing(demo_fleet):
    f = run(ims_connection_leak, demo_fleet(edit=lambda s: _serial(s, None)))["EXCH55"]
    assert f.status == "present" and "banner" in f.evidence["exchange"]["source"]

    def nothing(s):
        _serial(s, None)
        for snap in s.values():
            if snap:
                snap["probes"] = [p for p in snap["probes"] if p["peer"] != "EXCH55"]
    assert run(ims_connection_leak, demo_fleet(edit=nothing))["EXCH55"].status == "unknown"

    def no_banner(s):  # AD still says 5.5 SP1, but no probe shows an IMS: it is optional on 5.x
        for snap in s.values():
            if snap:
                snap["probes"] = [p for p in snap["probes"] if p["peer"] != "EXCH55"]
    f = run(ims_connection_leak, demo_fleet(edit=no_banner))["EXCH55"]
    assert f.status == "unknown" and "IMS banner" in f.reason

    def fixed_no_banner(s):  # a fixed build cannot leak, IMS or not
        no_banner(s)
        _serial(s, "Version 5.5 (Build 2653.23: Service Pack 4)")
    assert run(ims_connection_leak, demo_fleet(edit=fixed_no_banner))["EXCH55"].status == "absent"
    f = run(ims_connection_leak, demo_fleet(edit=nothing, declared={"EXCH55": {"platform": "exchange55"}}))["EXCH55"]
    assert f.status == "unknown" and "build" in f.reason


def _managed_55(addresses, connections):
    """EXCH55 as if it had WinRM: RELAY01's snapshot recast as a 5.5 server before SP1 with these port-25 connections."""
    def edit(s):
        snap = copy.deepcopy(s["RELAY01"])
        snap["host"] = "EXCH55"
        snap["platform"].update(computer_name="EXCH55", kind="exchange55",
                                exchange={"version": "5.5", "build": "1960.4", "service_pack": None, "source": "ad:serialNumber"})
        snap["probes"] = []
        if connections is None:
            fail_item({"EXCH55": snap}, "EXCH55", "smtp_connections", "Access is denied")
        else:
            snap["items"]["smtp_connections"] = [
                {"local": f"{addresses['EXCH55']}:{1031 + i}",
                 "remote": f"{addresses[peer]}:25", "state": state} for i, (peer, state) in enumerate(connections)]
        s["EXCH55"] = snap
    return edit


def test_ims_managed_with_leaked_connections(demo_addresses, demo_fleet):
    conns = [("RELAY01", "Established")] * 3 + [("EXCH01", "Established"), ("EXCH01", "TimeWait")]
    f = run(ims_connection_leak, demo_fleet(edit=_managed_55(demo_addresses, conns)))["EXCH55"]
    assert f.status == "present" and f.severity is None and len(f.evidence["connections"]) == 4
    assert f.explains == ["EXCH01", "RELAY01"]

    f = run(ims_connection_leak, demo_fleet(edit=_managed_55(demo_addresses, [("RELAY01", "Established")])))["EXCH55"]
    assert f.status == "present" and f.severity == "medium" and "not seen yet" in f.summary

    f = run(ims_connection_leak, demo_fleet(edit=_managed_55(demo_addresses, None)))["EXCH55"]
    assert f.status == "present" and f.evidence["connections"] is None and "smtp_connections" in f.evidence["connections_note"]


# -- KB 919091 cause 6: corrupt metabase


def test_metabase_demo(demo_fleet):
    found = run(metabase_corrupt, demo_fleet())
    assert statuses(found) == {**{h: "absent" for h in HOSTS}, "EXCH07": "present", "EXCH55": "not_applicable"}
    f = found["EXCH07"]
    assert "not well-formed" in f.evidence["parse_error"] and f.confidence == "confirmed"
    assert [(p["major"], p["minor"]) for p in f.evidence["history_pairs"]] == [(5, 0), (4, 0)]
    assert f.evidence["history_pairs"][0]["schema"].endswith("MBSchema_0000000005_0000000000.xml")
    assert f.evidence["metabase_file"]["size"] > 0 and f.evidence["metabase_file"]["mtime"]
    assert "other causes do not apply" in f.summary
    # Masked EHLO (PIX01 between EXCH08 and EXCH04) does not count as an EHLO without Exchange verbs.
    assert "EXCH08" not in found["EXCH04"].evidence["ehlo"]["checked"] and found["EXCH04"].evidence["ehlo"]["complete"]


def test_metabase_binary_is_present_unread_is_unknown(demo_fleet):
    def binary(s):
        s["EXCH01"]["items"]["metabase"]["text"] = None
    assert run(metabase_corrupt, demo_fleet(edit=binary))["EXCH01"].status == "present"
    f = run(metabase_corrupt, demo_fleet(edit=lambda s: fail_item(s, "EXCH01", "metabase")))["EXCH01"]
    assert f.status == "unknown" and "metabase" in f.reason

    def not_found(s):
        s["EXCH01"]["items"]["metabase"] = None
    assert run(metabase_corrupt, demo_fleet(edit=not_found))["EXCH01"].status == "unknown"

    def gone(s):
        s["EXCH01"] = None
    assert run(metabase_corrupt, demo_fleet(edit=gone))["EXCH01"].status == "unknown"


def _second_vs(s, host, in_metabase=True, in_ad=True):
    if in_metabase:
        mb = s[host]["items"]["metabase"]
        mb["text"] = mb["text"].replace("</MBProperty>", '<IIsSmtpServer\tLocation ="/LM/SmtpSvc/2"\n\t\tServerComment="Second"\n\t>\n'
                                        "</IIsSmtpServer>\n</MBProperty>")
    if in_ad:
        for snap in s.values():
            entries = ((snap or {}).get("items") or {}).get("ad_smtp_virtual_servers") or []
            first = next((e for e in entries if f"CN={host}," in e["dn"]), None)
            if first is None:
                continue
            second = copy.deepcopy(first)
            second["dn"], second["attrs"]["cn"] = first["dn"].replace("CN=1,", "CN=2,", 1), ["2"]
            entries.append(second)


def test_metabase_several_virtual_servers(demo_fleet):
    f = run(metabase_corrupt, demo_fleet(edit=lambda s: _second_vs(s, "EXCH01")))["EXCH01"]
    assert f.status == "absent" and f.evidence["smtp_virtual_servers"] == ["1", "2"]
    f = run(metabase_corrupt, demo_fleet(edit=lambda s: _second_vs(s, "EXCH01", in_metabase=False)))["EXCH01"]
    assert f.status == "present" and f.evidence["missing_keys"] == ["/LM/SmtpSvc/2 (in AD)"] and f.confidence == "inferred"


def test_metabase_smtp_keys_missing(demo_fleet):
    def edit(s):
        for host in ("EXCH01", "RELAY01"):
            mb = s[host]["items"]["metabase"]
            mb["text"] = mb["text"][:mb["text"].index("<IIsSmtpServer")] + "</MBProperty>\n</configuration>\n"
    found = run(metabase_corrupt, demo_fleet(edit=edit))
    assert found["EXCH01"].status == "present" and found["RELAY01"].status == "present"
    assert "/LM/SmtpSvc/1 (in AD)" in found["EXCH01"].evidence["missing_keys"]


def _strip_verbs(s, target, sources):
    for src in sources:
        for p in s[src]["probes"]:
            if p["peer"] == target:
                p["ehlo"] = "\n".join(line for line in p["ehlo"].split("\n") if "X-LINK2STATE" not in line and "XEXCH50" not in line)


def test_metabase_ehlo_verbs(demo_fleet):
    everyone = [h for h in HOSTS if h not in ("EXCH01", "EXCH55")]
    f = run(metabase_corrupt, demo_fleet(edit=lambda s: _strip_verbs(s, "EXCH01", everyone)))["EXCH01"]
    assert f.status == "present" and f.confidence == "confirmed"
    assert f.evidence["ehlo"]["lacking"]["EXCH02"] == ["X-LINK2STATE", "XEXCH50"]
    # Only some peers miss the verbs: a device on their path is likelier than the metabase.
    f = run(metabase_corrupt, demo_fleet(edit=lambda s: _strip_verbs(s, "EXCH01", ["EXCH02"])))["EXCH01"]
    assert f.status == "absent" and list(f.evidence["ehlo"]["lacking"]) == ["EXCH02"]
    # A relay has no Exchange verbs to advertise.
    f = run(metabase_corrupt, demo_fleet(edit=lambda s: _strip_verbs(s, "RELAY01", everyone[:-1])))["RELAY01"]
    assert f.status == "absent" and "ehlo" not in f.evidence


def test_metabase_history_variants(demo_fleet):
    def half_pair(s):
        s["EXCH07"]["items"]["metabase_history"]["files"] = [
            f for f in s["EXCH07"]["items"]["metabase_history"]["files"] if "MBSchema_0000000005" not in f["path"]]
    f = run(metabase_corrupt, demo_fleet(edit=half_pair))["EXCH07"]
    assert [p["major"] for p in f.evidence["history_pairs"]] == [4]
    f = run(metabase_corrupt, demo_fleet(edit=lambda s: fail_item(s, "EXCH07", "metabase_history")))["EXCH07"]
    assert f.status == "present" and f.evidence["history_pairs"] == [] and "metabase_history" in f.evidence["history_note"]


def test_a_hotfix_never_ranks_before_a_corrupt_metabase(demo_fleet):
    """EXCH07 with SMTP up and mail for a greylisting peer: the corrupt MetaBase.xml (IIS cannot load SMTP's
    configuration) explains its stalled mail first, so the hotfix is ranked after metabase_corrupt."""
    from ansible_collections.mailflow.exchange.plugins.module_utils import audit, symptoms

    fleet = demo_fleet(edit=lambda s: _smtp_runs(s, "EXCH07"), declared={"EXCH07": {"greylisting_peers": ["partner.example"]}})
    found = [run(m, fleet)["EXCH07"] for m in (greylist_hotfix_missing, metabase_corrupt)]
    assert [f.status for f in found] == ["present", "present"]
    audit.rank(found, symptoms.of_host(fleet, fleet["EXCH07"]))
    assert {f.cause.id: f.rank for f in found} == {"metabase_corrupt": 1, "greylist_hotfix_missing": 2}
