"""Verify on the lab with cmd-level commands, independently of the collection's PowerShell.

The fix writes Active Directory (msExchSmtpSmartHost), which no cmd-level command here reads; with
restarts allowed DS2MB has copied it into MetaBase.xml, the copy SMTP reads, and that is what is checked.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "..", "..", "tests", "molecule"))
import labhost  # noqa: E402

SMARTHOST = "[10.9.9.9]"  # converge.yml


def test_the_metabase_has_the_bracketed_smart_host():
    vs1 = labhost.smtp_virtual_servers("EXCH04")["/LM/SmtpSvc/1"]
    assert vs1.get("SmartHost") == SMARTHOST  # was "10.9.9.9"
    assert vs1.get("SmartHostType") == "2"  # not changed by the fix: always use the smart host


def test_smtpsvc_runs_again_after_the_restart():
    assert "RUNNING" in labhost.host("EXCH04").run("sc query SMTPSVC").stdout
