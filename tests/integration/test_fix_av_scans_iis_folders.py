"""mailflow.exchange.fix_av_scans_iis_folders on the lab (EXCH03, SAV CE 9.0 with HaveExceptionDirs = 0): audit present
-> check mode touches nothing -> exclusions on and only the missing folders added -> audit absent, idempotent, the
unconfirmed layout said out loud, bad input, and a failed verification restored from the backup."""
from __future__ import annotations

import json

import pytest

from tests.support import fixplay
from ansible_collections.mailflow.exchange.plugins.module_utils import knowledge
from ansible_collections.mailflow.exchange.plugins.module_utils.causes import av_scans_iis_folders as cause
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import FixError

pytestmark = [pytest.mark.slow, pytest.mark.integration]
CAUSE = "av_scans_iis_folders"
RTS = r"HKLM\SOFTWARE\Intel\LANDesk\VirusProtect6\CurrentVersion\Storages\Filesystem\RealTimeScan"
EXCEPTIONS = RTS + r"\FileExceptions"
EXCHSRVR = r"C:\Program Files\Exchsrvr"  # lab/templates/exchange2003_sp2.yml, Setup\Services


@pytest.fixture
def lab(lab_factory):
    return lab_factory(fixplay.demo_subset("EXCH03"))


def play(lab, tmp_path, *extra):
    return fixplay.play(lab, tmp_path, CAUSE, *extra, limit="EXCH03")


def exclusions(lab):
    """(HaveExceptionDirs, {listed folder: data})."""
    reg = lab.fleet.host("EXCH03").registry
    switch = reg.get(RTS, "HaveExceptionDirs")
    return (switch.type, switch.data) if switch else None, {n: v.data for n, v in reg.values(EXCEPTIONS) or []}


def status(lab):
    return fixplay.status(lab, "EXCH03", CAUSE)


def test_fix_turns_exclusions_on_adds_only_the_missing_folders_and_a_second_run_changes_nothing(lab, tmp_path):
    # An admin already listed C:\Inetpub (with other data than the fix would write): it is left alone.
    lab.fleet.host("EXCH03").registry.set(EXCEPTIONS, r"C:\Inetpub", "REG_DWORD", 0)
    assert status(lab) == "present" and exclusions(lab) == (("REG_DWORD", 0), {r"C:\Inetpub": 0})

    proc = play(lab, tmp_path, "--check", "--diff")
    assert proc.returncode == 0 and "changed=1" in proc.stdout, proc.stdout[-2000:]
    assert f"{EXCEPTIONS}\\{EXCHSRVR}\\Mailroot = REG_DWORD 1" in proc.stdout
    assert exclusions(lab) == (("REG_DWORD", 0), {r"C:\Inetpub": 0})  # check mode touched nothing

    proc = play(lab, tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "changed=1" in proc.stdout, proc.stdout[-3000:]
    assert exclusions(lab) == (("REG_DWORD", 1), {
        r"C:\Inetpub": 0, r"C:\WINDOWS\system32\inetsrv": 1,
        EXCHSRVR + r"\Mailroot": 1, EXCHSRVR + r"\Mdbdata": 1, EXCHSRVR + r"\Mtadata": 1})
    assert "NOT confirmed: this used the unconfirmed default" in out  # the layout is never passed off as fact
    assert "pending restart of Symantec AntiVirus" in out and not lab.metrics.snapshot()["EXCH03"]["service_restarts"]
    doc = fixplay.backup(tmp_path, "EXCH03", CAUSE)
    assert doc["state"] == "verified" and len(doc["changes"]) == 5
    reg = fixplay.backup_reg(tmp_path, "EXCH03", CAUSE)
    assert '"HaveExceptionDirs"=dword:00000000' in reg and '"C:\\\\WINDOWS\\\\system32\\\\inetsrv"=-' in reg
    assert status(lab) == "absent"

    proc = play(lab, tmp_path)
    assert proc.returncode == 0 and "changed=0" in proc.stdout


def test_bad_folder_fails_before_any_host_is_touched(lab, tmp_path):
    lab.metrics.reset()
    proc = play(lab, tmp_path, "-e", json.dumps({"mailflow_av_exclusion_extra_folders": [r"Exchsrvr\Mdbdata"]}))
    assert proc.returncode != 0 and "mailflow_av_exclusion_extra_folders" in proc.stdout, proc.stdout[-1500:]
    assert fixplay.winrm_commands(lab, "EXCH03") == 0
    assert exclusions(lab) == (("REG_DWORD", 0), {})


@pytest.mark.parametrize("entry, why", [
    ({"subkey": "FileExceptions", "type": "REG_DWORD", "data": "1"}, "whole number"),
    ({"subkey": "FileExceptions", "type": "REG_MULTI_SZ", "data": ["1"]}, "type must be one of"),
    ({"subkey": "\\", "type": "REG_DWORD", "data": 1}, "naming a subkey"),
])
def test_fix_params_refuse_an_entry_the_fix_could_not_verify(entry, why):
    facts = knowledge.load({"detect": {"sav_exclusion_entry": {"value": entry}}})
    with pytest.raises(FixError, match="knowledge detect.sav_exclusion_entry") as exc:
        cause.fix_params({}, facts)
    assert why in str(exc.value)


def test_a_listed_parent_folder_covers_its_subfolders_only_when_listed_like_ours():
    params = {"type": "REG_DWORD", "data": 1}
    assert cause._covered(EXCHSRVR + r"\Mailroot", {EXCHSRVR + "\\": {"type": "REG_DWORD", "data": 1}}, params)
    assert not cause._covered(EXCHSRVR + r"\Mailroot", {EXCHSRVR: {"type": "REG_DWORD", "data": 0}}, params)
    assert not cause._covered(EXCHSRVR + r"\Mailroot2", {EXCHSRVR + r"\Mailroot": {"type": "REG_DWORD", "data": 1}}, params)


def test_failed_verification_is_restored_from_the_backup(lab, tmp_path):
    # The verifying read does not go deep enough to see the FileExceptions values (as a wrong knowledge
    # override would): the folders never show up, so the fix must delete what it added, put
    # HaveExceptionDirs back to 0, and fail saying so.
    override = json.dumps({"mailflow_knowledge": {"collect": {"sav_realtime_scan": {"depth": 0}}}})
    proc = play(lab, tmp_path, "-e", override)
    assert proc.returncode != 0
    assert "verification failed" in proc.stdout and "restored from the backup" in proc.stdout, proc.stdout[-2000:]
    assert exclusions(lab) == (("REG_DWORD", 0), {})
    assert fixplay.backup(tmp_path, "EXCH03", CAUSE)["state"] == "restored"
