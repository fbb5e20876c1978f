"""Verify on the lab with cmd-level commands, independently of the collection's PowerShell."""
import os
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "..", "..", "tests", "molecule"))
import labhost  # noqa: E402

BANNER = "exch06.corp.example ESMTP ready (molecule)"  # converge.yml


def smtp_virtual_servers():
    """{metabase Location: attributes} of the IIsSmtpServer nodes, from `type` of MetaBase.xml."""
    out = labhost.host("EXCH06").run(r"type %SystemRoot%\system32\inetsrv\MetaBase.xml")
    assert out.rc == 0, out.stderr
    root = ET.fromstring(out.stdout.lstrip("\ufeff"))
    return {node.get("Location"): node.attrib for node in root.iter() if node.tag.split("}")[-1] == "IIsSmtpServer"}


def test_the_virtual_server_has_the_banner():
    assert smtp_virtual_servers()["/LM/SmtpSvc/1"].get("ConnectResponse") == BANNER  # was ""


def test_smtpsvc_still_runs():
    assert "RUNNING" in labhost.host("EXCH06").run("sc query SMTPSVC").stdout
