"""playbooks/rollback.yml on the lab. The fix roles make change CHG1 on four servers (registry values, a firewall
opening, an MSI feature, an IIS metabase property, services, a MetaBase.xml restore); someone then changes one of
those values by hand. --check touches nothing; the rollback puts back every value that still holds the change's
value, leaves the hand-made one (and the MetaBase.xml IIS rewrote since) as they are and says so, keeps the queued
mail, marks the backups and appends to the change record; a second rollback contacts no host. A missing or
malformed change id is refused before any host is contacted."""
from __future__ import annotations

import json
import os

import pytest
import yaml

from tests.support import fixplay
from ansible_collections.mailflow.exchange.plugins.module_utils import metabase

pytestmark = [pytest.mark.slow, pytest.mark.integration]
HOSTS = ("EXCH03", "EXCH05", "EXCH06", "EXCH07")
# One run makes the change; each role changes what its cause needs on whichever of the hosts has it.
FIXES = ("metabase_corrupt", "peer_smtp_unavailable", "port25_blocked", "smtp_banner_missing", "glitch_retry_short",
         "av_scans_iis_folders", "sav_internet_email_autoprotect")
QUEUING = r"HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC\Queuing"
INETSRV = r"C:\WINDOWS\system32\inetsrv"
QUEUE = r"C:\Program Files\Exchsrvr\Mailroot\vsi 1\Queue"
ROLLED_BACK = {"EXCH03": 1, "EXCH05": 0, "EXCH06": 1, "EXCH07": 1}  # EXCH05's only change was overwritten by hand


@pytest.fixture
def lab(lab_factory):
    data = fixplay.demo_subset(*HOSTS)
    # EXCH07's metabase history names its own IIS accounts, so fix_metabase_corrupt has a usable pair to restore.
    data["hosts"]["EXCH07"]["metabase"]["locations"] = {"/LM/W3SVC": {"AnonymousUserName": "IUSR_EXCH07"}}
    return lab_factory(data)


def args(tmp_path, *extra):
    return ("-e", f"mailflow_backup_dir={tmp_path / 'backups'}", "-e", f"mailflow_report_root={tmp_path / 'reports'}") + extra


def rollback(lab, tmp_path, *extra):
    return fixplay.ansible_playbook(fixplay.write_inventory(lab, tmp_path), "playbooks/rollback.yml", *args(tmp_path, *extra))


def make_change(lab, tmp_path):
    pb = tmp_path / "fixes.yml"
    pb.write_text(yaml.safe_dump([{"name": "fix", "hosts": "mailflow_servers", "gather_facts": False,
                                   "roles": [{"role": f"mailflow.exchange.fix_{c}"} for c in FIXES]}]))
    return fixplay.ansible_playbook(fixplay.write_inventory(lab, tmp_path), pb, *args(
        tmp_path, "-e", "mailflow_change_id=CHG1", "-e", "mailflow_allow_service_restart=true",
        "-e", "mailflow_allow_metabase_restore=true", "-e", "mailflow_allow_enable_disabled_smtp=true"))


def raw(lab) -> dict:
    """The lab's raw state a change can touch: registry values (keys a write created and left empty do not count),
    services, MSI feature states, files."""
    out = {}
    for name in HOSTS:
        h = lab.fleet.host(name)
        out[name] = {
            "registry": {f"{k.lower()}\\{n.lower()}": v for k, vals in h.registry.to_plain().items() for n, v in vals.items()},
            "services": {s.name: (s.state, s.start_mode) for s in h.services.values()},
            "features": {f["Name"]: f["InstallState"] for f in h.wmi.get("root\\cimv2", {}).get("Win32_SoftwareFeature", [])},
            "files": {p.lower(): f.get("text", f.get("hex")) for p, f in h.files.to_plain().items()},
        }
    return out


def connect_response(lab, host, state=None):
    text = (state or raw(lab))[host]["files"][f"{INETSRV.lower()}\\metabase.xml"]
    return metabase.parse(text).get("/LM/SmtpSvc/1").get("ConnectResponse")


def differences(a: dict, b: dict) -> dict:
    return {(host, part, key): (a[host][part].get(key), b[host][part].get(key))
            for host in a for part in a[host] for key in set(a[host][part]) | set(b[host][part])
            if a[host][part].get(key) != b[host][part].get(key)}


def backup(tmp_path, host, cause):
    with open(tmp_path / "backups" / "CHG1" / host / f"{cause}.json", encoding="utf-8") as fh:
        return json.load(fh)


