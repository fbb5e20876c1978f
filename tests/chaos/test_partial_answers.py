"""A partial answer is never taken for a whole one, and a file too large to read is never judged by its start.

Before: a reply with the protocol header and end marker but no rows became a complete snapshot (kind `windows`,
"runs no SMTP service", no unknowns), and the same on a fix's fresh read a silent `ok`; a valid MetaBase.xml over
the read limit was cut at 8 MiB, did not parse, and was reported corrupt, confirmed.
"""
from __future__ import annotations

import json

import pytest

from tests.chaos.conftest import glitch, inventory, latest_audit, run

pytestmark = [pytest.mark.slow, pytest.mark.integration]
METABASE = r"C:\WINDOWS\system32\inetsrv\MetaBase.xml"


def finding(host: dict, cause: str) -> dict:
    return next(f for f in host["findings"] if f["cause"] == cause)


def test_an_answer_without_its_rows_is_a_failed_snapshot_naming_what_did_not_answer(lab, tmp_path):
    inv = inventory(lab, tmp_path)
    lab.metrics.fault("EXCH05").rows_lost_after_commands = 1  # the snapshot's one command
    proc = run("audit.yml", inv, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]  # RELAY01 was read: the audit stands, EXCH05 is unknown
    assert "EXCH05: EXCH05" not in proc.stdout
    host = latest_audit(tmp_path)["hosts"]["EXCH05"]
    assert host["error"] and "EXCH05" in host["error"] and "no answer" in host["error"], host["error"]
    assert (host.get("platform") or {}).get("kind") != "windows"
    # What the host itself holds is unknown; what its peers' probes of it showed (inbound) is still decided.
    inbound = {"smtp_banner_missing", "port25_blocked", "peer_smtp_unavailable", "cisco_smtp_inspection"}
    assert {f["status"] for f in host["findings"] if f["cause"] not in inbound} <= {"unknown", "not_applicable"}
    assert finding(host, "glitch_retry_short")["status"] == "unknown"


def test_a_fix_whose_fresh_read_lost_its_rows_fails_and_changes_nothing(lab, tmp_path):
    inv = inventory(lab, tmp_path)
    before = glitch(lab)
    lab.metrics.fault("EXCH05").rows_lost_after_commands = 2  # 1 the audit's snapshot, 2 the fix's read
    proc = run("fix.yml", inv, tmp_path, "-e", "mailflow_fix=glitch_retry_short", "--limit", "EXCH05",
               "-e", "mailflow_change_id=CHG920")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "EXCH05" in out and "glitch_retry_short" in out, out[-3000:]
    assert "EXCH05: EXCH05" not in out and "rolled back" not in out  # nothing was changed, so nothing rolled back
    assert glitch(lab) == before
    record = json.loads(next((tmp_path / "reports").glob("*/fix.json")).read_text())
    (row,) = record["hosts"]["EXCH05"]
    assert row["status"] in ("failed", "unreachable") and "cut short" in row["msg"], row


def test_a_metabase_over_the_read_limit_is_too_large_to_judge_never_corrupt(lab, tmp_path):
    files = lab.fleet.host("EXCH05").files
    healthy = files.read(METABASE)
    text = healthy.data.decode("utf-8")
    # 50 MB of a valid file: an XML comment before the closing tag (a metabase with many sites grows this way).
    closing = text.rindex("</configuration>")
    padding = "<!--" + "x" * (50 * 1024 * 1024) + "-->\r\n"
    files.write(METABASE, text[:closing] + padding + text[closing:], healthy.mtime)
    proc = run("audit.yml", inventory(lab, tmp_path), tmp_path, "--limit", "EXCH05")
    assert proc.returncode == 0, proc.stdout[-3000:]
    host = latest_audit(tmp_path)["hosts"]["EXCH05"]
    corrupt = finding(host, "metabase_corrupt")
    assert corrupt["status"] == "unknown" and "too large to read" in corrupt["summary"], corrupt
    # What else reads the metabase says it could not, rather than guessing; AD still answers the smart host.
    assert finding(host, "smtp_banner_missing")["status"] in ("unknown", "absent")
    assert finding(host, "smarthost_misconfigured")["status"] != "unknown"
