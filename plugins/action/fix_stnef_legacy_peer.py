# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Set the entries that force TNEF toward legacy peers, as the user names them (see plugins/modules/fix_stnef_legacy_peer.py)."""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.module_utils import knowledge
from ansible_collections.mailflow.exchange.plugins.module_utils.causes import stnef_legacy_peer as cause
from ansible_collections.mailflow.exchange.plugins.plugin_utils.fix_action import FixAction


class ActionModule(FixAction):
    CAUSE = "stnef_legacy_peer"
    ARGS = dict(setting=dict(type="raw"))

    def run(self, tmp=None, task_vars=None):
        # KB 254089's entries are unconfirmed, so where they live is the user's to say (mailflow_stnef_setting).
        # They become the knowledge the audit reads, under the user's own overrides (mailflow_knowledge wins,
        # as everywhere), so the fix decides with the detector's reading of them.
        overrides = cause.setting_knowledge(self._task.args.get("setting"))
        if overrides:
            user = self._task.args.get("knowledge") or {}
            self._task.args = dict(self._task.args, knowledge=knowledge.merge(overrides, user) if isinstance(user, dict) else user)
        return super().run(tmp, task_vars)

    def _read(self, host, facts, items, *args, **kwargs):
        # The setting's own collect items are read with the rest, in the same one command.
        extra = [i for i in cause.setting_items(facts) if i not in items]
        return super()._read(host, facts, list(items) + extra, *args, **kwargs)
