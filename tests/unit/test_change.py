"""Change control: the change id, the approved window and its override, and the change record (record.json/.md)."""
from __future__ import annotations

import getpass
import json
import multiprocessing
import os
import re
import threading
from datetime import datetime, timedelta, timezone

import jsonschema
import pytest
import yaml

from ansible_collections.mailflow.exchange.plugins.module_utils import change
from ansible_collections.mailflow.exchange.plugins.module_utils.change import ChangeError
from tests.conftest import ROOT

UTC = timezone.utc
START, END = "2026-11-23T22:00:00+01:00", "2026-11-24T02:00:00+01:00"  # 21:00Z .. 01:00Z
WINDOW = change.resolve_window(START, END, None, {})


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def refused(fn, *args, **kw) -> str:
    with pytest.raises(ChangeError) as e:
        fn(*args, **kw)
    return str(e.value)


# -- the change id

@pytest.mark.parametrize("missing", [None, "", "   "])
def test_a_missing_change_id_is_refused_naming_the_variable_and_the_pattern(missing):
    msg = refused(change.check_change_id, missing)
    assert "mailflow_change_id is required" in msg and r"^CHG\d+$" in msg


@pytest.mark.parametrize("bad", ["chg123", "CHG", "CHG12a", "CHG12\n", " CHG12", "INC0001"])
def test_a_malformed_change_id_is_refused_naming_the_pattern_variable(bad):
    assert "does not match mailflow_change_id_pattern" in refused(change.check_change_id, bad)


def test_the_default_pattern_accepts_a_chg_ticket_and_a_custom_pattern_replaces_it():
    assert change.check_change_id("CHG0012345") == "CHG0012345"
    assert change.check_change_id("CHG1", "") == "CHG1"  # blank pattern = the default
    assert change.check_change_id("INC-2026-0001", r"INC-\d{4}-\d{4}") == "INC-2026-0001"
    assert "does not match" in refused(change.check_change_id, "CHG1", r"INC-\d{4}-\d{4}")
    assert "mailflow_change_id_pattern '(' is not a valid regular expression" in refused(change.check_change_id, "x", "(")
    assert "quote it" in refused(change.check_change_id, 12345, r"\d+")  # YAML 0012345 would have lost its zeros


@pytest.mark.parametrize("evil", ["..", ".", "../CHG1", "CHG1/../../etc", "a/b", ".hidden", "C" * 65, "CHG 1", "CHG1\\x"])
def test_an_id_that_cannot_name_a_folder_is_refused_even_when_the_pattern_allows_it(evil):
    assert "cannot name the record folder" in refused(change.check_change_id, evil, ".*")
    assert "cannot name the record folder" in refused(change.record_paths, "reports", evil)


# -- the window

@pytest.mark.parametrize("start,end,variable", [
    ("2026-11-23T22:00:00", END, "mailflow_window_start"),
    (START, "2026-11-24T02:00", "mailflow_window_end"),
    ("2026-11-23", END, "mailflow_window_start"),
])
def test_a_time_without_a_zone_is_refused_naming_the_variable_with_an_example(start, end, variable):
    msg = refused(change.resolve_window, start, end, None, {})
    assert msg.startswith(variable) and "2026-11-23T22:00:00+01:00" in msg and "time zone" in msg


def test_zones_are_honoured_and_z_is_utc():
    w = change.resolve_window("2026-11-23T21:00:00Z", "2026-11-23T19:00:00-05:00", None, {})
    assert w.to_dict() == {"name": None, "start": "2026-11-23T21:00:00+00:00", "end": "2026-11-23T19:00:00-05:00",
                           "start_utc": "2026-11-23T21:00:00Z", "end_utc": "2026-11-24T00:00:00Z"}


def test_unquoted_yaml_timestamps_with_a_zone_are_accepted():
    windows = yaml.safe_load("weekend: {start: 2026-11-28T08:00:00+01:00, end: 2026-11-29T20:00:00+01:00}")
    assert change.resolve_window(None, None, "weekend", windows).to_dict()["start_utc"] == "2026-11-28T07:00:00Z"


