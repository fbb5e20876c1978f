"""Stands in for the get-pip.py bootstrap script ansible-test downloads (tests/support/sanity.py copies it into
ansible-test's cache): it is run in a new, pip-less virtual environment with pip's install arguments, for example
`--disable-pip-version-check pip==24.2 --no-setuptools --no-wheel`.

pip comes from the interpreter's own ensurepip (in a child process: ensurepip sets PIP_CONFIG_FILE=/dev/null in
the environment of the process that calls it, which would hide the machine's pip configuration), then the pinned
pip is installed over it from the package index, and setuptools is removed again when --no-setuptools asks."""
import subprocess
import sys

FLAGS = ("--no-setuptools", "--no-wheel")


def main(argv):
    rc = subprocess.call([sys.executable, "-m", "ensurepip", "--upgrade"])
    if rc == 0:
        rc = subprocess.call([sys.executable, "-m", "pip", "install", "--upgrade", "--force-reinstall",
                              *[a for a in argv if a not in FLAGS]])
    if rc == 0 and "--no-setuptools" in argv:
        rc = subprocess.call([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", "setuptools"])
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
