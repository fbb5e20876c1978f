# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/audit_fleet.py on the controller.

DOCUMENTATION = r"""
module: audit_fleet
short_description: Decide every known cause of stalled Exchange 2003 SMTP mail flow for a fleet, and write the reports
version_added: 0.1.0
description:
  - Reads one saved snapshot per host (see M(mailflow.exchange.snapshot)) and runs every detector of the cause
    catalog over the whole fleet on the controller; cross-host causes (silent banners, blocked port 25, peers
    that are down, legacy peers) combine the hosts' snapshots. No host is contacted.
  - Every host and cause gets a status - C(present), C(absent), C(not_applicable), or C(unknown) with the reason -
    and present causes are ranked per host following KB 919091's order and reasoning.
  - Writes C(audit.json) (schema C(mailflow.audit/1), see docs/audit.schema.json), C(audit.html), C(audit.md),
    C(audit.csv) and C(junit.xml) into O(report_dir), and points C(latest) beside it at that folder.
options:
  hosts:
    description: The managed inventory hosts (their snapshots are C(<snapshot_dir>/<host>.json)).
    type: list
    elements: str
    required: true
  unmanaged:
    description: Hosts that are probed but never logged into (for example Exchange 5.5 on Windows 2000).
    type: list
    elements: str
    default: []
  snapshot_dir:
    description:
      - "The folder of snapshots to read. The run's probe plan (M(mailflow.exchange.probe_plan)) is read from
        C(probe_plan.json) (or one C(probe_plan-<slice>.json) per job slice) beside it, when there: the report gives
        each probe's reason and the planned pairs that were not probed, and a cause that needs a pair nobody probed
        comes out C(unknown)."
    type: path
    required: true
  offline:
    description:
      - The snapshots were saved earlier (C(mailflow_snapshot_dir)); a missing file is reported as such.
      - When false, a host whose C(mailflow_snapshot) task failed is reported with that task's message.
    type: bool
    default: false
  report_dir:
    description: The folder to write this run's reports into (normally C(reports/<UTC timestamp>)).
    type: path
    required: true
  fail_on:
    description:
      - "C(present) fails the task when any cause is present; C(unknown) also when any is unknown; C(never) does not."
    type: str
    choices: [never, present, unknown]
    default: never
  knowledge:
    description:
      - "Overrides merged over the knowledge file, for example C({detect: {glitch_retry_min_seconds: {value: 120}}})."
    type: dict
    default: {}
  limit:
    description:
      - The hosts this run snapshotted (C(ansible_play_hosts_all) under C(--limit)). The other O(hosts) stay in the
        fleet, without a snapshot, so the limited servers' cross-host causes still see them as peers.
    type: list
    elements: str
  backup_dir:
    description:
      - The fix roles' backup folder. Fixes verified there whose service restart is still pending are listed
        per host in the reports (C(pending_restart)), and so are changes a lost run left unfinished
        (C(unfinished_changes); RV(resume)).
    type: path
    default: backups
  firewalls:
    description:
      - The network devices between the servers (the C(firewalls) group). Their facts are read from
        C(<firewall_dir>/<name>.json), as M(mailflow.exchange.firewall_configs) wrote them; a firewall without
        facts is listed with the reason and its causes fall back to what the probes saw.
    type: list
    elements: str
    default: []
  firewall_dir:
    description: The folder of firewall facts (normally C(<report_dir>/firewalls)).
    type: path
notes:
  - Per-host inventory variables the detectors read - C(mailflow_platform) (what an unmanaged peer is, e.g. C(exchange55)
    or C(smtp)), C(mailflow_greylists) (this peer greylists), C(mailflow_greylisting_peers) (peers this host sends to that
    greylist), C(mailflow_smarthost_expected) (the smart host this host should use), C(mailflow_windows_version) (an
    unmanaged host's Windows NT version, C(5.0) for Windows 2000, where Q253249 supports only Exchange 5.5 SP3 or later).
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
  - module: mailflow.exchange.snapshot
  - module: mailflow.exchange.firewall_configs
  - module: mailflow.exchange.fix
author:
  - mailflow contributors (@mailflow)
"""

EXAMPLES = r"""
- name: Audit the fleet from this run's snapshots
  mailflow.exchange.audit_fleet:
    hosts: "{{ groups['mailflow_servers'] }}"
    unmanaged: "{{ groups['mailflow_unmanaged'] | default([]) }}"
    snapshot_dir: reports/20261123T101500Z/snapshots
    report_dir: reports/20261123T101500Z
    fail_on: present
"""

RETURN = r"""
report_dir:
  description: Where the reports were written.
  type: str
  returned: always
  sample: /var/lib/mailflow/reports/20261205T120000Z
reports:
  description: Paths of the written reports, by format (json, html, md, csv, junit).
  type: dict
  returned: always
  sample:
    json: /var/lib/mailflow/reports/20261205T120000Z/audit.json
    html: /var/lib/mailflow/reports/20261205T120000Z/audit.html
    md: /var/lib/mailflow/reports/20261205T120000Z/audit.md
    csv: /var/lib/mailflow/reports/20261205T120000Z/audit.csv
    junit: /var/lib/mailflow/reports/20261205T120000Z/junit.xml
summary:
  description: Host count, unreachable hosts, status counts, and the present causes per host in rank order.
  type: dict
  returned: always
  sample:
    hosts: 3
    unreachable:
    - EXCH55
    statuses:
      present: 3
      absent: 30
      not_applicable: 3
      unknown: 3
    present:
      EXCH01: []
      EXCH05:
      - glitch_retry_short
      - port25_blocked
      EXCH55:
      - ims_connection_leak
probed_by:
  description: Per host, the managed servers that probed it; after a change they probe it again (verify_causes).
  type: dict
  returned: always
probes_from:
  description: Per host, the peers it probed (the probe plan's choice); a post-change snapshot probes the same ones.
  type: dict
  returned: always
resume:
  description:
    - "Per host, the causes whose fixes a lost run left unfinished (C(planned), C(applied) or C(interrupted) backups):
      fix.yml and remediate.yml run those fixes whatever the findings say, so the change is finished or restored."
  type: dict
  returned: always
network_fixes:
  description:
    - The IOS firewalls, with their inspect rules, that confirmed C(cisco_smtp_inspection) findings blame (the probes
      saw the masking and the config puts the rule on the path); fix.yml and remediate.yml change only those.
  type: dict
  returned: always
  sample:
    FW01:
    - SMTP-INSPECT
table:
  description: A plain-text table of the summary, one line per host.
  type: str
  returned: always
  sample: |
    host    kind          snapshot   unknown  present causes (most likely first)
    ------  ------------  ---------  -------  ----------------------------------
    EXCH05  exchange2003  ok         0        glitch_retry_short, port25_blocked
"""