@pytest.mark.parametrize("start,end,words", [
    (END, START, "mailflow_window_end (2026-11-23T22:00:00+01:00) must be after mailflow_window_start"),
    (START, START, "must be after"),
    (START, "2026-12-01T22:00:01+01:00", "is 8 days long; windows over 7 days are refused as a likely mistyped date"),
    ("tonight", END, "mailflow_window_start 'tonight' is not an ISO 8601 time"),
    (START, None, "mailflow_window_end is missing"),
    (None, END, "mailflow_window_start is missing"),
    (None, None, "a change window is required: set mailflow_window_start and mailflow_window_end"),
])
def test_bad_windows_are_refused_naming_the_variables(start, end, words):
    assert words in refused(change.resolve_window, start, end, None, {})


def test_a_window_of_exactly_seven_days_is_allowed():
    assert change.resolve_window(START, "2026-11-30T22:00:00+01:00", None, {}).end.day == 30


def test_a_named_window_comes_from_mailflow_windows_and_cannot_be_combined_with_start_or_end():
    windows = {"weekend": {"start": START, "end": END}, "night": {"start": "2026-11-25T01:00:00Z", "end": "x"}}
    w = change.resolve_window(None, "", "weekend", windows)
    assert (w.name, w.start, w.end) == ("weekend", WINDOW.start, WINDOW.end)
    assert "not both" in refused(change.resolve_window, START, None, "weekend", windows)
    assert "not both" in refused(change.resolve_window, None, END, "weekend", windows)
    assert "mailflow_window 'holiday' is not in mailflow_windows (known: night, weekend)" in refused(
        change.resolve_window, None, None, "holiday", windows)
    assert "known: none defined" in refused(change.resolve_window, None, None, "weekend", None)
    assert refused(change.resolve_window, None, None, "night", windows).startswith("mailflow_windows.night.end 'x'")
    assert "unknown keys ['stop']" in refused(change.resolve_window, None, None, "w", {"w": {"start": START, "stop": END}})
    assert "must be a mapping" in refused(change.resolve_window, None, None, "w", {"w": "friday"})


def test_the_state_is_before_open_or_closed_start_inclusive_end_exclusive_across_zones():
    assert WINDOW.state(at("2026-11-23T20:59:59Z")) == "before"
    assert WINDOW.state(at("2026-11-23T21:00:00Z")) == "open"
    assert WINDOW.state(at("2026-11-23T19:30:00-05:00")) == "open"  # 00:30Z
    assert WINDOW.state(at("2026-11-24T00:59:59Z")) == "open"
    assert WINDOW.state(at("2026-11-24T01:00:00Z")) == "closed"
    with pytest.raises(ValueError):
        WINDOW.state(datetime(2026, 11, 23, 22))  # a naive "now" is a programming error, not a guess


# -- the override

def test_outside_the_window_the_run_is_refused_unless_an_override_reason_is_given():
    before, inside, after = at("2026-11-23T12:00:00Z"), at("2026-11-23T22:00:00Z"), at("2026-11-24T06:00:00Z")
    assert change.admit(WINDOW, None, inside) == {"allowed": True, "state": "open", "in_window": True, "override": False,
                                                  "message": "the change window is open until 2026-11-24T02:00:00+01:00"}
    no = change.admit(WINDOW, None, after)
    assert (no["allowed"], no["state"], no["override"]) == (False, "closed", False)
    for variable in ("mailflow_window_start", "mailflow_window_end", "mailflow_window_override_reason"):
        assert variable in no["message"]
    assert "it opens at 2026-11-23T22:00:00+01:00" in change.admit(WINDOW, None, before)["message"]
    reason = change.override_reason("  P1 outage:\n queues growing  ")
    yes = change.admit(WINDOW, reason, before)
    assert (yes["allowed"], yes["state"], yes["override"]) == (True, "before", True)
    assert yes["message"].endswith("mailflow_window_override_reason: P1 outage: queues growing")
    assert change.admit(WINDOW, reason, inside)["override"] is False  # in the window the override is not used
    assert change.override_reason("   ") is None and change.override_reason(None) is None
    assert "must be text" in refused(change.override_reason, True)


