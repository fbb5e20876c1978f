"""What the plays print: plain text (no Markdown), no line past summary.WIDTH (100 columns once the YAML result
format indents the literal block by 8)."""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.module_utils import audit, summary
from ansible_collections.mailflow.exchange.plugins.module_utils.reports import fixrun
from tests.support import golden

LONG_KEY = ("HKLM\\SOFTWARE\\Intel\\LANDesk\\VirusProtect6\\CurrentVersion\\Storages\\Filesystem\\RealTimeScan"
            "\\FileExceptions\\C:\\Program Files\\Exchsrvr\\Mailroot")


def _fix_doc():
    registered = {
        "EXCH03": {"av_scans_iis_folders": {"changed": True, "backup": "/var/lib/mailflow/backups/CHG1/EXCH03/"
                                            "av_scans_iis_folders.json",
                                            "changes": [f"{LONG_KEY}: (absent) -> REG_DWORD 1", "port25_blocked *x* | y"],
                                            "advice": ["check the folders are listed " * 8]}},
        "EXCH01": {},
        "EXCH05": {"glitch_retry_short": {"changed": True, "changes": ["GlitchRetrySeconds: 30 -> 180"],
                                          "verified": True, "pending_restart": ["SMTPSVC"]}},
    }
    return fixrun.build(registered, generated="2026-11-23T00:00:00Z", change_id="CHG1", check_mode=False)


def test_the_fix_summary_is_plain_text_within_the_width():
    text = fixrun.render_text(_fix_doc())
    lines = text.split("\n")
    assert max(map(len, lines)) <= summary.WIDTH, [line for line in lines if len(line) > summary.WIDTH]
    assert "\\_" not in text and "\\>" not in text and "|---" not in text  # fix.md's escapes and table stay in fix.md
    assert "port25_blocked *x* | y" in text  # host text as it is
    rows = [line.split() for line in lines if line and not line.startswith(" ")]
    assert ["EXCH01", "-", "nothing", "selected"] in rows
    assert ["EXCH03", "av_scans_iis_folders", "changed"] in rows and ["EXCH05", "glitch_retry_short", "changed"] in rows
    # What changed, and the rest, sit beneath their row, each piece starting on a line of its own.
    after = lines[lines.index(next(x for x in lines if x.startswith("EXCH05"))) + 1:]
    assert [x.strip() for x in after] == ["GlitchRetrySeconds: 30 -> 180", "verified", "pending restart of SMTPSVC"]
    assert "backup: /var/lib/mailflow/backups/CHG1/EXCH03/av_scans_iis_folders.json" in text
    assert fixrun.render_md(_fix_doc()).count("\\_") > 0  # the Markdown record does escape


def test_the_audit_table_wraps_within_its_column():
    doc = audit.run(golden.edited_fleet("demo"), generated="2026-11-23T00:00:00Z", check_mode=True)
    # A host with many present causes: the column wraps, the row's other cells stay on its first line.
    doc["summary"]["present"]["EXCH05"] = doc["summary"]["present"]["EXCH05"] * 3
    lines = summary.audit_table(doc).split("\n")
    assert max(map(len, lines)) <= summary.WIDTH
    start = next(i for i, line in enumerate(lines) if line.startswith("EXCH05 "))
    causes_at = lines[0].index("present causes")
    continued = []
    for line in lines[start + 1:]:
        if line[:causes_at].strip():
            break
        continued.append(line[causes_at:])
    assert continued, lines
    joined = " ".join([lines[start][causes_at:], *continued]).replace(", ", ",").split(",")
    assert [c.strip() for c in joined] == doc["summary"]["present"]["EXCH05"]
