"""The execution environment: ansible-builder finds the collection's requirements and makes a build context.

Building the image needs podman or docker, which CI does not have; the build context (`ansible-builder create`)
and the introspection its builder stage runs (the same introspect.py, over the collection installed from the
tarball the context carries) are what is tested here."""
import glob
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT

BIN = os.path.dirname(sys.executable)
ENV = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")

pytestmark = pytest.mark.slow


def _run(*cmd, cwd=ROOT, timeout=300):
    out = subprocess.run(list(cmd), cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd}: {out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    return out


def _version():
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)["version"]


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    dist = tmp_path_factory.mktemp("ee") / "dist"
    _run(os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(dist), "--force", ROOT)
    (path,) = glob.glob(str(dist / "mailflow-exchange-*.tar.gz"))
    return path


def test_the_collections_own_requirements_name_pywinrm(tarball, tmp_path):
    """What an EE built with the collection gets: `ansible-builder introspect` over the installed tarball."""
    collections = tmp_path / "collections"
    _run(os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--no-deps", "--force", "-p", str(collections), tarball)
    out = _run(os.path.join(BIN, "ansible-builder"), "introspect", str(collections))
    deps = yaml.safe_load(out.stdout)
    python = " ".join(deps["python"])
    for package in ("pywinrm", "pyspnego", "ansible-pylibssh"):
        assert package in python and "# from collection mailflow.exchange" in python, out.stdout
    assert any(line.startswith("libssh") for line in deps["system"]), out.stdout


def test_builder_creates_a_context_whose_builder_stage_finds_pywinrm(tarball, tmp_path):
    # execution-environment.yml as a user runs it: from the checkout's layout, with `make build`'s dist/.
    work = tmp_path / "src"
    (work / "dist").mkdir(parents=True)
    shutil.copy(os.path.join(ROOT, "execution-environment.yml"), work)
    shutil.copytree(os.path.join(ROOT, "ee"), work / "ee")
    shutil.copy(tarball, work / "dist")
    _run(os.path.join(BIN, "ansible-builder"), "create", "--file", "execution-environment.yml", "--context", "context",
         "--output-filename", "Containerfile", cwd=work)
    context = work / "context"
    containerfile = (context / "Containerfile").read_text()
    assert "ansible-core==2.19.14" in containerfile and "introspect.py introspect" in containerfile
    # The galaxy stage installs what ee/requirements.yml names, from the tarball the context carries.
    version = _version()
    carried = context / "_build" / "collections" / f"mailflow-exchange-{version}.tar.gz"
    assert carried.exists(), sorted(os.listdir(context / "_build"))
    wanted = yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]
    assert {"name": f"/build/collections/{carried.name}", "type": "file"} in wanted

    # The builder stage: install as the galaxy stage would, then the context's own introspect.py.
    installed = tmp_path / "usr-share-ansible" / "collections"
    _run(os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--no-deps", "--force", "-p", str(installed), str(carried))
    pip, bindep = tmp_path / "requirements.txt", tmp_path / "bindep.txt"
    _run(sys.executable, str(context / "_build" / "scripts" / "introspect.py"), "introspect", str(installed),
         f"--write-pip={pip}", f"--write-bindep={bindep}")
    assert any(line.startswith("pywinrm") for line in pip.read_text().splitlines()), pip.read_text()
