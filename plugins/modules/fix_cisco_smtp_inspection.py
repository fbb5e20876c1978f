# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/fix_cisco_smtp_inspection.py on the controller.

DOCUMENTATION = r"""
module: fix_cisco_smtp_inspection
short_description: Decide the IOS lines that take SMTP inspection off CBAC rules, back up, verify, roll back
version_added: 0.2.0
description:
  - The controller half of the role M(mailflow.exchange.fix_cisco_smtp_inspection) (KB 919091 cause 5). The role reads
    and changes the device with C(cisco.ios.ios_command) and C(cisco.ios.ios_config); this module decides, in steps.
  - C(plan) parses the running config (O(config)) and returns the C(commands) to send
    (C(no ip inspect name <rule> smtp), then C(ip inspect name <rule> esmtp) with O(use_esmtp)) and the C(restore) lines
    that put the rule back exactly as it was. Outside check mode it first writes the backup
    C(<backup_dir>/<change id or UTC timestamp>/<firewall>/cisco_smtp_inspection.json) and the running config beside
    it (C(running-config.cfg), readable by its owner only).
  - C(sending) marks the backup C(applied) just before the lines are sent (from then on the device may hold them).
    C(verify) fails unless a fresh running config needs no more lines (and has C(esmtp) when asked), and marks the
    backup verified. C(restore_plan) gives the lines back to the original from what a fresh read shows after a
    failure; C(restored) and C(restore_failed) record how that went.
  - C(pending), C(rollback) and C(rolled_back) serve playbooks/rollback.yml - the backups of O(change_id) still to
    roll back, the lines that put back each rule that still holds what the change set (a rule changed since is
    reported and left alone), and marking them rolled back.
options:
  step:
    description: Which step.
    type: str
    required: true
    choices: [plan, sending, verify, restore_plan, restored, restore_failed, pending, rollback, rolled_back]
  config:
    description: The running config (C(show running-config)); for C(plan), C(verify), C(rollback).
    type: str
  startup_config:
    description:
      - The startup config (C(show startup-config)), for C(plan). When it differs from O(config), someone's changes are
        unsaved and the save after the change would make them permanent; the plan refuses unless O(save_unsaved_changes).
    type: str
  save_unsaved_changes:
    description: Plan (and so save) even when the running config holds unsaved changes.
    type: bool
    default: false
  rules:
    description: The inspect rules to change; by default every rule that inspects C(smtp) and is applied to an interface.
    type: list
    elements: str
  use_esmtp:
    description: Add C(ip inspect name <rule> esmtp) in place of C(smtp).
    type: bool
    default: false
  change_id:
    description: Names the backup folder; required for C(pending) and C(rollback).
    type: str
  backup_dir:
    description: Controller folder for backups.
    type: path
    default: backups
  backup:
    description: The backup C(plan) wrote, for C(verify) and C(restored).
    type: path
  backups:
    description: The backups C(rollback) used, for C(rolled_back).
    type: list
    elements: path
    default: []
  error:
    description: Why the change was restored, for C(restored).
    type: str
notes:
  - A rule named in O(rules) that the config does not define fails the plan, naming it, before anything is sent.
  - A config that is not IOS fails the plan; PIX and ASA are fixed by pasting the audit's lines.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
seealso:
  - module: mailflow.exchange.firewall_configs
  - module: mailflow.exchange.rollback
author:
  - mailflow contributors (@mailflow)
"""

EXAMPLES = r"""
- name: Plan, and back up before any line is sent
  mailflow.exchange.fix_cisco_smtp_inspection:
    step: plan
    config: "{{ running.stdout[0] }}"
    change_id: CHG0042
  register: plan
"""

RETURN = r"""
commands:
  description: The config-mode lines to send (plan), or to send to roll back (rollback).
  type: list
  elements: str
  returned: when step is plan or rollback
  sample:
    - ip inspect name SMTP-INSPECT ftp
    - no ip inspect name SMTP-INSPECT smtp
changes:
  description: The same lines as C(commands), as the change record lists a fix's changes.
  type: list
  elements: str
  returned: when step is plan
restore:
  description: The lines that put the rules back as they were.
  type: list
  elements: str
  returned: when step is plan
rules:
  description: The rules the plan touches.
  type: list
  elements: str
  returned: when step is plan
backup:
  description: The backup written before the change.
  type: str
  returned: when step is plan, outside check mode, with lines to send
  sample: /var/lib/mailflow/backups/CHG0042/FW01/cisco_smtp_inspection.json
verified:
  description: A fresh running config needs no more lines.
  type: bool
  returned: when step is verify
  sample: true
changed_since:
  description: Rules left alone by the rollback because they no longer hold what the change set.
  type: list
  elements: str
  returned: when step is rollback
backups:
  description: Backups still to roll back (pending), or the ones the rollback lines come from (rollback).
  type: list
  elements: str
  returned: when step is pending or rollback
"""
