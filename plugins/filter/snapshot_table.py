# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""snapshot_table: a fixed-width per-host summary of snapshots, for play output."""
from __future__ import annotations

import json
import os

from ansible_collections.mailflow.exchange.plugins.module_utils.summary import snapshot_rows, table

DOCUMENTATION = r"""
name: snapshot_table
version_added: 0.1.0
short_description: Per-host table of mailflow snapshots
description:
  - Host, OS, Exchange build, the SMTP banner its peers saw, and counts (events 4006, links in retry, queue files, probes that got 220 and 250).
  - Returns one multi-line string (the YAML callback prints it as a literal block, unwrapped).
positional: hosts
options:
  _input:
    description: C(hostvars).
    type: dict
    required: true
  hosts:
    description: The inventory names to list; a host without a registered snapshot is shown as unreachable.
    type: list
    elements: str
    required: true
  var:
    description: The name the snapshot task registered its result under.
    type: str
    default: mailflow_snapshot
seealso:
  - module: mailflow.exchange.snapshot
author:
  - mailflow contributors (@mailflow)
"""

EXAMPLES = r"""
- name: Per-host snapshot table
  ansible.builtin.debug:
    msg: "{{ hostvars | mailflow.exchange.snapshot_table(groups['mailflow_servers']) }}"
"""

RETURN = r"""
_value:
  description: The table, a header, a rule and one line per host.
  type: str
  sample: |
    host    kind          os               exchange      banner seen by peers  4006  retry  queue  probes ok
    ------  ------------  ---------------  ------------  --------------------  ----  -----  -----  ---------
    EXCH01  exchange2003  Server 2003 SP2  6.5 (7638.2)  220 exch01.corp.exam  0     0      0      8/8
"""


def _registered_snapshot(registered):
    """The snapshot a task registered: in the result, or (with dest) in the file it was written to."""
    if not isinstance(registered, dict) or registered.get("failed") or registered.get("unreachable"):
        return None
    if isinstance(registered.get("snapshot"), dict):
        return registered["snapshot"]
    if registered.get("dest") and os.path.isfile(registered["dest"]):
        with open(registered["dest"], encoding="utf-8") as fh:
            return json.load(fh)
    return None


def snapshot_table(hostvars, hosts, var="mailflow_snapshot"):
    snaps = {}
    for host in hosts:
        registered = hostvars[host].get(var) if host in hostvars else None
        snaps[host] = _registered_snapshot(registered)
    return table(snapshot_rows(snaps)) + "\n"


class FilterModule:
    def filters(self):
        return {"snapshot_table": snapshot_table}
