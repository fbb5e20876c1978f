"""Verify on the lab with cmd-level commands, independently of the collection's PowerShell.

`reg query` of GloballyOpenPorts\\List ("port:protocol:scope:Enabled|Disabled:name") in each profile the fix
opened (lab.yml): what `netsh firewall show portopening` reports on 2003 SP1 comes from these values.
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "..", "..", "tests", "molecule"))
import labhost  # noqa: E402

POLICY = r"HKLM\SYSTEM\CurrentControlSet\Services\SharedAccess\Parameters\FirewallPolicy"


def opening(profile):
    """The data of the "25:TCP" value under <profile>\\GloballyOpenPorts\\List."""
    out = labhost.host("EXCH03").run(f'reg query "{POLICY}\\{profile}\\GloballyOpenPorts\\List" /v 25:TCP')
    assert out.rc == 0, out.stderr  # no 25:TCP value: "unable to find the specified registry key or value"
    match = re.search(r"^\s+25:TCP\tREG_SZ\t(.*?)\r?$", out.stdout, re.MULTILINE)
    assert match, out.stdout
    return match.group(1)


def firewall_on(profile):
    out = labhost.host("EXCH03").run(f'reg query "{POLICY}\\{profile}" /v EnableFirewall')
    return out.rc == 0 and re.search(r"EnableFirewall\tREG_DWORD\t0x1\r?$", out.stdout, re.MULTILINE) is not None


def test_standard_profile_has_a_new_enabled_opening():
    assert opening("StandardProfile") == "25:TCP:*:Enabled:SMTP"  # was no value; scope is converge.yml's
    assert firewall_on("StandardProfile")  # opened, not switched off


def test_domain_profile_opening_is_enabled_as_it_was():
    assert opening("DomainProfile") == "25:TCP:LocalSubnet:Enabled:SMTP (domain)"  # was ...:Disabled:...; scope, name kept
    assert firewall_on("DomainProfile")

