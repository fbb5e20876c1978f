# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore MetaBase.xml from its newest usable History pair (see plugins/modules/fix_metabase_corrupt.py)."""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.module_utils import snapshot
from ansible_collections.mailflow.exchange.plugins.module_utils.causes import metabase_corrupt
from ansible_collections.mailflow.exchange.plugins.module_utils.hostview import HostView
from ansible_collections.mailflow.exchange.plugins.plugin_utils.fix_action import FixAction


class ActionModule(FixAction):
    CAUSE = "metabase_corrupt"
    ARGS = dict(allow_restore=dict(type="bool", default=False))

    def _read(self, host, facts, items, *args, **kwargs):
        """FixAction's read, then, while MetaBase.xml is damaged, a second command reading the History pairs the
        first one listed (their names are not known before it): the plan needs their text to pick one.
        Whatever else FixAction._read returns alongside the view is passed through."""
        got = super()._read(host, facts, items, *args, **kwargs)
        view = got if isinstance(got, HostView) else got[0]
        reads = metabase_corrupt.history_reads(view, facts)
        if reads:
            results = self._run_ops(host, [op for _, op in reads])
            texts = snapshot.assemble(host, reads, results, collected_at="", duration_ms=0, transport={})
            view.items[metabase_corrupt.HISTORY_TEXTS] = texts["items"]
        return got
