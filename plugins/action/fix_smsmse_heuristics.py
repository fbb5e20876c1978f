# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn SMSMSE heuristics (Bloodhound) scanning off (see plugins/modules/fix_smsmse_heuristics.py)."""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.plugin_utils.fix_action import FixAction


class ActionModule(FixAction):
    CAUSE = "smsmse_heuristics"
    # Where the switch lives is knowledge (collect.smsmse_settings, detect.smsmse_heuristics_value), so the
    # fix reads and writes where the audit reads; the role turns its variables into those overrides.
    ARGS: dict = {}
