"""The audit's report writers, on real audit documents of the demo lab (and hostile edits of them)."""
from __future__ import annotations

import copy
import csv
import io
import json
import os
import re
import stat
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import jsonschema
import pytest

from ansible_collections.mailflow.exchange.plugins.module_utils import audit, causes, reports
from ansible_collections.mailflow.exchange.plugins.module_utils.reports import common, csvreport, html, jsonreport, junit, markdown
from tests.conftest import ROOT
from tests.support import golden

GENERATED = "2026-11-23T14:00:00Z"
SCHEMA_PATH = os.path.join(ROOT, "docs", "audit.schema.json")
# What a hostile or broken peer could send, and what a host could hold in its data.
HOSTILE_BANNER = '220 <script>window.__mailflow_pwned = 1</script><img src=x onerror="window.__mailflow_pwned = 2"> ESMTP & "q" | x'
HOSTILE_TEXT = '<script>window.__mailflow_pwned = 3</script> =cmd| [link](http://evil.invalid) \x1b\x00 end'


def build_doc(edit=None) -> dict:
    """audit.run over (an edited copy of) the demo's golden snapshots, as the audit action runs it."""
    return audit.run(golden.edited_fleet("demo", edit), generated=GENERATED, check_mode=True)


def hostile_probe(snaps: dict) -> None:
    """EXCH01's probe of EXCH02 gets a banner full of markup (the probe is raw data: the audit classifies it)."""
    (probe,) = [p for p in snaps["EXCH01"]["probes"] if p["peer"] == "EXCH02"]
    probe["banner"] = HOSTILE_BANNER + "\n250 second line"


def make_hostile(doc: dict) -> dict:
    """Host-supplied text everywhere else a report shows it: evidence, summaries, reasons, host errors."""
    doc = copy.deepcopy(doc)
    present = doc["hosts"]["EXCH03"]["findings"][0]
    assert present["status"] == "present"
    present["evidence"]["hostile"] = HOSTILE_TEXT
    present["evidence"]["nested"] = {"banner": HOSTILE_BANNER}
    present["summary"] += " " + HOSTILE_TEXT
    unknown = doc["hosts"]["EXCH55"]["findings"][0]
    unknown["reason"] = unknown["summary"] = HOSTILE_TEXT
    doc["hosts"]["EXCH55"]["error"] = HOSTILE_TEXT
    return doc


@pytest.fixture(scope="module")
def doc():
    return build_doc()


@pytest.fixture(scope="module")
def hostile():
    return make_hostile(build_doc(hostile_probe))


@pytest.fixture(scope="module")
def validator():
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        schema = json.load(fh)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def statuses(doc: dict) -> dict[str, int]:
    out = {s: 0 for s in common.STATUSES}
    for h in doc["hosts"].values():
        for f in h["findings"]:
            out[f["status"]] += 1
    return out


# -- audit.json and the schema


def test_a_real_audit_is_valid_and_consistent(doc, hostile, validator):
    assert all(statuses(doc).values())  # the demo lab has every status
    assert doc["hosts"]["EXCH55"]["reachable"] is False and [c["id"] for c in doc["causes"]] == list(causes.CAUSE_IDS)
    for d in (doc, hostile):
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(d)]
        assert errors == []
        assert jsonreport.problems(d) == []


def test_audit_json_round_trips(doc, tmp_path):
    path = reports.write_all(doc, str(tmp_path))["json"]
    with open(path, encoding="utf-8") as fh:
        assert json.load(fh) == doc


def _finding(d):
    return d["hosts"]["EXCH03"]["findings"][0]


