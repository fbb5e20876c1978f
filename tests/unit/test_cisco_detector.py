"""cisco_smtp_inspection over firewall facts and probes: which device, rule and interface, and when it is only inferred."""
from __future__ import annotations

import json

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils import audit, firewalls, knowledge
from ansible_collections.mailflow.exchange.plugins.module_utils.causes import cisco_smtp_inspection

MASKED = {"connect": "ok", "banner": "220 ****************0*****2****", "ehlo": "500 5.5.1 Command unrecognized"}
CLEAR = {"connect": "ok", "banner": "220 exch.corp.example Microsoft ESMTP MAIL Service ready", "ehlo": "250-x\n250 OK",
         "mail": "250 ok", "rcpt": "250 ok"}

IOS = """Building configuration...
!
version 12.4
hostname FW01
!
ip inspect name MAILFW smtp alert on timeout 300
ip inspect name MAILFW tcp
ip inspect name LEGACY smtp
!
interface FastEthernet0/0
 description EXCH05 side
 ip address 10.1.5.1 255.255.255.0
 ip inspect MAILFW in
!
interface FastEthernet0/1
 description EXCH01 side
 ip address 10.1.1.1 255.255.255.0
!
end
"""
PIX = """PIX Version 6.3(5)
nameif ethernet0 outside security0
nameif ethernet1 inside security100
hostname PIX01
fixup protocol smtp 25
ip address outside 10.2.8.1 255.255.255.0
ip address inside 10.2.4.1 255.255.255.0
: end
"""
ASA = """ASA Version 8.2(5)
hostname ASA01
interface GigabitEthernet0/0
 nameif outside
 ip address 10.3.8.1 255.255.255.0
interface GigabitEthernet0/1
 nameif inside
 ip address 10.3.4.1 255.255.255.0
class-map inspection_default
 match default-inspection-traffic
policy-map global_policy
 class inspection_default
  inspect esmtp
service-policy global_policy global
: end
"""


def snap(name, probes):
    return {"schema": "mailflow.snapshot/1", "platform": {"computer_name": name}, "probes": probes}


def host(name, address, probes=None):
    return {"name": name, "managed": True, "fqdn": f"{name.lower()}.corp.example", "address": address,
            "snapshot": snap(name, [{"peer": peer, **raw} for peer, raw in (probes or {}).items()]), "error": None}


def decide(hosts, fws):
    fleet = audit.fleet_from(hosts, knowledge.load({}), fws)
    return {f.host: f for f in cisco_smtp_inspection.detect(fleet)}


def doc_of(found):
    return {"hosts": {h: {"findings": [f.to_dict()]} for h, f in found.items()}}


def ios_facts(segments=None, text=IOS):
    return firewalls.facts_from_config("FW01", text, source="device", segments=segments)


def test_masked_and_config_agree_names_firewall_rule_interface():
    hosts = [host("EXCH01", "10.1.1.10", {"EXCH05": CLEAR}), host("EXCH05", "10.1.5.10", {"EXCH01": MASKED})]
    found = decide(hosts, [ios_facts()])
    f = found["EXCH01"]
    assert f.status == "present" and f.confidence == "confirmed"
    assert "FW01" in f.summary and "ip inspect name MAILFW smtp alert on timeout 300" in f.summary
    assert "in on FastEthernet0/0" in f.summary and "no ip inspect name MAILFW smtp" in f.summary
    [c] = f.evidence["crossings"]
    assert (c["from"], c["firewall"], c["rule"], c["interface"], c["direction"]) == ("EXCH05", "FW01", "MAILFW", "FastEthernet0/0", "in")
    # `in` on EXCH05's side inspects what EXCH05 starts; EXCH01 -> EXCH05 is not inspected, and its probe was clear.
    assert found["EXCH05"].status == "absent"


def test_segments_from_inventory_win_over_subnets():
    hosts = [host("EXCH01", "192.0.2.1", {"EXCH05": CLEAR}), host("EXCH05", "192.0.2.5", {"EXCH01": MASKED})]
    assert decide(hosts, [ios_facts()])["EXCH01"].confidence == "inferred"   # addresses outside every subnet
    found = decide(hosts, [ios_facts({"FastEthernet0/0": ["EXCH05"], "FastEthernet0/1": ["exch01.corp.example"]})])
    assert found["EXCH01"].confidence == "confirmed"


