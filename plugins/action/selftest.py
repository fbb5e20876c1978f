# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Try every operation the audit and the fixes read with on one host (see plugins/modules/selftest.py)."""
from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.mailflow.exchange.plugins.module_utils import knowledge, psrunner, selftest
from ansible_collections.mailflow.exchange.plugins.plugin_utils import runner_context


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True
    _supports_check_mode = True  # read-only

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=dict(
            knowledge=dict(type="dict", default={}),
            target=dict(type="str"),
        ))
        host = task_vars.get("inventory_hostname", "")
        try:
            facts = knowledge.load(args["knowledge"] or task_vars.get("mailflow_knowledge"))
        except knowledge.KnowledgeError as exc:
            raise AnsibleActionFail(f"{host}: mailflow_knowledge: {exc}")
        ctx, limits = runner_context.context(self, task_vars), runner_context.limits(self, task_vars)
        target = args["target"] or task_vars.get("mailflow_fqdn") or task_vars.get("ansible_host") or host
        checks = selftest.plan(facts, str(target))
        full = selftest.padded(checks, ctx, limits)
        execute = runner_context.executor(self)
        stdin = psrunner.stdin_payload([op for _, op in full], ctx)
        transport = {"stdin_bytes": len(stdin), "max_envelope_kb": limits.max_envelope_kb, "commands": 1}
        # One command, as large as the runner ever sends. Only when nothing at all came back is a second, small one
        # tried, so the matrix can tell a refused size from a host that runs nothing.
        try:
            res = execute(psrunner.command_line(), stdin)
            rows = self._rows(full, res, transport, ctx)
        except psrunner.RunnerError as exc:
            res = exc.response or {}
            if res.get("stdout"):
                rows = selftest.not_reached(f"{exc} (rc={res.get('rc')})", _todo(exc))
            else:
                transport.update(commands=2, refused_full_size=str(exc))
                try:
                    small = execute(psrunner.command_line(), psrunner.stdin_payload([op for _, op in checks], ctx))
                    rows = self._rows(checks, small, transport, ctx)
                except psrunner.RunnerError as exc2:
                    small = exc2.response or {}
                    rows = selftest.not_reached(f"{exc2} (rc={small.get('rc')}; stderr: {(small.get('stderr') or '')[:300]})",
                                                _todo(exc2))
        status = selftest.host_status(rows)
        result.update(changed=False, rows=rows, status=status, transport=transport)
        failed = [f"{r['check']}: {r['detail'] or r['status']}" for r in rows if r["status"] == selftest.FAILED and r["needed_by"] == selftest.AUDIT]
        if failed:
            result.update(failed=True, msg=f"{host}: the audit cannot work here yet: " + "; ".join(failed))
        return result

    @staticmethod
    def _rows(checks, response, transport, ctx):
        try:
            results = psrunner.decode_output(response.get("stdout", ""), [op for _, op in checks])
        except psrunner.RunnerError as exc:
            raise psrunner.RunnerError(str(exc), response) from None
        return selftest.assess(checks, results, transport, runner_context.ad_bind(ctx))


def _todo(exc: Exception) -> str:
    if "did not reach it on stdin" in str(exc):
        return "PowerShell 2.0 did not hand the request over as $input; see docs/runner.md"
    return "PowerShell 2.0 (KB968930) must run the script; see the message and docs/runner.md"
