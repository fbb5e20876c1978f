# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/fix_greylist_hotfix_missing.py
# on the controller (PowerShell 2.0 hosts cannot run Ansible's module wrapper).

DOCUMENTATION = r"""
module: fix_greylist_hotfix_missing
short_description: Install the greylisting hotfix (KB 950757 on Exchange 2003, KB 934709 on a Windows 2003 SMTP relay) from a package you give
version_added: 0.1.0
description:
  - Reads C(Win32_QuickFixEngineering) fresh (one WinRM command), the way the audit does, and decides which hotfix the
    host can take - KB 950757 on Exchange Server 2003, KB 934709 on a Windows Server 2003 SMTP relay without Exchange
    (KB 934709 "does not apply to Windows 2003 servers that are running Exchange").
  - Without O(package) it changes nothing and returns C(advice) saying what is missing and how to supply it.
  - With O(package) and the hotfix missing, it runs the package quietly without a restart - an C(.exe) with
    C(/quiet /norestart) (knowledge C(detect.greylist_hotfix_install_args), KB 262841), an C(.msp) with
    C(msiexec /p <package> /qn REBOOT=ReallySuppress) - then reads again and verifies the KB is listed.
  - Exit code 3010 means installed with a restart pending; the result says C(pending_reboot). The host is never restarted.
  - A hotfix cannot be taken back by this module (its own uninstaller is for an admin). When the verifying read does not
    list the KB, the task fails saying the package ran and was not undone; the backup JSON records what ran.
  - Messages already held by the defect stay held until SMTPSVC restarts (KB 950757, KB 934709); it restarts SMTPSVC
    after installing only when O(allow_service_restart) is true, otherwise the result says C(pending_restart).
options:
  package:
    description:
      - Local (C(C:\Hotfixes\Exchange2003-KB950757-x86-ENU.exe)) or UNC (C(\\fileserver\share\WindowsServer2003-KB934709-x86-ENU.exe))
        path of the hotfix package, as the host sees it. Must end in C(.exe) or C(.msp), carry the KB number in its file
        name, and contain no quotes, wildcards or line breaks.
      - A UNC path is opened by the host from its WinRM session; with NTLM or Kerberos without delegation that session
        cannot authenticate to a file server (the second hop), so copy the package to the host or use CredSSP.
      - Empty means report-only.
    type: str
    default: ""
  allow_service_restart:
    description: Restart SMTPSVC after installing, releasing the messages the defect held.
extends_documentation_fragment:
  - mailflow.exchange.fix
author:
  - mailflow contributors
"""

EXAMPLES = r"""
- name: Install KB 950757 on an Exchange 2003 server from a local copy
  mailflow.exchange.fix_greylist_hotfix_missing:
    package: C:\Hotfixes\Exchange2003-KB950757-x86-ENU.exe
"""

RETURN = r"""
changes:
  description: What was (or, in check mode, would be) installed.
  type: list
  elements: str
  returned: always
advice:
  description: What is missing and not installed by this run (no package given, or a package for another KB).
  type: list
  elements: str
  returned: when there is advice
backup:
  description: The backup file written before the package ran.
  type: str
  returned: changed and not check mode
verified:
  description: A fresh read after installing lists the KB in Win32_QuickFixEngineering.
  type: bool
  returned: changed and not check mode
pending_reboot:
  description: The installer exited 3010 (installed, restart pending).
  type: bool
  returned: when the installer asked for a restart
pending_restart:
  description: SMTPSVC must restart to release messages already held.
  type: list
  elements: str
  returned: when a restart is needed and not allowed
"""
