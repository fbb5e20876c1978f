"""Cisco IOS / PIX / ASA configs read for SMTP inspection, and the IOS CBAC fix (ciscoconf)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.mailflow.exchange.plugins.module_utils import ciscoconf
from ansible_collections.mailflow.exchange.plugins.module_utils.ciscoconf import Binding, ConfigError

# An IOS 12.4 edge router as `show running-config` prints it, CRLF line endings as a
# terminal log saves them. The banner holds config-looking text that is not config.
IOS_CBAC = "\r\n".join("""\
Building configuration...

Current configuration : 2817 bytes
!
! Last configuration change at 14:02:11 UTC Tue Mar 6 2007 by admin
!
version 12.4
service timestamps debug datetime msec
service timestamps log datetime msec
service password-encryption
!
hostname EDGE-RTR1
!
boot-start-marker
boot-end-marker
!
enable secret 5 $1$mERr$hx5rVt7rPNoS4wqbXKX7m0
no aaa new-model
ip cef
!
ip inspect name MAILFW smtp alert on audit-trail on timeout 300
ip inspect name MAILFW tcp
ip inspect name MAILFW udp
ip inspect name DMZFW smtp
ip inspect name DMZFW ftp
!
interface FastEthernet0/0
 description LAN - Exchange servers
 ip address 10.1.1.1 255.255.255.0
 ip address 10.1.2.1 255.255.255.0 secondary
 ip inspect MAILFW in
 duplex auto
 speed auto
!
interface FastEthernet0/1
 description WAN to branch
 ip address 192.0.2.1 255.255.255.252
 ip access-group 101 in
 ip inspect MAILFW out
 duplex auto
 speed auto
!
interface Serial0/0/0
 ip address 10.1.0.1 255.255.0.0
 shutdown
!
ip route 0.0.0.0 0.0.0.0 192.0.2.2
!
access-list 101 permit tcp any host 10.1.1.25 eq smtp
access-list 101 deny   ip any any log
!
banner motd ^C
*** EDGE-RTR1 ***
ip inspect name BANNERFW smtp
interface FastEthernet9/9
 ip inspect BANNERFW in
Unauthorised access prohibited.
^C
!
line con 0
line aux 0
line vty 0 4
 password 7 0822455D0A16
 login
!
end
""".split("\n"))

IOS_ESMTP = """\
Current configuration : 912 bytes
!
version 12.4
hostname BRANCH-RTR
banner login ^CAuthorized users only: ip inspect name FAKE smtp^C
banner exec #
ip inspect name FAKE2 smtp
#
ip port-map smtp port 2525
ip inspect name OUTBOUND esmtp max-data 20000000 timeout 600
ip inspect name OUTBOUND http
!
interface FastEthernet0/1
 ip address 203.0.113.2 255.255.255.0
 ip inspect OUTBOUND out
!
end
"""

IOS_ZBF = """\
Building configuration...

Current configuration : 3310 bytes
!
version 15.1
hostname ZBF-RTR
!
class-map type inspect match-any MAIL-PROTOCOLS
 match protocol smtp
 match protocol pop3
class-map type inspect match-all MAIL-TO-EXCH
 match class-map MAIL-PROTOCOLS
 match access-group name TO-EXCHANGE
class-map type inspect match-any WEB
 match protocol http
class-map type inspect match-any ESMTP-ONLY
 match protocol smtp extended
class-map type inspect smtp match-any BIG-MAIL
 match data-length gt 5000000
!
policy-map type inspect OUT-TO-IN
 class type inspect MAIL-TO-EXCH
  inspect 
 class class-default
  drop
policy-map type inspect IN-TO-OUT
 class type inspect WEB
  inspect
 class type inspect ESMTP-ONLY
  inspect
 class class-default
  drop
policy-map type inspect UNUSED
 class type inspect MAIL-PROTOCOLS
  pass
!
zone security inside
zone security outside
zone-pair security out-in source outside destination inside
 service-policy type inspect OUT-TO-IN
zone-pair security in-out source inside destination outside
 service-policy type inspect IN-TO-OUT
!
interface GigabitEthernet0/0
 ip address 10.2.0.1 255.255.255.0
 zone-member security inside
!
interface GigabitEthernet0/1
 ip address 198.51.100.1 255.255.255.0
 zone-member security outside
