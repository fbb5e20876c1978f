# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/probe_plan.py on the controller.

DOCUMENTATION = r"""
module: probe_plan
short_description: Plan which Exchange server probes which on port 25, following the mail rather than the full mesh
version_added: 0.2.0
description:
  - "Decides, once per run on the controller, the SMTP peers each server's snapshot probes
    (M(mailflow.exchange.snapshot) O(mailflow.exchange.snapshot#module:peers)). In C(mesh) mode every server probes
    every other (N x (N - 1) probes). In C(mail) mode each server probes the peers it exchanges mail with (its queues
    and links, the hosts its Event 4006 names and its smart host, from an earlier audit's C(routes); the inventory's
    C(mailflow_sends_to) and C(mailflow_smarthost_expected)), the servers whose mail goes to it, a small deterministic
    sample, and enough others that every server is probed by at least O(min_inbound) peers. No host probes more than
    O(max_peers) peers, whatever the fleet's size."
  - A host with C(mailflow_probe_peers) set probes those peers, and the plan says so.
  - "The plan is written to O(dest); M(mailflow.exchange.audit_fleet) reads it beside the snapshots and reports each
    probed pair with why it was probed, and the planned pairs that were not probed. A cause that needs a pair nobody
    probed comes out C(unknown) with that reason."
options:
  servers:
    description: The managed servers (C(mailflow_servers)); they probe and are probed.
    type: list
    elements: str
    required: true
  unmanaged:
    description: Hosts that are probed but never logged into (C(mailflow_unmanaged)).
    type: list
    elements: str
    default: []
  mode:
    description:
      - C(mesh) every server probes every other; C(mail) the plan above; C(auto) the mesh up to O(mesh_max_hosts)
        hosts and the mail plan above that.
    type: str
    choices: [auto, mesh, mail]
    default: auto
  min_inbound:
    description: How many peers at least probe each server (C(mail) mode).
    type: int
    default: 3
  sample:
    description: How many peers each server probes beyond its routes, drawn deterministically (C(mail) mode).
    type: int
    default: 2
  max_peers:
    description: The most peers one server probes (C(mail) mode); routes past it are reported as not probed.
    type: int
    default: 16
  mesh_max_hosts:
    description: In C(auto) mode, the largest fleet (servers and unmanaged hosts) probed as a full mesh.
    type: int
    default: 30
  routes_from:
    description:
      - An earlier C(audit.json) whose C(routes) the plan follows; a missing file means no earlier routes.
      - "Its probes also say which servers answered slowly (a filtered port or a mute banner waits out the probe
        timeout): the sample leaves those out and their inbound coverage goes to hosts already waiting on one."
    type: path
  fleet_from:
    description:
      - "An earlier C(audit.json) whose servers complete the fleet, for a run that sees only part of it (an AWX job
        slice). The plan is drawn over the whole fleet (so every slice draws the same one and shares the coverage)
        and keeps the rows of O(servers); their probes of a server of another slice go to the name or address that
        audit recorded for it (C(probe_target)). A server it recorded none for is not probed, and the plan and the
        audit say so (C(unaddressed))."
      - Omitted (the default outside a collection), the inventory is the fleet.
    type: path
  dest:
    description: Where to write the plan (JSON) on the controller, normally C(<report_dir>/probe_plan.json).
    type: path
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
  - module: mailflow.exchange.audit_fleet
author:
  - mailflow contributors (@mailflow)
"""

EXAMPLES = r"""
- name: Plan the probes (once, on the controller)
  mailflow.exchange.probe_plan:
    servers: "{{ groups['mailflow_servers'] }}"
    unmanaged: "{{ groups['mailflow_unmanaged'] | default([]) }}"
    mode: mail
    routes_from: reports/latest/audit.json
    dest: reports/20261205T120000Z/probe_plan.json
  run_once: true
  delegate_to: localhost
  register: mailflow_probe_plan_result
"""

RETURN = r"""
mode:
  description: The plan's mode, C(mesh) or C(mail) (C(auto) resolved).
  type: str
  returned: always
  sample: mail
peers:
  description:
    - Per server, the peers it probes, as M(mailflow.exchange.snapshot) takes them; a server of another job slice
      (O(fleet_from)) as C({name, target}).
  type: dict
  returned: always
  sample:
    EXCH01: [EXCH03, EXCH04, {name: EXCH09, target: exch09.corp.example}]
unaddressed:
  description: Per server, the servers of other job slices it was to probe but has no name or address for.
  type: dict
  returned: always
probes:
  description: How many probes the plan makes in all.
  type: int
  returned: always
max_per_host:
  description: The most probes any one server makes.
  type: int
  returned: always
short:
  description: Servers fewer than O(min_inbound) peers could probe (a fleet too small, or every prober full).
  type: dict
  returned: always
routes_source:
  description: Where the routes the plan follows came from (an earlier audit, the inventory), or null.
  type: str
  returned: always
dest:
  description: Where the plan was written.
  type: str
  returned: always
"""
