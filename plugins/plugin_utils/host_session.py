# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One host as the actions that run operations on it see it: a command, its decoded results, or HostLost.

Every call is one WinRM command through the host's own connection (the raw path:
ansible.windows cannot run on PowerShell 2.0), or a few when one would not fit
WinRM 2.0's envelope (psrunner.batches). The fixes, the coordinated restart and
the rollback use it; none of them builds a command line itself. The request
carries the host's AD credentials and WMI timeout (runner_context), so the
smart host fix's AD write binds explicitly, as the audit's reads do.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure

from ansible_collections.mailflow.exchange.plugins.module_utils import psrunner, snapshot
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import HostView
from ansible_collections.mailflow.exchange.plugins.module_utils.psrunner import Op, OpResult
from ansible_collections.mailflow.exchange.plugins.plugin_utils import runner_context

try:  # pywinrm's transport errors (an HTTP 500 mid-command, say) reach us raw, not as AnsibleConnectionFailure
    from winrm.exceptions import WinRMError, WinRMTransportError
    _TRANSPORT_ERRORS: tuple = (WinRMError, WinRMTransportError)
except ImportError:  # pragma: no cover - pywinrm is a requirement of the collection
    _TRANSPORT_ERRORS = ()


class HostLost(Exception):
    """The connection dropped, or the answer was cut off, while a command ran: it may have run in part."""


@dataclass
class Reading:
    """A fresh read of some knowledge items, and the results of what ran before it in the same command."""
    view: HostView
    before: list[OpResult]


class HostSession:
    def __init__(self, action, host: str, task_vars: dict | None = None):
        """task_vars: the host's variables, for the request context and the command limits (runner_context); the
        defaults (no AD credentials, WinRM 2.0's envelope) without them."""
        self._action = action
        self.host = host
        self.context = runner_context.context(action, task_vars) if task_vars is not None else psrunner.Context()
        self.limits = runner_context.limits(action, task_vars) if task_vars is not None else psrunner.Limits()

    def run(self, ops: Sequence[Op]) -> list[OpResult]:
        """Run `ops`, in one command when they fit. HostLost when the transport failed or the output is cut off
        (the command may have run in part); AnsibleActionFail when a complete answer cannot be decoded."""
        try:
            return psrunner.run(runner_context.executor(self._action), ops, self.context, self.limits)
        except (AnsibleConnectionFailure, OSError, *_TRANSPORT_ERRORS) as exc:  # requests' ConnectionError is an OSError
            raise HostLost(str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__) from exc
        except psrunner.RunnerError as exc:
            res = exc.response
            # A cut-short answer (operations that never answered) is a lost host too: the rest may have run.
            if exc.silent or (res is not None and (res.get("rc") not in (0, None) or not res.get("stdout"))):
                raise HostLost(f"{exc} (rc={(res or {}).get('rc')})") from exc
            raise AnsibleActionFail(f"{self.host}: {exc}" + (f" (rc={res.get('rc')})" if res is not None else "")) from exc

    def read(self, facts: dict, items: Sequence[str], before: Sequence[Op] = ()) -> Reading:
        """A fresh read of knowledge `items`, after the operations in `before` (a service restart, say)."""
        _unused, results, after = self.read_around(facts, items, before, read_first=False)
        return Reading(after, results)

    def read_around(self, facts: dict, items: Sequence[str], ops: Sequence[Op], read_first: bool = True):
        """One command: [a read of `items`,] `ops`, a read of `items` again.
        (view before or None, the results of `ops`, view after)."""
        plan = self.plan(facts, items)
        reads = [op for _unused, op in plan]
        first = reads if read_first else []
        results = self.run(first + list(ops) + reads)
        n, m = len(first), len(first) + len(ops)
        return (self.view(plan, results[:n]) if read_first else None), results[n:m], self.view(plan, results[m:])

    def plan(self, facts: dict, items: Sequence[str]) -> list[tuple[str, Op]]:
        subset = {"collect": {k: facts["collect"][k] for k in items}, "probe": facts["probe"]}
        return snapshot.build_plan(subset, [], helo=self.host, domain=self.host)

    def view(self, plan: list[tuple[str, Op]], results: list[OpResult]) -> HostView:
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return HostView(snapshot.assemble(self.host, plan, results, collected_at=now, duration_ms=0,
                                          transport={"ad_bind": runner_context.ad_bind(self.context)}))
