"""SSH host keys of the lab's devices, and the client files that make host key checking possible.

Each device keeps one Ed25519 host key in ``<workdir>/ssh/<device>.key`` for
the life of the workdir, as a real router keeps its key across reloads.
Ed25519 because libssh 0.12 prefers it and paramiko 4 serves it, and it
takes microseconds to make. The lab writes a ``known_hosts`` with every
device's key and an OpenSSH-style ``ssh_config`` pointing at it, the way its
CA makes WinRM certificate validation possible.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import pwd
import tempfile

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519


def host_key(path: str) -> paramiko.PKey:
    """The key at path, made first when there is none."""
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
    return paramiko.Ed25519Key(filename=path)


def known_hosts_line(address: str, port: int, key: paramiko.PKey) -> str:
    """OpenSSH known_hosts syntax: a bare address on port 22, [address]:port otherwise."""
    where = address if int(port) == 22 else f"[{address}]:{int(port)}"
    return f"{where} {key.get_name()} {key.get_base64()}"


def write_client_files(ssh_dir: str, lines: list[str]) -> tuple[str, str]:
    """<ssh_dir>/known_hosts and <ssh_dir>/ssh_config (strict checking against it); their absolute paths."""
    os.makedirs(ssh_dir, exist_ok=True)
    known_hosts = os.path.abspath(os.path.join(ssh_dir, "known_hosts"))
    ssh_config = os.path.abspath(os.path.join(ssh_dir, "ssh_config"))
    with open(known_hosts, "w", encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in lines))
    with open(ssh_config, "w", encoding="utf-8") as fh:
        fh.write("# Written by the mailflow lab: its devices' host keys are in the known_hosts below.\n"
                 f"Host *\n  UserKnownHostsFile {known_hosts}\n  StrictHostKeyChecking yes\n")
    return known_hosts, ssh_config


# -- the controller user's known_hosts
#
# libssh (ansible-pylibssh 1.4.0, libssh 0.12) reads only ~/.ssh/known_hosts (home from the passwd entry, not
# $HOME) and /etc/ssh/ssh_known_hosts: pylibssh ignores the config_file that ansible.netcommon passes
# (ansible/pylibssh#479, #790 unmerged), and netcommon does not pass its `knownhosts` option. So that Ansible
# can check the lab's host keys, a running lab also lists its devices in the user's known_hosts, each line
# tagged with a comment naming the lab, as `ssh-keyscan >> ~/.ssh/known_hosts` would; a lab replaces lines
# for its own address:port (a lab that went before on the same address) and removes its lines when it stops.

def user_known_hosts() -> str:
    return os.path.join(pwd.getpwuid(os.getuid()).pw_dir, ".ssh", "known_hosts")


def lab_tag(workdir: str) -> str:
    return "mailflow-lab-" + hashlib.sha1(os.path.abspath(workdir).encode()).hexdigest()[:12]


def _edit_known_hosts(path: str, change) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    with open(os.path.join(directory, ".mailflow-lab.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # labs on other pytest workers edit the same file
        try:
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except FileNotFoundError:
            lines = []
        new = change(lines)
        if new == lines:
            return
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".known_hosts.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in new))
        os.chmod(tmp, 0o600 if not os.path.exists(path) else os.stat(path).st_mode & 0o777)
        os.replace(tmp, path)  # readers (libssh) see the old file or the new one, never half of one


def trust(path: str, lines: list[str], tag: str) -> None:
    """Put lines (host keytype key) into the known_hosts at path, tagged, replacing any for the same hosts."""
    hosts = {line.split()[0] for line in lines}

    def change(existing: list[str]) -> list[str]:
        kept = [e for e in existing if not e.split() or (e.split()[0] not in hosts and not e.endswith(" " + tag))]
        return kept + [f"{line} {tag}" for line in lines]
    _edit_known_hosts(path, change)


def untrust(path: str, tag: str) -> None:
    if os.path.exists(path):
        _edit_known_hosts(path, lambda existing: [e for e in existing if not e.endswith(" " + tag)])
