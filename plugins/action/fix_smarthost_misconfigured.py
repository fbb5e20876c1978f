# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Set the SMTP virtual servers' smart host (see plugins/modules/fix_smarthost_misconfigured.py)."""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.plugin_utils.fix_action import FixAction


class ActionModule(FixAction):
    CAUSE = "smarthost_misconfigured"
    ARGS = dict(smarthost=dict(type="str", required=True))
