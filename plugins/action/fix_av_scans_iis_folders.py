# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn SAV folder exclusions on and add the IIS/SMTP/Exchange folders (see plugins/modules/fix_av_scans_iis_folders.py)."""
from __future__ import annotations

from ansible_collections.mailflow.exchange.plugins.plugin_utils.fix_action import FixAction


class ActionModule(FixAction):
    CAUSE = "av_scans_iis_folders"
    # How an exclusion is written is knowledge (detect.sav_exclusion_entry); the role turns its variable into that.
    ARGS = dict(extra_folders=dict(type="list", elements="str", default=[]))