!
end
"""

# PIX 6.3 `write terminal`: flat, fixups listed whether default or not.
PIX6 = """\
: Saved
:
PIX Version 6.3(5)
interface ethernet0 auto
interface ethernet1 100full
interface ethernet2 auto shutdown
nameif ethernet0 outside security0
nameif ethernet1 inside security100
nameif ethernet2 dmz security50
enable password 8Ry2YjIyt7RRXU24 encrypted
passwd 2KFQnbNIdI.2KYOU encrypted
hostname PIX01
domain-name corp.example
fixup protocol dns maximum-length 512
fixup protocol ftp 21
fixup protocol h323 h225 1720
fixup protocol h323 ras 1718-1719
fixup protocol http 80
fixup protocol rsh 514
fixup protocol rtsp 554
fixup protocol sip 5060
fixup protocol sip udp 5060
fixup protocol skinny 2000
fixup protocol smtp 25
fixup protocol sqlnet 1521
fixup protocol tftp 69
names
name 10.0.10.14 exch04
access-list outside_in permit tcp any host 192.0.2.14 eq smtp
pager lines 24
mtu outside 1500
mtu inside 1500
ip address outside 192.0.2.2 255.255.255.0
ip address inside 10.0.10.1 255.255.255.0
ip address dmz 10.0.0.0 255.0.0.0
static (inside,outside) 192.0.2.14 exch04 netmask 255.255.255.255 0 0
access-group outside_in in interface outside
route outside 0.0.0.0 0.0.0.0 192.0.2.1 1
timeout xlate 3:00:00
telnet timeout 5
terminal width 80
Cryptochecksum:0a1c8d4e2b7f6a5d9c3e1b0f2a4d6c8e
: end
"""

# PIX 7.2 factory config: the fixups became a Modular Policy Framework global_policy.
PIX7 = """\
: Saved
:
PIX Version 7.2(4)
!
hostname pixfw
enable password 8Ry2YjIyt7RRXU24 encrypted
names
!
interface Ethernet0
 nameif outside
 security-level 0
 ip address 198.51.100.2 255.255.255.0
!
interface Ethernet1
 nameif inside
 security-level 100
 ip address 10.3.0.1 255.255.255.0
!
passwd 2KFQnbNIdI.2KYOU encrypted
ftp mode passive
pager lines 24
mtu outside 1500
mtu inside 1500
!
class-map inspection_default
 match default-inspection-traffic
!
!
policy-map type inspect dns preset_dns_map
 parameters
  message-length maximum 512
policy-map global_policy
 class inspection_default
  inspect dns preset_dns_map
  inspect ftp
  inspect h323 h225
  inspect h323 ras
  inspect netbios
  inspect rsh
  inspect rtsp
  inspect skinny
  inspect esmtp
  inspect sqlnet
  inspect sunrpc
  inspect tftp
  inspect sip
  inspect xdmcp
!
service-policy global_policy global
prompt hostname context
Cryptochecksum:9f8c7d6e5b4a39281706f5e4d3c2b1a0
: end
"""

ASA8 = "\r\n".join("""\
: Saved
: Written by enable_15 at 09:12:44.118 UTC Mon Feb 2 2009
:
ASA Version 8.2(5)
!
hostname ciscoasa
domain-name corp.example
enable password 8Ry2YjIyt7RRXU24 encrypted
names
name 10.4.0.25 exch01
!
interface Ethernet0/0
 nameif outside
 security-level 0
 ip address 203.0.113.10 255.255.255.240 standby 203.0.113.11 
!
interface Ethernet0/1
 nameif inside
 security-level 100
 ip address 10.4.0.1 255.255.255.0 
!
interface Ethernet0/2
 nameif dmz
 security-level 50
 ip address 172.16.5.1 255.255.255.0 
!
interface Management0/0
 shutdown
 no nameif
 no security-level
 no ip address
!
banner motd Authorized access only.
banner motd inspect esmtp is not a config line here
ftp mode passive
access-list outside_in extended permit tcp any host 203.0.113.12 eq smtp 
pager lines 24
mtu outside 1500
mtu inside 1500
mtu dmz 1500
!
class-map inspection_default
 match default-inspection-traffic
class-map SMTP-2525
 match port tcp eq 2525
class-map SMTP-RANGE
 match port tcp range 2025 2026
!
!
policy-map type inspect dns preset_dns_map
 parameters
  message-length maximum 512
policy-map type inspect esmtp strict_esmtp
 parameters
  mask-banner
  no mail-relay
 match cmd line length gt 512
  drop-connection log
policy-map global_policy
 class inspection_default
  inspect dns preset_dns_map 
  inspect ftp 
  inspect h323 h225 
  inspect h323 ras 
  inspect rsh 
  inspect rtsp 
  inspect esmtp 
  inspect sqlnet 
  inspect skinny  
  inspect sunrpc 
  inspect xdmcp 
  inspect sip  
  inspect netbios 
  inspect tftp 
policy-map DMZ-POLICY
 class SMTP-2525
  inspect esmtp strict_esmtp 
policy-map SPARE-POLICY
 class SMTP-RANGE
  inspect smtp 