def test_rule_defined_but_not_applied_is_not_blamed():
    text = IOS.replace(" ip inspect MAILFW in\n", "")
    hosts = [host("EXCH01", "10.1.1.10", {"EXCH05": CLEAR}), host("EXCH05", "10.1.5.10", {"EXCH01": CLEAR})]
    found = decide(hosts, [ios_facts(text=text)])
    assert found["EXCH01"].status == "absent" and "crossings" not in found["EXCH01"].evidence


def test_esmtp_inspection_does_not_break_esmtp_on_ios():
    text = IOS.replace("ip inspect name MAILFW smtp alert on timeout 300", "ip inspect name MAILFW esmtp")
    hosts = [host("EXCH01", "10.1.1.10"), host("EXCH05", "10.1.5.10", {"EXCH01": CLEAR})]
    assert decide(hosts, [ios_facts(text=text)])["EXCH01"].status == "absent"


def test_config_without_masked_probe_is_inferred_and_says_so():
    hosts = [host("EXCH01", "10.1.1.10"), host("EXCH05", "10.1.5.10", {"EXCH01": CLEAR})]
    f = decide(hosts, [ios_facts()])["EXCH01"]
    assert f.status == "present" and f.confidence == "inferred" and "saw a clear banner" in f.summary


def test_masked_without_any_firewall_read():
    hosts = [host("EXCH01", "10.1.1.10"), host("EXCH05", "10.1.5.10", {"EXCH01": MASKED})]
    f = decide(hosts, [])["EXCH01"]
    assert f.status == "present" and f.confidence == "inferred" and "no firewall config was read" in f.summary


def test_unplaced_firewall_is_named_with_what_to_set():
    hosts = [host("EXCH01", "172.16.0.1"), host("EXCH05", "172.16.0.5", {"EXCH01": MASKED})]
    f = decide(hosts, [ios_facts()])["EXCH01"]
    assert f.confidence == "inferred" and "mailflow_firewall_segments" in f.summary
    assert f.evidence["firewalls_unplaced"] == ["FW01"]


def test_unreadable_firewall_is_listed():
    hosts = [host("EXCH01", "10.1.1.10"), host("EXCH05", "10.1.5.10", {"EXCH01": MASKED})]
    fws = [firewalls.failed_facts("FW01", "show running-config failed: timeout", "device")]
    f = decide(hosts, fws)["EXCH01"]
    assert f.evidence["firewalls_unread"] == {"FW01": "show running-config failed: timeout"}


@pytest.mark.parametrize("name,text,segments,remedy", [
    ("PIX01", PIX, {"outside": ["EXCH08"], "inside": ["EXCH04"]}, "no fixup protocol smtp 25"),
    ("ASA01", ASA, None, "no inspect esmtp"),
])
def test_pix_and_asa_are_global_and_carry_lines_to_paste(name, text, segments, remedy):
    octet = {"PIX01": "2", "ASA01": "3"}[name]
    hosts = [host("EXCH04", f"10.{octet}.4.10", {"EXCH08": MASKED}), host("EXCH08", f"10.{octet}.8.10", {"EXCH04": MASKED})]
    fws = [firewalls.facts_from_config(name, text, source="file", segments=segments)]
    found = decide(hosts, fws)
    for h in ("EXCH04", "EXCH08"):
        assert found[h].status == "present" and found[h].confidence == "confirmed"
        assert remedy in found[h].summary and found[h].evidence["crossings"][0]["direction"] == "global"
    assert audit.firewalls_to_fix(doc_of(found)) == {}          # only IOS devices have a fix role
    report = audit._firewall(fws[0])
    assert report["inspections"][0]["remediation"][-1].strip() == remedy
    # Never the config itself: none of its other lines reach the report.
    assert "config" not in report and "nameif ethernet0 outside" not in json.dumps(report)


