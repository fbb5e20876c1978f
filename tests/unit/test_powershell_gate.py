"""Every PowerShell source the collection ships runs on PowerShell 2.0; the gate knows each trap it claims to."""
import glob
import os

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils import psrunner
from tests.ps2_gate import TRAPS, findings, violations

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


# trap id -> (a snippet that falls into it, the PowerShell 2.0 way of doing the same)
CATALOGUE = {
    "console-in": ("$in = [Console]::In.ReadToEnd()", "$in = @($input)"),
    "erroraction-ignore": ("Get-Item x -ErrorAction Ignore", "Get-Item x -ErrorAction SilentlyContinue"),
    "ps3-parameter": ("$t = Get-Content C:\\x.txt -Raw", "$t = [IO.File]::ReadAllText('C:\\x.txt')"),
    "simplified-syntax": ("$s | Where-Object Name -eq 'SMTPSVC'", "$s | Where-Object { $_.Name -eq 'SMTPSVC' }"),
    "ps3-type": ("$o = [pscustomobject]@{a=1}", "$o = New-Object PSObject -Property @{a=1}"),
    "ps3-cmdlet": ("$j = $x | ConvertTo-Json", "$j = [Convert]::ToBase64String($b)"),
    "ps3-operator": ("if ($a -in $b) { }", "if ($b -contains $a) { }"),
    "ps3-variable": ("Get-Item x | ForEach-Object { $PSItem }", "Get-Item x | ForEach-Object { $_ }"),
    "ps5-syntax": ("$sb = [Text.StringBuilder]::new()", "$sb = New-Object Text.StringBuilder"),
    "intrinsic-method": ("$x.ForEach({ $_ })", "foreach ($i in $x) { $i }"),
    "count-on-scalar": ("$f = Get-ChildItem C:\\q; if ($f.Count -gt 0) { }", "$f = @(Get-ChildItem C:\\q); if ($f.Count -gt 0) { }"),
    "unrolled-return": ("function V($k) { return $k.GetValue('x') }", "function V($k) { return ,$k.GetValue('x') }"),
    "dotnet4-api": ("if ([string]::IsNullOrWhiteSpace($s)) { }", "if ($s -eq $null -or $s.Trim() -eq '') { }"),
    "dotnet2sp-overload": ("[void]$ar.AsyncWaitHandle.WaitOne(500)", "[void]$ar.AsyncWaitHandle.WaitOne(500, $false)"),
    "wmi-without-timeout": ("$os = Get-WmiObject Win32_OperatingSystem",
                            "$s = New-Object Management.ManagementObjectSearcher($scope, $query, $options)"),
    "whole-event-log": ("$e = Get-EventLog -LogName Application -After $t", "$log = New-Object Diagnostics.EventLog('Application')"),
    "read-before-wait": ("$o = $p.StandardOutput.ReadToEnd(); [void]$p.WaitForExit(1000)",
                         "$ar = $p.StandardOutput.BaseStream.BeginRead($b, 0, 4096, $null, $null)"),
    "msi-wmi": ("$q = 'SELECT * FROM Win32_SoftwareFeature'", "$i = New-Object -ComObject WindowsInstaller.Installer"),
    "non-ascii": ("$s = 'caf\u00e9'", "$s = 'cafe'"),
    "syntax": ("$x = @(1, 2", "$x = @(1, 2)"),
}


def test_every_trap_has_a_failing_and_a_passing_snippet():
    assert set(CATALOGUE) == set(TRAPS)


@pytest.mark.parametrize("trap", sorted(CATALOGUE))
def test_the_gate_rejects_the_trap_and_accepts_the_2_0_way(trap):
    bad, good = CATALOGUE[trap]
    assert trap in {t for _, t, _ in findings(bad)}, findings(bad)
    assert findings(good) == []
    # The message says why, in the catalogue's words.
    assert any(TRAPS[trap].reason in v for v in violations(bad))


@pytest.mark.parametrize("snippet, trap", [
    ("$x = gc C:\\a -Raw", "ps3-parameter"),
    ("Get-ChildItem C:\\q -File", "ps3-parameter"),
    ("$ErrorActionPreference = 'Ignore'", "erroraction-ignore"),
    ("$s | % Name", "simplified-syntax"),
    ("$o = [ordered]@{a=1}", "ps3-type"),
    ("if ($a -notin $b) { }", "ps3-operator"),
    ("$p = $using:x", "ps3-variable"),
    ("$k = (Get-ChildItem C:\\q).Length", "count-on-scalar"),
    ("function F($s) { return $s.Split(',') }", "unrolled-return"),
    ("$src.CopyTo($dst)", "dotnet4-api"),
    ("$f = [IO.Directory]::EnumerateFiles('C:\\q')", "dotnet4-api"),
    ("$x = [IO.Path]::Combine('a', 'b', 'c')", "dotnet4-api"),
    ("if ($flags.HasFlag($one)) { }", "dotnet4-api"),
    ("$x = [Console]::OpenStandardInput()", "console-in"),
    ("Get-CimInstance Win32_Service", "ps3-cmdlet"),
])
def test_more_forms_of_the_traps(snippet, trap):
    assert trap in {t for _, t, _ in findings(snippet)}, findings(snippet)


def test_the_gate_accepts_ps2_idioms():
    ps2 = ("$sb = New-Object Text.StringBuilder\n[void]$sb.Append('x')\n"
           "$h = @{}; $h['a'] = 1\n$names = @(Get-ChildItem C:\\q | Where-Object { $_.Length -gt 0 })\n"
           "if ($names.Count -gt 0) { [Convert]::ToBase64String([byte[]]@(1)) }\n"
           "$arr.CopyTo($dest, 0)\n$b = New-Object byte[] 10; $n = $b.Length\n"
           "function Lines([string]$s) { return ,$s.Split(',') }\n$p = [IO.Path]::Combine('a', 'b')\n")
    assert violations(ps2) == []


def test_the_catalogue_is_documented():
    with open(os.path.join(ROOT, "docs", "runner.md"), encoding="utf-8") as fh:
        doc = fh.read()
    missing = [t for t in TRAPS if f"`{t}`" not in doc]
    assert missing == [], f"docs/runner.md lacks the trap(s) {missing}"