BROKEN = {
    "bad status": lambda d: _finding(d).update(status="broken"),
    "bad severity": lambda d: _finding(d).update(severity="urgent"),
    "bad confidence": lambda d: _finding(d).update(confidence="certain"),
    "missing finding key": lambda d: _finding(d).pop("confidence"),
    "missing host key": lambda d: d["hosts"]["EXCH01"].pop("reachable"),
    "missing top-level key": lambda d: d.pop("peers"),
    "extra top-level key": lambda d: d.update(verdict="ok"),
    "other schema": lambda d: d.update(schema="mailflow.audit/2"),
    "local time": lambda d: d.update(generated="2026-11-23 14:00:00"),
    "bad probe result": lambda d: d["peers"][0].update(result="timeout"),
    "probe ms as text": lambda d: d["peers"][0].update(ms="17"),
    "present without rank": lambda d: _finding(d).update(rank=None),
    "absent with a rank": lambda d: d["hosts"]["EXCH01"]["findings"][0].update(rank=1),
    "absent with a fix": lambda d: d["hosts"]["EXCH01"]["findings"][0].update(fix="mailflow.exchange.fix_x"),
    "unknown without reason": lambda d: d["hosts"]["EXCH55"]["findings"][0].update(reason=None),
    "unreachable with symptoms": lambda d: d["hosts"]["EXCH55"]["symptoms"].append(d["hosts"]["EXCH03"]["symptoms"][0]),
    "reachable without collected_at": lambda d: d["hosts"]["EXCH01"].update(collected_at=None),
    "bad symptom name": lambda d: d["hosts"]["EXCH03"]["symptoms"][0].update(symptom="event_4007"),
    "statuses missing one": lambda d: d["summary"]["statuses"].pop("unknown"),
    "cause without sources": lambda d: d["causes"][0].update(sources=[]),
}


@pytest.mark.parametrize("mutation", sorted(BROKEN))
def test_the_schema_rejects_broken_documents(doc, validator, mutation):
    broken = copy.deepcopy(doc)
    BROKEN[mutation](broken)
    assert not validator.is_valid(broken), mutation


def test_problems_finds_what_the_schema_cannot(doc):
    d = copy.deepcopy(doc)
    d["summary"]["statuses"]["absent"] += 1
    d["hosts"]["EXCH01"]["findings"] = []
    out = jsonreport.problems(d)
    assert any("summary.statuses" in p for p in out)
    assert any(p.startswith("EXCH01: findings are for []") for p in out)


# -- write_all


def test_write_all_writes_every_report_atomically(doc, tmp_path):
    out = tmp_path / "reports"
    paths = reports.write_all(doc, str(out))
    assert set(paths) == {"json", "html", "md", "csv", "junit"}
    assert sorted(os.listdir(out)) == ["audit.csv", "audit.html", "audit.json", "audit.md", "junit.xml"]  # no temp file left
    assert {k: os.path.basename(v) for k, v in paths.items()} == {
        "json": "audit.json", "html": "audit.html", "md": "audit.md", "csv": "audit.csv", "junit": "junit.xml"}
    os.chmod(paths["csv"], 0o600)
    with open(paths["md"], "w") as fh:
        fh.write("stale")
    paths2 = reports.write_all(doc, str(out))
    assert paths2 == paths
    assert stat.S_IMODE(os.stat(paths["csv"]).st_mode) == 0o600  # a rewrite keeps the file's mode
    with open(paths["md"], encoding="utf-8") as fh:
        assert fh.read() == markdown.render(doc)


def test_write_all_writes_nothing_for_a_document_it_cannot_render(doc, tmp_path):
    with pytest.raises(common.ReportError):
        reports.write_all(dict(doc, schema="mailflow.snapshot/1"), str(tmp_path))
    broken = copy.deepcopy(doc)
    del broken["hosts"]["EXCH03"]["findings"][0]["summary"]
    with pytest.raises(KeyError):
        reports.write_all(broken, str(tmp_path))
    assert os.listdir(tmp_path) == []


# -- audit.csv


