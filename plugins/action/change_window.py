# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Gate a change run on its change id and approved window (see plugins/modules/change_window.py)."""
from __future__ import annotations

import os
import socket
from datetime import datetime, timezone

from ansible.plugins.action import ActionBase

from ansible_collections.mailflow.exchange.plugins.module_utils import change

ARGS = dict(
    change_id=dict(type="raw"),
    change_id_pattern=dict(type="str", default=change.DEFAULT_ID_PATTERN),
    window_start=dict(type="raw"),
    window_end=dict(type="raw"),
    window_name=dict(type="str"),
    windows=dict(type="dict", default={}),
    override_reason=dict(type="raw"),
    record_root=dict(type="path", default="reports"),
    stage=dict(type="str", choices=["open", "check"], default="open"),
    playbook=dict(type="str"),
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True  # it only writes the change record on the controller

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=ARGS)
        try:
            change_id = change.check_change_id(args["change_id"], args["change_id_pattern"])
            window = change.resolve_window(args["window_start"], args["window_end"], args["window_name"], args["windows"])
            reason = change.override_reason(args["override_reason"])
        except change.ChangeError as e:  # bad input: nothing is recorded, no host is touched
            result.update(failed=True, msg=str(e))
            return result
        now = datetime.now(timezone.utc)
        verdict = change.admit(window, reason, now)
        paths = change.record_paths(args["record_root"], change_id)
        result.update(changed=False, change_id=change_id, window=window.to_dict(), state=verdict["state"],
                      in_window=verdict["in_window"], override=verdict["override"], record=paths,
                      seconds_left=max(0, int((window.end - now).total_seconds())), msg=verdict["message"])
        if reason and not verdict["override"]:
            result["override_ignored"] = "mailflow_window_override_reason was given but the window is open, so it is not used"
        if args["stage"] == "check":  # between batches: a new batch may start when this is open
            result["open"] = verdict["allowed"]
            return result
        if verdict["override"]:
            result["warnings"] = [f"change {change_id} runs {verdict['message']}"]
        who = {"operator": change.operator_name(), "controller": socket.gethostname(), "window": window.to_dict()}
        playbook = args["playbook"] or os.path.basename(str(self._task.get_path() or "").rsplit(":", 1)[0]) or None
        if verdict["allowed"]:
            event = {"type": "run_started", "playbook": playbook, "check_mode": bool(self._task.check_mode),
                     "state": verdict["state"], "override_reason": reason if verdict["override"] else None, **who}
        else:
            event = {"type": "refused", "playbook": playbook, "state": verdict["state"], "reason": verdict["message"], **who}
        header = {"window": window.to_dict(), "override_reason": event.get("override_reason")}
        try:
            change.append(args["record_root"], change_id, event, header=header, now=now)
        except (change.ChangeError, OSError) as e:
            result.update(failed=True, msg=f"could not write the change record {paths['json']}: {e}")
            return result
        result["open"] = verdict["allowed"]
        if not verdict["allowed"]:
            result.update(failed=True, msg=f"change {change_id}: {verdict['message']}")
        return result
