"""One run at a time per host: the lock on a host's (or device's) backups.

Two runs that change one host at once lose its original values: both read the
old value, and the second's backup records the first one's new value as its
"before". So every run that plans, changes or rolls back a host first holds
<backup_dir>/.locks/<host>.json for its whole life: the file names the
ansible-playbook process that holds it, and is free again when that process
has ended (nothing has to release it, so a run killed mid-change does not
leave the host locked). Another run waits for it (up to `wait` seconds) or
refuses, naming the holder.
"""
from __future__ import annotations

import fcntl
import getpass
import json
import os
import socket
import time
from datetime import datetime, timezone

from ansible_collections.mailflow.exchange.plugins.module_utils import paths

LOCKS = ".locks"


class HostBusy(Exception):
    """Another run holds the host; the message names it."""


def this_run() -> dict:
    """The run this process belongs to: Ansible's workers are forked from the ansible-playbook process."""
    pid = os.getppid()
    return {"pid": pid, "started": _process_start(pid), "controller": socket.gethostname(), "user": _user(),
            "since": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def hold(backup_dir: str, host: str, run: dict | None = None, wait: float = 0, what: str = "") -> dict:
    """Hold `host` for `run` (this run by default); the same run may ask again. HostBusy when another live run
    holds it after `wait` seconds."""
    run = run or this_run()
    folder = os.path.join(backup_dir, LOCKS)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{paths.host_file_name(host)}.json")
    deadline = time.monotonic() + max(0.0, float(wait))
    while True:
        with open(path + ".mutex", "a", encoding="utf-8") as mutex:
            fcntl.flock(mutex, fcntl.LOCK_EX)
            holder = _read(path)
            if holder is not None and _same(holder, run):
                return run
            if holder is None or not _alive(holder):
                _write(path, dict(run, what=what))
                return run
        if time.monotonic() >= deadline:
            raise HostBusy(f"{host} is held by another run: {describe(holder)}; wait for it to end (or, if that "
                           f"process is gone, remove {path})")
        time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))


def describe(holder: dict) -> str:
    what = f" ({holder['what']})" if holder.get("what") else ""
    return (f"ansible-playbook pid {holder.get('pid')} of {holder.get('user')} on {holder.get('controller')}, "
            f"since {holder.get('since')}{what}")


def _same(a: dict, b: dict) -> bool:
    return bool(a) and (a.get("pid"), a.get("started"), a.get("controller")) == (b.get("pid"), b.get("started"), b.get("controller"))


def _alive(holder: dict) -> bool:
    """Is the holding process still running? Only this controller can tell; another's lock counts as held."""
    if holder.get("controller") != socket.gethostname():
        return True
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # The pid may have been reused by a later process: compare start times where the system tells them.
    started = _process_start(pid)
    return started is None or holder.get("started") in (None, started)


def _process_start(pid: int):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[19])  # field 22: start time in clock ticks
    except (OSError, ValueError, IndexError):
        return None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _read(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
        return doc if isinstance(doc, dict) else None
    except (OSError, ValueError):
        return None


def _write(path: str, doc: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, sort_keys=True)
    os.replace(tmp, path)
