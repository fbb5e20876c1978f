# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/fix_stnef_legacy_peer.py
# on the controller (PowerShell 2.0 hosts cannot run Ansible's module wrapper).

DOCUMENTATION = r"""
module: fix_stnef_legacy_peer
short_description: Set the entries that make Exchange 2000/2003 send TNEF instead of S-TNEF to legacy peers, as you name them
version_added: 0.1.0
description:
  - KB 919091 resolution 2 forces the Exchange 2003 store driver to TNEF toward Exchange 5.5 and other systems that do
    not read S-TNEF, with "several registry entries" described in KB 254089. That article could not be found, so the
    entries are NOT known to this collection (knowledge C(detect.stnef_tnef_setting) is null, unconfirmed).
  - Without O(setting) (and without C(detect.stnef_tnef_setting) in O(knowledge)) it changes nothing and returns C(advice).
  - With O(setting) it reads each entry fresh (one WinRM command), the way the audit reads
    C(detect.stnef_tnef_setting), and sets those that differ - a registry value (REG_DWORD or REG_SZ, the key created
    when absent) or an AD attribute - then reads again and verifies. A backup (JSON, plus a C(.reg) export of registry
    values) is written first; a failed verification restores the prior values.
  - Only Exchange 2000/2003 servers are changed (their store driver sends S-TNEF); other hosts are left alone.
  - Services named in an entry's C(restart) are restarted only when O(allow_service_restart) is true, otherwise the
    result says C(pending_restart).
options:
  setting:
    description:
      - 'One entry, or a list of up to 8. A registry entry has C(layer=registry), C(path) (a key under C(HKLM\)), C(name),
        C(value), C(type) and C(restart); C(type) is REG_DWORD (a whole number 0-4294967295, the default for a number) or
        REG_SZ (the default for text).'
      - 'An AD entry has C(layer=ad), C(dn), C(attribute), C(value), C(syntax) (string, the default, or int) and C(restart);
        the object must exist, and C(dn) should name it exactly (its subtree is read to find it).'
      - C(restart) lists services the entry needs restarted to take effect (default none; KB 254089's text, which would
        say, is not available).
      - The same entries become C(collect.stnef_tnef_location_<n>) and C(detect.stnef_tnef_setting) for this run; put them
        in C(mailflow_knowledge) too so the audit checks them (see the role README).
    type: raw
  allow_service_restart:
    description: Restart the services the entries name.
  knowledge:
    description: Overrides merged over the knowledge file (and over what O(setting) says).
extends_documentation_fragment:
  - mailflow.exchange.fix
author:
  - mailflow contributors
"""

EXAMPLES = r"""
# The path, name and value below are placeholders, not KB 254089's (which is not known here).
- name: Force TNEF toward the Exchange 5.5 site, with the entries your KB 254089 copy gives
  mailflow.exchange.fix_stnef_legacy_peer:
    setting:
      - {layer: registry, path: 'HKLM\SYSTEM\CurrentControlSet\Services\<service>\Parameters', name: '<value name>', value: 1}
"""

RETURN = r"""
changes:
  description: What was (or, in check mode, would be) changed.
  type: list
  elements: str
  returned: always
advice:
  description: Why nothing was changed when no entries are given.
  type: list
  elements: str
  returned: when there is advice
backup:
  description: The backup file written before the change.
  type: str
  returned: changed and not check mode
verified:
  description: A fresh read after the change found every entry set.
  type: bool
  returned: changed and not check mode
pending_restart:
  description: Services the entries need restarted (restart not allowed).
  type: list
  elements: str
  returned: when a restart is needed and not allowed
"""
