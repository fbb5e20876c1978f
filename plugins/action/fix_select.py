# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which fixes a run may do, checked before any host is contacted (see plugins/modules/fix_select.py)."""
from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.mailflow.exchange.plugins.module_utils import causes, change


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True  # it decides on the controller and never touches a host

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=dict(
            fix=dict(type="raw"),
            change_id=dict(type="str", default=""),
        ))
        fixable = list(causes.fixable("network") + causes.fixable("server"))
        selected = _selection(args["fix"], fixable)
        if args["change_id"]:
            try:
                change.safe_id(args["change_id"])
            except change.ChangeError as exc:
                raise AnsibleActionFail(str(exc)) from exc
        result.update(changed=False, fixable=fixable, selected=selected,
                      server=[c for c in causes.fixable("server") if c in selected],
                      network=[c for c in causes.fixable("network") if c in selected],
                      # A change of these is judged on fresh probes of the host from its peers (verification.py).
                      inbound=[c.id for c in causes.catalog().values() if c.symptom_scope == "inbound"])
        return result


def _selection(raw, fixable: list[str]) -> list[str]:
    """mailflow_fix as a list or one comma-separated string (every fixable cause when not given), in fix order."""
    if raw is None:
        return list(fixable)
    if isinstance(raw, str):
        names = [n.strip() for n in raw.split(",") if n.strip()]
    elif isinstance(raw, (list, tuple)) and all(isinstance(n, str) for n in raw):
        names = [n.strip() for n in raw]
    else:
        raise AnsibleActionFail(f"mailflow_fix must be a list of causes or one comma-separated string, got {raw!r}")
    unknown = [n for n in names if n not in fixable]
    if unknown or not names:
        raise AnsibleActionFail(f"mailflow_fix must list causes from: {', '.join(fixable)} "
                                f"(not fixable here: {', '.join(unknown) or 'an empty list'})")
    return [c for c in fixable if c in names]
