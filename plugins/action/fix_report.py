# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write fix.json and fix.md from what the fix roles registered (see plugins/modules/fix_report.py)."""
from __future__ import annotations

from datetime import datetime, timezone

from ansible.plugins.action import ActionBase

from ansible_collections.mailflow.exchange.plugins.module_utils import causes
from ansible_collections.mailflow.exchange.plugins.module_utils.reports import fixrun


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True  # it writes the record on the controller and never touches a host

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=dict(
            hosts=dict(type="list", elements="str", required=True),
            report_dir=dict(type="path", required=True),
            change_id=dict(type="str", default=""),
            audit_report=dict(type="str"),
        ))
        hostvars = task_vars.get("hostvars", {})
        fixes = [c for c in causes.catalog().values() if c.fix]
        registered = {h: {c.id: hostvars.get(h, {}).get(c.register) for c in fixes
                          if isinstance(hostvars.get(h, {}).get(c.register), dict)} for h in args["hosts"]}
        doc = fixrun.build(registered, generated=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                           change_id=args["change_id"], check_mode=bool(self._task.check_mode), audit_report=args["audit_report"])
        paths = fixrun.write(doc, args["report_dir"])
        bad = [f"{h}: {r['cause']} {r['status']}" for h, rows in doc["hosts"].items() for r in rows
               if r["status"] in ("failed", "interrupted", "unreachable")]
        result.update(changed=False, reports=paths, summary=doc["summary"], problems=bad,
                      text=fixrun.render_text(doc))
        return result
