"""audit.html: the audit for people, in one self-contained file.

No external assets and no script: inline CSS only, and a Content-Security-Policy
that forbids scripts, so the page reads the same anywhere (a mail attachment, a
file share, offline). Every value from the document goes through `e()`: banners,
evidence and error text come from hosts and are untrusted.
"""
from __future__ import annotations

import json
import re
from html import escape as _escape

from ansible_collections.mailflow.exchange.plugins.module_utils.reports.common import (
    STATUS_LABELS, STATUS_MEANINGS, STATUSES, SYMPTOM_LABELS, cause_ids, check_schema, counts_line,
    finding_map, present_ranked, source_url, xml_safe, yes_no)

FILENAME = "audit.html"
PROBE_MEANINGS = {
    "banner": "220 banner; EHLO, MAIL and RCPT answered",
    "no_banner": "connected, but no banner before the timeout",
    "refused": "connection refused: nothing listening",
    "filtered": "no answer to the connect: dropped on the way",
    "masked": "banner masked (PIX/ASA SMTP inspection)",
    "greylisted": "MAIL or RCPT answered 45x (greylisting)",
    "rejected": "the server answered, but not with 220",
    "unresolved": "the name did not resolve",
    "error": "the probe failed (see its error)",
}
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

CSS = """
:root{--present:#f8d7da;--present-fg:#842029;--absent:#d1e7dd;--absent-fg:#0f5132;--na:#e9ecef;--na-fg:#495057;
--unknown:#fff3cd;--unknown-fg:#664d03;--line:#c8ccd0}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:0 auto;max-width:1400px;padding:0 16px 48px;color:#1d2125}
header{border-bottom:2px solid #1d2125;margin-bottom:12px}
h1{font-size:22px;margin:16px 0 4px}h2{font-size:18px;margin:28px 0 8px}h3{font-size:15px;margin:18px 0 6px}h4{font-size:14px;margin:0 0 4px}
code,pre{font:12px/1.35 ui-monospace,Menlo,Consolas,monospace}
pre{background:#f6f8fa;border:1px solid var(--line);padding:6px;margin:0;max-height:24em;overflow:auto;white-space:pre-wrap;word-break:break-all}
table{border-collapse:collapse;margin:4px 0}th,td{border:1px solid var(--line);padding:3px 6px;text-align:left;vertical-align:top}
thead th{background:#f1f3f5}
.grid th.col{font-weight:600;font-size:12px;max-width:7.5em;word-break:break-word;vertical-align:bottom}
.cell,.probe{text-align:center;white-space:nowrap;font-weight:600}.grid td{padding:2px 4px;font-size:13px}
.scroll{overflow-x:auto;max-width:100%}
.cell a{color:inherit}
.st-present{background:var(--present);color:var(--present-fg)}.st-absent{background:var(--absent);color:var(--absent-fg)}
.st-not_applicable{background:var(--na);color:var(--na-fg);font-weight:400}.st-unknown{background:var(--unknown);color:var(--unknown-fg)}
.r-banner{background:var(--absent);color:var(--absent-fg)}.r-greylisted{background:#cfe2ff;color:#084298}
.r-masked{background:#ffe5d0;color:#984c0c}
.r-no_banner,.r-refused,.r-filtered,.r-rejected{background:var(--present);color:var(--present-fg)}
.r-unresolved,.r-error{background:var(--unknown);color:var(--unknown-fg)}
.self,.none{color:#868e96;text-align:center;font-weight:400}.ms{font-weight:400;font-size:11px}
.legend{list-style:none;padding:0;margin:6px 0;display:flex;flex-wrap:wrap;gap:6px 18px}
.legend .cell,.legend .probe,.tag{display:inline-block;padding:0 6px;border:1px solid var(--line);margin-right:4px}
.counts span{margin-right:12px}.note{display:block;font-weight:400;font-size:11px;color:#6c757d}
dl.facts,dl.ev{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:4px 0}
dt{font-weight:600}dd{margin:0;min-width:0}table.ev{font-size:12px}table.ev th{background:#f1f3f5}
.host{border-top:1px solid var(--line);margin-top:24px}
.findings{padding-left:0;list-style:none}
.finding{border:1px solid var(--line);border-left:6px solid var(--present-fg);padding:8px 10px;margin:8px 0}
.sev{font-size:11px;text-transform:uppercase;padding:0 5px;border:1px solid currentColor;margin-left:6px}
.sev-critical,.sev-high{color:#842029}.sev-medium{color:#984c0c}.sev-low,.sev-info{color:#495057}
nav ul{columns:4 12em;padding-left:18px}
@media print{body{max-width:none}*{-webkit-print-color-adjust:exact;print-color-adjust:exact}details{display:block}}
"""


