"""Every PowerShell source the collection ships runs on PowerShell 2.0."""
import glob
import os

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils import psrunner
from tests.ps2_gate import violations

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCES = sorted(glob.glob(os.path.join(ROOT, "plugins", "**", "*.ps1"), recursive=True)
                 + glob.glob(os.path.join(ROOT, "roles", "**", "*.ps1"), recursive=True))


def test_there_are_scripts_to_check():
    names = {os.path.basename(p) for p in SOURCES}
    assert {"bootstrap.ps1", "dispatcher.ps1", "probe.ps1", "main.ps1"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: os.path.relpath(p, ROOT))
def test_script_is_powershell_2(path):
    with open(path, encoding="utf-8") as fh:
        assert violations(fh.read()) == []


def test_assembled_dispatcher_is_powershell_2():
    assert violations(psrunner.dispatcher_script()) == []


@pytest.mark.parametrize("snippet, expected", [
    ("$o = [pscustomobject]@{a=1}", "[pscustomobject]"),
    ("$o = [ordered]@{a=1}", "[ordered]"),
    ("$j = $x | ConvertTo-Json", "ConvertTo-Json"),
    ("$x = '{}' | ConvertFrom-Json", "ConvertFrom-Json"),
    ("$sb = [Text.StringBuilder]::new()", "::new()"),
    ("Get-CimInstance Win32_Service", "Get-CimInstance"),
    ("if ($a -in $b) { }", "-in"),
    ("$x.ForEach({ $_ })", ".ForEach"),
    ("Get-Item x | % { $PSItem }", "$PSItem"),
    ("$x = @(1, 2", "syntax error"),
    ("$s = 'caf\u00e9'", "non-ASCII"),
])
def test_gate_rejects_ps3_constructs(snippet, expected):
    found = violations(snippet)
    assert any(expected in v for v in found), found


def test_gate_accepts_ps2_idioms():
    ps2 = ("$sb = New-Object Text.StringBuilder\n[void]$sb.Append('x')\n"
           "$h = @{}; $h['a'] = 1\nGet-WmiObject -Class Win32_Service | Where-Object { $_.Name -eq 'SMTPSVC' }\n"
           "if (@(1, 2) -contains 1) { [Convert]::ToBase64String([byte[]]@(1)) }\n")
    assert violations(ps2) == []
