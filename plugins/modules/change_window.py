# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/change_window.py on the controller.

DOCUMENTATION = r"""
module: change_window
short_description: Gate a change run on its change id and approved window, and open its change record
version_added: 0.1.0
description:
  - Validates the change id and the change window before any host is touched; bad input fails naming the variable
    (C(mailflow_change_id), C(mailflow_window_start), ...) and writes nothing.
  - With O(stage=open), a run inside the window (start inclusive, end exclusive) appends a C(run_started) event to
    C(<record_root>/changes/<change id>/record.json) and C(record.md). Outside the window it appends C(refused) and
    fails, unless O(override_reason) is given - then it runs, the reason is recorded in the record's header and in the
    C(run_started) event, and the task warns.
  - With O(stage=check), it only says whether a new batch may start (RV(open)); it never fails on the window and
    writes nothing. Call it before each batch so that no batch starts after the window closes.
  - The record format is described in C(docs/change-record.md) (JSON Schema C(docs/change.schema.json)).
  - Runs on the controller; touches no host.
options:
  change_id:
    description:
      - The change ticket (C(mailflow_change_id)). It must match O(change_id_pattern) as a whole, and it names the
        record folder, so it must also be 1-64 letters, digits, C(.), C(_) or C(-), starting with a letter or digit.
      - Required; a missing or blank id fails naming C(mailflow_change_id).
    type: raw
  change_id_pattern:
    description: Regular expression the whole change id must match (C(mailflow_change_id_pattern)).
    type: str
    default: ^CHG\d+$
  window_start:
    description:
      - Start of the approved window (C(mailflow_window_start)), ISO 8601 with a time zone, for example
        C(2026-11-23T22:00:00+01:00) or C(2026-11-23T21:00:00Z). A time without a zone is refused.
      - Give O(window_start) and O(window_end), or O(window_name), not both.
    type: raw
  window_end:
    description:
      - End of the approved window (C(mailflow_window_end)), ISO 8601 with a time zone; after the start.
      - Windows longer than 7 days are refused as a likely mistyped date.
    type: raw
  window_name:
    description: A window defined in O(windows) (C(mailflow_window)).
    type: str
  windows:
    description: Named windows, each a mapping of a name to C(start) and C(end) (C(mailflow_windows), usually from group_vars).
    type: dict
    default: {}
  override_reason:
    description:
      - Why the run may go outside the window (C(mailflow_window_override_reason)). Non-blank text allows the run and
        is recorded; it is not used (nor recorded) while the window is open.
    type: raw
  record_root:
    description: Folder holding C(changes/<change id>/record.json) and C(record.md).
    type: path
    default: reports
  stage:
    description: C(open) validates and records the start (or refusal) of the run; C(check) only reports the window's state.
    type: str
    choices: [open, check]
    default: open
  playbook:
    description: The playbook named in the C(run_started) event; by default the file the task is in.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The record is written in check mode too; the C(run_started) event says C(check_mode=true).
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
seealso:
  - module: mailflow.exchange.change_record
  - module: mailflow.exchange.rollback
author:
  - mailflow contributors (@mailflow)
"""

EXAMPLES = r"""
- name: Refuse outside the approved window, and open the change record
  mailflow.exchange.change_window:
    change_id: "{{ mailflow_change_id | default('') }}"
    change_id_pattern: "{{ mailflow_change_id_pattern | default(omit) }}"
    window_start: "{{ mailflow_window_start | default(omit) }}"
    window_end: "{{ mailflow_window_end | default(omit) }}"
    window_name: "{{ mailflow_window | default(omit) }}"
    windows: "{{ mailflow_windows | default({}) }}"
    override_reason: "{{ mailflow_window_override_reason | default(omit) }}"
  run_once: true

- name: May the next batch start?
  mailflow.exchange.change_window:
    change_id: "{{ mailflow_change_id }}"
    window_name: weekend
    windows: "{{ mailflow_windows }}"
    stage: check
  register: mailflow_window_check
  run_once: true
"""

RETURN = r"""
open:
  description:
    - O(stage=open) - the run was allowed (in the window, or outside it with an override).
    - O(stage=check) - a new batch may start (the window is open, or an override reason is given).
  type: bool
  returned: success and when refused
  sample: true
state:
  description: The window now - C(before), C(open) or C(closed).
  type: str
  returned: when the input is valid
in_window:
  description: Whether the window itself is open now (regardless of an override).
  type: bool
  returned: when the input is valid
  sample: true
override:
  description: Whether the override reason is what allows the run.
  type: bool
  returned: when the input is valid
  sample: false
seconds_left:
  description: Seconds until the window closes (0 when closed).
  type: int
  returned: when the input is valid
  sample: 12600
window:
  description: The window - name (or null), start and end as given, start_utc and end_utc.
  type: dict
  returned: when the input is valid
change_id:
  description: The validated change id.
  type: str
  returned: when the input is valid
  sample: CHG0042
record:
  description: Paths of the record's folder (dir), record.json (json) and record.md (md).
  type: dict
  returned: when the input is valid
"""