def e(value) -> str:
    """Text from the document, escaped for HTML text and (double-quoted) attribute values."""
    return _escape(xml_safe(value), quote=True)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-") or "x"


def host_anchor(index: int, name: str) -> str:
    return f"host-{index}-{slug(name)}"


def source_html(source: str) -> str:
    url = source_url(source)
    if url:
        return f'<a class="source" href="{e(url)}" rel="noreferrer">{e(source)}</a>'
    return f'<span class="source">{e(source)}</span>'


def breakable(cid: str) -> str:
    """A cause id that may wrap after its underscores in a narrow column."""
    return "_<wbr>".join(e(part) for part in str(cid).split("_"))


def _header(doc: dict) -> str:
    s = doc["summary"]
    counts = "".join(f'<span><span class="tag st-{e(k)}">{e(STATUS_LABELS[k])}</span>{int(s["statuses"].get(k, 0))}</span>'
                     for k in STATUSES)
    return (f'<header><h1>Exchange 2003 mail-flow audit</h1>'
            f'<p id="meta">Generated <time>{e(doc["generated"])}</time> · check mode: <b>{e(yes_no(doc["check_mode"]))}</b> · '
            f'{e(counts_line(doc))}</p><p class="counts" id="counts">{counts}</p></header>')


def _nav(doc: dict) -> str:
    items = []
    for i, (name, host) in enumerate(doc["hosts"].items(), 1):
        n = len(present_ranked(host))
        note = f"{n} present" if host["reachable"] else "no snapshot"
        items.append(f'<li><a href="#{e(host_anchor(i, name))}">{e(name)}</a> — {e(note)}</li>')
    return ('<nav><a href="#matrix">Causes by host</a> · <a href="#causes">The causes</a> · <a href="#smtp">SMTP between servers</a>'
            f'<ul>{"".join(items)}</ul></nav>')


def _legend() -> str:
    items = "".join(f'<li><span class="cell st-{e(k)}">{e(STATUS_LABELS[k])}</span>{e(STATUS_MEANINGS[k])}</li>' for k in STATUSES)
    return f'<ul class="legend" id="legend">{items}<li>#n: rank on that host, 1 = most likely</li></ul>'


def _cell(doc_index: int, name: str, cid: str, f: dict | None) -> str:
    attrs = f'data-host="{e(name)}" data-cause="{e(cid)}"'
    if f is None:
        return f'<td class="cell st-unknown" {attrs} title="no finding in the document">unknown</td>'
    status = f["status"]
    label = STATUS_LABELS.get(status, status)
    if status == "present":
        title = f'{f["severity"]}, {f["confidence"]}: {f["summary"]}'
        rank = f" #{f['rank']}" if f["rank"] is not None else ""
        href = f"#{host_anchor(doc_index, name)}--{slug(cid)}"
        return f'<td class="cell st-present" {attrs} title="{e(title)}"><a href="{e(href)}">{e(label)}{e(rank)}</a></td>'
    title = f["reason"] or f["summary"]
    return f'<td class="cell st-{e(status)}" {attrs} title="{e(title)}">{e(label)}</td>'


def _matrix(doc: dict) -> str:
    ids = cause_ids(doc)
    titles = {c["id"]: c["title"] for c in doc["causes"]}
    head = "".join(f'<th scope="col" class="col" title="{e(titles[c])}"><a href="#cause-{e(slug(c))}">{breakable(c)}</a></th>'
                   for c in ids)
    rows = []
    for i, (name, host) in enumerate(doc["hosts"].items(), 1):
        by_cause = finding_map(host)
        note = "" if host["reachable"] else f'<span class="note" title="{e(host["error"] or "")}">no snapshot</span>'
        row_head = f'<th scope="row"><a href="#{e(host_anchor(i, name))}">{e(name)}</a>{note}</th>'
        rows.append("<tr>" + row_head + "".join(_cell(i, name, c, by_cause.get(c)) for c in ids) + "</tr>")
    return (f'<section id="matrix"><h2>Causes by host</h2>{_legend()}'
            f'<div class="scroll"><table class="grid" id="fleet-matrix"><thead><tr><th scope="col">host</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div></section>')


