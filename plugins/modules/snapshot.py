# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/snapshot.py
# on the controller (PowerShell 2.0 hosts cannot run Ansible's module wrapper).

DOCUMENTATION = r"""
module: snapshot
short_description: Gather an Exchange 2003 host's mail-flow snapshot, in one WinRM command when it fits
version_added: 0.1.0
description:
  - Collects, in one WinRM command, everything mailflow's detectors need from a Windows Server 2003 /
    Exchange 2003 (or Exchange 5.5, or Windows SMTP relay) host - registry values, the IIS 6 MetaBase.xml
    and its History files, Exchange's SMTP virtual server objects in Active Directory, services, installed
    products and MSI features, Application events, Exchange WMI links, queue folder files, TCP connections -
    and probes the given SMTP peers (banner, EHLO, MAIL, RCPT; never DATA), all peers at once.
  - Runs a small PowerShell 2.0 script through the host's own connection (the raw path), so it works on hosts
    where ansible-core's module wrapper refuses PowerShell below 5.1. Use it in plays with C(gather_facts) off.
  - The command line stays at about 1,000 characters whatever the number of peers or items (cmd.exe refuses
    lines over 8,191); the request and script travel on stdin, and every value reaches PowerShell base64-encoded.
  - One command's stdin stays within what WinRM 2.0 accepts (C(mailflow_winrm_max_envelope_kb), default 150) and
    probes at most C(mailflow_probes_per_command) peers (default 250); a request that does not fit goes in a few
    commands instead of one (hundreds of peers).
  - Active Directory is read with an explicit-credential bind, as C(mailflow_ad_username) / C(mailflow_ad_password)
    (default the host's C(ansible_user) / C(ansible_password)), because a WinRM logon over NTLM has no credentials for the
    domain controller. The credentials travel inside the encoded request only; they are never in the result.
  - Who the host is (its computer name, hence its Exchange server object) comes from what the host reports
    (Win32_ComputerSystem), not from its inventory name, which may be an address or an alias.
  - What is collected, and why, is data in C(plugins/module_utils/knowledge.yml); the inventory can override it
    with O(knowledge) or the C(mailflow_knowledge) variable.
  - Never changes the host.
options:
  peers:
    description:
      - SMTP peers to probe from this host (the host itself is skipped). Each item is an inventory name (probed at its
        C(mailflow_fqdn), else C(ansible_host)), a name or FQDN, or a dict with C(name) (the inventory name the result is
        filed under), C(target) (FQDN, or C([ip])), and optionally C(port) and C(timeout_ms).
    type: list
    elements: raw
    default: []
  fqdn:
    description:
      - The host's FQDN, used in EHLO and for the sender's domain. Defaults to C(mailflow_fqdn), else the inventory name;
        when that is an address the host fills in its own FQDN. Names the host only if the host reports no name itself.
    type: str
  knowledge:
    description: Overrides merged over the knowledge file (dicts merge, lists replace). Defaults to C(mailflow_knowledge).
    type: dict
    default: {}
  dest:
    description: Also write the snapshot as JSON to this path on the controller (for offline audits).
    type: path
  probe_only:
    description:
      - Only probe O(peers), reading nothing else (still one WinRM command). The post-change verification uses it for
        fresh evidence of a changed host from the peers that probe it.
    type: bool
    default: false
  org_reads:
    description:
      - Also read the knowledge items whose C(scope) is C(org), what is the same from every host (the organisation's
        list of Exchange servers in AD). Each host reads its own server object and virtual servers either way.
      - Unset, the first C(mailflow_ad_org_readers) hosts of the play by name (default 3) read them, so every run and
        every job slice has a few readers and the fleet's snapshots do not each carry the whole organisation.
    type: bool
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: windows
notes:
  - The bootstrap reads stdin as C($input), which PowerShell 2.0's console host fills from redirected stdin; run
    C(playbooks/selftest.yml) first on a new estate, which checks this and every other operation on each host
    (see docs/runner.md for what is not yet confirmed on a physical Windows Server 2003 host).
seealso:
  - module: mailflow.exchange.audit_fleet
  - module: mailflow.exchange.verify_causes
author:
  - mailflow contributors (@mailflow)
"""

EXAMPLES = r"""
- name: Snapshot every Exchange server, probing all the others
  mailflow.exchange.snapshot:
    peers: "{{ groups['mailflow_servers'] | difference([inventory_hostname])
               | map('extract', hostvars) | map(attribute='mailflow_fqdn') | list }}"
    dest: "snapshots/{{ inventory_hostname }}.json"
"""

RETURN = r"""
snapshot:
  description:
    - The versioned snapshot (schema C(mailflow.snapshot/1)); see docs/snapshot.md.
    - With O(dest) it is written there and not returned (a fleet's snapshots in hostvars cost the controller more
      than the files); RV(platform), RV(errors), RV(probes) and RV(transport) summarise it.
  returned: when O(dest) is not set
  type: dict
  contains:
    schema:
      description: Always C(mailflow.snapshot/1).
      type: str
      sample: mailflow.snapshot/1
    platform:
      description: "The OS, the Exchange version and build, and the kind: C(exchange2003), C(exchange55), C(smtp_relay) or C(windows)."
      type: dict
      sample:
        computer_name: EXCH05
        kind: exchange2003
        os: {caption: "Microsoft(R) Windows(R) Server 2003, Enterprise Edition", service_pack: Service Pack 2,
             service_pack_major: 2, version: 5.2.3790, build: "3790"}
        exchange: {version: "6.5", build: "7638.2", service_pack: Service Pack 2, source: "ad:serialNumber"}
    items:
      description: Decoded results per knowledge item (C(plugins/module_utils/knowledge.yml)), by item id.
      type: dict
      sample:
        smtpsvc_queuing:
          HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC\Queuing:
            subkeys: []
            values: {GlitchRetrySeconds: {type: REG_DWORD, data: 30}}
    probes:
      description: "Raw SMTP probe results, one per peer: connect, banner, EHLO, MAIL and RCPT replies, and timings."
      type: list
      elements: dict
      sample:
        - {peer: EXCH01, target: exch01.corp.example, address: 10.1.0.11, port: 25, connect: ok, connect_ms: 0,
           banner: "220 ****0************** ********* ***** ****", banner_ms: 2, ehlo: "500 5.5.1 Command unrecognized",
           mail: "", rcpt: "", error: "", total_ms: 3}
    errors:
      description: Items the host could not answer, by item id, with the reason.
      type: dict
      sample:
        smtp_links: "Invalid namespace "
dest:
  description: Where the snapshot was written.
  returned: when O(dest) is set
  type: str
platform:
  description: The snapshot's C(platform) (see RV(snapshot.platform)).
  returned: when O(dest) is set
  type: dict
errors:
  description: The knowledge items the host could not answer (their reasons are in the snapshot).
  returned: when O(dest) is set
  type: list
  elements: str
probes:
  description: How many SMTP probes came back.
  returned: when O(dest) is set
  type: int
transport:
  description: The request's size and shape (command line length, commands, stdin bytes, operations).
  returned: when O(dest) is set
  type: dict
  sample: /var/lib/mailflow/reports/20261205T120000Z/snapshots/EXCH01.json
"""
