# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Set an empty ConnectResponse to a banner (see plugins/modules/fix_smtp_banner_missing.py)."""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.plugin_utils.fix_action import FixAction


class ActionModule(FixAction):
    CAUSE = "smtp_banner_missing"
    ARGS = dict(banner=dict(type="str", required=True))
