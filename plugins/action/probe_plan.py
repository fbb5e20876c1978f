# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan which server probes which on port 25, once per run on the controller (see plugins/modules/probe_plan.py)."""
from __future__ import annotations

import json
import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.mailflow.exchange.plugins.module_utils import probe_plan


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True  # it writes the plan on the controller and never touches a host

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=dict(
            servers=dict(type="list", elements="str", required=True),
            unmanaged=dict(type="list", elements="str", default=[]),
            mode=dict(type="str", default=probe_plan.DEFAULTS["mode"], choices=list(probe_plan.MODES)),
            min_inbound=dict(type="int", default=probe_plan.DEFAULTS["min_inbound"]),
            sample=dict(type="int", default=probe_plan.DEFAULTS["sample"]),
            max_peers=dict(type="int", default=probe_plan.DEFAULTS["max_peers"]),
            mesh_max_hosts=dict(type="int", default=probe_plan.DEFAULTS["mesh_max_hosts"]),
            routes_from=dict(type="path"),
            fleet_from=dict(type="path"),
            dest=dict(type="path"),
        ))
        hostvars = task_vars.get("hostvars", {})
        earlier, source = self._earlier_audit(args["routes_from"])
        whole, whole_source = self._earlier_audit(args["fleet_from"])
        try:
            plan = probe_plan.for_inventory(args["servers"], args["unmanaged"], hostvars,
                                            {k: args[k] for k in probe_plan.DEFAULTS}, earlier, source, whole, whole_source)
        except probe_plan.PlanError as exc:
            raise AnsibleActionFail(str(exc))
        if args["dest"]:
            probe_plan.write(args["dest"], plan)
        per_host = [len(p) for p in plan["pairs"].values()]
        result.update(changed=False, mode=plan["mode"], routes_source=plan["routes_source"],
                      probes=probe_plan.probed_pairs(plan), max_per_host=max(per_host, default=0), short=plan["short"],
                      peers={s: probe_plan.probe_peers(plan, s) for s in plan["pairs"]}, unaddressed=plan["unaddressed"],
                      dest=args["dest"])
        return result

    @staticmethod
    def _earlier_audit(path):
        """(the earlier audit.json, where from); (None, None) when there is none to read."""
        if not path or not os.path.isfile(path):
            return None, None
        try:
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except (OSError, ValueError):
            return None, None  # an unreadable earlier report only costs the routes: the plan says it found none
        if not isinstance(doc, dict):
            return None, None
        return doc, f"the audit of {doc.get('generated') or path}"
