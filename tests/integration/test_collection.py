"""The collection as Ansible and a user see it: docs, build, FQCN resolution."""
import glob
import os
import subprocess
import sys
import tarfile

import pytest

from tests.conftest import ROOT

BIN = os.path.dirname(sys.executable)
ENV = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")


def test_every_action_plugin_has_a_doc_stub_that_renders():
    actions = [os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "plugins", "action", "*.py"))]
    assert actions
    for name in actions:
        assert os.path.exists(os.path.join(ROOT, "plugins", "modules", name)), name
        out = subprocess.run([os.path.join(BIN, "ansible-doc"), f"mailflow.exchange.{name[:-3]}"], cwd=ROOT, env=ENV,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "corresponding action plugin" in out.stdout, name  # ansible-doc knows the work is on the controller
    snapshot = subprocess.run([os.path.join(BIN, "ansible-doc"), "mailflow.exchange.snapshot"], cwd=ROOT, env=ENV,
                              capture_output=True, text=True, timeout=120)
    assert "one WinRM command" in snapshot.stdout


def test_every_filter_and_plugin_doc_renders():
    """Each filter a FilterModule exports, and each lookup and callback, has documentation ansible-doc renders."""
    sys.path.insert(0, os.path.join(ROOT, "collections"))
    import importlib
    filters = []
    for path in glob.glob(os.path.join(ROOT, "plugins", "filter", "*.py")):
        module = importlib.import_module(f"ansible_collections.mailflow.exchange.plugins.filter.{os.path.basename(path)[:-3]}")
        filters += list(module.FilterModule().filters())
    assert len(filters) >= 6
    plugins = [("filter", f) for f in filters] + [
        (kind, os.path.basename(p)[:-3]) for kind in ("lookup", "callback")
        for p in glob.glob(os.path.join(ROOT, "plugins", kind, "*.py"))]
    for kind, name in plugins:
        out = subprocess.run([os.path.join(BIN, "ansible-doc"), "-t", kind, f"mailflow.exchange.{name}"], cwd=ROOT,
                             env=ENV, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and "EXAMPLES" in out.stdout or kind == "callback", (kind, name, out.stderr)
        assert "Missing documentation" not in out.stderr and out.returncode == 0, (kind, name, out.stderr)
    snapshot_table = subprocess.run([os.path.join(BIN, "ansible-doc"), "-t", "filter", "mailflow.exchange.snapshot_table"],
                                    cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert "literal block" in snapshot_table.stdout


@pytest.mark.slow
def test_galaxy_build_leaves_the_lab_tests_and_bench_out(tmp_path):
    out = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), "--force", ROOT],
                         cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    (tarball,) = glob.glob(str(tmp_path / "mailflow-exchange-*.tar.gz"))
    names = tarfile.open(tarball).getnames()
    assert "plugins/action/snapshot.py" in names and "plugins/module_utils/powershell/dispatcher.ps1" in names
    assert "plugins/module_utils/knowledge.yml" in names and "playbooks/snapshot.yml" in names
    for excluded in ("lab/", "tests/", "bench/", "collections/", ".venv/", "molecule/", "ee/"):
        assert not [n for n in names if n.startswith(excluded)], excluded
    # The developer's tooling stays out; what a user needs ships.
    for dev_only in ("ansible.cfg", "pytest.ini", ".ansible-lint", "execution-environment.yml", "requirements.txt"):
        assert dev_only not in names, dev_only
    assert not [n for n in names if "/molecule/" in n]
    for shipped in ("LICENSE", "CHANGELOG.rst", "changelogs/changelog.yaml", "meta/execution-environment.yml",
                    "meta/ee-requirements.txt", "examples/ansible.cfg", "examples/ansible-runner/env/extravars",
                    "plugins/lookup/state.py", "plugins/callback/progress.py"):
        assert shipped in names, shipped
    readme = tarfile.open(tarball).extractfile("README.md").read().decode()
    assert readme.index("## Install and run") < readme.index("make demo")