def test_firewalls_to_fix_names_the_ios_device():
    hosts = [host("EXCH01", "10.1.1.10", {"EXCH05": CLEAR}), host("EXCH05", "10.1.5.10", {"EXCH01": MASKED})]
    assert audit.firewalls_to_fix(doc_of(decide(hosts, [ios_facts()]))) == {"FW01": ["MAILFW"]}


def test_bad_segments_name_the_firewall():
    with pytest.raises(ValueError, match="FW01: mailflow_firewall_segments"):
        firewalls.check_segments("FW01", ["Fa0/0"])


def test_reports_list_the_firewalls_for_the_network_team():
    from ansible_collections.mailflow.exchange.plugins.module_utils.reports import html, markdown
    fws = [firewalls.facts_from_config("PIX01", PIX, source="file"),
           firewalls.failed_facts("FW09", "show running-config failed: auth", "device")]
    doc = {"schema": audit.SCHEMA, "generated": "2026-11-23T00:00:00Z", "check_mode": True, "causes": [],
           "hosts": {}, "peers": [], "summary": audit.summarise({}), "firewalls": [audit._firewall(f) for f in fws]}
    md = markdown._firewalls(doc)
    assert any("fixup protocol smtp 25" in line and "global" in line for line in md)
    assert any("not read: show running-config failed: auth" in line for line in md)
    page = html._firewalls(doc)
    assert "<code>no fixup protocol smtp 25</code>" in page and "FW09" in page


def test_out_binding_inspects_what_leaves_towards_the_receiver_only():
    text = IOS.replace(" ip inspect MAILFW in\n", "").replace(" description EXCH01 side\n", " description EXCH01 side\n ip inspect MAILFW out\n")
    hosts = [host("EXCH01", "10.1.1.10", {"EXCH05": CLEAR}), host("EXCH05", "10.1.5.10", {"EXCH01": MASKED})]
    found = decide(hosts, [ios_facts(text=text)])
    assert found["EXCH01"].confidence == "confirmed" and found["EXCH01"].evidence["crossings"][0]["direction"] == "out"
    assert found["EXCH05"].status == "absent"   # EXCH01 -> EXCH05 leaves by Fa0/0, where nothing is bound


def test_segment_keys_may_be_abbreviated_and_unknown_ones_are_reported():
    fw = firewalls.Firewall(ios_facts({"Fa0/0": ["EXCH05"], "fastethernet 0/1": ["EXCH01"], "Gi0/9": ["X"]}))
    assert fw.segment_of(("EXCH05",), None) == "FastEthernet0/0" and fw.segment_of(("exch01",), None) == "FastEthernet0/1"
    assert fw.unknown_segments() == ["Gi0/9"]


def test_a_pix_that_inspects_only_another_port_does_not_break_port_25():
    text = PIX.replace("fixup protocol smtp 25", "no fixup protocol smtp 25\nfixup protocol smtp 2525")
    hosts = [host("EXCH04", "10.2.4.10", {"EXCH08": CLEAR}), host("EXCH08", "10.2.8.10", {"EXCH04": CLEAR})]
    found = decide(hosts, [firewalls.facts_from_config("PIX01", text, source="file")])
    assert found["EXCH04"].status == "absent" and "crossings" not in found["EXCH04"].evidence


def test_the_narrowest_up_subnet_places_a_server():
    text = IOS.replace("interface FastEthernet0/1\n", "interface FastEthernet0/2\n ip address 10.1.0.1 255.255.0.0\n!\ninterface FastEthernet0/1\n")
    fw = firewalls.Firewall(ios_facts(text=text))
    assert fw.segment_of((), "10.1.1.10") == "FastEthernet0/1" and fw.segment_of((), "10.1.9.9") == "FastEthernet0/2"


def test_the_fix_gets_only_the_rules_confirmed_findings_blame():
    text = IOS.replace("ip inspect name LEGACY smtp\n", "ip inspect name LEGACY smtp\nip inspect name INTERNET smtp\n") \
              .replace("end\n", "interface Serial0/0\n ip address 198.51.100.2 255.255.255.252\n ip inspect INTERNET in\n!\nend\n")
    hosts = [host("EXCH01", "10.1.1.10", {"EXCH05": CLEAR}), host("EXCH05", "10.1.5.10", {"EXCH01": MASKED})]
    assert audit.firewalls_to_fix(doc_of(decide(hosts, [ios_facts(text=text)]))) == {"FW01": ["MAILFW"]}
    # A config-only (inferred) finding blames nothing the fix may change on its own.
    hosts = [host("EXCH01", "10.1.1.10"), host("EXCH05", "10.1.5.10", {"EXCH01": CLEAR})]
    assert audit.firewalls_to_fix(doc_of(decide(hosts, [ios_facts(text=text)]))) == {}


