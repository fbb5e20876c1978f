# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn the fix roles' registered results into change-record events (playbooks/remediate.yml).

    {{ hostvars[inventory_hostname] | mailflow.exchange.fix_results(mailflow_fix_todo) }}   -> mailflow_fix_results
    {{ mailflow_fix_results | mailflow.exchange.plan_event(inventory_hostname) }}
    {{ mailflow_fix_results | mailflow.exchange.fix_events(inventory_hostname) }}
    {{ mailflow_fix_results | mailflow.exchange.restarts_needed }}

mailflow_fix_results is {cause: the result its role registered (findings.fix_register)}; a role that did not run
for the host (its `when` was false) registered a skipped result and is left out.
"""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.module_utils.findings import fix_register
from ansible_collections.mailflow.exchange.plugins.module_utils.reports.fixrun import status_of


def fix_results(host_vars, causes: list[str]) -> dict:
    """{cause: its registered result} from one host's variables, for the causes given (absent ones left out)."""
    out = {}
    for c in causes or []:
        try:
            value = host_vars[fix_register(c)]
        except KeyError:
            continue
        if isinstance(value, dict):
            out[c] = dict(value)
    return out


def _ran(results: dict) -> dict:
    return {c: r for c, r in (results or {}).items()
            if isinstance(r, dict) and not (r.get("skipped") and r.get("false_condition") is not None)}


def plan_event(results: dict, host: str) -> dict:
    ran = _ran(results)
    return {"type": "plan", "host": host, "causes": sorted(c for c, r in ran.items() if r.get("changes")),
            "changes": [f"{c}: {x}" for c, r in ran.items() for x in r.get("changes") or []],
            "restart": sorted({s for r in ran.values() for s in r.get("restart_needed") or []}),
            "reboot": any(r.get("reboot_possible") for r in ran.values()),
            "advice": [f"{c}: {a}" for c, r in ran.items() for a in r.get("advice") or []]}


def fix_events(results: dict, host: str) -> list[dict]:
    return [{"type": "fix", "host": host, "cause": c, "status": status_of(r), "changes": r.get("changes") or [],
             "backup": r.get("backup"), "verified": bool(r.get("verified")), "msg": r.get("msg")}
            for c, r in _ran(results).items()]


def restarts_needed(results: dict) -> list[str]:
    return sorted({s for r in _ran(results).values() for s in r.get("pending_restart") or []})


def changed_causes(results: dict) -> list[str]:
    return sorted(c for c, r in _ran(results).items() if r.get("changed"))


class FilterModule:
    def filters(self):
        return {"fix_results": fix_results, "plan_event": plan_event, "fix_events": fix_events, "restarts_needed": restarts_needed,
                "changed_causes": changed_causes}
