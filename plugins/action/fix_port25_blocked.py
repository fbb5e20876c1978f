# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Open TCP 25 in the host's Windows Firewall, or report the network block (see plugins/modules/fix_port25_blocked.py)."""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.plugin_utils.fix_action import FixAction


class ActionModule(FixAction):
    CAUSE = "port25_blocked"
    ARGS = dict(scope=dict(type="str", default="*"))
