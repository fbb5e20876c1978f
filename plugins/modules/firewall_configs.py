# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/firewall_configs.py on the controller.

DOCUMENTATION = r"""
module: firewall_configs
short_description: Read Cisco IOS, PIX and ASA configs for SMTP inspection, for the audit
version_added: 0.2.0
description:
  - For each firewall, takes its running config - read from the device by C(cisco.ios.ios_command) (passed in
    O(reads)) or a saved config file - parses it (IOS CBAC C(ip inspect), PIX C(fixup protocol smtp), ASA
    C(inspect esmtp) under a policy-map a C(service-policy) applies) and writes its facts to
    C(<save_dir>/<name>.json) (schema C(mailflow.firewall/1)) for M(mailflow.exchange.audit_fleet).
  - The facts hold the interfaces, the SMTP inspections with the lines that turn them on and off, and a hash of the
    config; never the config itself, which carries secrets.
  - A firewall whose config cannot be read or parsed gets facts that say why; the audit goes on.
options:
  firewalls:
    description: The firewalls (normally C(groups['firewalls'])).
    type: list
    elements: str
    required: true
  reads:
    description:
      - The results of a C(cisco.ios.ios_command) loop over the firewalls whose config comes from the device,
        C(show running-config) first (C(register) of a loop; each result's C(item) is the firewall).
    type: list
    elements: raw
    default: []
  save_dir:
    description: Where to write the facts (normally C(<report_dir>/firewalls)); required unless O(check_only).
    type: path
  check_only:
    description: Only check every firewall's variables (run it before the configs are read).
    type: bool
    default: false
notes:
  - "Per-firewall inventory variables: C(mailflow_firewall_config_source) (C(device), the default, or C(file)),
    C(mailflow_firewall_config_dir) (the folder of saved configs, for C(file): C(<name>.cfg), C(.conf), C(.txt),
    C(<name>-confg) or C(<name>)), C(mailflow_firewall_platform) (C(ios), C(pix), C(asa) or C(fwsm); read off the config
    when not set), C(mailflow_firewall_segments) (C({interface or nameif: [servers behind it]}); without it, the
    interface whose subnet holds a server's C(ansible_host) address)."
  - Bad variables fail the task, naming the firewall and the variable (run with O(check_only) before the reads, as
    playbooks/audit.yml does). A C(mailflow_firewall_segments) key that names no interface of the config (IOS
    abbreviations such as C(Fa0/0) are understood) is returned in RV(problems) for the caller to fail on, because the task
    carries configs, so it runs with C(no_log) and its own failure message would be hidden.
  - A PIX or ASA is read from a saved file (C(mailflow_firewall_config_source=file)); cisco.ios reads IOS only.
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
  - module: mailflow.exchange.fix_cisco_smtp_inspection
author:
  - mailflow contributors (@mailflow)
"""

EXAMPLES = r"""
- name: Read the IOS firewalls' running configs
  cisco.ios.ios_command:
    commands: [show running-config]
  delegate_to: "{{ item }}"
  loop: "{{ groups['firewalls'] }}"
  register: running
  no_log: true   # running configs carry secrets

- name: Their SMTP inspections, for the audit
  mailflow.exchange.firewall_configs:
    firewalls: "{{ groups['firewalls'] }}"
    reads: "{{ running.results }}"
    save_dir: reports/20261123T101500Z/firewalls
  no_log: true
"""

RETURN = r"""
from_device:
  description: With O(check_only), the firewalls whose config is read from the device (C(cisco.ios.ios_command)).
  type: list
  elements: str
  returned: when check_only
  sample:
    - FW01
problems:
  description: Inventory mistakes found once the configs were parsed (segment keys no interface has), naming the firewall.
  type: list
  elements: str
  returned: always
  sample:
    []
firewalls:
  description: Per firewall, its name, platform, config source, error (or null) and the SMTP inspection lines found.
  type: list
  elements: dict
  returned: always
  sample:
    - name: FW01
      platform: ios
      source: device
      error: null
      smtp_inspections:
      - ip inspect name SMTP-INSPECT smtp
"""
