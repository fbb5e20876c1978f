# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/fix_smtp_banner_missing.py
# on the controller (PowerShell 2.0 hosts cannot run Ansible's module wrapper).

DOCUMENTATION = r"""
module: fix_smtp_banner_missing
short_description: Give an SMTP virtual server with an empty ConnectResponse a banner again
version_added: 0.1.0
description:
  - KB 919091 cause 4, a server that accepts TCP 25 but sends no SMTP banner. Resolution 4 is to "edit the metabase to
    configure an SMTP banner" (KB 281224). An empty C(ConnectResponse) at C(/LM/SmtpSvc/<n>) leaves SMTP mute.
  - Sets C(ConnectResponse) through ADSI (C(IIS://localhost/SMTPSVC/<n>), what C(adsutil.vbs set smtpsvc/<n>/ConnectResponse)
    writes) on every SMTP virtual server where it is set but empty, then calls C(SaveData) so C(MetaBase.xml) holds it.
    A virtual server without a ConnectResponse sends the default banner and is left alone.
  - Reads the metabase fresh (one WinRM command) and changes only what is empty; in check mode it reports what it would
    change; with C(--diff) it shows before and after.
  - Writes a backup first (C(<backup_dir>/<change_id or UTC timestamp>/<host>/smtp_banner_missing.json)), verifies by
    reading C(MetaBase.xml) again, and puts the empty value back when verification fails.
  - Admin guides restart SMTPSVC after setting ConnectResponse and no Microsoft text says SMTP rereads it live, so the
    change asks for an SMTPSVC restart; it restarts only when O(allow_service_restart) is true, otherwise the result
    says C(pending_restart).
options:
  banner:
    description:
      - The banner text, one line of printable ASCII (no CR or LF), at most 250 characters, not only spaces.
      - Whether IIS puts C(220) (and the host name) before it is not confirmed; public scripts set text without C(220).
    type: str
    required: true
  allow_service_restart:
    description: Restart SMTPSVC so the banner takes effect (queued messages are kept; the result counts them before and after).
extends_documentation_fragment:
  - mailflow.exchange.fix
author:
  - mailflow contributors
"""

EXAMPLES = r"""
- name: Give a mute SMTP virtual server its banner back
  mailflow.exchange.fix_smtp_banner_missing:
    banner: "exch06.corp.example Microsoft ESMTP MAIL Service ready"
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
  description: A fresh read of MetaBase.xml after the change found no empty ConnectResponse left.
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
