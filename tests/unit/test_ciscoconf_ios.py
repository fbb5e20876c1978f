"""IOS configs read for SMTP inspection (CBAC, zone-based), interface_for, the IOS CBAC fix (ciscoconf.ios_plan),
and any text on every platform. PIX, ASA and platform detection: test_ciscoconf_pix_asa."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.mailflow.exchange.plugins.module_utils import ciscoconf
from ansible_collections.mailflow.exchange.plugins.module_utils.ciscoconf import Binding, ConfigError
from tests.unit.ciscoconf_configs import ASA8, IOS_CBAC, IOS_ESMTP, IOS_ZBF, PIX6, smtp


# ---- IOS CBAC ------------------------------------------------------------------------------------

def test_ios_rules_one_applied_on_two_interfaces_one_only_defined_and_the_banner_is_not_config():
    cfg = ciscoconf.parse(IOS_CBAC)
    assert (cfg.platform, cfg.hostname) == ("ios", "EDGE-RTR1")
    found = smtp(cfg)
    assert set(found) == {("MAILFW", "smtp"), ("DMZFW", "smtp")}  # not BANNERFW: it is banner text
    mailfw = found["MAILFW", "smtp"]
    assert mailfw.line == "ip inspect name MAILFW smtp alert on audit-trail on timeout 300"
    assert mailfw.bindings == (Binding("FastEthernet0/0", "in"), Binding("FastEthernet0/1", "out"))
    assert mailfw.applied and mailfw.ports == (25,)
    assert mailfw.remediation == ("no ip inspect name MAILFW smtp",)
    assert not found["DMZFW", "smtp"].applied and found["DMZFW", "smtp"].bindings == ()
    assert set(cfg.interfaces) == {"FastEthernet0/0", "FastEthernet0/1", "Serial0/0/0"}  # no FastEthernet9/9
    assert cfg.interfaces["FastEthernet0/0"].addresses == (("10.1.1.1", "255.255.255.0"), ("10.1.2.1", "255.255.255.0"))
    assert cfg.interfaces["Serial0/0/0"].shutdown and not cfg.interfaces["FastEthernet0/1"].shutdown


def test_ios_esmtp_only_is_reported_as_esmtp_and_banners_with_any_delimiter_are_skipped():
    cfg = ciscoconf.parse(IOS_ESMTP)
    (only,) = cfg.smtp_inspections()
    assert (only.rule, only.protocol, only.applied) == ("OUTBOUND", "esmtp", True)
    assert only.line == "ip inspect name OUTBOUND esmtp max-data 20000000 timeout 600"
    assert only.ports == (25, 2525)  # `ip port-map smtp port 2525` adds a port to 25


def test_ios_banner_delimited_by_the_raw_etx_character_is_skipped():
    text = "version 12.4\nbanner motd \x03\nip inspect name X smtp\n\x03\nip inspect name Y smtp\nend\n"
    assert [i.rule for i in ciscoconf.parse(text).inspections] == ["Y"]


def test_ios_no_lines_in_a_pasted_config_take_the_protocol_or_the_rule_out_and_names_are_case_sensitive():
    text = ("version 12.4\nip inspect name A smtp\nip inspect name A ftp\nno ip inspect name A smtp\n"
            "ip inspect name B smtp\nno ip inspect name B\nip inspect name mailfw smtp\n"
            "interface Ethernet0\n ip inspect MAILFW in\nend\n")
    (left,) = ciscoconf.parse(text).smtp_inspections()
    assert (left.rule, left.applied) == ("mailfw", False)  # MAILFW is another rule


def test_ios_zone_based_policies_that_inspect_smtp_through_a_zone_pair():
    cfg = ciscoconf.parse(IOS_ZBF)
    found = smtp(cfg)
    assert set(found) == {("policy-map type inspect OUT-TO-IN / class MAIL-TO-EXCH", "smtp"),
                          ("policy-map type inspect IN-TO-OUT / class ESMTP-ONLY", "esmtp")}  # UNUSED only passes
    nested = found["policy-map type inspect OUT-TO-IN / class MAIL-TO-EXCH", "smtp"]
    assert nested.line == "match protocol smtp"
    assert nested.bindings == (Binding("outside->inside", "zone-pair"),)
    assert nested.remediation == ("class-map type inspect match-any MAIL-PROTOCOLS", " no match protocol smtp")
    assert found["policy-map type inspect IN-TO-OUT / class ESMTP-ONLY", "esmtp"].bindings == (
        Binding("inside->outside", "zone-pair"),)
    assert {i.name: i.zone for i in cfg.interfaces.values()} == {"GigabitEthernet0/0": "inside", "GigabitEthernet0/1": "outside"}



# ---- interface_for -------------------------------------------------------------------------------

def test_interface_for_finds_the_subnet_on_each_platform():
    ios, pix, asa = ciscoconf.parse(IOS_CBAC), ciscoconf.parse(PIX6), ciscoconf.parse(ASA8)
    assert ios.interface_for("10.1.2.25").name == "FastEthernet0/0"  # a secondary address's subnet
    assert ios.interface_for("10.1.1.25").name == "FastEthernet0/0"  # /24 up beats the /16 shut down
    assert ios.interface_for("10.1.77.5").name == "Serial0/0/0"
    assert ios.interface_for("8.8.8.8") is None
    assert pix.interface_for("192.0.2.14").nameif == "outside"
    assert pix.interface_for("10.0.10.14").nameif == "inside"  # not the shut-down dmz's 10/8
    assert asa.interface_for("203.0.113.12").nameif == "outside"
    assert asa.interface_for("172.16.5.25").nameif == "dmz"
    with pytest.raises(ValueError):
        asa.interface_for("exch01")


# ---- ios_plan ------------------------------------------------------------------------------------

def configure(text, commands):
    """What an IOS router's running config becomes after these config-mode lines (enough of IOS for
    `[no] ip inspect name R P ...`): `no` removes the entry whatever its options, others are added."""
    lines = text.replace("\r\n", "\n").split("\n")
    for command in commands:
        if command.startswith("no "):
            entry = command[3:]
            lines = [line for line in lines if line != entry and not line.startswith(entry + " ")]
        else:
            # IOS keeps global `ip inspect name` lines above the interfaces (and out of any banner)
            lines.insert(next(n for n, line in enumerate(lines) if line.startswith("interface ")), command)
    return "\n".join(lines)


def cbac(text):
    return sorted((i.rule, i.protocol, i.line, i.bindings) for i in ciscoconf.parse(text).inspections)


def test_ios_plan_takes_smtp_off_applied_rules_and_restore_puts_back_the_exact_line():
    plan = ciscoconf.ios_plan(IOS_CBAC)
    assert plan.commands == ("no ip inspect name MAILFW smtp",)
    assert plan.restore == ("ip inspect name MAILFW smtp alert on audit-trail on timeout 300",)
    assert (plan.rules, plan.unknown_rules) == (("MAILFW",), ())
    fixed = configure(IOS_CBAC, plan.commands)
    assert not [i for i in ciscoconf.parse(fixed).smtp_inspections() if i.applied]
    assert ciscoconf.ios_plan(fixed).commands == ()  # idempotent
    assert cbac(configure(fixed, plan.restore)) == cbac(IOS_CBAC)


def test_ios_plan_with_esmtp_replaces_smtp_and_restore_removes_the_esmtp_first():
    plan = ciscoconf.ios_plan(IOS_CBAC, use_esmtp=True)
    assert plan.commands == ("no ip inspect name MAILFW smtp", "ip inspect name MAILFW esmtp")
    assert plan.restore == ("no ip inspect name MAILFW esmtp",
                            "ip inspect name MAILFW smtp alert on audit-trail on timeout 300")
    fixed = configure(IOS_CBAC, plan.commands)
    (esmtp,) = [i for i in ciscoconf.parse(fixed).smtp_inspections() if i.applied]
    assert (esmtp.rule, esmtp.protocol, len(esmtp.bindings)) == ("MAILFW", "esmtp", 2)
    assert ciscoconf.ios_plan(fixed, use_esmtp=True).commands == ()
    assert cbac(configure(fixed, plan.restore)) == cbac(IOS_CBAC)


def test_ios_plan_for_named_rules_applied_or_not_reports_unknown_names_and_keeps_an_existing_esmtp():
    plan = ciscoconf.ios_plan(IOS_CBAC, rules=["DMZFW", "mailfw", "NOPE"], use_esmtp=True)
    assert plan.rules == ("DMZFW",) and plan.unknown_rules == ("mailfw", "NOPE")
    assert plan.commands == ("no ip inspect name DMZFW smtp", "ip inspect name DMZFW esmtp")
    both = IOS_CBAC.replace("ip inspect name DMZFW ftp", "ip inspect name DMZFW ftp\r\nip inspect name DMZFW esmtp")
    again = ciscoconf.ios_plan(both, rules=["DMZFW"], use_esmtp=True)
    assert (again.commands, again.restore) == (("no ip inspect name DMZFW smtp",), ("ip inspect name DMZFW smtp",))
    assert ciscoconf.ios_plan(IOS_ESMTP).commands == ()  # esmtp is not the problem
    assert ciscoconf.ios_plan(IOS_CBAC, rules=[]).commands == ()


def test_ios_plan_refuses_a_firewall_config():
    with pytest.raises(ConfigError, match="pix"):
        ciscoconf.ios_plan(PIX6)


# ---- any text ------------------------------------------------------------------------------------

_SOUP = st.sampled_from([
    "version 12.4", "PIX Version 6.3(5)", "ASA Version 8.2(5)", "!", ": Saved", "end", "banner motd ^C",
    "^C", "banner exec #", "#", "macro name X", "@", "interface FastEthernet0/0", " ip address 10.0.0.1 255.255.255.0",
    " ip address 10.0.0.1 255.0.255.0", " ip inspect R in", "ip inspect name R smtp", "ip inspect name R",
    "no ip inspect name R smtp", "fixup protocol smtp 25-26", "no fixup protocol smtp", "ip address outside 1.2.3.4 255.255.255.0",
    "nameif ethernet0 outside security0", "class-map inspection_default", " match port tcp range 30 20",
    " match port tcp eq pop3", "policy-map P", " class inspection_default", "  inspect esmtp", "  no inspect smtp",
    "service-policy P global", "service-policy P interface", "class-map type inspect match-any C",
    " match protocol smtp", " match class-map C", "policy-map type inspect P", " class type inspect C", "  inspect",
    "zone-pair security Z source a destination b", " service-policy type inspect P", "ip port-map smtp port from 2525 to",
])
_LINES = st.lists(st.one_of(_SOUP, st.text(max_size=30)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(_LINES, st.sampled_from(["\n", "\r\n"]))
def test_any_line_soup_parses_or_is_a_config_error_and_every_inspection_line_is_in_the_text(lines, newline):
    text = newline.join(lines)
    for platform in ciscoconf.PLATFORMS:
        for inspection in ciscoconf.parse(text, platform).inspections:
            assert inspection.line in text and inspection.remediation
    try:
        ciscoconf.parse(text)
        ciscoconf.ios_plan(text, rules=["R"], use_esmtp=True)
    except ConfigError:
        pass
