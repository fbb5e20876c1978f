# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/change_record.py on the controller.

DOCUMENTATION = r"""
module: change_record
short_description: Append one event to a change record (record.json and record.md)
version_added: 0.1.0
description:
  - Appends O(event) to C(<record_root>/changes/<change id>/record.json), stamped with the UTC time, and rewrites
    C(record.json) and C(record.md) whole (temporary file, fsync, rename), so an interrupted run leaves an accurate
    record.
  - Safe from parallel forks (for example C(delegate_to=localhost) for many hosts at once) - each append holds an
    exclusive lock on C(record.json.lock).
  - Event types and their fields are described in C(docs/change-record.md) (C(run_started), C(refused), C(plan),
    C(fix), C(restart), C(verify), C(rollback), C(not_reached), C(run_finished)). A per-host event without C(host)
    is recorded for the task's C(inventory_hostname).
  - Runs on the controller; touches no host.
options:
  change_id:
    description: The change (C(mailflow_change_id)); it names the record folder.
    type: raw
    required: true
  record_root:
    description: Folder holding C(changes/<change id>/).
    type: path
    default: reports
  event:
    description: The event, a mapping with C(type) and the fields of that type.
    type: dict
    required: true
  header:
    description:
      - Record header fields (C(operator), C(controller), C(window), C(override_reason), C(started)); they only fill
        fields that are still empty. Normally set by M(mailflow.exchange.change_window).
    type: dict
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The record is written in check mode too.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
seealso:
  - module: mailflow.exchange.change_window
  - module: mailflow.exchange.fix_report
author:
  - mailflow contributors (@mailflow)
"""

EXAMPLES = r"""
- name: Record the plan of this host
  mailflow.exchange.change_record:
    change_id: "{{ mailflow_change_id }}"
    event:
      type: plan
      causes: [glitch_retry_short]
      changes: ["{{ mailflow_fix_glitch_retry_short.changes | default([]) }}"]
      restart: [SMTPSVC]
      reboot: false
  delegate_to: localhost
"""

RETURN = r"""
record:
  description: Paths of the record's folder (dir), record.json (json) and record.md (md).
  type: dict
  returned: success
event:
  description: The event as recorded (plain JSON, with its C(time) and, for per-host events, its C(host)).
  type: dict
  returned: success
events:
  description: How many events the record holds now.
  type: int
  returned: success
  sample: 7
host_status:
  description: The event's host's status in the record after this event (planned, changed, unchanged, failed, rolled_back, not_reached).
  type: str
  returned: success, for per-host events
  sample: changed
"""