# -- the record

def event(kind: str, host: str | None = None, **fields) -> dict:
    defaults = {"run_started": {"playbook": "remediate.yml", "check_mode": False}, "refused": {"reason": "closed"},
                "plan": {"causes": ["glitch_retry_short"], "changes": ["MaxRetry: 180 -> 600"], "restart": ["SMTPSVC"],
                         "reboot": False},
                "fix": {"cause": "glitch_retry_short", "status": "changed", "changes": ["MaxRetry: 180 -> 600"],
                        "backup": "backups/CHG1/EXCH05/glitch_retry_short.json", "verified": True},
                "restart": {"services": ["SMTPSVC"], "queue_before": 12, "queue_after": 12, "ok": True},
                "verify": {"causes": ["glitch_retry_short"], "still_present": [], "ok": True},
                "rollback": {"cause": "glitch_retry_short", "restored": ["MaxRetry: 600 -> 180"], "changed_since": [],
                             "already": [], "ok": True, "reason": None},
                "not_reached": {"reason": "window closed"}, "run_finished": {"done": [], "not_reached": []}}[kind]
    return {"type": kind, **({"host": host} if host else {}), **defaults, **fields}


@pytest.fixture
def validator():
    with open(os.path.join(ROOT, "docs", "change.schema.json"), encoding="utf-8") as fh:
        schema = json.load(fh)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_append_writes_a_record_that_keeps_its_header_and_matches_the_schema(tmp_path, validator):
    root = str(tmp_path)
    assert change.load(root, "CHG1") is None
    t0 = at("2026-11-23T21:05:00Z")
    header = {"window": WINDOW.to_dict(), "override_reason": None}
    change.append(root, "CHG1", event("run_started"), header=header, now=t0)
    change.append(root, "CHG1", event("plan", "EXCH05"), header={"window": None, "override_reason": "late"},
                  now=t0 + timedelta(minutes=1))
    doc = change.load(root, "CHG1")
    validator.validate(doc)
    assert (doc["operator"], doc["started"], doc["updated"]) == (getpass.getuser(), "2026-11-23T21:05:00Z", "2026-11-23T21:06:00Z")
    assert doc["window"] == WINDOW.to_dict()  # kept: only a run_started replaces it ...
    assert doc["override_reason"] == "late"   # ... and later headers fill what is still empty
    assert [e["time"] for e in doc["events"]] == ["2026-11-23T21:05:00Z", "2026-11-23T21:06:00Z"]
    assert doc["hosts"]["EXCH05"]["status"] == "planned"
    other = change.resolve_window("2026-11-24T21:00:00Z", "2026-11-24T23:00:00Z", None, {}).to_dict()
    doc = change.append(root, "CHG1", event("run_started"), header={"window": other, "override_reason": None})
    assert (doc["window"], doc["override_reason"]) == (other, None)  # the header describes the latest run
    assert os.path.isfile(tmp_path / "changes" / "CHG1" / "record.md")
    assert sorted(os.listdir(tmp_path / "changes" / "CHG1")) == ["record.json", "record.json.lock", "record.md"]


@pytest.mark.parametrize("bad,words", [
    ({"type": "fixed", "host": "A"}, "unknown change record event type 'fixed'"),
    ({"type": "fix", "cause": "x", "status": "changed"}, "a fix event needs the host it is about"),
    ({"type": "fix", "host": "A", "cause": "x"}, "a fix event needs status"),
    ({"type": "fix", "host": "A", "cause": "x", "status": "done"}, "status is one of changed, ok, needs_input, failed, interrupted, unreachable, skipped"),
    ({"type": "refused"}, "a refused event needs reason"),
    ("plan", "must be a mapping"),
])
def test_malformed_events_are_refused_and_leave_no_record(tmp_path, bad, words):
    assert words in refused(change.append, str(tmp_path), "CHG1", bad)
    assert "unknown change record header field 'who'" in refused(change.append, str(tmp_path), "CHG2", event("refused"),
                                                                  header={"who": "me"})
    assert change.load(str(tmp_path), "CHG1") is None and not (tmp_path / "changes" / "CHG2").exists()