def test_csv_has_one_row_per_host_and_cause(doc):
    rows = list(csv.DictReader(io.StringIO(csvreport.render(doc), newline="")))
    assert len(rows) == len(doc["hosts"]) * len(doc["causes"])
    assert list(rows[0]) == list(csvreport.COLUMNS)
    assert [(r["host"], r["cause"]) for r in rows] == [(h, c["id"]) for h in doc["hosts"] for c in doc["causes"]]
    by = {(r["host"], r["cause"]): r for r in rows}
    f = doc["hosts"]["EXCH03"]["findings"][0]
    row = by[("EXCH03", f["cause"])]
    assert (row["status"], row["rank"], row["severity"], row["fix"]) == ("present", "1", f["severity"], f["fix"])
    assert row["sources"].split(";") == f["sources"] and row["summary"] == f["summary"]
    assert by[("EXCH01", f["cause"])]["rank"] == "" and by[("EXCH01", f["cause"])]["status"] == "absent"
    assert by[("EXCH55", f["cause"])]["status"] == "unknown"


def test_csv_never_hands_a_spreadsheet_a_formula(doc):
    d = copy.deepcopy(doc)
    sav = d["causes"][0]["id"]
    d["hosts"]["EXCH03"]["findings"][0]["summary"] = '=HYPERLINK("http://evil.invalid","x")'
    d["hosts"]["EXCH01"]["findings"][0]["summary"] = "line one\nline two, \"quoted\""
    rows = list(csv.DictReader(io.StringIO(csvreport.render(d), newline="")))
    by = {(r["host"], r["cause"]): r for r in rows}
    assert by[("EXCH03", sav)]["summary"] == '\'=HYPERLINK("http://evil.invalid","x")'
    assert by[("EXCH01", sav)]["summary"] == 'line one line two, "quoted"'
    assert len(rows) == len(d["hosts"]) * len(d["causes"])


# -- junit.xml


def test_junit_counts_match_the_findings(doc):
    d = doc
    root = ET.fromstring(junit.render(d).encode("utf-8"))
    assert root.tag == "testsuites"
    assert [s.get("name") for s in root.findall("testsuite")] == list(d["hosts"])
    want = statuses(d)
    assert want["present"] and want["unknown"] and want["not_applicable"] and want["absent"]  # every branch is exercised
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in root.findall("testsuite"):
        cases = suite.findall("testcase")
        counted = {"tests": len(cases), "failures": sum(1 for c in cases if c.find("failure") is not None),
                   "errors": sum(1 for c in cases if c.find("error") is not None),
                   "skipped": sum(1 for c in cases if c.find("skipped") is not None)}
        assert {k: int(suite.get(k)) for k in counted} == counted
        assert [(c.get("classname"), c.get("name")) for c in cases] == [(suite.get("name"), c["id"]) for c in d["causes"]]
        for k in totals:
            totals[k] += counted[k]
    assert {k: int(root.get(k)) for k in totals} == totals
    assert totals == {"tests": len(d["hosts"]) * len(d["causes"]), "failures": want["present"],
                      "errors": want["unknown"], "skipped": want["not_applicable"]}
    failure = root.find("testsuite[@name='EXCH03']/testcase/failure")
    assert failure.get("message") == d["hosts"]["EXCH03"]["findings"][0]["summary"]
    assert root.find("testsuite[@name='EXCH55']/testcase/error").get("message") == d["hosts"]["EXCH55"]["findings"][0]["reason"]
    (na,) = [f for f in d["hosts"]["RELAY01"]["findings"] if f["cause"] == "stnef_legacy_peer"]
    assert na["status"] == "not_applicable"
    assert root.find("testsuite[@name='RELAY01']/testcase[@name='stnef_legacy_peer']/skipped").get("message") == na["reason"]
    assert [c.tag for c in root.find("testsuite[@name='EXCH01']/testcase")] == ["system-out"]  # absent passes


def test_junit_survives_hostile_text(hostile):
    text = junit.render(hostile)
    root = ET.fromstring(text.encode("utf-8"))  # control characters dropped, markup escaped
    failure = root.find("testsuite[@name='EXCH03']/testcase/failure")
    assert "<script>window.__mailflow_pwned = 3</script>" in failure.get("message")
    assert "\x00" not in text and "\x1b" not in text and "<script>" not in text