def test_rollback_restores_what_still_holds_the_change_and_a_second_run_changes_nothing(lab, tmp_path):
    original = raw(lab)
    proc = make_change(lab, tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:]
    changed = raw(lab)
    touched = differences(original, changed)
    kinds = {(h, part) for h, part, _ in touched}
    # What the change did, as raw state: registry (glitch, SAV exclusions, firewall), services, MSI, metabase files.
    assert {("EXCH03", "registry"), ("EXCH03", "features"), ("EXCH05", "registry"), ("EXCH06", "files"),
            ("EXCH07", "services"), ("EXCH07", "files")} <= kinds, touched
    # Someone sets EXCH05's glitch retry by hand after the fix: the rollback must leave it.
    lab.fleet.host("EXCH05").registry.set(QUEUING, "GlitchRetrySeconds", "REG_DWORD", 600)
    os.makedirs(tmp_path / "reports", exist_ok=True)

    proc = rollback(lab, tmp_path, "-e", "mailflow_change_id=CHG1", "--check")
    assert proc.returncode == 0 and fixplay.changed(proc) == ROLLED_BACK, proc.stdout[-4000:]
    assert differences(changed, raw(lab)) == {(("EXCH05", "registry", f"{QUEUING.lower()}\\glitchretryseconds"))
                                              : ({"type": "REG_DWORD", "data": 180}, {"type": "REG_DWORD", "data": 600})}
    assert backup(tmp_path, "EXCH05", "glitch_retry_short")["state"] == "verified"
    assert not (tmp_path / "reports" / "changes").exists()  # check mode records nothing

    lab.metrics.reset()
    proc = rollback(lab, tmp_path, "-e", "mailflow_change_id=CHG1", "-e", "mailflow_allow_service_restart=true")
    assert proc.returncode == 0 and fixplay.changed(proc) == ROLLED_BACK, proc.stdout[-6000:]
    left = differences(original, raw(lab))
    # Back as before, except what changed since the fix: the hand-set value, and EXCH07's MetaBase.xml, which IIS
    # rewrote after the restore (so it is not the file the change wrote; the damaged one is not put back).
    assert left.pop(("EXCH05", "registry", f"{QUEUING.lower()}\\glitchretryseconds"))[1] == {"type": "REG_DWORD", "data": 600}
    assert left.pop(("EXCH07", "files", f"{INETSRV.lower()}\\metabase.xml"))
    # Registry values, services and MSI features are all back; the files left differing are IIS's own (a restart
    # makes DS2MB rewrite MetaBase.xml and add History copies), so the metabase is compared by its values.
    assert all(part == "files" and key.startswith(INETSRV.lower()) for _, part, key in left), left
    assert connect_response(lab, "EXCH06") == "" and connect_response(lab, "EXCH06", changed) != ""
    queued = {h: sorted(k for k in original[h]["files"] if k.startswith(QUEUE.lower())) for h in HOSTS}
    assert all(raw(lab)[h]["files"][k] == original[h]["files"][k] for h in HOSTS for k in queued[h])
    assert sum(len(q) for q in queued.values()) >= 4
    counters = lab.metrics.snapshot()
    assert counters["EXCH05"]["winrm_commands"] == 1  # read only: nothing there still held the change's value
    assert counters["EXCH06"]["service_restarts"].get("SMTPSVC") == 1  # the restored banner takes effect
    assert not counters["EXCH07"]["service_restarts"].get("SMTPSVC")  # put back to stopped, not restarted

    doc = backup(tmp_path, "EXCH05", "glitch_retry_short")
    assert doc["state"] == "rolled_back" and doc["rollback"]["restored"] == [] and len(doc["rollback"]["changed_since"]) == 1
    assert "REG_DWORD 600" in doc["rollback"]["changed_since"][0]
    assert "MetaBase.xml" in backup(tmp_path, "EXCH07", "metabase_corrupt")["rollback"]["changed_since"][0]
    with open(tmp_path / "reports" / "changes" / "CHG1" / "record.json", encoding="utf-8") as fh:
        record = json.load(fh)
    events = [e for e in record["events"] if e["type"] == "rollback"]
    backed_up = {(h, f[:-5]) for h in HOSTS for f in os.listdir(tmp_path / "backups" / "CHG1" / h) if f.endswith(".json")}
    assert {(e["host"], e["cause"]) for e in events} == backed_up and len(events) == len(backed_up)
    glitch5 = next(e for e in events if e["host"] == "EXCH05")
    assert glitch5["ok"] and glitch5["restored"] == [] and "changed since" in glitch5["changed_since"][0]
    assert record["hosts"]["EXCH06"]["status"] == "rolled_back"
    assert "changed since" in proc.stdout and "EXCH05 glitch_retry_short" in proc.stdout

    lab.metrics.reset()
    proc = rollback(lab, tmp_path, "-e", "mailflow_change_id=CHG1", "-e", "mailflow_allow_service_restart=true")
    assert proc.returncode == 0 and fixplay.changed(proc) == {h: 0 for h in HOSTS}, proc.stdout[-3000:]
    assert all(fixplay.winrm_commands(lab, h) == 0 for h in HOSTS) and "already rolled back" in proc.stdout


def test_a_missing_or_malformed_change_id_is_refused_before_any_host(lab, tmp_path):
    os.makedirs(tmp_path / "backups" / "CHG1" / "EXCH05")
    lab.metrics.reset()
    proc = rollback(lab, tmp_path)
    assert proc.returncode != 0 and "mailflow_change_id is required" in proc.stdout, proc.stdout[-2000:]
    proc = rollback(lab, tmp_path, "-e", "mailflow_change_id=../CHG1")
    assert proc.returncode != 0 and "does not match mailflow_change_id_pattern" in proc.stdout, proc.stdout[-2000:]
    assert all(fixplay.winrm_commands(lab, h) == 0 for h in HOSTS)
    assert not (tmp_path / "reports").exists()