def test_the_schema_requires_what_append_requires(validator):
    conditions = validator.schema["$defs"]["event"]["allOf"]
    assert {c["if"]["properties"]["type"]["const"]: tuple(c["then"]["required"]) for c in conditions} == change.REQUIRED


def test_a_record_that_is_not_json_is_reported_and_never_overwritten(tmp_path):
    path = tmp_path / "changes" / "CHG1" / "record.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"schema": "mailflow.change/1", "events": [')
    assert "is not valid JSON" in refused(change.append, str(tmp_path), "CHG1", event("refused"))
    assert path.read_text() == '{"schema": "mailflow.change/1", "events": ['
    path.write_text('{"schema": "mailflow.fix/1"}')
    assert "is not a mailflow.change/1 record" in refused(change.load, str(tmp_path), "CHG1")


def test_ansible_values_are_stored_as_plain_json(tmp_path):
    class Tagged(str):
        pass
    doc = change.append(str(tmp_path), "CHG1", event("plan", Tagged("EXCH05"), causes=(Tagged("a"),),
                                                     changes=[{"when": datetime(2026, 1, 2, tzinfo=UTC)}]))
    assert doc["events"][0]["causes"] == ["a"] and doc["events"][0]["changes"] == [{"when": "2026-01-02T00:00:00+00:00"}]
    assert type(json.loads((tmp_path / "changes" / "CHG1" / "record.json").read_text())["events"][0]["host"]) is str


# -- summarise: each host's status from the events

def statuses(*events) -> dict:
    return {h: s["status"] for h, s in change.summarise([change.check_event(e) for e in events]).items()}


def test_host_status_follows_the_events():
    run = event("run_started")
    assert statuses(run, event("plan", "A")) == {"A": "planned"}
    assert statuses(run, event("plan", "A"), event("fix", "A"), event("restart", "A"), event("verify", "A")) == {"A": "changed"}
    assert statuses(run, event("plan", "A"), event("fix", "A", status="ok")) == {"A": "unchanged"}
    assert statuses(run, event("fix", "A", status="ok"), event("fix", "A", cause="b")) == {"A": "changed"}
    assert statuses(run, event("fix", "A", status="failed"), event("fix", "A", cause="b")) == {"A": "failed"}
    assert statuses(run, event("fix", "A", status="interrupted"), event("fix", "A", status="ok")) == {"A": "failed"}
    assert statuses(run, event("fix", "A"), event("restart", "A", ok=False)) == {"A": "failed"}
    assert statuses(run, event("fix", "A"), event("verify", "A", ok=False, still_present=["x"])) == {"A": "failed"}
    assert statuses(run, event("fix", "A"), event("verify", "A", ok=False), event("rollback", "A")) == {"A": "rolled_back"}
    assert statuses(run, event("fix", "A"), event("rollback", "A", ok=False, reason="WinRM dropped")) == {"A": "failed"}
    # a later run that completes the change clears the earlier run's failure
    assert statuses(run, event("fix", "A", status="failed"), run, event("fix", "A")) == {"A": "changed"}
    assert statuses(run, event("plan", "A"), event("not_reached", "A")) == {"A": "not_reached"}
    # fix results as fix_report words them: unreachable before anything changed = not reached; after = failed
    assert statuses(run, event("plan", "A"), event("fix", "A", status="unreachable")) == {"A": "not_reached"}
    assert statuses(run, event("fix", "A"), event("fix", "A", cause="b", status="unreachable")) == {"A": "failed"}
    assert statuses(run, event("plan", "A"), event("fix", "A", status="skipped")) == {"A": "planned"}


