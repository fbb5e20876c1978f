# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Gather one host's snapshot in one WinRM command (see plugins/modules/snapshot.py)."""
from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.mailflow.exchange.plugins.module_utils import knowledge, psrunner, snapshot
from ansible_collections.mailflow.exchange.plugins.plugin_utils import runner_context

# Ansible's main process imports this plugin before it forks one worker per host: the knowledge file parsed here
# is parsed once for the run, not once per host (issue 16's profile: the parse was a third of the action's CPU).
knowledge.warm()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True
    _supports_check_mode = True  # read-only: check mode changes nothing it does

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=dict(
            peers=dict(type="list", elements="raw", default=[]),
            fqdn=dict(type="str"),
            knowledge=dict(type="dict", default={}),
            dest=dict(type="path"),
            probe_only=dict(type="bool", default=False),
            org_reads=dict(type="bool"),
        ))
        # Delegated (fresh probes of a changed host, run from each peer), the snapshot is the delegate's.
        host = self._task.delegate_to or task_vars.get("inventory_hostname", "")
        own = task_vars if host == task_vars.get("inventory_hostname") else (task_vars.get("hostvars") or {}).get(host, {})
        # The inventory's names for the host serve the probes (HELO, the sender's domain) only; who the host is,
        # the snapshot learns from the host itself (snapshot.identity). A name that is an address leaves HELO and
        # domain to the host, which fills in its own.
        fqdn = args["fqdn"] or own.get("mailflow_fqdn") or host
        named = not snapshot.is_address(fqdn) and "." in fqdn
        helo, domain = (fqdn, fqdn.split(".", 1)[1]) if named else ("", "")
        try:
            facts = knowledge.load(args["knowledge"] or task_vars.get("mailflow_knowledge"))
            if args["probe_only"]:  # fresh probes of changed peers after a change: nothing else is read
                facts = dict(facts, collect={})
            peers = [self._peer(p, task_vars) for p in args["peers"]]
            peers = [p for p in peers if p["name"] != host]  # a host does not probe itself
            plan = snapshot.build_plan(facts, peers, helo=helo, domain=domain,
                                       org_reads=self._org_reader(host, args["org_reads"], task_vars))
        except (knowledge.KnowledgeError, snapshot.PlanError, ValueError, KeyError) as exc:
            raise AnsibleActionFail(f"{host}: cannot build the snapshot request: {exc}")
        ctx, limits = runner_context.context(self, task_vars), runner_context.limits(self, task_vars)

        ops = [op for _unused, op in plan]
        commands = psrunner.batches(ops, ctx, limits)
        started, t0 = datetime.now(timezone.utc), time.monotonic()
        try:
            results = psrunner.run(runner_context.executor(self), ops, ctx, limits)
        except psrunner.RunnerError as exc:
            res = exc.response or {}
            stderr = (res.get("stderr") or "").strip()
            unanswered = [item for item, op in plan if any(op is gone for gone in exc.silent)]
            named = f"; no answer for {', '.join(unanswered[:12])}{' ...' if len(unanswered) > 12 else ''}" if unanswered else ""
            raise AnsibleActionFail(f"{host}: {exc}{named}" + (f" (rc={res.get('rc')}, stderr: {stderr[:500]})" if stderr else ""))
        duration = int((time.monotonic() - t0) * 1000)

        snap = snapshot.assemble(
            host, plan, results,
            collected_at=started.strftime("%Y-%m-%dT%H:%M:%SZ"), duration_ms=duration,
            transport={"command_line_length": len(psrunner.command_line()), "commands": len(commands),
                       "stdin_bytes": max(len(psrunner.stdin_payload(c, ctx)) for c in commands),
                       "operations": len(ops), "ad_bind": runner_context.ad_bind(ctx)},
            fqdn=task_vars.get("mailflow_fqdn") or args["fqdn"],
        )
        result.update(changed=False)
        if args["dest"]:
            # Written, it is not also registered: every host's whole snapshot in hostvars is what the controller's
            # one main process then carries through result handling, host by host (issue 16's profile).
            self._write(args["dest"], snap)
            result.update(dest=args["dest"], platform=snap["platform"], errors=sorted(snap["errors"]),
                          probes=len(snap["probes"]), transport=snap["transport"])
        else:
            result["snapshot"] = snap
        return result

    def _org_reader(self, host, asked, task_vars) -> bool:
        """Whether this host also reads what is the same from every host (knowledge items with scope: org): the
        first mailflow_ad_org_readers (3) hosts of the play by name do, so each run (and each job slice) has a few
        and the fleet's snapshots do not each carry the whole organisation."""
        if asked is not None:
            return asked
        raw = runner_context.host_var(self, task_vars, "mailflow_ad_org_readers", 3)
        try:
            readers = int(raw)
            if isinstance(raw, bool) or readers < 1:
                raise ValueError
        except (TypeError, ValueError):
            raise AnsibleActionFail(f"{host}: mailflow_ad_org_readers must be a whole number of at least 1, got {raw!r}") from None
        play = sorted(task_vars.get("ansible_play_hosts_all") or [host])
        return host in play[:readers] or host not in play

    @staticmethod
    def _peer(peer, task_vars):
        if isinstance(peer, str):
            # An inventory name probes the FQDN the inventory gives it; anything else is taken as an address.
            hv = task_vars.get("hostvars", {}).get(peer) if peer in task_vars.get("hostvars", {}) else None
            target = (hv.get("mailflow_fqdn") or hv.get("ansible_host") or peer) if hv is not None else peer
            return {"name": peer, "target": target}
        if isinstance(peer, dict) and peer.get("name"):
            return peer
        raise ValueError(f"peers: each item is a name or a dict with 'name' (and 'target'), got {peer!r}")

    @staticmethod
    def _write(dest, snap):
        # Written on the controller: snapshots are what offline audits read.
        os.makedirs(os.path.dirname(os.path.abspath(dest)) or ".", exist_ok=True)
        tmp = dest + ".tmp"
        # One line, no indent: json's C encoder writes that in an eighth of the time of the indented form, which
        # json.dump() writes in pure Python (`python -m json.tool` shows it indented).
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(snap, sort_keys=True, separators=(",", ":")))
        os.replace(tmp, dest)
