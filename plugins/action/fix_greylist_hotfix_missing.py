# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Install the greylisting hotfix from a given package, or advise (see plugins/modules/fix_greylist_hotfix_missing.py)."""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.plugin_utils.fix_action import FixAction


class ActionModule(FixAction):
    CAUSE = "greylist_hotfix_missing"
    ARGS = dict(package=dict(type="str", default=""))
