# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/fix_report.py on the controller.

DOCUMENTATION = r"""
module: fix_report
short_description: Write the record of a fix run (fix.json and fix.md)
version_added: 0.1.0
description:
  - Collects what each fix role registered on each host (C(mailflow_fix_<cause>)) and writes C(fix.json)
    (schema C(mailflow.fix/1)) and C(fix.md) into O(report_dir), with host, cause, result, before and after,
    verification, backup, restarts done or pending, reboots pending, advice, and failures.
  - Runs on the controller; touches no host.
options:
  hosts:
    description: The hosts the fix play ran on.
    type: list
    elements: str
    required: true
  report_dir:
    description: Folder for fix.json and fix.md (the audit's report folder of the same run).
    type: path
    required: true
  change_id:
    description: The change the run belongs to.
    type: str
    default: ""
  audit_report:
    description: The audit report the run acted on.
    type: str
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
  - module: mailflow.exchange.change_record
author:
  - mailflow contributors (@mailflow)
"""

EXAMPLES = r"""
- name: Record what the fix run changed
  mailflow.exchange.fix_report:
    hosts: "{{ groups['mailflow_servers'] }}"
    report_dir: reports/20261123T120000Z
"""

RETURN = r"""
reports:
  description: Paths of fix.json and fix.md.
  type: dict
  returned: always
  sample:
    json: /var/lib/mailflow/reports/20261205T120000Z/fix.json
    md: /var/lib/mailflow/reports/20261205T120000Z/fix.md
summary:
  description: Counts of results (changed, ok, failed, interrupted, unreachable, skipped).
  type: dict
  returned: always
  sample:
    changed: 1
    ok: 1
    needs_input: 0
    failed: 0
    interrupted: 0
    unreachable: 0
    skipped: 0
problems:
  description: One "host, cause status" line for every fix that failed, was interrupted or could not reach its host.
  type: list
  elements: str
  returned: always
  sample:
    - 'EXCH07: metabase_corrupt failed'
text:
  description:
    - The run in plain text for the play to print (no Markdown), lines of at most 92 characters; fix.md has
      the same content as a Markdown table.
  type: str
  returned: always
  sample: |
    mailflow fix run 2026-12-05T12:00:00Z
    1 changed

    host    cause               result
    ------  ------------------  ----------------
    EXCH05  glitch_retry_short  changed
              HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC\Queuing\GlitchRetrySeconds: REG_DWORD 30 -> REG_DWORD 180
"""
