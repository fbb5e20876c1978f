"""SSH host keys of the lab's devices, and the client files that make host key checking possible.

Each device keeps one Ed25519 host key in ``<workdir>/ssh/<device>.key`` for
the life of the workdir, as a real router keeps its key across reloads.
Ed25519 because libssh 0.12 prefers it and paramiko 4 serves it, and it
takes microseconds to make. The lab writes a ``known_hosts`` with every
device's key and an OpenSSH-style ``ssh_config`` pointing at it, the way its
CA makes WinRM certificate validation possible.
"""
from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import hmac
import os
import pwd
import re
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
# can check the lab's host keys, a lab asked to (Lab(user_known_hosts=...); `python -m lab up` and `demo` do)
# also lists its devices in the user's known_hosts while it runs, each line tagged with a comment naming the
# lab, as `ssh-keyscan >> ~/.ssh/known_hosts` would, and removes its lines when it stops.
#
# Only tagged lines are ever removed or replaced: the lab's own, and another lab's for an address:port this
# lab now serves (left by a lab that did not stop cleanly; two running labs cannot share one). The user's own
# lines are never touched: one for the same address:port with the same key is used as it is, one with another
# key stops the lab with KnownHostsConflict and the file unchanged.

TAG_PREFIX = "mailflow-lab-"
_TAG = re.compile(r"^mailflow-lab-[0-9a-f]{12}$")


class KnownHostsConflict(RuntimeError):
    """The user's known_hosts has an untagged line (not the lab's) for a lab device's address, another key."""


def user_known_hosts() -> str:
    return os.path.join(pwd.getpwuid(os.getuid()).pw_dir, ".ssh", "known_hosts")


def lab_tag(workdir: str) -> str:
    return TAG_PREFIX + hashlib.sha1(os.path.abspath(workdir).encode()).hexdigest()[:12]


def _fields(line: str) -> list[str] | None:
    """host-patterns, keytype, key[, comment words] of a host key line; None for comments, blank lines,
    @cert-authority/@revoked lines and anything malformed."""
    parts = line.split()
    if len(parts) < 3 or parts[0].startswith(("#", "@")):
        return None
    return parts


def _tag_of(parts: list[str]) -> str | None:
    return parts[3] if len(parts) == 4 and _TAG.match(parts[3]) else None


def _names(patterns: str, host: str) -> bool:
    """Whether a host field (comma-separated names, or a HashKnownHosts |1|salt|hash) is for host."""
    for pattern in patterns.split(","):
        if pattern.startswith("|1|"):
            try:
                _, _, salt, digest = pattern.split("|")
                mac = hmac.new(base64.b64decode(salt), host.encode(), hashlib.sha1).digest()
                if hmac.compare_digest(mac, base64.b64decode(digest)):
                    return True
            except (ValueError, binascii.Error):
                continue
        elif pattern == host:
            return True
    return False


def _edit_known_hosts(path: str, change) -> None:
    """change(lines) -> new lines, under a lock, written atomically through any symlink (it stays one)."""
    real = os.path.realpath(path)
    directory = os.path.dirname(real)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    with open(os.path.join(directory, ".mailflow-lab.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # labs on other pytest workers edit the same file
        try:
            with open(real, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except FileNotFoundError:
            lines = []
        new = change(lines)  # may raise: the file is left as it was
        if new == lines:
            return
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".known_hosts.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write("".join(line + "\n" for line in new))
            os.chmod(tmp, os.stat(real).st_mode & 0o777 if os.path.exists(real) else 0o600)
            os.replace(tmp, real)  # readers (libssh) see the old file or the new one, never half of one
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise


def trust(path: str, lines: list[str], tag: str) -> None:
    """Put lines (host keytype key) into the known_hosts at path, tagged.

    The lab's own tagged lines from before and other labs' tagged lines for the same hosts (stale) are
    replaced; an untagged line for one of the hosts with the same key stands in for the lab's line; one
    with a different key raises KnownHostsConflict and leaves the file as it was."""
    ours = {}
    for line in lines:
        host, keytype, key = line.split()[:3]
        ours[host] = (keytype, key)

    def change(existing: list[str]) -> list[str]:
        kept, known = [], set()
        for number, entry in enumerate(existing, 1):
            parts = _fields(entry)
            if parts is None:
                kept.append(entry)
                continue
            entry_tag = _tag_of(parts)
            if entry_tag == tag:
                continue  # ours, written again below
            hosts = [host for host in ours if _names(parts[0], host)]
            if not hosts:
                kept.append(entry)
                continue
            if entry_tag is not None:
                continue  # another lab's line for an address this lab now serves: stale
            for host in hosts:
                if (parts[1], parts[2]) != ours[host]:
                    real = os.path.realpath(path)
                    raise KnownHostsConflict(
                        f"{path}{f' (-> {real})' if real != os.path.abspath(path) else ''}: line {number} lists "
                        f"{host} with another host key ({parts[1]}) and is not the lab's (no {TAG_PREFIX}* tag), "
                        f"so the lab leaves it alone and cannot list device {host}'s key there. Remove that line "
                        f"(ssh-keygen -R '{host}' -f {path}), or move the lab to other addresses "
                        "(--address-block), or start it without editing known_hosts (--no-known-hosts).")
                known.add(host)
            kept.append(entry)
        return kept + [f"{line} {tag}" for line in lines if line.split()[0] not in known]
    _edit_known_hosts(path, change)


def untrust(path: str, tag: str) -> None:
    """Remove the lab's tagged lines, and nothing else."""
    if os.path.exists(path):
        _edit_known_hosts(path, lambda existing: [e for e in existing
                                                  if (parts := _fields(e)) is None or _tag_of(parts) != tag])
