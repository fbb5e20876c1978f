"""The audit's reports, all written from one mailflow.audit/1 document (docs/audit.md).

    write_all(doc, out_dir) -> {"json": path, "html": path, "md": path, "csv": path, "junit": path}

Each writer is a pure `render(doc) -> str` and its FILENAME; every file is
written to a temporary name in out_dir and renamed into place, so a reader
never sees half a report. Standard library only: these run on the controller.
"""
from __future__ import annotations

import os

from ansible_collections.mailflow.exchange.plugins.module_utils.reports import csvreport, html, jsonreport, junit, markdown
from ansible_collections.mailflow.exchange.plugins.module_utils.reports.common import ReportError, atomic_write, check_schema

WRITERS = (("json", jsonreport), ("html", html), ("md", markdown), ("csv", csvreport), ("junit", junit))

__all__ = ["WRITERS", "ReportError", "write_all"]


def write_all(doc: dict, out_dir: str) -> dict[str, str]:
    """Write every report into out_dir (created if missing); {kind: absolute path}."""
    check_schema(doc)
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    rendered = {kind: module.render(doc) for kind, module in WRITERS}  # render all first: one bad doc writes nothing
    paths = {}
    for kind, module in WRITERS:
        paths[kind] = os.path.join(out_dir, module.FILENAME)
        atomic_write(paths[kind], rendered[kind])
    return paths
