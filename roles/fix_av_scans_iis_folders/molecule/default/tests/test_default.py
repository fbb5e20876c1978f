"""Verify on the lab with cmd-level commands, independently of the collection's PowerShell."""
import os
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "..", "..", "tests", "molecule"))
import labhost  # noqa: E402

RTS = r"HKLM\SOFTWARE\Intel\LANDesk\VirusProtect6\CurrentVersion\Storages\Filesystem\RealTimeScan"
EXCHSRVR = r"C:\Program Files\Exchsrvr"  # lab/templates/exchange2003_sp2.yml, Setup\Services


def values(key):
    """{value name: (type, data)} of one key, from `reg query KEY` (name, type and data separated by TABs)."""
    out = labhost.host("EXCH03").run(f'reg query "{key}"')
    assert out.rc == 0, out.stderr
    rows = [line.strip().split("\t") for line in out.stdout.splitlines() if line.startswith("    ")]
    return {row[0]: tuple(row[1:]) for row in rows}


def test_folder_exclusions_are_switched_on():
    assert values(RTS)["HaveExceptionDirs"] == ("REG_DWORD", "0x1")  # was 0x0


def test_iis_smtp_exchange_and_the_extra_folder_are_listed():
    assert values(RTS + r"\FileExceptions") == {
        r"C:\WINDOWS\system32\inetsrv": ("REG_DWORD", "0x1"),
        r"C:\Inetpub": ("REG_DWORD", "0x1"),
        EXCHSRVR + r"\Mailroot": ("REG_DWORD", "0x1"),
        EXCHSRVR + r"\Mdbdata": ("REG_DWORD", "0x1"),
        EXCHSRVR + r"\Mtadata": ("REG_DWORD", "0x1"),
        r"D:\Exchsrvr\Mdbdata": ("REG_DWORD", "0x1"),  # mailflow_av_exclusion_extra_folders
    }


def test_symantec_antivirus_still_runs():
    assert "RUNNING" in labhost.host("EXCH03").run('sc query "Symantec AntiVirus"').stdout
