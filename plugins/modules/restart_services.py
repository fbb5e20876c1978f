# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/restart_services.py.

DOCUMENTATION = r"""
module: restart_services
short_description: Restart services once for several fixes, counting queued mail before and after
version_added: 0.1.0
description:
  - Restarts each service in O(services) once, in one WinRM command that also counts the files in the Exchange and
    IIS queue folders before and after (stopping SMTP keeps queued mail on disk; the counts show it).
  - Clears the pending restarts the fix backups recorded for these services on this host.
  - playbooks/remediate.yml runs it once per host after the fixes, so three fixes that each need SMTPSVC restarted
    cost one restart.
options:
  services:
    description: Service names (deduplicated). Nothing happens when empty.
    type: list
    elements: str
    default: []
  backup_dir:
    description: Controller folder of the fix backups whose pending restarts this completes.
    type: path
    default: backups
  lock_wait:
    description: Seconds to wait when another run holds this host (C(<backup_dir>/.locks/<host>.json)) before refusing, naming it.
    type: int
    default: 0
  knowledge:
    description: Overrides merged over the knowledge file (where the queue folders are read).
    type: dict
    default: {}
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: windows
seealso:
  - module: mailflow.exchange.fix
  - module: mailflow.exchange.verify_causes
author:
  - mailflow contributors (@mailflow)
"""

EXAMPLES = r"""
- name: One restart for every fix that needs it
  mailflow.exchange.restart_services:
    services: [SMTPSVC]
"""

RETURN = r"""
restarted:
  description: The services restarted.
  type: list
  elements: str
  returned: when services were given and not in check mode
  sample:
    - SMTPSVC
queue_before:
  description: Files in the queue folders before the restart.
  type: int
  returned: when services were given and not in check mode
  sample: 412
queue_after:
  description: Files in the queue folders after the restart.
  type: int
  returned: when services were given and not in check mode
  sample: 0
"""
