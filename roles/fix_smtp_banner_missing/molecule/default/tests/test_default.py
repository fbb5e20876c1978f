"""Verify on the lab with cmd-level commands, independently of the collection's PowerShell."""
import os
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "..", "..", "tests", "molecule"))
import labhost  # noqa: E402

BANNER = "exch06.corp.example ESMTP ready (molecule)"  # converge.yml


def test_the_virtual_server_has_the_banner():
    assert labhost.smtp_virtual_servers("EXCH06")["/LM/SmtpSvc/1"].get("ConnectResponse") == BANNER  # was ""


def test_smtpsvc_still_runs():
    assert "RUNNING" in labhost.host("EXCH06").run("sc query SMTPSVC").stdout
