# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The post-change audit of one host, on fresh evidence only (see plugins/modules/verify_causes.py)."""
from __future__ import annotations

import json
import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.mailflow.exchange.plugins.module_utils import audit, knowledge, verification


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=dict(
            host=dict(type="str", required=True),
            causes=dict(type="list", elements="str", required=True),
            snapshot=dict(type="path", required=True),
            fleet_snapshots=dict(type="path", required=True),
            fresh_probes=dict(type="list", elements="raw", default=[]),
            hosts=dict(type="list", elements="str", required=True),
            unmanaged=dict(type="list", elements="str", default=[]),
            knowledge=dict(type="dict", default={}),
        ))
        host, hostvars = args["host"], task_vars.get("hostvars", {})
        try:
            facts = knowledge.load(args["knowledge"])
        except knowledge.KnowledgeError as exc:
            raise AnsibleActionFail(f"mailflow_knowledge: {exc}") from exc
        entries = []
        for name in args["hosts"] + [u for u in args["unmanaged"] if u not in args["hosts"]]:
            managed = name in args["hosts"]
            hv = hostvars.get(name, {})
            # This host from its fresh snapshot; its peers from the pre-flight audit, their probes of it fresh.
            path = args["snapshot"] if name == host else os.path.join(args["fleet_snapshots"], f"{name}.json")
            snap = _load(path) if managed else None
            entries.append({"name": name, "managed": managed, "fqdn": hv.get("mailflow_fqdn"), "address": hv.get("ansible_host"),
                            "declared": audit.declared(hv), "snapshot": snap,
                            "error": None if snap else ("unmanaged" if not managed else f"no snapshot ({path})")})
        if not any(e["name"] == host and e["snapshot"] for e in entries):
            raise AnsibleActionFail(f"{host}: no post-change snapshot at {args['snapshot']}")
        fresh = verification.fresh_probes_of(host, args["fresh_probes"])
        verification.replace_probes_of(host, entries, fresh)
        try:
            findings = audit.detect_all(audit.fleet_from(entries, facts))[host]
        except audit.AuditError as exc:
            raise AnsibleActionFail(str(exc)) from exc
        verdict = verification.judge(host, findings, args["causes"], fresh)
        result.update(changed=False, **verdict)
        if not verdict["ok"]:
            result.update(failed=True, msg=verdict["msg"])
        return result


def _load(path):
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)
