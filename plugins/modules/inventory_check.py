# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/inventory_check.py on the controller.

DOCUMENTATION = r"""
module: inventory_check
short_description: Check the inventory before any host is contacted
version_added: 0.2.0
description:
  - "Fails, naming each host and variable, when the inventory has no C(mailflow_servers) (a run that matches
    nothing must not pass), when an inventory name cannot name the files written for it (backups, snapshots,
    reports - letters, digits, C(.), C(_), C(-), not starting with C(.), at most 128), or when a C(mailflow_fqdn)
    is not a DNS name (it becomes the probes' EHLO name and envelope domain, so a control character in it
    would carry SMTP commands)."
  - Every playbook of the collection runs it first.
options: {}
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
author:
  - mailflow contributors (@mailflow)
"""

EXAMPLES = r"""
- name: Check the inventory before touching any host
  mailflow.exchange.inventory_check:
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
servers:
  description: How many hosts are in C(mailflow_servers).
  type: int
  returned: success
"""
