# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Append one event to a change record on the controller (see plugins/modules/change_record.py)."""
from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.mailflow.exchange.plugins.module_utils import change


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True  # it only writes the change record on the controller

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=dict(
            change_id=dict(type="raw", required=True),
            record_root=dict(type="path", default="reports"),
            event=dict(type="dict", required=True),
            header=dict(type="dict"),
        ))
        event = dict(args["event"])
        if event.get("type") in change.HOST_EVENTS and not event.get("host"):
            event["host"] = task_vars.get("inventory_hostname")  # the host the task runs for (also when delegated)
        try:
            doc = change.append(args["record_root"], change.safe_id(args["change_id"]), event, header=args["header"])
        except change.ChangeError as e:
            result.update(failed=True, msg=str(e))
            return result
        except OSError as e:
            result.update(failed=True, msg=f"could not write the change record under {args['record_root']}: {e}")
            return result
        host = event.get("host")
        result.update(changed=False, record=change.record_paths(args["record_root"], args["change_id"]),
                      event=doc["events"][-1], events=len(doc["events"]), host_status=doc["hosts"].get(host, {}).get("status") if host else None)
        return result
