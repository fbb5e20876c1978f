# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/fix_glitch_retry_short.py
# on the controller (PowerShell 2.0 hosts cannot run Ansible's module wrapper).

DOCUMENTATION = r"""
module: fix_glitch_retry_short
short_description: Set GlitchRetrySeconds for greylisting peers on an Exchange 2003 or Windows SMTP server
version_added: 0.1.0
description:
  - Sets C(HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC\Queuing\GlitchRetrySeconds) (REG_DWORD, decimal seconds),
    creating the C(Queuing) key when it is absent (TechNet aa998772; KB 308350 says the key is not created by default).
  - Reads the value fresh (one WinRM command) and changes it only when it differs; in check mode it reports what it
    would change; with C(--diff) it shows before and after.
  - Writes a backup first (C(<backup_dir>/<change_id or UTC timestamp>/<host>/glitch_retry_short.json) and a C(.reg)
    export), verifies with a fresh read, and restores the prior value when verification fails.
  - The value takes effect when SMTPSVC restarts; it restarts SMTPSVC only when O(allow_service_restart) is true,
    otherwise the result says C(pending_restart).
options:
  seconds:
    description:
      - The value to set, 30 to 3600 seconds. Microsoft gives no recommendation; greylisting peers usually defer
        for 300 s and three glitch retries are made, so the role's default is 180 s (field notes 004).
    type: int
    required: true
  allow_service_restart:
    description: Restart SMTPSVC so the value takes effect (queued messages are kept; the result counts them before and after).
extends_documentation_fragment:
  - mailflow.exchange.fix
author:
  - mailflow contributors
"""

EXAMPLES = r"""
- name: Give greylisting peers time before the glitch retries run out
  mailflow.exchange.fix_glitch_retry_short:
    seconds: 180
    allow_service_restart: true
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
  description: A fresh read after the change found nothing left to change.
  type: bool
  returned: changed and not check mode
pending_restart:
  description: Services that must restart for the change to take effect (restart not allowed).
  type: list
  elements: str
  returned: when a restart is needed and not allowed
queue_before:
  description: Messages in the queue folders before the change.
  type: int
  returned: changed and not check mode
queue_after:
  description: Messages in the queue folders after the change (and restart).
  type: int
  returned: changed and not check mode
"""
