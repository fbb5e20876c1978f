# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/selftest_report.py on the controller.

DOCUMENTATION = r"""
module: selftest_report
short_description: Write the self-test's per-host compatibility matrix as JSON and Markdown
version_added: 0.1.0
description:
  - Gathers every host's M(mailflow.exchange.selftest) result (a host it did not reach counts as failed, with the
    connection's message) into C(selftest.json) (schema C(mailflow.selftest/1)) and C(selftest.md) in O(report_dir),
    and returns a short table for the play's output.
  - Fails when any host failed a check the audit needs, naming the host, the check and the error.
options:
  hosts:
    description: The hosts of the self-test play (C(ansible_play_hosts_all)).
    type: list
    elements: str
    required: true
  report_dir:
    description: Where to write the two reports.
    type: path
    required: true
  result_var:
    description: The variable each host registered its M(mailflow.exchange.selftest) result in.
    type: str
    default: mailflow_selftest
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: all
author:
  - mailflow contributors
"""

EXAMPLES = r"""
- name: The compatibility matrix
  mailflow.exchange.selftest_report:
    hosts: "{{ ansible_play_hosts_all }}"
    report_dir: reports/selftest
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
table:
  description: One line per host, and one per check that is not ok.
  returned: always
  type: list
  elements: str
reports:
  description: The paths of C(selftest.json) and C(selftest.md).
  returned: always
  type: dict
failed_hosts:
  description: Hosts that failed a check the audit needs.
  returned: always
  type: list
  elements: str
"""