def test_not_reached_marks_only_untouched_hosts_and_keeps_the_reason():
    hosts = change.summarise([event("run_started"), event("fix", "A"), event("plan", "B"),
                              event("not_reached", "A", reason="WinRM timed out during rollback"),
                              event("run_finished", done=["A"], not_reached=["B", "C"])])
    assert {h: s["status"] for h, s in hosts.items()} == {"A": "changed", "B": "not_reached", "C": "not_reached"}
    assert hosts["A"]["not_reached"] == "WinRM timed out during rollback"
    assert hosts["C"]["not_reached"] == "not reached before the run finished"
    assert hosts["A"]["fixes"][0]["changes"] == ["MaxRetry: 180 -> 600"] and hosts["A"]["causes"] == ["glitch_retry_short"]


# -- concurrent appends (Ansible forks run delegate_to: localhost tasks for many hosts at once)

def _append_many(root: str, host: str, n: int) -> None:
    for i in range(n):
        change.append(root, "CHG1", event("fix", host, cause=f"c{i}"))


def _assert_all_there(root: str, writers: list[str], n: int) -> None:
    doc = change.load(root, "CHG1")
    assert len(doc["events"]) == len(writers) * n
    assert {(e["host"], e["cause"]) for e in doc["events"]} == {(h, f"c{i}") for h in writers for i in range(n)}
    assert set(doc["hosts"]) == set(writers)
    assert doc["events"] == json.loads(open(os.path.join(root, "changes", "CHG1", "record.json")).read())["events"]


@pytest.mark.slow
def test_concurrent_processes_lose_no_event(tmp_path):
    writers = [f"EXCH{i:02d}" for i in range(8)]
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), h, 25)) for h in writers]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * len(procs)
    _assert_all_there(str(tmp_path), writers, 25)


def test_concurrent_threads_lose_no_event(tmp_path):
    writers = [f"EXCH{i:02d}" for i in range(6)]
    errors = []

    def run(h):
        try:
            _append_many(str(tmp_path), h, 15)
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)
    threads = [threading.Thread(target=run, args=(h,)) for h in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    _assert_all_there(str(tmp_path), writers, 15)


# -- record.md

def test_record_md_tells_the_ticket_what_happened_and_escapes_host_text(tmp_path):
    evil = "EXCH|9<b>"
    root = str(tmp_path)
    change.append(root, "CHG7", event("run_started", override_reason="P1 *outage*"),
                  header={"window": WINDOW.to_dict(), "override_reason": "P1 *outage*"})
    change.append(root, "CHG7", event("plan", evil))
    change.append(root, "CHG7", event("fix", evil, changes=["Banner: `x` | [y](http://e.invalid) -> ok"]))
    change.append(root, "CHG7", event("restart", evil, queue_before=12, queue_after=None))
    change.append(root, "CHG7", event("verify", evil, ok=False, still_present=["glitch_retry_short"]))
    change.append(root, "CHG7", event("rollback", evil, changed_since=["Banner: ok -> edited"], not_reversible=["KB1"]))
    change.append(root, "CHG7", event("not_reached", "EXCH08", reason="window closed <i>before</i> its batch"))
    md = (tmp_path / "changes" / "CHG7" / "record.md").read_text()
    for expected in ("# Change CHG7", f"| Operator (controller user) | {getpass.getuser()} |", "**P1 \\*outage\\***",
                     "2026-11-23T22:00:00+01:00 → 2026-11-24T02:00:00+01:00", "### EXCH\\|9\\<b\\>: **rolled back**",
                     "queue 12 → not counted", "**failed**: still present `glitch_retry_short`",
                     "changed by someone since, **not overwritten**", "cannot be undone, left as changed: `KB1`", "EXCH08: window closed \\<i\\>before\\</i\\> its batch",
                     "## Event log", "`backups/CHG1/EXCH05/glitch_retry_short.json`"):
        assert expected in md, expected
    prose = re.sub(r"`[^`]*`", "", md)  # inside a code span nothing is markup; outside, nothing host-supplied may be
    assert "<b>" not in prose and "<i>" not in prose and "](http" not in prose
    assert "`Banner: 'x' \\| [y](http://e.invalid) -> ok`" in md  # a backtick cannot end the span early
    table_rows = [line for line in md.splitlines() if line.startswith("| 20")]
    assert len(table_rows) == 7 and all(line.replace("\\|", "").count("|") == 5 for line in table_rows)
