# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn the firewalls' running configs into the facts the audit reads (see plugins/modules/firewall_configs.py)."""
from __future__ import annotations

import json
import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.mailflow.exchange.plugins.module_utils import ciscoconf, firewalls

# Saved-config names network teams use (RANCID writes <host>, oxidized <host>, TFTP backups <host>-confg).
CONFIG_NAMES = ("{}.cfg", "{}.conf", "{}.txt", "{}-confg", "{}")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True  # reads configs, writes facts on the controller

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=dict(
            firewalls=dict(type="list", elements="str", required=True),
            reads=dict(type="list", elements="raw", default=[]),
            save_dir=dict(type="path"),
            check_only=dict(type="bool", default=False),
        ))
        hostvars = task_vars.get("hostvars", {})
        reads = {r.get("item"): r for r in args["reads"] if isinstance(r, dict)}
        # Every firewall's variables are checked before any is read.
        plans = [self._plan(name, hostvars.get(name, {})) for name in args["firewalls"]]
        if args["check_only"]:
            # The ones to read with cisco.ios: the source is decided here, not again in the playbook.
            return result | {"changed": False, "from_device": [p[0] for p in plans if p[1] == "device"],
                             "msg": f"{len(plans)} firewall(s): variables checked"}
        if not args["save_dir"]:
            raise AnsibleActionFail("save_dir is required unless check_only")
        os.makedirs(args["save_dir"], exist_ok=True)
        facts, problems = [], []
        for name, source, platform, segments, path in plans:
            try:
                text, error = self._config(name, source, path, reads.get(name))
                doc = (firewalls.failed_facts(name, error, source, segments) if error else
                       firewalls.facts_from_config(name, text, source=source, platform=platform, segments=segments))
            except ciscoconf.ConfigError as exc:
                doc = firewalls.failed_facts(name, f"cannot read its config: {exc}", source, segments)
            unknown = firewalls.Firewall(doc).unknown_segments() if not doc["error"] else []
            if unknown:
                problems.append(f"{name}: mailflow_firewall_segments names {', '.join(unknown)}, which its config has "
                                f"no interface or nameif for (it has {', '.join(doc['interfaces']) or 'none'})")
            with open(os.path.join(args["save_dir"], f"{name}.json"), "w", encoding="utf-8") as fh:
                json.dump(doc, fh, indent=1)
            facts.append(doc)
        # Failing here would hide the message: the task is no_log (its arguments are the configs).
        # The caller fails on `problems` in a task of its own.
        result.update(changed=False, problems=problems, firewalls=[{k: d.get(k) for k in ("name", "platform", "source", "error")}
                                                                   | {"smtp_inspections": [i["line"] for i in d["inspections"]]}
                                                                   for d in facts])
        return result

    @staticmethod
    def _plan(name, hv):
        source = hv.get("mailflow_firewall_config_source", "device")
        if source not in firewalls.SOURCES:
            raise AnsibleActionFail(f"{name}: mailflow_firewall_config_source must be one of {', '.join(firewalls.SOURCES)}, got {source!r}")
        platform = hv.get("mailflow_firewall_platform")
        if platform is not None and platform not in ciscoconf.PLATFORMS:
            raise AnsibleActionFail(f"{name}: mailflow_firewall_platform must be one of {', '.join(ciscoconf.PLATFORMS)}, got {platform!r}")
        if source == "device" and platform not in (None, "ios"):
            # cisco.ios reads IOS only (cisco.asa left the Ansible 12 bundle; PIX has no collection).
            raise AnsibleActionFail(f"{name}: a {platform} config is read from a saved file: set mailflow_firewall_config_source: file")
        try:
            segments = firewalls.check_segments(name, hv.get("mailflow_firewall_segments"))
        except ValueError as exc:
            raise AnsibleActionFail(str(exc))
        path = None
        if source == "file":
            folder = hv.get("mailflow_firewall_config_dir")
            if not folder or not os.path.isdir(folder):
                raise AnsibleActionFail(f"{name}: mailflow_firewall_config_dir must be a folder of saved configs, got {folder!r}")
            path = next((os.path.join(folder, pat.format(name)) for pat in CONFIG_NAMES
                         if os.path.isfile(os.path.join(folder, pat.format(name)))), None)
        return name, source, platform, segments, path

    @staticmethod
    def _config(name, source, path, read):
        """(config text, None) or (None, why there is none)."""
        if source == "file":
            if path is None:
                return None, f"no saved config for {name} ({' / '.join(pat.format(name) for pat in CONFIG_NAMES)})"
            with open(path, encoding="utf-8", errors="replace") as fh:
                return fh.read(), None
        if read is None or read.get("skipped"):
            return None, "its running config was not read in this run"
        if read.get("unreachable") or read.get("failed"):
            return None, f"show running-config failed: {read.get('msg') or 'unreachable'}"
        stdout = read.get("stdout") or []
        return (stdout[0], None) if stdout and stdout[0].strip() else (None, "show running-config returned nothing")
