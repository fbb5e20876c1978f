# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/rollback.py on the controller
# (PowerShell 2.0 hosts cannot run Ansible's module wrapper). playbooks/rollback.yml is how it is meant to be run.

DOCUMENTATION = r"""
module: rollback
short_description: Roll a mailflow change back from its backups, only where the host still holds the change's values
version_added: 0.1.0
description:
  - Reads the backups the fixes wrote under C(<backup_dir>/<change_id>/<host>/<cause>.json) and, per value they
    changed, reads the host's current value (one WinRM command for all) and decides
    C(restore) (it is still the value the change set), C(already) (it is the value from before the change),
    C(changed_since) (someone changed it after the fix; reported, never overwritten) or C(not_reversible)
    (a service restart or an installed package; reported). A value that cannot be read is not touched and fails the task.
  - Restores in one command, last change first, then verifies with a fresh read that each restored value is back.
    Each backup is then marked C(rolled_back) with what was restored and what was left (C(restore_failed) when a value
    did not come back, so a re-run tries again); the change record (C(<record_root>/changes/<change_id>/record.json))
    gets a C(rollback) event per cause.
  - Backups never applied (C(planned)), already restored by the fix, already rolled back, or superseded are left
    alone and nothing is read for them, so a second rollback contacts no host and changes nothing.
  - Services a restored value needs restarted are restarted only with O(allow_service_restart); a service whose own
    state or start mode was restored is not restarted.
  - In check mode it reads and reports what it would restore, and writes nothing (no backup update, no record).
options:
  stage:
    description:
      - C(check) (run once on the controller before any host) validates O(change_id) and returns the hosts of O(hosts)
        that have backups of the change; C(host) rolls back the current host; C(summary) (once, on the controller)
        tabulates what the hosts' registered C(mailflow_rollback) results say and records the run's end.
    type: str
    choices: [check, host, summary]
    default: host
  change_id:
    description: The change to roll back (the variable C(mailflow_change_id)); it names the backup folder.
    type: str
    required: true
  change_id_pattern:
    description: A regular expression the change id must match (C(mailflow_change_id_pattern)); checked by O(stage=check).
    type: str
    default: '^CHG\d+$'
  backup_dir:
    description: Controller folder of the backups.
    type: path
    default: backups
  lock_wait:
    description: Seconds to wait when another run holds this host (C(<backup_dir>/.locks/<host>.json)) before refusing, naming it.
    type: int
    default: 0
  record_root:
    description: Controller folder of the reports; the change record is C(changes/<change_id>/) under it.
    type: path
    default: reports
  allow_service_restart:
    description: Restart the services the restored values need restarted (queued mail is kept by a restart).
    type: bool
    default: false
  knowledge:
    description: Overrides merged over the knowledge file (where MetaBase.xml and the firewall policy are read).
    type: dict
    default: {}
  hosts:
    description: For C(check) and C(summary), the play's hosts.
    type: list
    elements: str
    default: []
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
  - module: mailflow.exchange.change_record
  - module: mailflow.exchange.fix_cisco_smtp_inspection
author:
  - mailflow contributors (@mailflow)
"""

EXAMPLES = r"""
- name: Roll back CHG0042 on this host
  mailflow.exchange.rollback:
    change_id: CHG0042
    allow_service_restart: true
"""

RETURN = r"""
causes:
  description:
    - Per cause, its backup and state, and either C(skipped) (why nothing was needed) or the lists C(restored),
      C(already), C(changed_since), C(not_reversible) and C(unread), one description per value.
  type: dict
  returned: stage host
restored:
  description: How many values were restored (in check mode, would be).
  type: int
  returned: stage host
  sample: 2
changed_since:
  description: How many values were left because someone changed them after the fix.
  type: int
  returned: stage host
  sample: 0
verified:
  description: A fresh read after the restore found every restored value back as before the change.
  type: bool
  returned: stage host, when something was restored
  sample: true
pending_restart:
  description: Services that must restart for the restored values to take effect (restart not allowed).
  type: list
  elements: str
  returned: when a restart is needed and not allowed
  sample:
    - SMTPSVC
restarted:
  description: Services restarted after the restore.
  type: list
  elements: str
  returned: when restarted
  sample:
    - SMTPSVC
hosts:
  description: The hosts of O(hosts) with backups of the change.
  type: list
  elements: str
  returned: stage check
  sample:
    - EXCH05
    - EXCH06
table:
  description: One line per host and cause, with what was left as changed since.
  type: list
  elements: str
  returned: stage summary
"""
