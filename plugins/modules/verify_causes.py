# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/verify_causes.py on the controller.

DOCUMENTATION = r"""
module: verify_causes
short_description: Audit one host again after a change, for the causes that were changed
version_added: 0.1.0
description:
  - Decides O(causes) for O(host) with the audit's detectors on evidence from after the change only - the host's
    fresh O(snapshot), and its peers' probes of it taken again (O(fresh_probes)) in place of the pre-flight ones -
    with the rest of the peers' snapshots from the pre-flight audit (O(fleet_snapshots)).
  - "Verified means the detector says absent. A cause still present only for a reason no fix on the hosts can change
    (the finding's C(outside_help), a network firewall) is the change's part done and is returned in RV(outside_help)."
  - Fails, naming them, when any of O(causes) is still present, or unknown for want of fresh evidence. Runs on the
    controller; touches no host.
options:
  host:
    description: The host that was changed.
    type: str
    required: true
  causes:
    description: The causes the change fixed.
    type: list
    elements: str
    required: true
  snapshot:
    description: The host's snapshot taken after the change.
    type: path
    required: true
  fleet_snapshots:
    description: Folder of the pre-flight audit's snapshots (one C(<host>.json) per server).
    type: path
    required: true
  fresh_probes:
    description:
      - The registered results of C(mailflow.exchange.snapshot) with C(probe_only), delegated to each peer that probes
        O(host) (a loop whose item is the peer). A peer that could not probe it again leaves no evidence about it.
    type: list
    elements: raw
    default: []
  hosts:
    description: Every managed server of the fleet.
    type: list
    elements: str
    required: true
  unmanaged:
    description: Peers that are probed but not managed.
    type: list
    elements: str
    default: []
  knowledge:
    description: Overrides merged over the knowledge file.
    type: dict
    default: {}
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
  - module: mailflow.exchange.audit_fleet
  - module: mailflow.exchange.snapshot
author:
  - mailflow contributors (@mailflow)
"""

EXAMPLES = r"""
- name: Post-change audit
  mailflow.exchange.verify_causes:
    host: EXCH05
    causes: [glitch_retry_short]
    snapshot: reports/changes/CHG1/post/EXCH05.json
    fleet_snapshots: reports/20261123T120000Z/snapshots
    hosts: "{{ groups['mailflow_servers'] }}"
  delegate_to: localhost
"""

RETURN = r"""
status:
  description: The status of each cause on the host after the change.
  type: dict
  returned: always
  sample:
    glitch_retry_short: absent
    port25_blocked: present
still_present:
  description: The causes still present on fresh evidence (not counting what needs outside help).
  type: list
  elements: str
  returned: always
  sample:
    - port25_blocked
outside_help:
  description: The causes present only for a reason no fix on the hosts can change, with whom to ask.
  type: dict
  returned: always
unverified:
  description: The causes that came out unknown (no fresh evidence), with the reason.
  type: dict
  returned: always
fresh_from:
  description: The peers whose fresh probes decided the inbound causes.
  type: list
  elements: str
  returned: always
fresh_failed:
  description: The peers that could not probe the host again, with the reason.
  type: dict
  returned: always
ok:
  description: Every changed cause is verified (or needs only outside help).
  type: bool
  returned: always
"""
