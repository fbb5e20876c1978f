"""Verify on the lab, independently of the collection's PowerShell.

`sc query` over WinRM (cmd level) shows the IMS came back. The lab's cmd emulation has no `netstat`, so the
connection table and the restart count are read from the lab itself, through its control API (`python -m lab`
status and dump, lab/control.py): the lab's own state, not anything the collection reports.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "..", "..", "tests", "molecule"))
import labhost  # noqa: E402


def test_the_ims_runs_again_after_its_restart():
    out = labhost.host("EXCH56").run("sc query MSExchangeIMC")
    assert out.rc == 0, out.stderr
    assert "RUNNING" in out.stdout


def test_no_established_connection_to_remote_port_25_is_left(tmp_path):
    dump = tmp_path / "state.json"
    labhost.control("/dump", {"path": str(dump)})
    conns = json.loads(dump.read_text())["hosts"]["EXCH56"]["tcp_connections"]
    leaked = [c for c in conns if c["state"] == "ESTABLISHED" and c["remote"].rsplit(":", 1)[-1] == "25"]
    assert leaked == []


def test_the_ims_was_restarted_once_not_again_by_the_idempotence_run():
    counters = labhost.control("/status")["counters"]["EXCH56"]
    assert counters["service_restarts"] == {"MSExchangeIMC": 1}
    assert counters["reboots"] == 0
