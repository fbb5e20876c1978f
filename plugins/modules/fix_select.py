# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/fix_select.py on the controller.

DOCUMENTATION = r"""
module: fix_select
short_description: Which fixes a fix or remediation run may do, checked before any host is contacted
version_added: 0.2.0
description:
  - Reads O(fix) (the playbooks' C(mailflow_fix)) against the fixes the cause modules declare and returns them in
    the order a fix run takes them (the network devices' first, then the servers'). An unknown cause fails, naming
    the known ones.
  - Checks that O(change_id) can name the backup folder.
options:
  fix:
    description:
      - The causes to fix, a list or one comma-separated string. Not given means every fixable cause.
    type: raw
  change_id:
    description: The change the run belongs to (letters, digits, C(.), C(_), C(-); at most 64). Empty is allowed.
    type: str
    default: ""
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
seealso:
  - module: mailflow.exchange.fix
author:
  - mailflow contributors (@mailflow)
"""

EXAMPLES = r"""
- name: Select the fixes
  mailflow.exchange.fix_select:
    fix: "{{ mailflow_fix | default(omit) }}"
    change_id: "{{ mailflow_change_id | default('') }}"
  register: mailflow_fix_selection
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
fixable:
  description: Every fixable cause, in fix order (the network devices' first).
  type: list
  elements: str
  returned: always
  sample:
    - cisco_smtp_inspection
    - metabase_corrupt
    - peer_smtp_unavailable
    - port25_blocked
    - smtp_banner_missing
selected:
  description: The selected causes, in fix order.
  type: list
  elements: str
  returned: always
  sample:
    - glitch_retry_short
server:
  description: The selected causes fixed on the servers, in fix order.
  type: list
  elements: str
  returned: always
  sample:
    - glitch_retry_short
network:
  description: The selected causes fixed on network devices, in fix order.
  type: list
  elements: str
  returned: always
  sample:
    []
inbound:
  description: The causes decided from the peers' probes of a host; a change of one is verified on fresh probes.
  type: list
  elements: str
  returned: always
"""
