"""Cross-host and configuration detectors over real demo-lab snapshots, and edited copies of them."""
from __future__ import annotations

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils import audit, symptoms
from ansible_collections.mailflow.exchange.plugins.module_utils.causes import (
    cisco_smtp_inspection, glitch_retry_short, peer_smtp_unavailable, port25_blocked, smarthost_misconfigured,
    smtp_banner_missing, stnef_legacy_peer)
from ansible_collections.mailflow.exchange.plugins.module_utils.fleet import classify_probe, ehlo_verbs

FW = r"HKLM\SYSTEM\CurrentControlSet\Services\SharedAccess\Parameters\FirewallPolicy"


def statuses(module, fleet):
    return {f.host: f.status for f in module.detect(fleet)}


def by_host(module, fleet):
    return {f.host: f for f in module.detect(fleet)}


def probes_of(snaps, src, peer):
    return next(p for p in snaps[src]["probes"] if p["peer"] == peer)


# -- probe classification

@pytest.mark.parametrize("probe,result", [
    ({"connect": "refused"}, "refused"),
    ({"connect": "timeout"}, "filtered"),
    ({"connect": "unresolved"}, "unresolved"),
    ({"connect": "ok", "banner": ""}, "no_banner"),
    ({"connect": "ok", "banner": "220 ****0********************2****", "ehlo": ""}, "masked"),
    ({"connect": "ok", "banner": "220 mail.example ESMTP", "ehlo": "500 5.5.1 Command unrecognized"}, "masked"),
    ({"connect": "ok", "banner": "421 4.3.2 Service not available"}, "rejected"),
    ({"connect": "ok", "banner": "220 x ESMTP", "ehlo": "250 OK", "mail": "250 ok", "rcpt": "450 4.7.1 Greylisted"}, "greylisted"),
    ({"connect": "ok", "banner": "220 x ESMTP", "ehlo": "250 OK", "mail": "250 ok", "rcpt": "250 ok"}, "banner"),
])
def test_classify_probe(probe, result):
    assert classify_probe(probe) == result


def test_ehlo_verbs():
    assert ehlo_verbs({"ehlo": "250-x Hello\n250-BINARYMIME\n250-AUTH=LOGIN\n250 CHUNKING"}) == {"BINARYMIME", "AUTH", "CHUNKING"}


# -- the demo fleet, exactly

def test_demo_banner_cisco_port25_unavailable(demo_fleet):
    fleet = demo_fleet()
    assert {h for h, s in statuses(smtp_banner_missing, fleet).items() if s == "present"} == {"EXCH06"}
    assert {h for h, s in statuses(cisco_smtp_inspection, fleet).items() if s == "present"} == {"EXCH01", "EXCH04", "EXCH08"}
    assert {h for h, s in statuses(port25_blocked, fleet).items() if s == "present"} == {"EXCH03", "EXCH05", "EXCH08"}
    assert {h for h, s in statuses(peer_smtp_unavailable, fleet).items() if s == "present"} == {"EXCH07"}
    p25 = by_host(port25_blocked, fleet)
    assert p25["EXCH03"].evidence["blocker"] == "windows_firewall"
    assert p25["EXCH08"].evidence["blocker"] == "network" and p25["EXCH08"].explains == ["EXCH05"]
    banner = by_host(smtp_banner_missing, fleet)["EXCH06"]
    assert banner.evidence["connect_response"] == {"1": ""} and len(banner.explains) == 8


def test_demo_smarthost_stnef_glitch(demo_fleet):
    fleet = demo_fleet()
    assert statuses(smarthost_misconfigured, fleet) == {
        **{h: "absent" for h in ("EXCH01", "EXCH02", "EXCH03", "EXCH05", "EXCH06", "EXCH07", "EXCH08", "RELAY01")},
        "EXCH04": "present", "EXCH55": "not_applicable"}
    assert {h for h, s in statuses(stnef_legacy_peer, fleet).items() if s == "present"} == {"EXCH05"}
    stnef = by_host(stnef_legacy_peer, fleet)["EXCH05"]
    assert stnef.evidence["legacy_peers"]["EXCH55"]["advertises"] == [] and stnef.confidence == "inferred"
    glitch = by_host(glitch_retry_short, fleet)
    assert {h for h, f in glitch.items() if f.status == "present"} == {"EXCH05"}
    assert glitch["EXCH05"].evidence["effective_seconds"] == 30 and glitch["EXCH05"].explains == ["RELAY01"]
    # It says what the audit knows (the value, the retry schedule, who deferred a probe), never when a peer accepts.
    summary = glitch["EXCH05"].summary
    assert "three times 30 s apart" in summary and "within 90 s" in summary and "RELAY01: " in summary
    assert "accepts" not in summary
    assert glitch["EXCH01"].status == "absent" and "no greylisting peer is in use" in glitch["EXCH01"].summary