!
service-policy global_policy global
service-policy DMZ-POLICY interface dmz
prompt hostname context 
Cryptochecksum:3d7b1c0e9f2a4b6c8d0e1f2a3b4c5d6e
: end
""".split("\n"))


def smtp(cfg):
    return {(i.rule, i.protocol): i for i in cfg.smtp_inspections()}


# ---- platform ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, platform", [
    (PIX6, "pix"), (PIX7, "pix"), (ASA8, "asa"), (IOS_CBAC, "ios"), (IOS_ESMTP, "ios"), (IOS_ZBF, "ios"),
    ("version 12.3\nhostname R\n", "ios"), ("Building configuration...\n\nhostname R\n", "ios"),
    ("hostname R\ninterface Ethernet0\n", None), ("", None),
])
def test_the_platform_comes_from_the_version_line_or_the_ios_preamble(text, platform):
    assert ciscoconf.platform_of(text) == platform


def test_a_config_of_no_known_platform_is_an_error_unless_the_caller_names_the_platform():
    for text in ("", "  \r\n", "hostname R\n"):
        with pytest.raises(ConfigError):
            ciscoconf.parse(text)
    with pytest.raises(ConfigError, match="unknown platform"):
        ciscoconf.parse(IOS_CBAC, "junos")
    empty = ciscoconf.parse("", "PIX")
    assert (empty.platform, empty.hostname, empty.interfaces, empty.inspections) == ("pix", None, {}, ())


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
    assert nested.bindings == (Binding("zone-pair outside->inside", "both"),)
    assert nested.remediation == ("class-map type inspect match-any MAIL-PROTOCOLS", " no match protocol smtp")
    assert found["policy-map type inspect IN-TO-OUT / class ESMTP-ONLY", "esmtp"].bindings == (
        Binding("zone-pair inside->outside", "both"),)


# ---- PIX 6 ---------------------------------------------------------------------------------------

def test_pix6_default_config_has_mailguard_on_port_25_for_all_interfaces():
    cfg = ciscoconf.parse(PIX6)
    assert (cfg.platform, cfg.hostname) == ("pix", "PIX01")
    (mailguard,) = cfg.smtp_inspections()
    assert mailguard.rule == "fixup protocol smtp" and mailguard.line == "fixup protocol smtp 25"
    assert (mailguard.ports, mailguard.bindings) == ((25,), (Binding("*", "global"),))
    assert mailguard.remediation == ("no fixup protocol smtp 25",)
    assert cfg.interfaces["ethernet0"].nameif == "outside"
    assert cfg.interfaces["ethernet2"].shutdown and not cfg.interfaces["ethernet1"].shutdown


def test_pix6_no_fixup_in_the_running_config_means_off_and_ranges_and_extra_ports_are_separate_lines():
    assert ciscoconf.parse(PIX6.replace("fixup protocol smtp 25", "no fixup protocol smtp 25")).smtp_inspections() == ()
    ranged = ciscoconf.parse(PIX6.replace("fixup protocol smtp 25", "fixup protocol smtp 25-26\nfixup protocol smtp 2525"))
    assert [(i.line, i.ports, i.remediation) for i in ranged.smtp_inspections()] == [
        ("fixup protocol smtp 25-26", (25, 26), ("no fixup protocol smtp 25-26",)),
        ("fixup protocol smtp 2525", (2525,), ("no fixup protocol smtp 2525",))]
    bare_no = ciscoconf.parse(PIX6.replace("terminal width 80", "no fixup protocol smtp"))
    assert bare_no.smtp_inspections() == ()


# ---- PIX 7 / ASA ---------------------------------------------------------------------------------

def test_pix7_default_global_policy_inspects_esmtp_globally():
    cfg = ciscoconf.parse(PIX7)
    (esmtp,) = cfg.smtp_inspections()
    assert (cfg.platform, esmtp.platform, esmtp.rule) == ("pix", "pix", "policy-map global_policy / class inspection_default")
    assert (esmtp.protocol, esmtp.line, esmtp.ports) == ("esmtp", "inspect esmtp", (25,))
    assert esmtp.bindings == (Binding("*", "global"),)
    assert esmtp.remediation == ("policy-map global_policy", " class inspection_default", "  no inspect esmtp")
    assert cfg.interfaces["Ethernet1"] == ciscoconf.Interface("Ethernet1", "inside", (("10.3.0.1", "255.255.255.0"),), False)


def test_asa_global_interface_and_unapplied_policies_with_both_spellings_and_class_ports():
    cfg = ciscoconf.parse(ASA8)
    assert (cfg.platform, cfg.hostname) == ("asa", "ciscoasa")
    found = smtp(cfg)
    assert set(found) == {("policy-map global_policy / class inspection_default", "esmtp"),
                          ("policy-map DMZ-POLICY / class SMTP-2525", "esmtp"),
                          ("policy-map SPARE-POLICY / class SMTP-RANGE", "smtp")}  # not the esmtp parameters map
    assert found["policy-map global_policy / class inspection_default", "esmtp"].bindings == (Binding("*", "global"),)
    dmz = found["policy-map DMZ-POLICY / class SMTP-2525", "esmtp"]
    assert (dmz.line, dmz.ports, dmz.bindings) == ("inspect esmtp strict_esmtp", (2525,), (Binding("dmz", "both"),))
    assert dmz.remediation == ("policy-map DMZ-POLICY", " class SMTP-2525", "  no inspect esmtp strict_esmtp")
    spare = found["policy-map SPARE-POLICY / class SMTP-RANGE", "smtp"]
    assert (spare.ports, spare.applied) == ((2025, 2026), False)
    assert cfg.interfaces["Management0/0"] == ciscoconf.Interface("Management0/0", None, (), True)


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