def _causes(doc: dict) -> str:
    rows = []
    for n, c in enumerate(doc["causes"], 1):
        kb = f"cause {c['kb919091_cause']}" if c["kb919091_cause"] is not None else ""
        fix = f'<code>{e(c["fix"])}</code>' if c["fix"] else "report only"
        rows.append(f'<tr id="cause-{e(slug(c["id"]))}"><td>{n}</td><td><code>{e(c["id"])}</code></td><td>{e(c["title"])}</td>'
                    f'<td>{e(kb)}</td><td>{fix}</td><td>{", ".join(source_html(s) for s in c["sources"])}</td></tr>')
    return ('<section id="causes"><h2>The causes</h2><table><thead><tr><th>#</th><th>id</th><th>cause</th><th>KB 919091</th>'
            f'<th>fix role</th><th>sources</th></tr></thead><tbody>{"".join(rows)}</tbody></table></section>')


GRID_MAX_HOSTS = 60  # columns in the server-to-server grid; past it the page lists the probes only


def _probe_cell(probes: list[dict]) -> str:
    if not probes:
        return '<td class="none">not probed</td>'
    p = probes[0]
    title = " | ".join(x for x in (p["banner"], p["error"] or "") if x) or "(no banner)"
    more = f" (+{len(probes) - 1})" if len(probes) > 1 else ""
    return (f'<td class="probe r-{e(p["result"])}" title="{e(title)}"><span class="word">{e(p["result"])}</span>{e(more)} '
            f'<span class="ms">{int(p["ms"] or 0)} ms</span></td>')


def _smtp(doc: dict) -> str:
    peers = doc["peers"]
    if not peers:
        return '<section id="smtp"><h2>SMTP between servers</h2><p>No probes in this audit.</p></section>'
    hosts = list(doc["hosts"])
    sources, targets = {p["from"] for p in peers}, {p["to"] for p in peers}
    froms = [h for h in hosts if h in sources]
    froms += sorted(sources - set(froms))
    tos = [h for h in hosts if h in targets]
    tos += sorted(targets - set(tos))
    by_pair: dict[tuple[str, str], list[dict]] = {}
    for p in peers:
        by_pair.setdefault((p["from"], p["to"]), []).append(p)
    if len(tos) > GRID_MAX_HOSTS:
        # A grid of N x N cells outgrows any page (a 5,000-server fleet: 25 million); the probes are listed below.
        grid = (f'<p id="smtp-grid">{len(froms)} servers probed {len(tos)}: too many for a grid (more than '
                f'{GRID_MAX_HOSTS}); every probe is listed below, with why it was probed in audit.json.</p>')
    else:
        grid = _smtp_grid(froms, tos, by_pair)
    legend = "".join(f'<li><span class="probe r-{e(k)}">{e(k)}</span>{e(v)}</li>' for k, v in PROBE_MEANINGS.items())
    detail = "".join(f'<tr><td>{e(p["from"])}</td><td>{e(p["to"])}</td><td class="probe r-{e(p["result"])}">{e(p["result"])}</td>'
                     f'<td>{int(p["ms"] or 0)}</td><td><code>{e(p["banner"])}</code></td><td>{e(p["error"] or "")}</td></tr>'
                     for p in peers)
    return (f'<section id="smtp"><h2>SMTP between servers</h2><p>Rows: the probing server; columns: the server probed. '
            f'Hover a cell for the banner; every probe is listed below.</p><ul class="legend">{legend}</ul>'
            f'{grid}'
            f'<details id="probes"><summary>Every probe ({len(peers)})</summary><table><thead><tr><th>from</th><th>to</th>'
            f'<th>result</th><th>ms</th><th>banner</th><th>error</th></tr></thead><tbody>{detail}</tbody></table></details></section>')


