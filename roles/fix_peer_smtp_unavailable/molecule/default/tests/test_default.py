"""Verify on the lab with cmd-level commands, independently of the collection's PowerShell (which uses WMI)."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "..", "..", "tests", "molecule"))
import labhost  # noqa: E402

SMTPSVC_KEY = r"HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC"


def test_smtpsvc_starts_automatically():
    out = labhost.host("EXCH07").run("sc qc SMTPSVC")
    assert out.rc == 0, out.stdout
    assert re.search(r"START_TYPE\s+:\s+2\s+AUTO_START", out.stdout), out.stdout  # was 4 DISABLED


def test_smtpsvc_runs():
    out = labhost.host("EXCH07").run("sc query SMTPSVC")
    assert out.rc == 0, out.stdout
    assert re.search(r"STATE\s+:\s+4\s+RUNNING", out.stdout), out.stdout  # was 1 STOPPED


def test_the_registry_start_value_is_automatic():
    out = labhost.host("EXCH07").run(f'reg query "{SMTPSVC_KEY}" /v Start')
    assert out.rc == 0, out.stderr
    assert re.search(r"^\s+Start\tREG_DWORD\t0x2\r?$", out.stdout, re.MULTILINE), out.stdout  # was 0x4
