# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/fix_smsmse_heuristics.py
# on the controller (PowerShell 2.0 hosts cannot run Ansible's module wrapper).

DOCUMENTATION = r"""
module: fix_smsmse_heuristics
short_description: Turn heuristics (Bloodhound) scanning off in Symantec Mail Security for Microsoft Exchange
version_added: 0.1.0
description:
  - KB 919091 cause 3 - SMSMSE heuristics scanning alters outgoing messages so the terminating period is not seen.
    This writes the heuristics switch's "off" data wherever the audit finds it on.
  - B(The location is not confirmed.) No Symantec document gives the registry form of the SMSMSE 4.x/5.x
    heuristics setting. The fix reads and writes where the knowledge says (C(collect.smsmse_settings), default
    C(HKLM\SOFTWARE\Symantec\SMSMSE) and its subkeys; C(detect.smsmse_heuristics_value), default
    C(EnableBloodhound), REG_DWORD, off = 0), which is the lab's layout. Override both through O(knowledge) (the role
    has variables for them); while the defaults are used the result carries a warning that says so.
  - Reads fresh (one WinRM command) and changes only values that are on; in check mode it reports what it would
    change; with C(--diff) it shows before and after. A value of another type than the switch's is reported, not
    changed.
  - Writes a backup first (C(<backup_dir>/<change_id or UTC timestamp>/<host>/smsmse_heuristics.json) and a C(.reg)
    export), verifies with a fresh read, and restores the prior data when verification fails.
  - The SMSMSE service restarts only when O(allow_service_restart) is true, otherwise the result says
    C(pending_restart).
options:
  allow_service_restart:
    description: Restart the SMSMSE service so it reads the new setting.
  knowledge:
    description:
      - Overrides merged over the knowledge file; C(collect.smsmse_settings.path) and
        C(detect.smsmse_heuristics_value.value) (C(name), C(type) REG_DWORD or REG_SZ, C(off_values), the first of
        which is written) say where your build keeps the switch.
extends_documentation_fragment:
  - mailflow.exchange.fix
author:
  - mailflow contributors
"""

EXAMPLES = r"""
- name: Turn Bloodhound off where this SMSMSE build keeps it
  mailflow.exchange.fix_smsmse_heuristics:
    allow_service_restart: true
    knowledge:
      collect: {smsmse_settings: {path: 'HKLM\SOFTWARE\Symantec\SMSMSE\4.5'}}
      detect: {smsmse_heuristics_value: {value: {name: EnableBloodhound, type: REG_DWORD, off_values: [0]}}}
"""

RETURN = r"""
changes:
  description: What was (or, in check mode, would be) changed.
  type: list
  elements: str
  returned: always
backup:
  description: The backup file written before the change.
  type: str
  returned: changed and not check mode
verified:
  description: A fresh read after the change found the switch off everywhere.
  type: bool
  returned: changed and not check mode
pending_restart:
  description: Services that must restart for the change to take effect (restart not allowed).
  type: list
  elements: str
  returned: when a restart is needed and not allowed
advice:
  description: The unconfirmed-location warning, values not changed, and what to do when no switch was found.
  type: list
  elements: str
  returned: when there is any
"""
