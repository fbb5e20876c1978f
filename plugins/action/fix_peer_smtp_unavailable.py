# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Set the SMTP service to Automatic and start it (see plugins/modules/fix_peer_smtp_unavailable.py)."""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.plugin_utils.fix_action import FixAction


class ActionModule(FixAction):
    CAUSE = "peer_smtp_unavailable"
    ARGS = dict(allow_enable_disabled=dict(type="bool", default=False))
