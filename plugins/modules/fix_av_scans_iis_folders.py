# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/fix_av_scans_iis_folders.py
# on the controller (PowerShell 2.0 hosts cannot run Ansible's module wrapper).

DOCUMENTATION = r"""
module: fix_av_scans_iis_folders
short_description: Exclude the IIS, SMTP and Exchange folders from Symantec AntiVirus real-time scanning
version_added: 0.1.0
description:
  - Symantec AntiVirus Corporate Edition only (the product the audit inspects). Sets C(HaveExceptionDirs) to 1
    under C(HKLM\SOFTWARE\Intel\LANDesk\VirusProtect6\CurrentVersion\Storages\Filesystem\RealTimeScan) when it is 0 or
    missing (ExBPA aa997602 - 0 means folder exclusions are off), and adds each folder of knowledge
    C(av_exclusion_folders) (C(%SystemRoot%\system32\inetsrv), C(\Inetpub), C(\Exchsrvr\Mailroot); KB 245822,
    KB 328841, field notes 002) and, on Exchange, C(av_exchange_exclusion_folders) (C(\Exchsrvr\Mdbdata),
    C(\Exchsrvr\Mtadata)) that the exclusion list does not have yet, one registry value each.
  - On SAV 10.1 on Exchange, which creates the Exchange exclusions itself (Symantec TECH101713), it only turns
    folder exclusions on.
  - B(How SAV lists a folder exclusion in the registry is not confirmed.) The default (knowledge
    C(sav_exclusion_entry)) writes one value per folder, named by the folder's full path, REG_DWORD 1, under
    C(RealTimeScan\FileExceptions); while that default is used the result carries a warning that says so.
  - Reads fresh (one WinRM command), changes only what is missing, supports check mode and C(--diff), backs up
    first (JSON and C(.reg)), verifies with a fresh read and restores the backup when verification fails.
  - The Symantec AntiVirus service restarts only when O(allow_service_restart) is true, otherwise the result says
    C(pending_restart).
options:
  extra_folders:
    description: More folders to exclude, as full local paths (for example Exchange databases on another drive).
    type: list
    elements: str
    default: []
  allow_service_restart:
    description: Restart the Symantec AntiVirus service so it reads the new exclusions.
  knowledge:
    description:
      - Overrides merged over the knowledge file; C(detect.sav_exclusion_entry.value) (C(subkey), C(type),
        C(data)) says how your SAV build lists a folder exclusion.
extends_documentation_fragment:
  - mailflow.exchange.fix
author:
  - mailflow contributors
"""

EXAMPLES = r"""
- name: Exclude the IIS and SMTP folders, and the databases on drive D
  mailflow.exchange.fix_av_scans_iis_folders:
    extra_folders: ['D:\Exchsrvr\Mdbdata']
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
  description: A fresh read after the change found the switch on and every folder listed.
  type: bool
  returned: changed and not check mode
pending_restart:
  description: Services that must restart for the change to take effect (restart not allowed).
  type: list
  elements: str
  returned: when a restart is needed and not allowed
advice:
  description: The unconfirmed-layout warning, folders that could not be placed, and the managed-client note.
  type: list
  elements: str
  returned: when there is any
"""
