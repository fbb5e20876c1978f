"""Verify on the lab with cmd-level commands, independently of the collection's PowerShell.

The entries are stand-ins for KB 254089's (not known): what is checked is that the role wrote what it was given."""
import os
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "..", "..", "tests", "molecule"))
import labhost  # noqa: E402

PARAMETERS = r"HKLM\SYSTEM\CurrentControlSet\Services\MSExchangeTransport\Parameters"


def test_the_dword_stand_in_is_set_on_the_existing_key():
    out = labhost.host("EXCH05").run(f'reg query "{PARAMETERS}" /v LabStandInForKB254089')
    assert out.rc == 0, out.stderr
    assert "REG_DWORD" in out.stdout and "0x1" in out.stdout


def test_the_text_stand_in_is_set_under_the_key_the_role_created():
    out = labhost.host("EXCH05").run(f'reg query "{PARAMETERS}\\LabStandInForKB254089" /v Encoding')
    assert out.rc == 0, out.stderr
    assert "REG_SZ" in out.stdout and "TNEF" in out.stdout
