"""Bad role variables fail before any host is contacted, naming the variable."""
import os
import subprocess
import sys

import yaml

from tests.conftest import ROOT, demo_data

PLAYBOOK = os.path.join(ROOT, "playbooks", "snapshot.yml")


def test_bad_variable_is_refused_before_any_winrm_request(lab_factory, tmp_path):
    lab = lab_factory(demo_data())
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump(lab.inventory()))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inv), PLAYBOOK,
                           "-e", '{"mailflow_knowledge": "not-a-dict"}', "-e", f"mailflow_snapshot_save_dir={tmp_path}/s"],
                          cwd=ROOT, env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg")),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "mailflow_knowledge" in proc.stdout and "dict" in proc.stdout
    assert all(c["http_requests"] == 0 for c in lab.metrics.snapshot().values())
