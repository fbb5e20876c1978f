# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decide every cause for every host from saved snapshots and write the fleet reports (see plugins/modules/audit_fleet.py)."""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.mailflow.exchange.plugins.module_utils import (
    audit, backups, causes, firewalls, knowledge, probe_plan, reports, snapshot, summary)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True  # it writes reports on the controller and never touches a host

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=dict(
            hosts=dict(type="list", elements="str", required=True),
            unmanaged=dict(type="list", elements="str", default=[]),
            snapshot_dir=dict(type="path", required=True),
            report_dir=dict(type="path", required=True),
            fail_on=dict(type="str", default="never", choices=list(audit.FAIL_ON)),
            knowledge=dict(type="dict", default={}),
            offline=dict(type="bool", default=False),
            backup_dir=dict(type="path", default="backups"),
            limit=dict(type="list", elements="str"),
            firewalls=dict(type="list", elements="str", default=[]),
            firewall_dir=dict(type="path"),
        ))
        hostvars = task_vars.get("hostvars", {})
        try:
            facts = knowledge.load(args["knowledge"])
        except knowledge.KnowledgeError as exc:
            raise AnsibleActionFail(f"mailflow_knowledge: {exc}")
        if args["offline"] and not os.path.isdir(args["snapshot_dir"]):
            raise AnsibleActionFail(f"mailflow_snapshot_dir: {args['snapshot_dir']} is not a folder of saved snapshots")

        hosts = [self._host(name, True, args, hostvars) for name in args["hosts"]]
        hosts += [self._host(name, False, args, hostvars) for name in args["unmanaged"] if name not in args["hosts"]]
        try:
            fleet = audit.fleet_from(hosts, facts, self._firewalls(args), self._probe_plan(args))
            generated = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            pending = backups.fleet_pending_restarts(args["backup_dir"], args["hosts"], list(causes.FIXABLE))
            unfinished = backups.fleet_unfinished(args["backup_dir"], args["hosts"], list(causes.FIXABLE))
            doc = audit.run(fleet, generated=generated, check_mode=bool(self._task.check_mode), pending_restart=pending,
                            unfinished=unfinished)
            failing = audit.should_fail(doc, args["fail_on"])
        except audit.AuditError as exc:
            raise AnsibleActionFail(str(exc))

        paths = reports.write_all(doc, args["report_dir"])
        self._point_latest(args["report_dir"])
        result.update(changed=False, report_dir=args["report_dir"], reports=paths, summary=doc["summary"],
                      table=summary.audit_table(doc), network_fixes=audit.firewalls_to_fix(doc),
                      resume=audit.to_resume(doc), probed_by=audit.probed_by(doc, args["hosts"]),
                      probes_from=audit.probes_from(doc))
        if failing:
            result.update(failed=True, msg=f"mailflow_fail_on={args['fail_on']}: {len(failing)} finding(s): " + "; ".join(failing[:10]))
        return result

    @staticmethod
    def _host(name, managed, args, hostvars):
        hv = hostvars.get(name, {})
        entry = {"name": name, "managed": managed, "fqdn": hv.get("mailflow_fqdn"), "address": hv.get("ansible_host"),
                 "declared": audit.declared(hv),
                 "snapshot": None, "error": None}
        if not managed:
            entry["error"] = "unmanaged (mailflow_unmanaged): probed by its peers, never logged into"
            return entry
        if args["limit"] is not None and name not in args["limit"] and not args["offline"]:
            # Still in the fleet: the servers in the run probe it, and their causes may depend on it.
            entry["error"] = f"{summary.OUTSIDE_LIMIT}: no snapshot taken"
            return entry
        registered = hv.get("mailflow_snapshot") or {}
        path = os.path.join(args["snapshot_dir"], f"{name}.json")
        if not args["offline"] and (registered.get("failed") or registered.get("unreachable")):
            entry["error"] = str(registered.get("msg") or "snapshot failed")
        elif os.path.exists(path):
            entry["snapshot"] = snapshot.load(path)
            if entry["snapshot"] is None:
                # A snapshot that is there but cannot be read is a broken collection, not a host without one.
                raise AnsibleActionFail(f"{name}: cannot read its snapshot {path}: not readable JSON holding an object")
        else:
            entry["error"] = f"no saved snapshot ({path})" if args["offline"] else "no snapshot was taken"
        return entry

    @staticmethod
    def _probe_plan(args):
        """The run's probe plan, saved beside its snapshots by mailflow.exchange.probe_plan (probe_plan.json, or
        one probe_plan-<slice>.json per job slice of a collection, merged); None when there is none (snapshots
        from before plans were recorded)."""
        folder = os.path.dirname(os.path.abspath(args["snapshot_dir"]))
        names = sorted(n for n in os.listdir(folder) if n == "probe_plan.json"
                       or (n.startswith("probe_plan-") and n.endswith(".json"))) if os.path.isdir(folder) else []
        plans = []
        for name in names:
            try:
                with open(os.path.join(folder, name), encoding="utf-8") as fh:
                    plans.append(json.load(fh))
            except (OSError, ValueError) as exc:
                raise AnsibleActionFail(f"cannot read the probe plan {os.path.join(folder, name)}: {exc}")
        return probe_plan.merge_plans(plans)

    @staticmethod
    def _firewalls(args):
        """Each firewall's facts as firewall_configs saved them; one never read is there, saying so."""
        out = []
        for name in args["firewalls"]:
            path = os.path.join(args["firewall_dir"] or "", f"{name}.json")
            if not args["firewall_dir"] or not os.path.exists(path):
                out.append(firewalls.failed_facts(name, f"no firewall facts ({path})", "file"))
                continue
            try:
                with open(path, encoding="utf-8") as fh:
                    out.append(json.load(fh))
            except (OSError, ValueError) as exc:
                raise AnsibleActionFail(f"{name}: cannot read its firewall facts {path}: {exc}")
        return out

    @staticmethod
    def _point_latest(report_dir):
        """reports/latest -> the newest run's folder (a relative symlink, replaced atomically)."""
        parent, stamp = os.path.split(os.path.abspath(report_dir))
        link = os.path.join(parent, "latest")
        tmp = link + ".tmp"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(stamp, tmp)
        os.replace(tmp, link)
