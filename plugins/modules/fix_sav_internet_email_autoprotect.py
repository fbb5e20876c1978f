# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/fix_sav_internet_email_autoprotect.py
# on the controller (PowerShell 2.0 hosts cannot run Ansible's module wrapper).

DOCUMENTATION = r"""
module: fix_sav_internet_email_autoprotect
short_description: Remove Symantec AntiVirus Internet E-mail Auto-Protect from an SMTP server
version_added: 0.1.0
description:
  - Finds the Symantec AntiVirus feature whose Win32_SoftwareFeature caption is Internet E-mail Auto-Protect
    (knowledge C(sav_email_feature_captions); the feature's name is not published, so it is never guessed) and removes
    just that feature with C(msiexec /i {ProductCode} REMOVE=<Feature> /qn REBOOT=ReallySuppress).
    KB 919091 cause 1; Symantec says the feature should never run on an SMTP server.
  - Reads the feature states fresh (one WinRM command) and runs msiexec only for a feature that is installed
    (InstallState 1, 3 or 4); in check mode it reports what it would remove; with C(--diff) it shows the states.
  - Writes a backup first (C(<backup_dir>/<change_id or UTC timestamp>/<host>/sav_internet_email_autoprotect.json)),
    verifies with a fresh read that the feature is Absent (InstallState 2), and otherwise puts it back with
    C(msiexec ... ADDLOCAL=<Feature>) and fails. Putting it back may need the product's installation source.
  - Removing the feature's filter driver asks for a restart. msiexec exit code 3010 means success with a restart
    pending; the result then says C(pending_reboot). The server is never restarted unless O(allow_reboot) is true.
options:
  allow_reboot:
    description:
      - Let msiexec restart the server when it needs to (no C(REBOOT=ReallySuppress)). The restart may cut the
        verifying read short; the backup is kept and the next run finishes the check.
    type: bool
    default: false
  allow_service_restart:
    description: Not used by this fix (no service restart is needed); accepted like every fix.
  knowledge:
    description: Overrides merged over the knowledge file (for example other feature captions).
extends_documentation_fragment:
  - mailflow.exchange.fix
author:
  - mailflow contributors
"""

EXAMPLES = r"""
- name: Remove Internet E-mail Auto-Protect, restart later in a maintenance window
  mailflow.exchange.fix_sav_internet_email_autoprotect:
    change_id: CHG0042
"""

RETURN = r"""
changes:
  description: The features removed (or, in check mode, that would be).
  type: list
  elements: str
  returned: always
backup:
  description: The backup file written before the change.
  type: str
  returned: changed and not check mode
verified:
  description: A fresh read after msiexec found the feature Absent.
  type: bool
  returned: changed and not check mode
pending_reboot:
  description: msiexec returned 3010; the removal completes at the next restart.
  type: bool
  returned: when a restart is pending
advice:
  description: What the fix reports but does not do (a feature it cannot remove; what a restore needs).
  type: list
  elements: str
  returned: when there is any
"""
