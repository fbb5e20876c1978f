"""Verify on the lab with cmd-level commands, independently of the collection's PowerShell.

The last test reads the lab's own process log through its control API (lab/control.py; cmd has no
equivalent): the package ran once, quietly, without restarting the server.
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "..", "..", "tests", "molecule"))
import labhost  # noqa: E402

PACKAGE = r"C:\Hotfixes\Exchange2003-KB950757-x86-ENU.exe"
# Update.exe registers an Exchange 2003 SP2 hotfix here (KB 262841; TechNet aa998975 shows SP2 updates under SP3).
UPDATES = r"HKLM\SOFTWARE\Microsoft\Updates\Exchange Server 2003\SP3\KB950757"


def test_wmi_lists_kb950757_among_the_hotfixes():
    out = labhost.host("EXCH05").run("wmic qfe get HotFixID /format:list")
    assert out.rc == 0, out.stderr
    ids = re.findall(r"^HotFixID=(\S+)", out.stdout, re.M)
    assert "KB950757" in ids, ids


def test_the_updates_key_registers_kb950757():
    out = labhost.host("EXCH05").run(f'reg query "{UPDATES}" /v Description')
    assert out.rc == 0, out.stderr
    assert "REG_SZ" in out.stdout and "KB950757" in out.stdout


def test_the_package_ran_once_quietly_and_the_server_was_not_restarted():
    counters = labhost.control("/status")["counters"]["EXCH05"]
    assert counters["processes"] == [[PACKAGE, "/quiet", "/norestart"]]  # not again in the idempotence run
    assert counters["reboots"] == 0 and not counters["service_restarts"]