# -- edge cases on edited snapshots

def test_nobody_probed_is_unknown_and_a_failed_item_names_itself(demo_fleet):
    def no_probes(snaps):
        for s in snaps.values():
            if s:
                s["probes"] = []
        snaps["EXCH05"]["items"].pop("smtpsvc_queuing")
        snaps["EXCH05"]["errors"]["smtpsvc_queuing"] = "Access is denied"
    fleet = demo_fleet(edit=no_probes)
    assert set(statuses(port25_blocked, fleet).values()) == {"unknown"}
    f = by_host(glitch_retry_short, fleet)["EXCH05"]
    assert f.status == "unknown" and "smtpsvc_queuing" in f.reason and "Access is denied" in f.reason


def test_glitch_wrong_type_and_declared_greylisting(demo_fleet):
    def as_string(snaps):
        q = snaps["EXCH05"]["items"]["smtpsvc_queuing"]
        next(iter(q.values()))["values"]["GlitchRetrySeconds"] = {"type": "REG_SZ", "data": "600"}
    f = by_host(glitch_retry_short, demo_fleet(edit=as_string))["EXCH05"]
    assert f.status == "present" and f.evidence["effective_seconds"] == 60 and "not a REG_DWORD" in f.summary

    def long_enough(snaps):
        next(iter(snaps["EXCH05"]["items"]["smtpsvc_queuing"].values()))["values"]["GlitchRetrySeconds"]["data"] = 300
    assert by_host(glitch_retry_short, demo_fleet(edit=long_enough))["EXCH05"].status == "absent"
    # A host with the default 60 s whose admin says its partner greylists.
    f = by_host(glitch_retry_short, demo_fleet(declared={"EXCH01": {"greylisting_peers": ["mx.partner.example"]}}))["EXCH01"]
    assert f.status == "present" and "mx.partner.example" in f.summary
    # The threshold is a setting the inventory can change.
    f = by_host(glitch_retry_short, demo_fleet(knowledge={"detect": {"glitch_retry_min_seconds": {"value": 20}}}))["EXCH05"]
    assert f.status == "absent"


def test_windows_firewall_opened_by_program_or_in_domain_profile(demo_fleet):
    def inetinfo_allowed(snaps):
        items = snaps["EXCH03"]["items"]["firewall_policy"]
        items[FW + r"\StandardProfile\AuthorizedApplications\List"] = {"subkeys": [], "values": {
            r"C:\WINDOWS\system32\inetsrv\inetinfo.exe": {"type": "REG_SZ", "data": r"C:\WINDOWS\system32\inetsrv\inetinfo.exe:*:Enabled:IIS"}}}
    f = by_host(port25_blocked, demo_fleet(edit=inetinfo_allowed))["EXCH03"]
    assert f.status == "present" and f.evidence["blocker"] == "network"  # the Windows Firewall no longer explains it

    def domain_profile_blocks(snaps):
        items = snaps["EXCH01"]["items"]["firewall_policy"]
        items[FW + r"\DomainProfile"] = {"subkeys": [], "values": {"EnableFirewall": {"type": "REG_DWORD", "data": 1}}}
        for s in snaps.values():
            for p in (s or {}).get("probes", []):
                if p["peer"] == "EXCH01":
                    p.update(connect="timeout", banner="", ehlo="", mail="", rcpt="")
    f = by_host(port25_blocked, demo_fleet(edit=domain_profile_blocks))["EXCH01"]
    assert f.status == "present" and f.evidence["blocker"] == "windows_firewall"
    assert f.evidence["windows_firewall"]["profiles"]["DomainProfile"]["blocks_25"] is True


@pytest.mark.parametrize("value,problem", [
    ("[10.1.1.1]", None),
    ("mail.example.com;[10.1.1.1]", None),
    ("10.1.1.1", "must be in brackets"),
    ("[10.1.1.1];mail.example.com", "FQDN entries must come before IP entries"),
    ("mail.example.com,[10.1.1.1]", "separate smart hosts with ';'"),
    ("[mail.example.com]", "brackets are for IP addresses only"),
    ("mailhost", "not a fully qualified domain name"),
    ("mail.example.com;;", "an empty entry"),
])
def test_smarthost_syntax(value, problem):
    problems = smarthost_misconfigured.smarthost_problems(value)
    assert (problems == []) if problem is None else any(problem in p for p in problems), problems


