"""python -m lab up / status / down, and state that survives a dump and load."""
import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT, relocate, demo_data
from tests.lab.winrm_client import run_ops

pytestmark = pytest.mark.slow


def lab_cli(*args, state_dir):
    return subprocess.run([sys.executable, "-m", "lab", "--state-dir", str(state_dir), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_up_status_down_and_state_persists(tmp_path):
    from ansible_collections.mailflow.exchange.plugins.module_utils.psrunner import Op

    scenario = tmp_path / "scenario.yml"
    scenario.write_text(yaml.safe_dump(relocate(demo_data())))
    inv, state, dump = tmp_path / "hosts.yml", tmp_path / "state", tmp_path / "dump.json"
    up = lab_cli("up", str(scenario), "--inventory-out", str(inv), state_dir=state)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        inventory = yaml.safe_load(inv.read_text())
        hosts = inventory["all"]["children"]["mailflow_servers"]["hosts"]
        assert inventory["all"]["vars"]["ansible_winrm_server_cert_validation"] == "validate"
        assert os.path.exists(inventory["all"]["vars"]["ansible_winrm_ca_trust_path"])
        assert "EXCH55" in inventory["all"]["children"]["mailflow_unmanaged"]["hosts"]  # no WinRM on Windows 2000

        # Change something through WinRM, as a fix would.
        class Remote:  # the lab runs in another process: reach it the way a client does
            fleet = None
        from lab.scenario import load_scenario
        Remote.fleet = load_scenario(str(scenario))
        key = r"HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC\Queuing"
        (res,) = run_ops(Remote, "EXCH01", [Op("reg_write", (key, "GlitchRetrySeconds", "DWord", "240"))])
        assert res.first("ok")

        status = json.loads(lab_cli("status", state_dir=state).stdout)
        assert status["counters"]["EXCH01"]["winrm_commands"] == 1
        assert set(status["hosts"]) == set(demo_data()["hosts"])
    finally:
        down = lab_cli("down", "--dump", str(dump), state_dir=state)
    assert down.returncode == 0 and dump.exists()

    # A lab started from the dump still has the change.
    up = lab_cli("up", "--load", str(dump), state_dir=state)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        (res,) = run_ops(Remote, "EXCH01", [Op("reg_read", (key, "0"))])
        assert res.first("value")["data"] == 240
    finally:
        lab_cli("down", state_dir=state)
