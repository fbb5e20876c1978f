# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Advise on the Exchange 5.x IMS connection leak; optionally restart MSExchangeIMC as a stop-gap
(see plugins/modules/fix_ims_connection_leak.py)."""
from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.mailflow.exchange.plugins.module_utils import knowledge
from ansible_collections.mailflow.exchange.plugins.module_utils.causes import ims_connection_leak as cause
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import FixError
from ansible_collections.mailflow.exchange.plugins.plugin_utils.fix_action import COMMON_ARGS, FixAction

UNMANAGED_GROUP = "mailflow_unmanaged"


class ActionModule(FixAction):
    CAUSE = "ims_connection_leak"
    ARGS = dict(restart=dict(type="bool", default=False))

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        if UNMANAGED_GROUP not in (task_vars.get("group_names") or []):
            return super().run(tmp, task_vars)
        # Exchange 5.x on Windows NT/2000 has no WinRM: never connect, only say what to do there by hand.
        result = ActionBase.run(self, tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec={**COMMON_ARGS, **self.ARGS})
        host = task_vars.get("inventory_hostname", "")
        try:
            params = cause.fix_params(args, knowledge.load(args["knowledge"]))
        except (FixError, knowledge.KnowledgeError) as exc:
            raise AnsibleActionFail(f"{host}: {exc}")
        advice = cause.advice_unmanaged(host, params)
        result.update(changed=False, cause=self.CAUSE, changes=[], advice=advice, unmanaged=True,
                      warnings=[f"{host}: {self.CAUSE}: {a}" for a in advice])
        return result
