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


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True
    _supports_check_mode = True  # read-only: check mode changes nothing it does

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=dict(
            peers=dict(type="list", elements="raw", default=[]),
            computer_name=dict(type="str"),
            fqdn=dict(type="str"),
            knowledge=dict(type="dict", default={}),
            dest=dict(type="path"),
            probe_only=dict(type="bool", default=False),
        ))
        # Delegated (fresh probes of a changed host, run from each peer), the snapshot is the delegate's.
        host = self._task.delegate_to or task_vars.get("inventory_hostname", "")
        own = task_vars if host == task_vars.get("inventory_hostname") else (task_vars.get("hostvars") or {}).get(host, {})
        fqdn = args["fqdn"] or own.get("mailflow_fqdn") or host
        computer = args["computer_name"] or fqdn.split(".")[0].upper()
        domain = fqdn.split(".", 1)[1] if "." in fqdn else fqdn
        try:
            facts = knowledge.load(args["knowledge"] or task_vars.get("mailflow_knowledge"))
            if args["probe_only"]:  # fresh probes of changed peers after a change: nothing else is read
                facts = dict(facts, collect={})
            peers = [self._peer(p, task_vars) for p in args["peers"]]
            peers = [p for p in peers if p["name"] != host]  # a host does not probe itself
            plan = snapshot.build_plan(facts, peers, helo=fqdn, domain=domain)
        except (knowledge.KnowledgeError, snapshot.PlanError, ValueError, KeyError) as exc:
            raise AnsibleActionFail(f"{host}: cannot build the snapshot request: {exc}")

        ops = [op for _, op in plan]
        cmd, stdin = psrunner.command_line(), psrunner.stdin_payload(ops)
        started, t0 = datetime.now(timezone.utc), time.monotonic()
        res = self._low_level_execute_command(cmd, in_data=stdin, sudoable=False)
        duration = int((time.monotonic() - t0) * 1000)
        try:
            results = psrunner.decode_output(res.get("stdout", ""), ops)
        except psrunner.RunnerError as exc:
            stderr = (res.get("stderr") or "").strip()
            raise AnsibleActionFail(f"{host}: {exc}" + (f" (rc={res.get('rc')}, stderr: {stderr[:500]})" if stderr else ""))

        snap = snapshot.assemble(
            host, computer, plan, results,
            collected_at=started.strftime("%Y-%m-%dT%H:%M:%SZ"), duration_ms=duration,
            transport={"command_line_length": len(cmd), "stdin_bytes": len(stdin), "operations": len(ops)},
        )
        result.update(changed=False, snapshot=snap)
        if args["dest"]:
            self._write(args["dest"], snap)
            result["dest"] = args["dest"]
        return result

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
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(snap, fh, indent=1, sort_keys=True)
        os.replace(tmp, dest)
