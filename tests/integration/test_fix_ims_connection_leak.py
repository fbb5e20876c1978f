"""mailflow.exchange.fix_ims_connection_leak on the lab: EXCH55 (the demo's Exchange 5.5 before SP1, no WinRM) and
EXCH56, the same box with WinRM. Report-only by default (the cure is the service pack) and never contacting the
unmanaged host; the stop-gap restart of MSExchangeIMC only when asked and allowed, verified by the leaked
connections closing; bad input touches nothing; a restart that fails says it cannot be undone."""
from __future__ import annotations

import copy
import glob

import pytest

from tests.conftest import demo_data
from tests.support import fixplay, snapshots
from ansible_collections.mailflow.exchange.plugins.module_utils import knowledge
from ansible_collections.mailflow.exchange.plugins.module_utils.causes import ims_connection_leak as cause
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import HostView

pytestmark = [pytest.mark.slow, pytest.mark.integration]
CAUSE = "ims_connection_leak"
RESTART = ("-e", "mailflow_ims_restart=true", "-e", "mailflow_allow_service_restart=true")


def scenario(ims_fails_to_start=False):
    data = demo_data()
    exch55 = data["hosts"]["EXCH55"]
    managed = copy.deepcopy(exch55)
    managed.update(winrm=True, address="127.0.10.21")
    if ims_fails_to_start:
        # Stands in for an IMS that does not come back: its dependency (the MTA) is stopped and Disabled.
        managed["services"] = {
            "MSExchangeIMC": {"display_name": "Microsoft Exchange Internet Mail Service", "depends_on": ["MSExchangeMTA"]},
            "MSExchangeMTA": {"display_name": "Microsoft Exchange Message Transfer Agent", "state": "stopped",
                              "start_mode": "disabled"}}
    data["hosts"] = {"EXCH55": exch55, "EXCH56": managed}
    data["network"] = {}
    return data


@pytest.fixture
def lab(lab_factory):
    return lab_factory(scenario())


def play(lab, tmp_path, *extra):
    # `all`, not mailflow_servers: the role must cope with an unmanaged host it is pointed at.
    return fixplay.play(lab, tmp_path, CAUSE, *extra, limit="EXCH55,EXCH56", hosts="all")


def connections(lab, host="EXCH56"):
    return len(lab.fleet.host(host).tcp_connections)


def counters(lab, host):
    return lab.metrics.snapshot().get(host, {})


def finding(lab):
    return fixplay.finding(lab, "EXCH56", CAUSE)


def test_report_only_by_default_and_the_unmanaged_host_is_never_contacted(lab, tmp_path):
    assert finding(lab)["status"] == "present" and connections(lab) == 5
    lab.metrics.reset()
    proc = play(lab, tmp_path)
    r = fixplay.recap(proc)
    assert proc.returncode == 0 and r["EXCH55"]["changed"] == 0 and r["EXCH56"]["changed"] == 0, proc.stdout[-3000:]
    out = proc.stdout + proc.stderr
    assert "Exchange 5.5 build 1960 is before 5.5.2232: install a service pack" in out
    assert "as a stop-gap, mailflow_ims_restart: true" in out
    assert "EXCH55 is not managed (mailflow_unmanaged, no WinRM): nothing was read or changed there" in out
    # EXCH55 has no WinRM listener at all: any attempt to connect would have made it unreachable.
    assert r["EXCH55"]["unreachable"] == 0 and r["EXCH55"]["failed"] == 0
    assert not counters(lab, "EXCH56")["service_restarts"] and connections(lab) == 5
    assert not glob.glob(str(tmp_path / "backups" / "*"))


def test_plan_and_advice_follow_the_switches(lab):
    view = HostView(snapshots.take(lab, "EXCH56", peers=[]))
    facts = knowledge.load()

    def run(restart, allowed):
        params = cause.fix_params({"restart": restart, "allow_service_restart": allowed}, facts)
        return [c.describe() for c in cause.plan(view, params)], cause.advice(view, params)

    assert run(False, True)[0] == [] and run(True, False)[0] == []
    assert "restart of MSExchangeIMC pending (5 ESTABLISHED connections to remote port 25)" in run(True, False)[1][-1]
    assert run(True, True)[0] == ["service MSExchangeIMC: running, 5 ESTABLISHED connections to remote port 25 -> "
                                  "restarted (its connections closed)"]
    with pytest.raises(cause.FixError, match="mailflow_ims_restart must be true or false"):
        cause.fix_params({"restart": "maybe"}, facts)


def test_stop_gap_restart_closes_the_leaked_connections(lab, tmp_path):
    proc = play(lab, tmp_path, "--check", "--diff", *RESTART)
    assert proc.returncode == 0 and fixplay.recap(proc)["EXCH56"]["changed"] == 1, proc.stdout[-2000:]
    assert not counters(lab, "EXCH56").get("service_restarts") and connections(lab) == 5

    proc = play(lab, tmp_path, *RESTART)
    r = fixplay.recap(proc)
    assert proc.returncode == 0 and r["EXCH56"]["changed"] == 1 and r["EXCH55"]["changed"] == 0, proc.stdout[-3000:]
    assert counters(lab, "EXCH56")["service_restarts"] == {"MSExchangeIMC": 1} and connections(lab) == 0
    assert r["EXCH55"]["unreachable"] == 0
    doc = fixplay.backup(tmp_path, "EXCH56", CAUSE)
    assert doc["state"] == "verified" and doc["changes"][0]["kind"] == "service_restart"
    # The build is still before the fix: the cause stays present, without the leak's signature for now.
    f = finding(lab)
    assert f["status"] == "present" and "only 0 ESTABLISHED" in f["summary"]

    proc = play(lab, tmp_path, *RESTART)
    assert proc.returncode == 0 and fixplay.recap(proc)["EXCH56"]["changed"] == 0, proc.stdout[-2000:]
    assert "no stop-gap restart needed" in proc.stdout + proc.stderr
    assert counters(lab, "EXCH56")["service_restarts"] == {"MSExchangeIMC": 1}


def test_bad_value_fails_before_any_host_is_touched(lab, tmp_path):
    lab.metrics.reset()
    proc = play(lab, tmp_path, "-e", "mailflow_ims_restart=maybe")
    assert proc.returncode != 0 and "mailflow_ims_restart" in proc.stdout, proc.stdout[-1500:]
    assert counters(lab, "EXCH56").get("http_requests", 0) == 0 and connections(lab) == 5


def test_a_restart_that_fails_says_it_cannot_be_undone(lab_factory, tmp_path):
    lab = lab_factory(scenario(ims_fails_to_start=True))
    proc = play(lab, tmp_path, *RESTART)
    assert proc.returncode != 0
    assert "not reversible on the host, left as applied: service MSExchangeIMC" in proc.stdout, proc.stdout[-3000:]
    assert lab.fleet.host("EXCH56").service("MSExchangeIMC").state == "stopped"  # left stopped: the message must say so
    assert fixplay.backup(tmp_path, "EXCH56", CAUSE)["changes"][0]["target"] == {"service": "MSExchangeIMC"}
