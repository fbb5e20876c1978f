"""audit.csv: one row per host x cause, for spreadsheets and scripts.

RFC 4180 (comma, double quotes, CRLF), UTF-8 without BOM. A text field that
starts with = + - @ (which a spreadsheet would run as a formula) is prefixed
with a single quote; host-supplied text is never a formula.
"""
from __future__ import annotations

import csv
import io

from ansible_collections.mailflow.exchange.plugins.module_utils.reports.common import cells, check_schema, one_line

FILENAME = "audit.csv"
COLUMNS = ("host", "cause", "status", "severity", "rank", "confidence", "summary", "fix", "sources")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    if value is None:
        return ""
    text = one_line(value)
    return "'" + text if text.startswith(_FORMULA) else text


def rows(doc: dict) -> list[list[str]]:
    out = []
    for name, _host, cid, f in cells(doc):
        if f is None:  # a detector that said nothing about this host: say so rather than drop the row
            out.append([_cell(name), cid, "unknown", "info", "", "", "no finding in the document", "", ""])
            continue
        out.append([_cell(name), _cell(cid), f["status"], f["severity"], "" if f["rank"] is None else str(f["rank"]),
                    f["confidence"], _cell(f["summary"]), _cell(f["fix"]), _cell(";".join(f["sources"]))])
    return out


def render(doc: dict) -> str:
    check_schema(doc)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(COLUMNS)
    w.writerows(rows(doc))
    return buf.getvalue()
