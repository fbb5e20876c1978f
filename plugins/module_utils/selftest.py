"""The pilot self-test: every operation the audit and the fixes read with, tried once on a host against
something every such host has, and a compatibility matrix of what came back.

Pure: plan() builds the one request (padded to the largest stdin the runner sends, so the request size is tried
too), assess() reads the results into rows {check, needed_by, status, detail, todo}, report() and markdown()
render every host's rows. The action plugins run it (plugins/action/selftest.py, selftest_report.py).
Read-only: the writes the fixes make (reg_write, adsi_write, service_control, file_copy, run_process) are not
tried; what they read with is.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

from ansible_collections.mailflow.exchange.plugins.module_utils import psrunner, snapshot
from ansible_collections.mailflow.exchange.plugins.module_utils.psrunner import Op, OpResult

SCHEMA = "mailflow.selftest/1"
OK, WARN, FAILED, NOT_RUN, NA = "ok", "warn", "failed", "not run", "n/a"
AUDIT, FIXES = "audit", "fixes"
CURRENT_VERSION = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"
HISTORY = r"%SystemRoot%\system32\inetsrv\History"
MARKER = "mailflow-selftest "

# check id -> (what it tries, who needs it)
CHECKS: dict[str, tuple[str, str]] = {
    "stdin": ("the request reaches PowerShell 2.0 on stdin ($input) and comes back whole", AUDIT),
    "request_size": ("a request as large as the runner ever sends in one command (WinRM's MaxEnvelopeSizekb)", AUDIT),
    "runtime": ("PowerShell and .NET versions, the account, its logon, memory", AUDIT),
    "registry": (f"registry read: {CURRENT_VERSION}", AUDIT),
    "wmi": ("WMI with a timeout: Win32_ComputerSystem (who the host is)", AUDIT),
    "exchange_wmi": ("WMI with a timeout: root\\MicrosoftExchangeV2 Exchange_SMTPLink (Exchange's queues)", AUDIT),
    "ldap": ("LDAP as mailflow_ad_username: the Exchange server objects, this host's among them", AUDIT),
    "iis_adsi": ("IIS ADSI read: IIS://localhost/SMTPSVC/1 (what the banner and smart host fixes write)", FIXES),
    "eventlog": ("the Application event log, newest first", AUDIT),
    "metabase": ("MetaBase.xml, read in chunks (WinRM's MaxMemoryPerShellMB)", AUDIT),
    "files": (f"a folder listing: {HISTORY}", AUDIT),
    "msi": ("Windows Installer features of the products the Uninstall keys name", AUDIT),
    "services": ("Win32_Service: SMTPSVC and IISADMIN", AUDIT),
    "tcp": ("TCP connections (IPGlobalProperties)", AUDIT),
    "probe": ("an SMTP probe of this host's own port 25", AUDIT),
}


def _since(hours: int) -> str:
    return (datetime.now(timezone.utc) - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def plan(facts: dict, target: str) -> list[tuple[str, Op]]:
    """[(check id, Op)] for one host; target: how peers reach its SMTP (its FQDN or address)."""
    collect = facts["collect"]
    metabase = collect["metabase"]
    return [
        ("stdin", Op("echo", (MARKER + secrets.token_hex(8),))),
        ("runtime", Op("runtime", ())),
        ("registry", Op("reg_read", (CURRENT_VERSION, "0"))),
        ("wmi", Op("wmi_query", ("root\\cimv2", "SELECT * FROM Win32_ComputerSystem", ("Name", "Domain", "DomainRole")))),
        ("exchange_wmi", Op("wmi_query", ("root\\MicrosoftExchangeV2", "SELECT * FROM Exchange_SMTPLink", ("LinkName",)))),
        ("ldap", Op("adsi_search", ("", "(objectClass=msExchExchangeServer)", ("cn",)))),
        ("iis_adsi", Op("adsi_read", ("IIS://localhost/SMTPSVC/1", ("SmartHost", "ConnectResponse")))),
        ("eventlog", Op("eventlog", ("Application", "", (), _since(24), "1"))),
        ("metabase", Op("file_read", (metabase["path"], str(metabase.get("max_bytes", 1 << 20)), str(psrunner.FILE_CHUNK_BYTES)))),
        ("files", Op("file_list", (HISTORY, "0", "*.xml", "5"))),
        ("msi", Op("msi_features", (snapshot.like_to_wildcard(collect["msi_features"]["product_like"]),))),
        ("services", Op("service_query", (("SMTPSVC", "IISADMIN"),))),
        ("tcp", Op("tcp_connections", ("25",))),
        ("probe", Op("tcp_probe", (target, str(facts["probe"]["port"]), str(facts["probe"]["timeout_ms"]), "",
                                   "postmaster@", "postmaster@"))),
    ]


def padded(checks: list[tuple[str, Op]], context: psrunner.Context, limits: psrunner.Limits) -> list[tuple[str, Op]]:
    """The plan with its echo grown until the command's stdin is as large as the runner ever sends in one."""
    echo = checks[0][1].args[0]

    def with_padding(n: int) -> list[tuple[str, Op]]:
        return [("stdin", Op("echo", (echo + "." * n,)))] + checks[1:]

    base = len(psrunner.stdin_payload([op for _, op in checks], context))
    n = max(0, (limits.max_stdin - base) * 9 // 16)  # twice base64: 16 bytes of stdin for 9 of padding
    while n > 0 and len(psrunner.stdin_payload([op for _, op in with_padding(n)], context)) > limits.max_stdin:
        n -= 64
    return with_padding(max(n, 0))


def _row(check: str, status: str, detail: str = "", todo: str = "") -> dict:
    what, needed = CHECKS[check]
    return {"check": check, "what": what, "needed_by": needed, "status": status, "detail": detail, "todo": todo}


def _error(check: str, res: OpResult, todo: str) -> dict:
    return _row(check, FAILED, res.error or "", todo)


def assess(checks: list[tuple[str, Op]], results: list[OpResult], transport: dict, context_bind: str) -> list[dict]:
    """One row per check, in CHECKS order."""
    by = {c: r for (c, _), r in zip(checks, results)}
    rows = {}
    sent = checks[0][1].args[0]
    echo = by["stdin"]
    got = (echo.first("echo") or {}).get("data")
    rows["stdin"] = (_row("stdin", OK, f"{len(sent)} characters sent and returned") if got == sent else
                     _row("stdin", FAILED, echo.error or f"{len(got or '')} of {len(sent)} characters came back",
                          "PowerShell did not hand the request over whole as $input; see docs/runner.md"))
    size, kb = transport.get("stdin_bytes"), transport.get("max_envelope_kb")
    if transport.get("refused_full_size"):
        rows["request_size"] = _row("request_size", FAILED, f"WinRM took no request of {size} bytes: "
                                    f"{transport['refused_full_size']}",
                                    f"the host's MaxEnvelopeSizekb is below {kb}: raise it (winrm set winrm/config "
                                    f"@{{MaxEnvelopeSizekb=\"{kb}\"}}) or set mailflow_winrm_max_envelope_kb to its value")
    else:
        rows["request_size"] = _row("request_size", OK, f"{size} bytes of stdin in one command (MaxEnvelopeSizekb {kb})")
    rt = by["runtime"].first("runtime")
    if by["runtime"].error or rt is None:
        rows["runtime"] = _error("runtime", by["runtime"], "the dispatcher could not inspect its process")
    else:
        major = str(rt.get("ps_version") or "0").split(".")[0]
        detail = (f"PowerShell {rt.get('ps_version')}, CLR {rt.get('clr_version')}, as {rt.get('user')} "
                  f"({rt.get('auth_type')} logon, AD bind: {context_bind}), peak working set "
                  f"{int(rt.get('peak_working_set') or 0) >> 20} MB")
        rows["runtime"] = _row("runtime", OK if major.isdigit() and int(major) >= 2 else FAILED, detail,
                               "" if major.isdigit() and int(major) >= 2 else "install Windows Management Framework (KB968930)")
    reg = by["registry"]
    keys = snapshot._decode(reg) if reg.error is None else None
    version = ((next(iter(keys.values()), {}) if keys else {}).get("values", {}).get("CurrentVersion") or {}).get("data")
    rows["registry"] = (_row("registry", OK, f"CurrentVersion {version}") if version else
                        _error("registry", reg, "the account cannot read HKLM; it must be a local administrator")
                        if reg.error else _row("registry", FAILED, "CurrentVersion not found", "check the account's rights"))
    cs = by["wmi"].first("object")
    rows["wmi"] = (_row("wmi", OK, f"{cs.get('Name')} in {cs.get('Domain')} (DomainRole {cs.get('DomainRole')})") if cs else
                   _error("wmi", by["wmi"], "WMI (winmgmt) does not answer; check the service and mailflow_wmi_timeout_seconds"))
    ex = by["exchange_wmi"]
    if ex.error and ex.error.startswith("Invalid namespace"):
        rows["exchange_wmi"] = _row("exchange_wmi", NA, "no Exchange 2003 WMI namespace (not an Exchange 2003 server)")
    elif ex.error:
        rows["exchange_wmi"] = _error("exchange_wmi", ex, "Exchange's WMI provider does not answer in time: restart "
                                      "Windows Management Instrumentation (and the Exchange services it hosts) in a quiet hour")
    else:
        rows["exchange_wmi"] = _row("exchange_wmi", OK, f"{len(ex.of_kind('object'))} SMTP link(s)")
    ldap = by["ldap"]
    if ldap.error:
        hint = snapshot.ad_error_hint(ldap.error, context_bind == "explicit") or "check that the host reaches a domain controller"
        rows["ldap"] = _row("ldap", FAILED, ldap.error, hint)
    else:
        names = {str((e["attrs"].get("cn") or [""])[0]).upper() for e in snapshot._decode(ldap)}
        own = str((cs or {}).get("Name") or "").upper()
        rows["ldap"] = _row("ldap", OK, f"{len(names)} Exchange server object(s)"
                            + (f"; this host's ({own}) among them" if own in names else f"; none named {own or '?'}"))
    iis = by["iis_adsi"]
    rows["iis_adsi"] = (_row("iis_adsi", OK, "IIS://localhost/SMTPSVC/1 read") if iis.error is None else
                        _error("iis_adsi", iis, "IIS Admin must run and the IIS 6 ADSI provider answer for the fixes "
                                            "that change the SMTP virtual server (the audit reads MetaBase.xml instead)"))
    ev = by["eventlog"]
    if ev.error:
        rows["eventlog"] = _error("eventlog", ev, "the account must read the Application log")
    elif ev.first("overwritten"):
        rows["eventlog"] = _row("eventlog", WARN, ev.first("overwritten").get("message", ""),
                                "the log wraps while it is read: the audit reads what came before; a larger log helps")
    else:
        rows["eventlog"] = _row("eventlog", OK, f"{len(ev.of_kind('event'))} entry(ies) of the last day read")
    mb = by["metabase"]
    if mb.error:
        rows["metabase"] = _error("metabase", mb, "an OutOfMemoryException means WinRM's MaxMemoryPerShellMB is too low "
                                                  "(raise it: winrm set winrm/config/winrs @{MaxMemoryPerShellMB=\"150\"})")
    elif mb.first("missing"):
        rows["metabase"] = _row("metabase", NA, "no MetaBase.xml (not an IIS 6 host)")
    else:
        try:
            meta, data = psrunner.file_data(mb)
            rows["metabase"] = _row("metabase", OK, f"{len(data)} of {meta.get('size')} bytes in {len(mb.of_kind('chunk'))} chunk(s)")
        except psrunner.RunnerError as exc:
            rows["metabase"] = _row("metabase", FAILED, str(exc), "the answer was cut: check the connection")
    for check, todo in (("files", "the account must list %SystemRoot%\\system32\\inetsrv"),
                        ("services", "Win32_Service must answer"), ("tcp", "IPGlobalProperties must answer")):
        res = by[check]
        rows[check] = _row(check, OK, f"{len(res.rows)} row(s)") if res.error is None else _error(check, res, todo)
    msi = by["msi"]
    why = snapshot.item_error(msi)
    rows["msi"] = (_row("msi", OK, f"{len(msi.of_kind('feature'))} feature(s) of matching products") if why is None else
                   _row("msi", FAILED, why, "Windows Installer (msiserver) must answer for the products the Uninstall keys name"))
    pr = by["probe"]
    p = pr.first("probe") or {}
    if pr.error:
        rows["probe"] = _error("probe", pr, "the probe loop failed; see the message")
    elif str(p.get("banner") or "").startswith("220"):
        rows["probe"] = _row("probe", OK, f"{p.get('target')}:{p.get('port')} answered in {p.get('total_ms')} ms")
    else:
        rows["probe"] = _row("probe", WARN, f"{p.get('target')}:{p.get('port')}: connect {p.get('connect')}, {p.get('error') or 'no banner'}",
                             "this host's own SMTP does not greet it: the audit will say why (SMTP service, firewall, banner)")
    return [rows[c] for c in CHECKS]


def not_reached(why: str, todo: str) -> list[dict]:
    """Every check not run, after the transport or the decoder failed; the first row says why."""
    return [_row("stdin", FAILED, why, todo)] + [_row(c, NOT_RUN) for c in CHECKS if c != "stdin"]


def host_status(rows: list[dict]) -> str:
    """failed when a check the audit needs failed; warn when something else did; else ok."""
    if any(r["status"] in (FAILED, NOT_RUN) and r["needed_by"] == AUDIT for r in rows):
        return FAILED
    return WARN if any(r["status"] in (FAILED, WARN) for r in rows) else OK


def report(hosts: dict[str, dict], generated: str) -> dict:
    """hosts: {name: {"rows": [...]} or {"unreachable": why}}."""
    out = {"schema": SCHEMA, "generated": generated, "hosts": {}}
    for name, h in hosts.items():
        rows = h.get("rows") or not_reached(h.get("unreachable") or "no result",
                                            "check the WinRM listener, ansible_user/ansible_password and the transport")
        out["hosts"][name] = {"status": host_status(rows), "rows": rows, **({"transport": h["transport"]} if h.get("transport") else {})}
    out["failed"] = sorted(n for n, h in out["hosts"].items() if h["status"] == FAILED)
    return out


def failures(doc: dict) -> list[str]:
    """'HOST: check: detail' for every failed check the audit needs."""
    return [f"{name}: {r['check']}: {r['detail'] or r['status']}" for name, h in doc["hosts"].items() for r in h["rows"]
            if r["status"] == FAILED and r["needed_by"] == AUDIT]


def _cell(text: Any) -> str:
    return str(text or "").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def markdown(doc: dict) -> str:
    lines = [f"# mailflow self-test, {doc['generated']}", "",
             "What each managed server does with every operation the audit and the fixes read with. "
             "`failed` in a check the audit needs fails the run; the fixes' writes are not tried.", ""]
    for name, h in doc["hosts"].items():
        lines += [f"## {name}: {h['status']}", "", "| check | needed by | status | detail | what to do |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| {r['check']} | {r['needed_by']} | {r['status']} | {_cell(r['detail'])} | {_cell(r['todo'])} |" for r in h["rows"]]
        lines.append("")
    return "\n".join(lines)


def table(doc: dict) -> list[str]:
    """One line per host and per check that is not ok, for the play's output."""
    out = []
    for name, h in doc["hosts"].items():
        bad = [r for r in h["rows"] if r["status"] not in (OK, NA)]
        out.append(f"{name}: {h['status']}" + ("" if bad else " (every check ok)"))
        out += [f"  {r['check']} ({r['needed_by']}): {r['status']}: {r['detail']}" + (f" -> {r['todo']}" if r["todo"] else "")
                for r in bad]
    return out
