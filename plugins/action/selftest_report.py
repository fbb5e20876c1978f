# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The self-test's compatibility matrix for every host, written as JSON and Markdown (see plugins/modules/selftest_report.py)."""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone

from ansible.plugins.action import ActionBase

from ansible_collections.mailflow.exchange.plugins.module_utils import selftest


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True  # it writes reports on the controller only

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=dict(
            hosts=dict(type="list", elements="str", required=True),
            report_dir=dict(type="path", required=True),
            result_var=dict(type="str", default="mailflow_selftest"),
        ))
        hostvars = task_vars.get("hostvars", {})
        hosts = {}
        for name in args["hosts"]:
            r = hostvars.get(name, {}).get(args["result_var"])
            if isinstance(r, dict) and r.get("rows"):
                hosts[name] = {"rows": r["rows"], "transport": r.get("transport")}
            else:
                why = (r or {}).get("msg") if isinstance(r, dict) else None
                hosts[name] = {"unreachable": why or "the self-test did not run on this host"}
        doc = selftest.report(hosts, datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        os.makedirs(args["report_dir"], exist_ok=True)
        paths = {"json": os.path.join(args["report_dir"], "selftest.json"), "markdown": os.path.join(args["report_dir"], "selftest.md")}
        with open(paths["json"], "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1)
        with open(paths["markdown"], "w", encoding="utf-8") as fh:
            fh.write(selftest.markdown(doc))
        result.update(changed=False, table=selftest.table(doc), reports=paths, failed_hosts=doc["failed"])
        bad = selftest.failures(doc)
        if doc["failed"]:
            result.update(failed=True, msg="the self-test failed where the audit needs it: " + "; ".join(
                bad or [f"{h}: not reached" for h in doc["failed"]]))
        return result
