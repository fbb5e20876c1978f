# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every fix module (plugins/modules/fix_<cause>.py) shares: its common options and attributes.

A module's own entry for one of these options is merged over this one, key by key (ansible-doc's fragment merge),
so a module that restarts something particular says so in its own O(allow_service_restart) description and keeps
the type and default given here.
"""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  allow_service_restart:
    description:
      - Permission to restart the services this fix's change needs restarted to take effect. Without it no service is
        restarted and the result names the restart as pending. The module says what it restarts, if anything.
    type: bool
    default: false
  change_id:
    description: The change this run belongs to; names the backup folder. Defaults to a UTC timestamp.
    type: str
  backup_dir:
    description: Controller folder for backups.
    type: path
    default: backups
  knowledge:
    description: Overrides merged over the knowledge file.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: windows
"""
