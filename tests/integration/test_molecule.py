"""Every fix role's molecule scenario (converge, idempotence, testinfra verify over WinRM) on the lab."""
from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.integration]
BIN = os.path.dirname(sys.executable)
SCENARIOS = sorted(os.path.basename(os.path.dirname(os.path.dirname(p)))
                   for p in glob.glob(os.path.join(ROOT, "roles", "fix_*", "molecule", "default")))


def test_every_fix_role_has_a_molecule_scenario():
    roles = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "roles", "fix_*")))
    assert SCENARIOS == roles
    blocks = [re.search(r'MAILFLOW_LAB_BLOCK: "(\d+)"', open(os.path.join(ROOT, "roles", r, "molecule", "default",
                                                                           "molecule.yml")).read()) for r in roles]
    assert all(blocks) and len({int(b[1]) for b in blocks}) == len(roles)  # one address block each
    assert all(1 < int(b[1]) < 101 for b in blocks)  # clear of the demo (127.0) and of tests/conftest.py's 101-254
    for role in roles:  # a scenario without tests would "verify" successfully with nothing collected
        assert glob.glob(os.path.join(ROOT, "roles", role, "molecule", "default", "tests", "test_*.py")), role


# Each scenario's lab has its own address block (MAILFLOW_LAB_BLOCK in its molecule.yml), so xdist workers
# may run them side by side.
@pytest.mark.parametrize("role", SCENARIOS)
def test_molecule(role):
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""), ANSIBLE_NOCOLOR="1", NO_COLOR="1",
               PY_COLORS="0", ANSIBLE_FORCE_COLOR="0")
    env.pop("ANSIBLE_CONFIG", None)  # molecule writes its own
    proc = subprocess.run([os.path.join(BIN, "molecule"), "test"], cwd=os.path.join(ROOT, "roles", role), env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    for step in ("converge", "idempotence", "verify"):
        assert f"{step}: Executed: Successful" in out, (step, out[-3000:])
    assert re.search(r"\b\d+ passed\b", out) and not re.search(r"\b\d+ (failed|error)", out), out[-3000:]
