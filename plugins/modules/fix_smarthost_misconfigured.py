# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/fix_smarthost_misconfigured.py
# on the controller (PowerShell 2.0 hosts cannot run Ansible's module wrapper).

DOCUMENTATION = r"""
module: fix_smarthost_misconfigured
short_description: Set the smart host of an Exchange 2003 (or Windows SMTP) virtual server
version_added: 0.1.0
description:
  - Exchange 2000/2003 keep the smart host in Active Directory, C(msExchSmtpSmartHost) on the SMTP virtual server object
    (C(CN=<n>,CN=SMTP,CN=Protocols,CN=<server>,...)); System Attendant's DS2MB copies it into the metabase's C(SmartHost),
    which SMTP reads ("the IIS metabase replicates this information from Active Directory, but not vice versa", KB 321757).
    This sets the AD attribute on every virtual server of the host whose smart host differs from O(smarthost).
    A Windows SMTP relay without Exchange has only the metabase; there it sets C(IIS://localhost/SMTPSVC/<n>) C(SmartHost).
  - O(smarthost) is checked against KB 821911 before any host is touched.
  - Reads fresh (one WinRM command), changes only what differs; in check mode it reports what it would change; with
    C(--diff) it shows before and after. Writes a backup first (C(<backup_dir>/<change_id or UTC timestamp>/<host>/smarthost_misconfigured.json)).
  - Verifying. The value written is read back at once. On Exchange the metabase follows when DS2MB runs - when System
    Attendant starts, and within about 15 seconds of the change reaching its configuration domain controller (TechNet
    aa996727); the lab runs it when SMTPSVC starts. With O(allow_service_restart) the fix restarts SMTPSVC and also
    checks the metabase's C(SmartHost); a value DS2MB did not copy fails the task and AD is restored. Without it, AD is
    verified, the result says C(pending_restart), and C(advice) says the metabase is behind; a later run with restarts
    allowed restarts SMTPSVC for it.
  - C(advice) also names virtual servers whose C(SmartHostType) is 0 (no smart host), where SMTP does not use the smart host.
options:
  smarthost:
    description:
      - The smart host, as KB 821911 writes it - a fully qualified domain name (C(relay.example.com)) or an IPv4 address
        in brackets (C([10.0.0.25]), which bypasses DNS); several separated by C(;), FQDNs before IP addresses.
    type: str
    required: true
  allow_service_restart:
    description: Restart SMTPSVC so DS2MB copies the value into the metabase now, and verify that it did.
extends_documentation_fragment:
  - mailflow.exchange.fix
author:
  - mailflow contributors
"""

EXAMPLES = r"""
- name: Route outbound mail through the relay, by IP address (no DNS lookup)
  mailflow.exchange.fix_smarthost_misconfigured:
    smarthost: "[10.20.0.25]"
    allow_service_restart: true
"""

RETURN = r"""
changes:
  description: What was (or, in check mode, would be) changed.
  type: list
  elements: str
  returned: always
advice:
  description: What the fix reports but does not change (a metabase DS2MB has not caught up with, SmartHostType 0).
  type: list
  elements: str
  returned: when there is any
backup:
  description: The backup file written before the change.
  type: str
  returned: changed and not check mode
verified:
  description: A fresh read found the smart host in AD (and, after a restart, in the metabase).
  type: bool
  returned: changed and not check mode
pending_restart:
  description: Services that must restart for the change to reach the metabase (restart not allowed).
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
