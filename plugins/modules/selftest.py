# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file only documents the module; the work is done by plugins/action/selftest.py
# on the controller (PowerShell 2.0 hosts cannot run Ansible's module wrapper).

DOCUMENTATION = r"""
module: selftest
short_description: Try every operation mailflow's audit and fixes read with on a Windows Server 2003 host
version_added: 0.1.0
description:
  - The pilot self-test of a new estate, run before the first audit (C(playbooks/selftest.yml)). In one WinRM command it
    tries, against something every such host has, each operation the audit and the fixes read with - the request
    arriving whole on stdin, a registry key, WMI with its timeout (the computer and Exchange's queue provider), LDAP
    for the Exchange server objects as C(mailflow_ad_username), an IIS ADSI read, the Application event log,
    MetaBase.xml read in chunks, a folder listing, Windows Installer features, services, TCP connections, and an SMTP
    probe of the host's own port 25 - and returns one row per check, ok or failed with the exact error and what to do.
  - The request is padded to the largest stdin the runner ever sends in one command, so WinRM's C(MaxEnvelopeSizekb)
    is tried too. When nothing at all comes back, a second, small command tells a refused size from a host that runs
    nothing.
  - Read-only. The writes the fixes make (registry, AD and metabase values, services, file copies, programs) are not
    tried.
  - Fails when a check the audit needs failed; the rows say which and why.
options:
  knowledge:
    description: Overrides merged over the knowledge file (where MetaBase.xml is, the MSI product pattern, the probe). Defaults to C(mailflow_knowledge).
    type: dict
    default: {}
  target:
    description: How peers reach this host's SMTP, for the probe of its own port 25. Defaults to C(mailflow_fqdn), else C(ansible_host), else the inventory name.
    type: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: windows
notes:
  - Honours C(mailflow_ad_username) / C(mailflow_ad_password), C(mailflow_winrm_max_envelope_kb), C(mailflow_probes_per_command)
    and C(mailflow_wmi_timeout_seconds) as the audit does (docs/runner.md).
author:
  - mailflow contributors
"""

EXAMPLES = r"""
- name: Self-test this host
  mailflow.exchange.selftest:
  register: mailflow_selftest
  ignore_errors: true
"""

RETURN = r"""
rows:
  description: One row per check, in a fixed order.
  returned: always
  type: list
  elements: dict
  contains:
    check: {description: "The check: stdin, request_size, runtime, registry, wmi, exchange_wmi, ldap, iis_adsi, eventlog, metabase, files, msi, services, tcp, probe.", type: str}
    what: {description: What it tries., type: str}
    needed_by: {description: C(audit) or C(fixes)., type: str}
    status: {description: "C(ok), C(warn), C(failed), C(n/a) or C(not run).", type: str}
    detail: {description: What came back (the exact error when it failed)., type: str}
    todo: {description: What to do when it is not ok., type: str}
status:
  description: C(failed) when a check the audit needs failed, C(warn) when something else did, else C(ok).
  returned: always
  type: str
transport:
  description: The bytes of stdin sent in one command, the envelope they were sized for, and the commands used.
  returned: always
  type: dict
"""