# -- audit.md


def test_markdown_names_every_present_cause_and_every_unknown(doc):
    md = markdown.render(doc)
    assert md.startswith("# ") and GENERATED in md
    present = [(h, f) for h, d in doc["hosts"].items() for f in d["findings"] if f["status"] == "present"]
    assert present
    lines = md.splitlines()
    for host, f in present:
        (row,) = [ln for ln in lines if ln.startswith(f"| {host} | {f['rank']} | `{f['cause']}`")]
        assert (f"`{f['fix']}`" if f["fix"] else "report only") in row
        assert all(markdown.source_md(src) in row for src in f["sources"])
    assert "[KB919091](https://support.microsoft.com/kb/919091)" in md
    unknown = [(h, f) for h, d in doc["hosts"].items() for f in d["findings"] if f["status"] == "unknown"]
    for host, f in unknown:
        assert [ln for ln in lines if ln.startswith(f"| {host} | `{f['cause']}` |")], (host, f["cause"])


def test_markdown_keeps_host_text_inert(hostile):
    md = markdown.render(hostile)
    assert "<script>" not in md and "<img" not in md
    assert r"\[link\](http://evil.invalid)" in md and "[link](" not in md  # brackets escaped: no link
    assert r"\<script\>window.\_\_mailflow\_pwned = 3\</script\>" in md
    header_cells = None
    for line in md.splitlines():  # a | in host text never adds a column
        if line.startswith("| Host | Rank"):
            header_cells = line.count(" | ")
        elif header_cells is not None and line.startswith("| EXCH03 | 1 |"):
            assert line.replace("\\|", "").count(" | ") == header_cells
            break
    else:
        raise AssertionError("no EXCH03 row")


# -- audit.html (what a browser shows is in tests/integration/test_report_html.py)


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs.update(name for name, _ in attrs)


def test_html_escapes_everything_from_hosts(hostile):
    page = html.render(hostile)
    parsed = _Tags()
    parsed.feed(page)
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert not [a for a in parsed.attrs if a.startswith("on")]
    assert "table" in parsed.tags and "title" in parsed.attrs  # the parser did see the page's own markup
    assert "&lt;script&gt;window.__mailflow_pwned = 1&lt;/script&gt;&lt;img src=x onerror=&quot;window.__mailflow_pwned = 2&quot;&gt;" in page
    assert "&lt;script&gt;window.__mailflow_pwned = 3&lt;/script&gt;" in page
    assert "\x00" not in page and "\x1b" not in page


def test_html_is_self_contained_and_complete(doc):
    page = html.render(doc)
    assert "<link" not in page and " src=" not in page and "@import" not in page and "url(" not in page
    external = set(re.findall(r'href="(https?://[^"]+)"', page))
    assert external and all(u.startswith(("https://support.microsoft.com/kb/", "https://learn.microsoft.com/")) for u in external)
    for host in doc["hosts"]:
        for c in doc["causes"]:
            assert f'data-host="{host}" data-cause="{c["id"]}"' in page
    assert 'href="https://support.microsoft.com/kb/919091"' in page


@pytest.mark.parametrize("source, url", [
    ("KB919091", "https://support.microsoft.com/kb/919091"),
    ("KB 295725", "https://support.microsoft.com/kb/295725"),
    ("Q175982", "https://support.microsoft.com/kb/175982"),
    ("TechNet aa998772", "https://learn.microsoft.com/en-us/previous-versions/tn-archive/aa998772"),
    ("Symantec 2004052415562048", None),
    ("chicagotech.net Event ID 4006 case 1", None),
    ("KB919091 and more", None),
])
def test_source_links(source, url):
    assert common.source_url(source) == url
    rendered = html.source_html(source)
    assert (f'href="{url}"' in rendered) if url else ("href" not in rendered and source in rendered)
