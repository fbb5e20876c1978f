# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/fix_port25_blocked.py
# on the controller (PowerShell 2.0 hosts cannot run Ansible's module wrapper).

DOCUMENTATION = r"""
module: fix_port25_blocked
short_description: Open TCP 25 in a Windows Server 2003 firewall, or report a network block of it
version_added: 0.1.0
description:
  - Where the host's own Windows Firewall (Server 2003 SP1 and later) is on in a profile without TCP 25 open
    (no enabled C(25:TCP) under C(GloballyOpenPorts\List), and C(inetinfo.exe), which hosts SMTP, not an enabled
    authorized application), opens it with C(netsh firewall add portopening protocol=TCP port=25 name=SMTP
    mode=ENABLE scope=... profile=DOMAIN|STANDARD), once per profile that blocks. A disabled opening is enabled
    with its own name and scope; a new one gets O(scope).
  - Otherwise changes nothing; its C(advice) is this host's side of the evidence for the network team (SMTP
    running and bound to port 25, the firewall letting TCP 25 in). A fix reads only its own host, so which
    senders are blocked is in the audit's C(port25_blocked) finding, not here.
  - Reads fresh (one WinRM command), backs up, verifies with a fresh read, and deletes or re-disables the opening
    when verification fails. Check mode and C(--diff) are supported.
options:
  scope:
    description:
      - Who may connect to the new opening. C(*) (any computer), C(LocalSubnet), or a comma-separated list of
        IPv4 addresses, C(address/prefix), C(address/mask) and the keyword C(LocalSubnet), as netsh firewall's
        custom scope takes them (no loopback, no 0.0.0.0). It must include every server that sends to this one.
    type: str
    default: "*"
  allow_service_restart:
    description: Not used by this fix (the firewall applies a new opening at once).
extends_documentation_fragment:
  - mailflow.exchange.fix
author:
  - mailflow contributors
"""

EXAMPLES = r"""
- name: Let the organisation's mail servers reach port 25
  mailflow.exchange.fix_port25_blocked:
    scope: "10.1.0.0/16,10.2.0.0/255.255.0.0,LocalSubnet"
"""

RETURN = r"""
changes:
  description: What was (or, in check mode, would be) changed.
  type: list
  elements: str
  returned: always
advice:
  description: The network evidence from this host when its own firewall is not the blocker.
  type: list
  elements: str
  returned: when there is any
backup:
  description: The backup file written before the change.
  type: str
  returned: changed and not check mode
verified:
  description: A fresh read after the change found TCP 25 open in every profile that is on.
  type: bool
  returned: changed and not check mode
"""
