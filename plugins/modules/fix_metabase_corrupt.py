# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/fix_metabase_corrupt.py
# on the controller (PowerShell 2.0 hosts cannot run Ansible's module wrapper).

DOCUMENTATION = r"""
module: fix_metabase_corrupt
short_description: Restore a damaged IIS 6 metabase from its newest usable History pair
version_added: 0.1.0
description:
  - Where C(%SystemRoot%\system32\inetsrv\MetaBase.xml) does not parse, or lacks C(/LM/SmtpSvc) or any SMTP
    virtual server, restores the newest pair C(History\MetaBase_<major>_<minor>.xml) + C(MBSchema_<major>_<minor>.xml)
    that is usable here, as TechNet cc738704 does it by hand (stop IIS, keep copies of the current files, copy the
    pair back, start IIS).
  - A pair is usable when its MetaBase parses and has the SMTP keys, its C(HistoryMajorVersionNumber) matches its
    name, the IIS accounts it names (C(IUSR_<computer>), C(IWAM_<computer>)) are this computer's, and its MBSchema
    parses. History is usable only on the installation that wrote it (IIS 6 docs); the machine key itself cannot be
    checked from outside, so this is the check that can be made.
  - The running IIS Admin dependents (knowledge C(iisadmin_dependents)) and IIS Admin are stopped, the file is
    copied (the replaced one kept next to it as C(MetaBase.corrupt-<UTC time>.xml)), and the services that ran are
    started again. MBSchema.xml is replaced too, in its own stop/start, unless it already equals the pair's.
  - Only when O(allow_restore) is true; otherwise changes nothing and its C(advice) names the pair it would restore.
  - The candidates are read in a second WinRM command (their names come from the first); only while MetaBase.xml
    is damaged. Verified by a fresh read (the metabase parses and has the SMTP keys); on failure the kept files
    are copied back the same way.
options:
  allow_restore:
    description: Restore the pair. It puts the whole IIS configuration back to the pair's time.
    type: bool
    default: false
  allow_service_restart:
    description: Not used by this fix (the services are stopped and started around the copy as the restore itself).
extends_documentation_fragment:
  - mailflow.exchange.fix
author:
  - mailflow contributors
"""

EXAMPLES = r"""
- name: Put back the last good metabase
  mailflow.exchange.fix_metabase_corrupt:
    allow_restore: true
"""

RETURN = r"""
changes:
  description: What was (or, in check mode, would be) changed.
  type: list
  elements: str
  returned: always
advice:
  description: The pair it would restore, newer history it skipped and why, or where to turn when none is usable.
  type: list
  elements: str
  returned: when there is any
backup:
  description: The backup file written before the change.
  type: str
  returned: changed and not check mode
verified:
  description: A fresh read after the restore found MetaBase.xml parsing, with its SMTP keys.
  type: bool
  returned: changed and not check mode
queue_before:
  description: Messages in the queue folders before the restore.
  type: int
  returned: changed and not check mode
queue_after:
  description: Messages in the queue folders after the restore.
  type: int
  returned: changed and not check mode
"""
