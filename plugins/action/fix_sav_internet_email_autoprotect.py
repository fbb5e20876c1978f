# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Remove SAV's Internet E-mail Auto-Protect feature (see plugins/modules/fix_sav_internet_email_autoprotect.py)."""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.plugin_utils.fix_action import FixAction


class ActionModule(FixAction):
    CAUSE = "sav_internet_email_autoprotect"
    ARGS = dict(allow_reboot=dict(type="bool", default=False))
