"""`make sanity`: ansible-test sanity over the collection as it ships, without containers.

    python -m tests.support.sanity [ansible-test sanity arguments...]

1. Builds the collection (ansible-galaxy collection build: build_ignore decides what ships, as for Galaxy) and
   unpacks it as <tmp>/ansible_collections/mailflow/exchange, with tests/sanity/ (ignore files, if any) in it.
2. Puts the collections it imports from (ansible.netcommon, from the `ansible` bundle requirements.txt pins) beside
   it, where ansible-test's import test looks for them.
3. Runs `ansible-test sanity --local --python 3.11` there. ansible-test installs each test's pinned tools (pylint,
   pycodestyle, voluptuous, yamllint, ...) into its own virtual environments under ~/.ansible/test/venv from PyPI,
   once; those environments start from pip, which it would fetch as a bootstrap script from a host outside the
   package registries. tests/support/get_pip.py stands in for that script (pip from the interpreter's own
   ensurepip, then the pinned pip from PyPI) when it is not already in ansible-test's cache.

Exits with ansible-test's status. PowerShell's lint (pslint) needs pwsh and is skipped by ansible-test without it.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import types

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
# Collections the shipped code imports at module level (galaxy.yml dependencies).
DEPENDENCIES = ("ansible.netcommon",)


def seed_pip_bootstrap() -> None:
    from ansible_test._internal.python_requirements import get_venv_packages
    version = get_venv_packages(types.SimpleNamespace(version=PYTHON))["pip"]
    cached = os.path.expanduser(f"~/.ansible/test/cache/get_pip_{version.replace('.', '_')}.py")
    if not os.path.exists(cached):
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        shutil.copy(os.path.join(ROOT, "tests", "support", "get_pip.py"), cached + ".tmp")
        os.replace(cached + ".tmp", cached)


def build_tree(work: str) -> str:
    dist = os.path.join(work, "dist")
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--force", "--output-path", dist, ROOT],
                   check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    (tarball,) = glob.glob(os.path.join(dist, "mailflow-exchange-*.tar.gz"))
    tree = os.path.join(work, "ansible_collections", "mailflow", "exchange")
    os.makedirs(tree)
    with tarfile.open(tarball) as tar:
        tar.extractall(tree, filter="data")
    ignores = os.path.join(ROOT, "tests", "sanity")
    if os.path.isdir(ignores):  # tests/sanity/ignore-<core>.txt: findings kept on purpose, each with its reason
        shutil.copytree(ignores, os.path.join(tree, "tests", "sanity"))
    installed = os.path.join(sysconfig.get_paths()["purelib"], "ansible_collections")
    for name in DEPENDENCIES:
        namespace, collection = name.split(".")
        os.makedirs(os.path.join(work, "ansible_collections", namespace), exist_ok=True)
        os.symlink(os.path.join(installed, namespace, collection), os.path.join(work, "ansible_collections", namespace, collection))
    return tree


def main(argv: list[str]) -> int:
    seed_pip_bootstrap()
    with tempfile.TemporaryDirectory(prefix="mailflow-sanity-") as work:
        tree = build_tree(work)
        cmd = [os.path.join(BIN, "ansible-test"), "sanity", "--local", "--python", PYTHON, "--color", "no", *argv]
        env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
        return subprocess.run(cmd, cwd=tree, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
