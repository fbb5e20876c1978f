"""PIX 6, PIX 7 and ASA configs read for SMTP inspection, and which platform a config is (ciscoconf).
IOS, interface_for and the IOS fix: test_ciscoconf_ios."""
from __future__ import annotations

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils import ciscoconf
from ansible_collections.mailflow.exchange.plugins.module_utils.ciscoconf import Binding, ConfigError
from tests.unit.ciscoconf_configs import ASA8, IOS_CBAC, IOS_ESMTP, IOS_ZBF, PIX6, PIX7, smtp


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
