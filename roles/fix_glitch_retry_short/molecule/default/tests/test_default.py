"""Verify on the lab with cmd-level commands, independently of the collection's PowerShell."""
import os
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "..", "..", "tests", "molecule"))
import labhost  # noqa: E402

QUEUING = r"HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC\Queuing"


def test_glitch_retry_seconds_is_the_role_value_as_a_dword():
    out = labhost.host("EXCH05").run(f'reg query "{QUEUING}" /v GlitchRetrySeconds')
    assert out.rc == 0, out.stderr
    assert "REG_DWORD" in out.stdout and "0xf0" in out.stdout  # 240 s


def test_smtpsvc_still_runs():
    assert "RUNNING" in labhost.host("EXCH05").run("sc query SMTPSVC").stdout
