"""The demo fleet's mail at the tests' time factor: what drains by itself, what drains once fixed, what never does.

The fixes are the raw-state changes the fix roles make (and, for PIX01, the line an admin pastes), applied
through the lab's own emulation. The drain times are printed (pytest -s) for the record: they are the lab's
retry schedule at time_factor 3600, where the subsequent retry interval (240 minutes) is 4 s.
"""
from __future__ import annotations

import time

from ansible_collections.mailflow.exchange.plugins.module_utils.psrunner import Op

from lab.netdev.ios import IosCli
from tests.conftest import demo_data
from tests.lab.test_delivery import EXCHANGE_QUEUE, IIS_QUEUE, counter, events_4006, files_under, links, queue, run, wait_for

FACTOR = 3600
INETSRV = r"C:\WINDOWS\system32\inetsrv"
# Queue file -> the sender's host, as the demo names them.
FIXABLE = {
    "NTFS_6a1f03c201c7b2e40000000a.EML": "EXCH03",  # SAV Internet E-mail Auto-Protect on EXCH03
    "NTFS_9b3b3b1801c7b2e400000011.EML": "EXCH04",  # SMSMSE heuristics on EXCH04
    "NTFS_1c2d3e4f01c7b2e400000023.EML": "EXCH05",  # FW01's CBAC smtp rule between EXCH05 and EXCH01
    "NTFS_8f90a1b201c7b2e400000041.EML": "EXCH08",  # PIX01's fixup between EXCH08 and EXCH04
    "NTFS_5e6f708101c7b2e400000031.EML": "EXCH07",  # EXCH07: SMTP disabled, metabase corrupt
    "NTFS_5e6f708101c7b2e400000032.EML": "EXCH07",
}
NEVER = {
    "NTFS_1c2d3e4f01c7b2e400000021.EML": "EXCH05",  # S-TNEF to EXCH55: what forces TNEF is not known
    "NTFS_8f90a1b201c7b2e400000042.EML": "EXCH08",  # the network drops EXCH08 <-> EXCH05
}


def fix_everything_fixable(lab) -> None:
    run(lab, "EXCH03", Op("run_process", ("msiexec.exe", ("/i", "{5A8E4C1D-7E2B-4C59-A3F1-0B9D6E2F4A17}", "REMOVE=Pop3Smtp",
                                                           "/qn", "REBOOT=ReallySuppress"), "600", ("0", "3010"))))
    run(lab, "EXCH04", Op("reg_write", (r"HKLM\SOFTWARE\Symantec\SMSMSE\4.5\Server", "EnableBloodhound", "DWord", "0")))
    devices = {d["name"]: d for d in lab.fleet.network["devices"]}
    cli = IosCli(devices["FW01"], lock=lab.fleet.lock)
    for line in ("configure terminal", "no ip inspect name MAILFW smtp", "end"):
        cli.handle(line)
    with lab.fleet.lock:
        devices["PIX01"]["config"] += "no fixup protocol smtp 25\n"
    run(lab, "EXCH07", Op("file_copy", (INETSRV + r"\History\MetaBase_0000000005_0000000000.xml", INETSRV + r"\MetaBase.xml", "", ())),
        Op("service_control", ("SMTPSVC", "auto", "30")), Op("service_control", ("SMTPSVC", "start", "30")))


def test_demo_queues_drain_once_fixed_and_the_rest_stay(lab_factory):
    data = demo_data()
    data["time_factor"] = FACTOR
    lab = lab_factory(data, mail_flow=True)
    sender_of = {**FIXABLE, **NEVER}

    def still_queued() -> set[str]:
        return {name for name, host in sender_of.items() if name in queue(lab, host)}

    # EXCH05's mail for RELAY01 is only greylisted: it leaves at its first retry (15 lab-minutes = 0.25 s) and waits
    # in RELAY01's queue, which has no route to relay.example.
    wait_for(lambda: "NTFS_1c2d3e4f01c7b2e400000022.EML" not in queue(lab, "EXCH05"), 10, "the greylisted message")
    assert len(queue(lab, "RELAY01", IIS_QUEUE)) == 2
    time.sleep(6)  # six lab-hours: every stuck link is on its subsequent (240-minute) retry interval
    assert still_queued() == set(sender_of)
    assert all(links(lab, h)[n]["StateRetry"] for h, n in (("EXCH03", "exch02.corp.example"), ("EXCH05", "exch01.corp.example"),
                                                           ("EXCH08", "exch04.corp.example"), ("EXCH08", "exch05.corp.example")))
    assert counter(lab, "EXCH07", "delivery_attempts") == 0 and len(events_4006(lab, "EXCH05")) > 3

    fixed_at = time.monotonic()
    fix_everything_fixable(lab)
    drained: dict[str, float] = {}

    def fixable_left() -> bool:
        for name in set(FIXABLE) - set(drained) - still_queued():
            drained[name] = round(time.monotonic() - fixed_at, 2)
        return len(drained) == len(FIXABLE)

    wait_for(fixable_left, 15, "the fixed paths to drain")
    print("\ndrain times at time_factor", FACTOR, {FIXABLE[n] + ":" + n: s for n, s in sorted(drained.items())})
    assert still_queued() == set(NEVER)
    stores = {h: files_under(lab, h, r"C:\Program Files\Exchsrvr\mdbdata") for h in ("EXCH01", "EXCH02", "EXCH04")}
    assert [len(stores[h]) for h in ("EXCH01", "EXCH02", "EXCH04")] == [3, 2, 1], stores  # dave, peggy, heidi; bob, judy; niaj
    assert not queue(lab, "EXCH07") and not {n for n in links(lab, "EXCH03")} and not queue(lab, "EXCH01", EXCHANGE_QUEUE)
