# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""progress: 'hosts done of N' while mailflow snapshots or fixes run (an aggregate callback, beside stdout)."""
from __future__ import annotations

DOCUMENTATION = r"""
name: progress
type: aggregate
short_description: Hosts done of N during mailflow's snapshot and fix phases
version_added: 0.2.0
description:
  - >-
    While a M(mailflow.exchange.snapshot) or M(mailflow.exchange.fix) task runs, prints a line as hosts finish,
    for example C(mailflow snapshot: 12/300 hosts done (EXCH07 ok)), so a long run shows how far it is.
  - N is the hosts the task runs on - the play's current batch, or the hosts that included the role for a fix
    role included per cause (C(playbooks/tasks/fixes.yml)). Hosts a task skips count as done and print nothing;
    with many hosts a line is printed every 5% and for every host that fails.
  - Other tasks print nothing. Enable it with C(callbacks_enabled = mailflow.exchange.progress) in C(ansible.cfg)
    (the collection's example does) or C(ANSIBLE_CALLBACKS_ENABLED) (for example in an AWX job template's
    environment).
requirements:
  - enabled in C(callbacks_enabled)
author:
  - mailflow contributors (@mailflow)
"""

from ansible.plugins.callback import CallbackBase

# The tasks whose progress is shown: (action, its short name in the line).
_PHASES = {"mailflow.exchange.snapshot": "snapshot", "mailflow.exchange.fix": "fix"}
_EVERY_HOST_UP_TO = 20


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "mailflow.exchange.progress"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._play = None
        self._role_hosts = {}   # role name -> how many hosts included it (fix roles included per cause)
        self._task = None       # (uuid, label, total)
        self._done = set()

    def v2_playbook_on_play_start(self, play):
        self._play, self._role_hosts, self._task = play, {}, None

    def v2_playbook_on_include(self, included_file):
        # An included role's tasks run on the hosts that included it (private attributes: read defensively).
        name, hosts = getattr(included_file, "_filename", None), getattr(included_file, "_hosts", None)
        if getattr(included_file, "_is_role", False) and name and hosts is not None:
            self._role_hosts[name] = len(hosts)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task, self._done = None, set()
        phase = _PHASES.get(task.resolved_action or task.action)
        if phase is None or task.args.get("validate_only") is True:
            return
        label = phase if phase == "snapshot" else f"fix {task.args.get('cause', '')}".strip()
        self._task = (task._uuid, label, self._total(task))

    def _total(self, task):
        role = task._role.get_name() if task._role else None
        if role in self._role_hosts:
            return self._role_hosts[role]
        try:
            return len(self._play.get_variable_manager().get_vars(play=self._play)["ansible_play_batch"])
        except Exception:  # pylint: disable=broad-except  # progress without N rather than no run
            return None

    def _progress(self, result, status):
        if self._task is None or result._task._uuid != self._task[0]:
            return
        host = result._host.get_name()
        self._done.add(host)
        if status == "skipped":
            return
        uuid, label, total = self._task
        done = len(self._done)
        step = max(1, (total or 0) // 20) if (total or 0) > _EVERY_HOST_UP_TO else 1
        if status in ("failed", "unreachable") or done % step == 0 or done == total:
            of = f"/{total}" if total else ""
            self._display.display(f"mailflow {label}: {done}{of} hosts done ({host} {status})")

    def v2_runner_on_ok(self, result):
        self._progress(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._progress(result, "failed")

    def v2_runner_on_unreachable(self, result):
        self._progress(result, "unreachable")

    def v2_runner_on_skipped(self, result):
        self._progress(result, "skipped")