def test_smarthost_expected_value_and_unreachable_smarthost(demo_fleet):
    f = by_host(smarthost_misconfigured, demo_fleet(declared={"EXCH01": {"smarthost_expected": "[10.0.0.25]"}}))["EXCH01"]
    assert f.status == "present" and "mailflow_smarthost_expected" in f.summary

    def smarthost_is_exch07(snaps):
        for e in snaps["EXCH01"]["items"]["ad_smtp_virtual_servers"]:
            if ",CN=EXCH01," in e["dn"]:
                e["attrs"].update(msExchSmtpSmartHost=["exch07.corp.example"], msExchSmtpSmartHostType=["2"])
    f = by_host(smarthost_misconfigured, demo_fleet(edit=smarthost_is_exch07))["EXCH01"]
    assert f.status == "present" and "did not answer SMTP from EXCH01: refused" in f.summary


def test_stnef_setting_from_the_inventory_clears_it(demo_fleet):
    setting = {"item": "transport_parameters", "name": "NonSMTPDomainEncoding", "data": 1}

    def set_value(snaps):
        next(iter(snaps["EXCH05"]["items"]["transport_parameters"].values()))["values"]["NonSMTPDomainEncoding"] = {"type": "REG_DWORD", "data": 1}
    knowledge = {"detect": {"stnef_tnef_setting": {"value": setting}}}
    assert by_host(stnef_legacy_peer, demo_fleet(knowledge=knowledge))["EXCH05"].status == "present"
    f = by_host(stnef_legacy_peer, demo_fleet(edit=set_value, knowledge=knowledge))["EXCH05"]
    assert f.status == "absent" and f.confidence == "unconfirmed"


def test_service_missing_or_unreadable(demo_fleet):
    def no_smtpsvc(snaps):
        snaps["EXCH01"]["items"]["services"]["SMTPSVC"] = None
        snaps["EXCH02"]["items"].pop("services")
        snaps["EXCH02"]["errors"]["services"] = "RPC server unavailable"
    f = by_host(peer_smtp_unavailable, demo_fleet(edit=no_smtpsvc))
    assert f["EXCH01"].status == "present" and "not installed" in f["EXCH01"].summary
    assert f["EXCH02"].status == "unknown" and "RPC server unavailable" in f["EXCH02"].reason


# -- symptoms, ranking, fail_on

def test_symptoms_of_the_demo(demo_fleet):
    fleet = demo_fleet()
    ev = symptoms.events_4006(fleet, fleet["EXCH05"])
    assert ev["count"] == 3 and ev["remote_hosts"] == ["EXCH01", "EXCH55"] and ev["per_remote"][0]["address"].endswith(".19")
    q = symptoms.queue_retry(fleet, fleet["EXCH08"])
    assert q["remote_hosts"] == ["EXCH04", "EXCH05"]
    stale = symptoms.stale_messages(fleet, fleet["EXCH07"])
    assert stale["count"] == 2 and stale["seen_in_queues"] is False and stale["oldest_minutes"] >= 9 * 60 - 1
    assert symptoms.parse_time("20261123073508.000000+000").hour == 7


def test_should_fail():
    doc = {"hosts": {"A": {"findings": [{"cause": "x", "status": "present"}, {"cause": "y", "status": "unknown"}]}}}
    assert audit.should_fail(doc, "never") == []
    assert audit.should_fail(doc, "present") == ["A: x present"]
    assert len(audit.should_fail(doc, "unknown")) == 2
    with pytest.raises(audit.AuditError, match="mailflow_fail_on"):
        audit.should_fail(doc, "sometimes")


def test_cisco_finding_carries_the_senders_stalled_queue(demo_fleet):
    fleet = demo_fleet()
    f = by_host(cisco_smtp_inspection, fleet)["EXCH01"]
    # No firewall facts in-process: inferred from the masking alone; the stall is EXCH05's own evidence.
    assert f.status == "present" and f.explains == ["EXCH05"]
    stalled = cisco_smtp_inspection.stalled_senders(fleet, fleet["EXCH01"], ["EXCH05", "EXCH02"])
    assert stalled == [{"from": "EXCH05", "event_4006": 1, "link_in_retry": True, "oldest": stalled[0]["oldest"]}]
