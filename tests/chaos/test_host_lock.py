"""One run at a time per host: the lock on its backups, held for the life of the ansible-playbook process.

Two fix.yml runs of one change at once used to both read GlitchRetrySeconds 30, and the second's backup recorded
the first one's 180 as the original: rollback.yml then restored nothing.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import re
import subprocess
import time

import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils import hostlock
from tests.chaos.conftest import QUEUING, command, glitch, inventory, run
from tests.conftest import ROOT
from tests.support import fixplay

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _holder(backup_dir, ready, done):
    # As an Ansible worker: the run is the parent process (here: this child's parent is the test, so pretend
    # by holding for our own pid).
    run = dict(hostlock.this_run(), pid=os.getpid(), started=hostlock._process_start(os.getpid()))
    hostlock.hold(backup_dir, "EXCH05", run=run, what="fix glitch_retry_short")
    ready.set()
    done.wait(30)


def test_a_second_run_is_refused_naming_the_holder_and_gets_the_host_once_it_ends(tmp_path):
    ctx = multiprocessing.get_context("fork")
    ready, done = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_holder, args=(str(tmp_path), ready, done))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(hostlock.HostBusy, match=rf"pid {holder.pid} .*fix glitch_retry_short"):
            hostlock.hold(str(tmp_path), "EXCH05")
        t0 = time.monotonic()
        with pytest.raises(hostlock.HostBusy):
            hostlock.hold(str(tmp_path), "EXCH05", wait=1.5)
        assert time.monotonic() - t0 >= 1.4  # it waited before refusing
        assert hostlock.hold(str(tmp_path), "EXCH01")  # other hosts are free
    finally:
        done.set()
        holder.join(10)
    assert hostlock.hold(str(tmp_path), "EXCH05")  # the holder ended: nothing had to release it
    assert hostlock.hold(str(tmp_path), "EXCH05")  # and the same run may ask again


def test_two_fix_runs_of_one_change_at_once_keep_the_original_for_the_rollback(lab, tmp_path):
    inv = inventory(lab, tmp_path)
    lab.metrics.fault("EXCH05").latency_ms = 150  # both runs are at EXCH05 at once
    args = ("-e", "mailflow_fix=glitch_retry_short", "-e", "mailflow_change_id=CHG900", "--limit", "EXCH05")
    procs = [subprocess.Popen(command("fix.yml", inv, tmp_path, *args, reports=f"reports-{n}"), cwd=ROOT, env=fixplay.ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for n in (1, 2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    lab.metrics.fault("EXCH05").latency_ms = 0
    assert glitch(lab) == ("REG_DWORD", 180)
    # One changed it. The other was refused naming the holder, or came after it and found nothing to change.
    assert sum("changed=1" in o for o in outs) >= 1, outs[0][-3000:] + outs[1][-3000:]
    for o in outs:
        assert re.search(r"EXCH05 +: ok=\d+ +changed=1", o) or "is held by another run: ansible-playbook pid" in o \
            or re.search(r"EXCH05 +: ok=\d+ +changed=0 .*failed=0", o), o[-3000:]
    backup = json.loads((tmp_path / "backups" / "CHG900" / "EXCH05" / "glitch_retry_short.json").read_text())
    assert backup["changes"][0]["before"] == {"exists": True, "type": "REG_DWORD", "data": 30}, backup
    proc = run("rollback.yml", inv, tmp_path, "-e", "mailflow_change_id=CHG900", "--limit", "EXCH05")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert glitch(lab) == ("REG_DWORD", 30)


def test_a_rerun_of_a_change_keeps_the_first_original(lab, tmp_path):
    """A second run of the same change id after someone put another value in: the backup keeps 30, the value from
    before the change, so the rollback puts 30 back, not the 45 found in between."""
    inv = inventory(lab, tmp_path)
    args = ("-e", "mailflow_fix=glitch_retry_short", "-e", "mailflow_change_id=CHG901", "--limit", "EXCH05")
    assert run("fix.yml", inv, tmp_path, *args).returncode == 0
    lab.fleet.host("EXCH05").registry.set(QUEUING, "GlitchRetrySeconds", "REG_DWORD", 45)
    proc = run("fix.yml", inv, tmp_path, *args)
    assert proc.returncode == 0 and glitch(lab) == ("REG_DWORD", 180), proc.stdout[-3000:]
    backup = json.loads((tmp_path / "backups" / "CHG901" / "EXCH05" / "glitch_retry_short.json").read_text())
    assert backup["changes"][0]["before"]["data"] == 30
    assert run("rollback.yml", inv, tmp_path, "-e", "mailflow_change_id=CHG901").returncode == 0
    assert glitch(lab) == ("REG_DWORD", 30)
