# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""state: where mailflow keeps what must outlive a run - reports, backups, change records."""
from __future__ import annotations

DOCUMENTATION = r"""
name: state
short_description: Where mailflow keeps reports, backups and change records
version_added: 0.2.0
description:
  - One root for everything a run leaves behind that a later run needs (the backups C(rollback.yml) restores from,
    the change records, the audit reports and saved snapshots) - C(mailflow_state_dir), else the environment
    variable C(MAILFLOW_STATE_DIR), else the current directory (as before there was a root).
  - C(reports) is C(mailflow_report_root), else C(<root>/reports); C(backups) is C(mailflow_backup_dir), else
    C(<root>/backups); C(records) (where C(changes/<change id>/) go) is C(mailflow_record_root), else the reports
    folder.
  - Under ansible-runner (AWX, Automation Platform, C(ansible-runner run)) the working directory is the job's
    project folder, which is thrown away after the job. A relative location is warned about there; give
    C(mailflow_state_dir) an absolute path on a persistent volume (see the collection's docs/awx.md).
  - The playbooks and roles of mailflow.exchange read every such path through this lookup.
options:
  _terms:
    description: Which location(s) - C(reports), C(backups), C(records) or C(root).
    type: list
    elements: str
    required: true
  mailflow_state_dir:
    description: The root (kept as given; a relative root is relative to the working directory).
    type: str
    vars:
      - name: mailflow_state_dir
    env:
      - name: MAILFLOW_STATE_DIR
notes:
  - ansible-runner is recognised by the C(AWX_ISOLATED_DATA_DIR) environment variable it sets for every run.
seealso:
  - module: mailflow.exchange.audit_fleet
  - module: mailflow.exchange.rollback
author:
  - mailflow contributors (@mailflow)
"""

EXAMPLES = r"""
- name: Back up under the state root
  mailflow.exchange.fix:
    cause: glitch_retry_short
    backup_dir: "{{ lookup('mailflow.exchange.state', 'backups') }}"
"""

RETURN = r"""
_raw:
  description: The path of each location asked for, in order (relative paths are relative to the working directory).
  type: list
  elements: path
  sample: [/var/lib/mailflow/backups]
"""

import os

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

display = Display()

# location -> (the variable that sets it alone, its folder under the root)
_LOCATIONS = {"reports": ("mailflow_report_root", "reports"), "backups": ("mailflow_backup_dir", "backups")}


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        variables = variables or {}
        self.set_options(var_options=variables, direct=kwargs)
        root = self.get_option("mailflow_state_dir") or ""
        out = []
        for term in terms:
            if term == "root":
                path = root or "."
            elif term == "records":
                path = self._explicit("mailflow_record_root", variables) or self._location("reports", root, variables)
            elif term in _LOCATIONS:
                path = self._location(term, root, variables)
            else:
                raise AnsibleLookupError(f"mailflow.exchange.state: unknown location {term!r} (reports, backups, records, root)")
            if not os.path.isabs(path) and os.environ.get("AWX_ISOLATED_DATA_DIR"):
                display.warning(
                    f"mailflow keeps reports, backups and change records under {root or 'the working directory'!r}, "
                    "relative to this job's working directory, which ansible-runner (AWX) discards after the job: "
                    "set mailflow_state_dir to an absolute path on a persistent volume, or rollback.yml will not "
                    "find the backups.")
            out.append(path)
        return out

    def _location(self, term, root, variables):
        var, folder = _LOCATIONS[term]
        return self._explicit(var, variables) or os.path.join(root, folder)

    def _explicit(self, var, variables):
        value = variables.get(var)
        if value in (None, ""):
            return None
        value = self._templar.template(value)
        if not isinstance(value, str) or not value:
            raise AnsibleLookupError(f"{var} must be a path (got {value!r})")
        return value
