# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Watch one host's stuck mail leave after a change (see plugins/modules/drain_watch.py)."""
from __future__ import annotations

import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.mailflow.exchange.plugins.module_utils import drain, knowledge, snapshot
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import HostView
from ansible_collections.mailflow.exchange.plugins.plugin_utils.host_session import HostLost, HostSession


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True
    _supports_check_mode = True  # it only reads

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=dict(
            wait=dict(type="int", default=180),
            poll=dict(type="int", default=30),
            knowledge=dict(type="dict", default={}),
            before=dict(type="path"),
        ))
        host = task_vars.get("inventory_hostname", "")
        if args["wait"] < 0 or args["poll"] < 1:
            raise AnsibleActionFail(f"{host}: mailflow_drain_wait must be 0 or more seconds and mailflow_drain_poll at least 1")
        try:
            facts = knowledge.load(args["knowledge"])
        except knowledge.KnowledgeError as exc:
            raise AnsibleActionFail(f"{host}: mailflow_knowledge: {exc}") from exc
        session = HostSession(self, host, task_vars)
        hostvars = task_vars.get("hostvars", {})
        t0 = time.monotonic()
        try:
            last = session.read(facts, drain.READS).view
            # What was stuck before the change (the pre-flight snapshot), else at the watch's start: mail that left
            # between the fix and the watch has drained too, and must be counted so.
            first = _before(args["before"]) or last
            # One read per poll, until every link stuck at the start has emptied or the wait is over.
            while drain.stuck(first) and not drain.drained(first, last) and time.monotonic() - t0 < args["wait"]:
                time.sleep(min(args["poll"], max(0.0, args["wait"] - (time.monotonic() - t0))))
                last = session.read(facts, drain.READS).view
        except HostLost as exc:
            result.update(failed=True, msg=f"{host}: lost the connection while watching its queues ({exc})")
            return result
        result.update(changed=False, **drain.report(host, first, last, time.monotonic() - t0, _resolver(hostvars)))
        return result


def _before(path):
    """The host's pre-change snapshot as a view, or None when there is none to read or it holds no links."""
    snap = snapshot.load(path)
    return HostView(snap) if snap is not None and (snap.get("items") or {}).get("smtp_links") is not None else None


def _resolver(hostvars):
    """A link is named after the remote domain or host: the inventory host it is, when one matches."""
    names = {}
    for name, hv in hostvars.items():
        for alias in (name, hv.get("mailflow_fqdn"), hv.get("ansible_host")):
            if alias:
                names.setdefault(str(alias).lower(), name)
    return lambda link: names.get(str(link).lower().strip("[]"))
