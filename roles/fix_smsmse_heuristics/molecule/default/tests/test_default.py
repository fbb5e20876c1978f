"""Verify on the lab with cmd-level commands, independently of the collection's PowerShell."""
import os
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "..", "..", "tests", "molecule"))
import labhost  # noqa: E402

SERVER = r"HKLM\SOFTWARE\Symantec\SMSMSE\4.5\Server"  # lab/templates/symantec_mail_security_45.yml


def test_bloodhound_is_off_as_a_dword():
    out = labhost.host("EXCH04").run(f'reg query "{SERVER}" /v EnableBloodhound')
    assert out.rc == 0, out.stderr
    (line,) = [l for l in out.stdout.splitlines() if l.strip().startswith("EnableBloodhound")]
    assert line.split() == ["EnableBloodhound", "REG_DWORD", "0x0"]  # was 0x1


def test_smsmse_still_runs():
    assert "RUNNING" in labhost.host("EXCH04").run("sc query SMSMSE").stdout
