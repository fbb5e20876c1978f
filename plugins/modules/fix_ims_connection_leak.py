# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/fix_ims_connection_leak.py
# on the controller (PowerShell 2.0 hosts cannot run Ansible's module wrapper).

DOCUMENTATION = r"""
module: fix_ims_connection_leak
short_description: Advise on the Exchange 5.x IMS connection leak (Q175982); optionally restart MSExchangeIMC as a stop-gap
version_added: 0.1.0
description:
  - Report-only. The leak is fixed by an Exchange 5.x service pack (Q175982, "corrected in the latest U.S. Service Pack";
    the first fixed build per version is knowledge C(detect.ims_leak_fixed_builds)), which this module does not install.
    It reads the IMS service, the Exchange build and the connection table fresh (one WinRM command) and returns
    C(advice).
  - As a stop-gap, with O(restart) and O(allow_service_restart) both true, it restarts the Internet Mail Service
    (C(MSExchangeIMC)) while the leak's signature is seen (at least C(detect.ims_leak_min_connections) ESTABLISHED
    connections to remote port 25), then reads again and verifies fewer are left. A running service set to Disabled is
    never restarted (it would stay stopped).
  - A restart cannot be undone. When the verifying read still sees the connections, or the service does not come back,
    the task fails saying so; the backup JSON records the restart.
  - On a host in C(mailflow_unmanaged) (Exchange 5.5 on Windows NT/2000 has no WinRM) it does not connect at all and
    only returns C(advice) for doing the same by hand. C(playbooks/fix.yml) targets C(mailflow_servers) only.
options:
  restart:
    description: Restart MSExchangeIMC as a stop-gap while the leak's signature is seen (also needs O(allow_service_restart)).
    type: bool
    default: false
  allow_service_restart:
    description: Permission for any service restart; without it a wanted restart is reported as pending in C(advice).
extends_documentation_fragment:
  - mailflow.exchange.fix
author:
  - mailflow contributors
"""

EXAMPLES = r"""
- name: Restart a leaking Exchange 5.5 IMS until the service pack is in
  mailflow.exchange.fix_ims_connection_leak:
    restart: true
    allow_service_restart: true
"""

RETURN = r"""
changes:
  description: The restart done (or, in check mode, that would be done).
  type: list
  elements: str
  returned: always
advice:
  description: The service pack to install, and the state of the stop-gap.
  type: list
  elements: str
  returned: when there is advice
unmanaged:
  description: The host is in mailflow_unmanaged; nothing was read or changed.
  type: bool
  returned: for unmanaged hosts
backup:
  description: The backup file written before the restart.
  type: str
  returned: changed and not check mode
verified:
  description: A fresh read after the restart sees fewer ESTABLISHED connections to port 25 than the leak threshold.
  type: bool
  returned: changed and not check mode
"""