def test_zone_based_policy_blames_the_zone_pair_it_applies_to():
    from tests.unit.ciscoconf_configs import IOS_ZBF
    # MAIL-TO-EXCH (smtp) is inspected outside -> inside; inside -> outside only ESMTP-ONLY (smtp extended).
    hosts = [host("EXCH01", "10.2.0.25", {"EDGE01": CLEAR}), host("EDGE01", "198.51.100.25", {"EXCH01": MASKED})]
    found = decide(hosts, [firewalls.facts_from_config("ZBF01", IOS_ZBF, source="file")])
    f = found["EXCH01"]
    assert f.confidence == "confirmed" and "to zone pair outside->inside" in f.summary
    assert found["EDGE01"].status == "absent"
    assert audit.firewalls_to_fix(doc_of(found)) == {}     # zone-based classes are changed by hand, not by the role


def test_ios_esmtp_on_the_path_is_not_blamed_but_named_as_disputed():
    text = IOS.replace("ip inspect name MAILFW smtp alert on timeout 300", "ip inspect name MAILFW esmtp")
    hosts = [host("EXCH01", "10.1.1.10"), host("EXCH05", "10.1.5.10", {"EXCH01": CLEAR})]
    f = decide(hosts, [ios_facts(text=text)])["EXCH01"]
    assert f.status == "absent" and "not blamed" in f.summary and "disputed" in f.summary
    [d] = f.evidence["not_blamed_disputed"]
    assert (d["from"], d["rule"], d["protocol"]) == ("EXCH05", "MAILFW", "esmtp")


# PIX 7 runs the same policy framework as ASA: the same global_policy, its own version line.
PIX7 = ASA.replace("ASA Version 8.2(5)", "PIX Version 7.2(4)").replace("ASA01", "PIX7").replace("10.3.", "10.4.")


def test_pix7_esmtp_is_blamed_like_asa():
    hosts = [host("EXCH04", "10.4.4.10", {"EXCH08": MASKED}), host("EXCH08", "10.4.8.10", {"EXCH04": MASKED})]
    f = decide(hosts, [firewalls.facts_from_config("PIX7", PIX7, source="file")])["EXCH04"]
    assert f.status == "present" and f.confidence == "confirmed" and "no inspect esmtp" in f.summary


def test_an_acl_scoped_class_blames_only_the_pairs_its_acl_permits():
    text = PIX7.replace("class-map inspection_default\n match default-inspection-traffic\n",
                        "access-list MAIL extended permit tcp host 10.4.8.10 host 10.4.4.10 eq smtp\n"
                        "class-map inspection_default\n match access-list MAIL\n")
    hosts = [host("EXCH04", "10.4.4.10", {"EXCH08": CLEAR}), host("EXCH08", "10.4.8.10", {"EXCH04": CLEAR}),
             host("EXCH09", "10.4.8.11", {"EXCH04": CLEAR})]
    found = decide(hosts, [firewalls.facts_from_config("PIX7", text, source="file")])
    f = found["EXCH04"]
    assert f.explains == ["EXCH08"] and "access-list MAIL permits 10.4.8.10 -> 10.4.4.10:25" in f.summary
    assert found["EXCH08"].status == "absent"  # the ACL permits only EXCH08 -> EXCH04


def test_a_multiple_context_system_space_says_which_contexts_to_read():
    text = "ASA Version 8.4(2) <system>\nhostname asa\ncontext mail\n  config-url disk0:/mail.cfg\n"
    with pytest.raises(firewalls.ciscoconf.ConfigError, match=r"Contexts: mail \(disk0:/mail.cfg\)"):
        firewalls.facts_from_config("ASA", text, source="file")
