# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/fix_peer_smtp_unavailable.py
# on the controller (PowerShell 2.0 hosts cannot run Ansible's module wrapper).

DOCUMENTATION = r"""
module: fix_peer_smtp_unavailable
short_description: Start the SMTP service of an Exchange 2003 or Windows SMTP server and set it to Automatic
version_added: 0.1.0
description:
  - Where the SMTP service (C(SMTPSVC); C(MSExchangeIMC) on Exchange 5.5) is not running, sets it to Automatic
    and starts it, IIS Admin (its dependency) first. Start modes change before states, since a Disabled
    service cannot start (Win32_Service C(ChangeStartMode), then C(StartService)).
  - A Disabled service is left alone unless O(allow_enable_disabled) is true (Disabled is an administrator's
    setting); the result's C(advice) says so.
  - Reads the services fresh (one WinRM command) and changes only what is not as wanted; in check mode it reports
    what it would change; with C(--diff) it shows before and after.
  - Writes a backup first (C(<backup_dir>/<change_id or UTC timestamp>/<host>/peer_smtp_unavailable.json)),
    verifies with a fresh read, and when the service does not run puts the states and start modes back (in reverse).
  - Starting the service is the fix itself, so O(allow_service_restart) does not gate it. Queue folder files are
    not touched; the result counts them before and after.
options:
  allow_enable_disabled:
    description: Also set a Disabled SMTP service (or IIS Admin) to Automatic and start it.
    type: bool
    default: false
  allow_service_restart:
    description: Not used by this fix.
extends_documentation_fragment:
  - mailflow.exchange.fix
author:
  - mailflow contributors
"""

EXAMPLES = r"""
- name: Bring a stopped SMTP service back, even where it was disabled
  mailflow.exchange.fix_peer_smtp_unavailable:
    allow_enable_disabled: true
"""

RETURN = r"""
changes:
  description: What was (or, in check mode, would be) changed.
  type: list
  elements: str
  returned: always
advice:
  description: What the fix left alone and why (a Disabled service without O(allow_enable_disabled), SMTP not installed).
  type: list
  elements: str
  returned: when there is any
backup:
  description: The backup file written before the change.
  type: str
  returned: changed and not check mode
verified:
  description: A fresh read after the change found the service running.
  type: bool
  returned: changed and not check mode
queue_before:
  description: Messages in the queue folders before the change.
  type: int
  returned: changed and not check mode
queue_after:
  description: Messages in the queue folders after the change.
  type: int
  returned: changed and not check mode
"""