def _smtp_grid(froms: list[str], tos: list[str], by_pair: dict[tuple[str, str], list[dict]]) -> str:
    head = "".join(f'<th scope="col" class="col">{e(t)}</th>' for t in tos)
    rows = []
    for f in froms:
        tds = "".join('<td class="self">—</td>' if f == t and (f, t) not in by_pair else _probe_cell(by_pair.get((f, t), []))
                      for t in tos)
        rows.append(f'<tr><th scope="row">{e(f)}</th>{tds}</tr>')
    return (f'<div class="scroll"><table class="grid" id="smtp-grid"><thead><tr><th scope="col">from \\ to</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _value(value) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return '<span class="none">—</span>'
    if isinstance(value, (str, int, float, bool)):
        return e(value)
    if isinstance(value, list) and all(isinstance(v, (str, int, float, bool)) for v in value):
        return e(", ".join(str(v) for v in value))
    if isinstance(value, dict) and all(_flat(v) for v in value.values()):
        return _dl((k, _value(v)) for k, v in value.items())
    if isinstance(value, list) and len(value) <= 50 and all(isinstance(v, dict) and all(_flat(x) for x in v.values()) for v in value):
        keys = list(dict.fromkeys(k for row in value for k in row))
        head = "".join(f"<th>{e(k)}</th>" for k in keys)
        body = "".join("<tr>" + "".join(f"<td>{_value(row.get(k))}</td>" for k in keys) + "</tr>" for row in value)
        return f'<div class="scroll"><table class="ev"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    return f"<pre>{e(json.dumps(value, indent=1, ensure_ascii=False, default=str))}</pre>"


def _flat(value) -> bool:
    """A value that renders on one line: a scalar, or a short list of scalars."""
    return value is None or isinstance(value, (str, int, float, bool)) or \
        (isinstance(value, list) and len(value) <= 20 and all(isinstance(v, (str, int, float, bool)) for v in value))


def _dl(pairs, cls: str = "ev") -> str:
    return f'<dl class="{cls}">' + "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def _evidence(evidence) -> str:
    if not evidence:
        return "<p>No evidence recorded.</p>"
    if not isinstance(evidence, dict):
        return _value(evidence)
    return _dl((k, _value(v)) for k, v in evidence.items())


def _platform(host: dict) -> str:
    p = host.get("platform") or {}
    os_info, ex = p.get("os"), p.get("exchange")
    os_text = " ".join(str(x) for x in (os_info.get("caption"), os_info.get("service_pack"),
                                        os_info.get("build") and f"(build {os_info['build']})") if x) if os_info else "not known"
    ex_text = "none known"
    if ex:
        ex_text = " ".join(str(x) for x in (ex.get("version"), ex.get("build") and f"build {ex['build']}", ex.get("service_pack")) if x)
        ex_text += f" — from {ex['source']}" if ex.get("source") else ""
    kind = (p.get("kind") or "not known") + (f" — from {p['kind_source']}" if p.get("kind_source") else "")
    pairs = [("Managed", yes_no(host["managed"])), ("Snapshot", f"taken {host['collected_at']}" if host["reachable"]
                                                    else f"none: {host['error'] or 'unknown'}"),
             ("Computer name", p.get("computer_name") or ""), ("Kind", kind), ("Windows", os_text), ("Exchange", ex_text)]
    return _dl(((k, e(v)) for k, v in pairs), cls="facts")


def _symptoms(host: dict) -> str:
    if not host["symptoms"]:
        return "<p>No symptoms read (no snapshot).</p>"
    rows = []
    for s in host["symptoms"]:
        observed = {True: ("yes", "st-present"), False: ("no", "st-absent")}.get(s.get("observed"), ("unknown", "st-unknown"))
        extra = {k: v for k, v in s.items() if k not in ("symptom", "observed", "count", "remote_hosts", "reason")}
        reason = f'<p>{e(s["reason"])}</p>' if s.get("reason") else ""
        data = f"<details><summary>data</summary>{_evidence(extra)}</details>" if extra else ""
        rows.append(f'<tr><td>{e(SYMPTOM_LABELS.get(s["symptom"], s["symptom"]))}</td><td class="cell {observed[1]}">{observed[0]}</td>'
                    f'<td>{e("" if s.get("count") is None else s["count"])}</td><td>{e(", ".join(s.get("remote_hosts") or []))}</td>'
                    f"<td>{reason}{data}</td></tr>")
    return ('<table class="symptoms"><thead><tr><th>symptom</th><th>observed</th><th>count</th><th>stuck on</th><th>detail</th>'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _finding(index: int, name: str, f: dict) -> str:
    fix = f'<code>{e(f["fix"])}</code>' if f["fix"] else "no fix role: report only"
    pairs = [("Confidence", e(f["confidence"])), ("Fix", fix),
             ("Sources", ", ".join(source_html(s) for s in f["sources"]) or "—")]
    if f["explains"]:
        pairs.insert(1, ("Stalls mail of", e(", ".join(f["explains"]))))
    return (f'<li class="finding" id="{e(host_anchor(index, name))}--{e(slug(f["cause"]))}">'
            f'<h4><span class="rank">#{e(f["rank"])}</span> {e(f["title"])} <code>{e(f["cause"])}</code>'
            f'<span class="sev sev-{e(f["severity"])}">{e(f["severity"])}</span></h4>'
            f'<p class="summary">{e(f["summary"])}</p>{_dl(pairs, cls="facts")}'
            f'<h5>Evidence</h5>{_evidence(f["evidence"])}</li>')


def _host(index: int, name: str, host: dict) -> str:
    present = present_ranked(host)
    parts = [f'<section class="host" id="{e(host_anchor(index, name))}"><h2>{e(name)}</h2>', _platform(host),
             "<h3>Symptoms</h3>", _symptoms(host), "<h3>Present causes, most likely first</h3>"]
    parts.append(f'<ol class="findings">{"".join(_finding(index, name, f) for f in present)}</ol>' if present
                 else "<p>No cause present.</p>")
    if host.get("pending_restart"):
        items = "".join(f'<li><code>{e(p["cause"])}</code>: restart of {e(", ".join(p["services"]))} pending '
                        f'(backup <code>{e(p["backup"])}</code>)</li>' for p in host["pending_restart"])
        parts.append(f'<h3>Fixes waiting for a service restart</h3><ul class="pending">{items}</ul>')
    if host.get("unfinished_changes"):
        items = "".join(f'<li><code>{e(u["cause"])}</code>: left {e(u["state"])} by a lost run (backup <code>{e(u["backup"])}</code>); '
                        f'the next fix or remediation of this host finishes or restores it</li>' for u in host["unfinished_changes"])
        parts.append(f'<h3>Changes left unfinished</h3><ul class="pending">{items}</ul>')
    unknown = [f for f in host["findings"] if f["status"] == "unknown"]
    if unknown:
        items = "".join(f'<li><b>{e(f["title"])}</b> <code>{e(f["cause"])}</code>: {e(f["reason"] or f["summary"])}</li>' for f in unknown)
        parts.append(f'<h3>Not decided (unknown)</h3><ul class="unknown">{items}</ul>')
    for status, heading in (("absent", "Absent"), ("not_applicable", "Not applicable")):
        rest = [f for f in host["findings"] if f["status"] == status]
        if rest:
            items = "".join(f'<li><b>{e(f["title"])}</b> <code>{e(f["cause"])}</code>: {e(f["reason"] or f["summary"])}</li>'
                            for f in rest)
            parts.append(f"<details><summary>{heading} ({len(rest)})</summary><ul>{items}</ul></details>")
    parts.append("</section>")
    return "".join(parts)


def _firewalls(doc: dict) -> str:
    """Each firewall read, its SMTP inspections and the lines that remove them (for the network team)."""
    if not doc.get("firewalls"):
        return ""
    rows = []
    for fw in doc["firewalls"]:
        head = f'<td>{e(fw["name"])}</td><td>{e(fw["platform"] or "?")}</td><td>{e(fw["source"])}</td>'
        if fw["error"]:
            rows.append(f'<tr>{head}<td colspan="3">not read: {e(fw["error"])}</td></tr>')
        for i in fw["inspections"]:
            where = ", ".join(f'{b["interface"]} {b["direction"]}' for b in i["bindings"]) or "not applied"
            fix = "<br>".join(f"<code>{e(line)}</code>" for line in i["remediation"])
            rows.append(f'<tr>{head}<td><code>{e(i["line"])}</code></td><td>{e(where)}</td><td>{fix}</td></tr>')
        if not fw["error"] and not fw["inspections"]:
            rows.append(f'<tr>{head}<td colspan="3">no SMTP inspection</td></tr>')
    return ('<section id="firewalls"><h2>Firewalls</h2><table><thead><tr><th>firewall</th><th>platform</th>'
            '<th>config from</th><th>SMTP inspection</th><th>applied</th><th>to remove it</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></section>')


def render(doc: dict) -> str:
    check_schema(doc)
    hosts = "".join(_host(i, name, host) for i, (name, host) in enumerate(doc["hosts"].items(), 1))
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>mailflow audit — {e(doc["generated"])}</title><style>{CSS}</style></head>\n<body>'
            f'{_header(doc)}{_nav(doc)}{_matrix(doc)}{_smtp(doc)}{_firewalls(doc)}{_causes(doc)}'
            f'<section id="hosts"><h2>Hosts</h2>{hosts}</section>'
            '<footer><p>mailflow.audit/1 — the same data is in audit.json; docs/audit.md describes every field.</p></footer>'
            "</body></html>\n")
