"""The self-test's request and its reading of the answers (the playbook test drives it against the lab)."""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.module_utils import knowledge, psrunner, selftest
from ansible_collections.mailflow.exchange.plugins.module_utils.psrunner import OpResult

FACTS = knowledge.load(None)


def test_the_request_is_as_large_as_the_runner_ever_sends_and_no_larger():
    context = psrunner.Context("CORP\\svc", "pw")
    for kb in (150, 100, 500):
        limits = psrunner.Limits(max_envelope_kb=kb)
        full = selftest.padded(selftest.plan(FACTS, "exch01.corp.example"), context, limits)
        size = len(psrunner.stdin_payload([op for _, op in full], context))
        assert limits.max_stdin - 200 < size <= limits.max_stdin
        assert [c for c, _ in full] == [c for c in selftest.CHECKS if c != "request_size"]


def _answers(checks, **overrides):
    """Every check answered as a healthy Exchange 2003 host would, but for `overrides` {check: OpResult kwargs}."""
    good = {
        "stdin": [("echo", {"data": checks[0][1].args[0]})],
        "runtime": [("runtime", {"ps_version": "2.0", "clr_version": "2.0.50727.3053", "user": "CORP\\svc",
                                 "auth_type": "NTLM", "peak_working_set": 41 << 20})],
        "registry": [("key", {"path": selftest.CURRENT_VERSION}),
                     ("value", {"key": selftest.CURRENT_VERSION, "name": "CurrentVersion", "type": "String", "data": "5.2"})],
        "wmi": [("object", {"Name": "EXCH01", "Domain": "corp.example", "DomainRole": 3})],
        "exchange_wmi": [("object", {"LinkName": "exch02.corp.example"})],
        "ldap": [("entry", {"dn": "CN=EXCH01", "a:cn": ["EXCH01"]})],
        "iis_adsi": [("entry", {"dn": "IIS://localhost/SMTPSVC/1", "a:SmartHost": None})],
        "eventlog": [("event", {"id": 1})],
        "metabase": [("file", {"path": "m", "size": 3, "read": 3}), ("chunk", {"offset": 0, "data": b"<a>"})],
        "files": [("file", {"path": "x"})], "msi": [], "services": [("service", {"name": "SMTPSVC"})], "tcp": [],
        "probe": [("probe", {"target": "exch01.corp.example", "port": 25, "banner": "220 exch01 ready", "total_ms": 5})],
    }
    out = []
    for i, (check, op) in enumerate(checks):
        res = OpResult(i, op, list(good[check]))
        for k, v in overrides.get(check, {}).items():
            setattr(res, k, v)
        out.append(res)
    return out


def test_a_healthy_host_is_ok_and_a_refused_ldap_bind_names_the_variable():
    checks = selftest.plan(FACTS, "exch01.corp.example")
    transport = {"stdin_bytes": 100, "max_envelope_kb": 150}
    rows = selftest.assess(checks, _answers(checks), transport, "explicit")
    assert {r["status"] for r in rows} == {"ok"} and selftest.host_status(rows) == "ok"
    assert "this host's (EXCH01) among them" in next(r for r in rows if r["check"] == "ldap")["detail"]
    refused = 'Exception calling "FindAll" with "0" argument(s): "An operations error occurred.\r\n" (0x80072020)'
    rows = selftest.assess(checks, _answers(checks, ldap={"rows": [], "error": refused}), transport, "process")
    ldap = next(r for r in rows if r["check"] == "ldap")
    assert ldap["status"] == "failed" and "mailflow_ad_username" in ldap["todo"] and selftest.host_status(rows) == "failed"


def test_a_fixes_only_failure_warns_and_the_report_names_host_and_check():
    checks = selftest.plan(FACTS, "exch01.corp.example")
    rows = selftest.assess(checks, _answers(checks, iis_adsi={"rows": [], "error": "The RPC server is unavailable."}),
                           {"stdin_bytes": 1, "max_envelope_kb": 150}, "explicit")
    assert selftest.host_status(rows) == "warn"
    doc = selftest.report({"EXCH01": {"rows": rows}, "EXCH09": {"unreachable": "connect timeout"}}, "now")
    assert doc["failed"] == ["EXCH09"] and selftest.failures(doc) == ["EXCH09: stdin: connect timeout"]
    md = selftest.markdown(doc)
    assert "## EXCH01: warn" in md and "| iis_adsi | fixes | failed | The RPC server is unavailable. |" in md
    assert "EXCH09: failed" in selftest.table(doc)
