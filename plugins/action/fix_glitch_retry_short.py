# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Set SMTPSVC\\Queuing\\GlitchRetrySeconds (see plugins/modules/fix_glitch_retry_short.py)."""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.plugin_utils.fix_action import FixAction


class ActionModule(FixAction):
    CAUSE = "glitch_retry_short"
    ARGS = dict(seconds=dict(type="int", required=True))
