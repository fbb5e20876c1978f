# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/fix.py on the controller
# (PowerShell 2.0 hosts cannot run Ansible's module wrapper).

DOCUMENTATION = r"""
module: fix
short_description: Fix one cause of stalled SMTP mail on one Exchange 2003 or Windows SMTP server
version_added: 0.2.0
description:
  - The lifecycle every server fix shares. It reads the host fresh (one WinRM command), plans what to change for
    O(cause) (the same logic and knowledge as the cause's detector), and in check mode stops there (with C(--diff),
    before and after).
  - Otherwise it writes a backup first (C(<backup_dir>/<change_id or UTC timestamp>/<host>/<cause>.json), with a
    C(.reg) export of prior registry values), applies every change in one command, verifies with a fresh read (a
    plan that comes back empty), and restores from the backup when verification fails.
  - A run that loses its host mid-change leaves its backup C(interrupted); the next run starts from that backup's
    original values, so it finishes the change or restores what was there before.
  - The fix roles (C(mailflow.exchange.fix_<cause>)) call it; each role's README and C(meta/argument_specs.yml) say
    what the cause's fix changes, why (with its KB sources) and what is unconfirmed, and map the role's variables
    onto O(params).
  - A host in the C(mailflow_unmanaged) group (no WinRM) is never contacted; the result carries advice only.
options:
  cause:
    description:
      - The cause to fix. Its module (C(plugins/module_utils/causes/<cause>.py)) declares the fix's order and arguments.
    type: str
    required: true
    choices: [metabase_corrupt, peer_smtp_unavailable, port25_blocked, smtp_banner_missing, smarthost_misconfigured,
              glitch_retry_short, stnef_legacy_peer, av_scans_iis_folders, sav_internet_email_autoprotect,
              smsmse_heuristics, greylist_hotfix_missing, ims_connection_leak]
  params:
    description:
      - The cause's own arguments, checked against the argument spec its module declares and then by its
        C(fix_params), whose errors name the role variable. C(glitch_retry_short) C(seconds); C(smtp_banner_missing)
        C(banner); C(smarthost_misconfigured) C(smarthost) (and C(expected), which it must equal);
        C(port25_blocked) C(scope); C(peer_smtp_unavailable) C(allow_enable_disabled); C(metabase_corrupt) C(allow_restore); C(stnef_legacy_peer) C(setting);
        C(av_scans_iis_folders) C(extra_folders); C(sav_internet_email_autoprotect) C(allow_reboot);
        C(greylist_hotfix_missing) C(package); C(ims_connection_leak) C(restart). See each role's README.
    type: dict
    default: {}
  validate_only:
    description: Check O(params) and O(knowledge) and return, contacting no host (the playbooks do this for every
      host before any is touched).
    type: bool
    default: false
  allow_service_restart:
    description:
      - Permission to restart the services the change needs restarted to take effect (queued messages are kept; the
        result counts them before and after). Without it no service is restarted and the result names the restart
        as pending.
    type: bool
    default: false
  change_id:
    description: The change this run belongs to; names the backup folder. Defaults to a UTC timestamp.
    type: str
  backup_dir:
    description: Controller folder for backups.
    type: path
    default: backups
  knowledge:
    description: Overrides merged over the knowledge file (the same the audit reads).
    type: dict
    default: {}
  lock_wait:
    description:
      - Seconds to wait when another run holds this host (its backups' lock, C(<backup_dir>/.locks/<host>.json)) before
        refusing, naming the holder. A run holds a host from its first change until its ansible-playbook process ends.
    type: int
    default: 0
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    support: full
    platforms: windows
seealso:
  - module: mailflow.exchange.fix_select
  - module: mailflow.exchange.fix_report
  - module: mailflow.exchange.restart_services
  - module: mailflow.exchange.rollback
author:
  - mailflow contributors (@mailflow)
"""

EXAMPLES = r"""
- name: Give greylisting peers time before the glitch retries run out
  mailflow.exchange.fix:
    cause: glitch_retry_short
    params:
      seconds: 180
    allow_service_restart: true
    change_id: CHG0042
"""

RETURN = r"""
cause:
  description: The cause this run fixed.
  type: str
  returned: always
  sample: glitch_retry_short
changes:
  description: What was (or, in check mode, would be) changed, one line each.
  type: list
  elements: str
  returned: always
  sample:
    - 'HKLM\SYSTEM\CurrentControlSet\Services\SMTPSVC\Queuing\GlitchRetrySeconds: REG_DWORD 30 -> REG_DWORD 180'
restart_needed:
  description: Services the planned changes need restarted.
  type: list
  elements: str
  returned: always
  sample:
    - SMTPSVC
reboot_possible:
  description: A planned change runs an installer that may ask for a reboot.
  type: bool
  returned: always
  sample: false
advice:
  description: What the fix reports but does not change (also given as warnings).
  type: list
  elements: str
  returned: when there is advice
  sample:
    - >-
      EXCH05 itself lets SMTP in: SMTPSVC running, bound to port 25; Windows Firewall: StandardProfile off. Where
      peers still cannot connect to EXCH05:25, the block is on the network path
backup:
  description: The backup file written before the change.
  type: str
  returned: changed and not check mode
  sample: /var/lib/mailflow/backups/CHG0042/EXCH05/glitch_retry_short.json
verified:
  description: A fresh read after the change found nothing left to change.
  type: bool
  returned: changed and not check mode
  sample: true
resumed_from:
  description: The unfinished backup of an earlier run this run started from.
  type: str
  returned: when an earlier run was interrupted
  sample: /var/lib/mailflow/backups/CHG0042/EXCH05/glitch_retry_short.json
pending_restart:
  description: Services that must restart for the change to take effect (restart not allowed).
  type: list
  elements: str
  returned: when a restart is needed and not allowed
  sample:
    - SMTPSVC
restarted:
  description: Services restarted for the change.
  type: list
  elements: str
  returned: when a restart was allowed and done
  sample:
    - SMTPSVC
pending_reboot:
  description: An installer asked for a reboot (exit code 3010).
  type: bool
  returned: when an installer asked for one
  sample: false
queue_before:
  description: Messages in the queue folders before the change.
  type: int
  returned: changed and not check mode
  sample: 412
queue_after:
  description: Messages in the queue folders after the change (and restart).
  type: int
  returned: changed and not check mode
  sample: 0
interrupted:
  description: The connection was lost mid-change; the backup is kept for the next run.
  type: bool
  returned: when the host was lost mid-change
needs_input:
  description:
    - The variables this host's fix needs and does not have (a smart host only the admin knows, say). Nothing was
      read or changed; the run goes on.
  type: list
  elements: str
  returned: when an input is missing
unmanaged:
  description: The host is in C(mailflow_unmanaged) and was not contacted.
  type: bool
  returned: for unmanaged hosts
"""
