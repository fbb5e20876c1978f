# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check what the inventory gives before any host is contacted (see plugins/modules/inventory_check.py)."""
from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.mailflow.exchange.plugins.module_utils import paths


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True  # it reads the inventory on the controller and never touches a host

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        self.validate_argument_spec(argument_spec={})
        groups = task_vars.get("groups", {})
        problems = paths.inventory_problems(groups, task_vars.get("hostvars", {}))
        if problems:
            raise AnsibleActionFail("the inventory cannot be used as it is: " + "; ".join(problems[:20])
                                    + (f"; and {len(problems) - 20} more" if len(problems) > 20 else ""))
        result.update(changed=False, servers=len(groups.get("mailflow_servers") or []))
        return result
