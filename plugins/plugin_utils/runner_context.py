# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an action plugin hands the runner besides the operations: the request context (AD credentials, WMI
timeout) and the per-command limits, from the host's variables; and the execute() callable psrunner.run()
drives over the host's own connection.

AD credentials: mailflow_ad_username / mailflow_ad_password, by default the host's WinRM credentials
(ansible_user / ansible_password, as the connection resolved them). They travel only inside the encoded
request on stdin: never on the command line, in a result, an error or a report. An empty mailflow_ad_username
binds as the WinRM logon itself (Kerberos with delegation, CredSSP; docs/runner.md).
"""
from __future__ import annotations

from ansible.errors import AnsibleActionFail, AnsibleError

from ansible_collections.mailflow.exchange.plugins.module_utils import psrunner

_UNSET = object()


def host_var(action, task_vars: dict, name: str, default=_UNSET):
    """A host variable, templated (a vaulted or templated value arrives as what it stands for)."""
    if name not in task_vars:
        return None if default is _UNSET else default
    return action._templar.template(task_vars[name])


def _connection_option(action, name: str) -> str:
    try:
        return str(action._connection.get_option(name) or "")
    except Exception:  # a connection without the option (local, tests)
        return ""


def context(action, task_vars: dict) -> psrunner.Context:
    host = task_vars.get("inventory_hostname", "")
    user = host_var(action, task_vars, "mailflow_ad_username")
    password = host_var(action, task_vars, "mailflow_ad_password")
    if user is None:
        user = _connection_option(action, "remote_user")
        if password is None:
            password = _connection_option(action, "remote_password")
    timeout = host_var(action, task_vars, "mailflow_wmi_timeout_seconds", psrunner.DEFAULT_WMI_TIMEOUT)
    try:
        timeout = int(timeout)
        if not 1 <= timeout <= 3600:
            raise ValueError
    except (TypeError, ValueError):
        raise AnsibleActionFail(f"{host}: mailflow_wmi_timeout_seconds must be a whole number of seconds, 1-3600, "
                                f"got {timeout!r}") from None
    if not isinstance(user, str) or not isinstance(password or "", str):
        raise AnsibleActionFail(f"{host}: mailflow_ad_username and mailflow_ad_password must be strings")
    return psrunner.Context(ad_username=user, ad_password=password or "", wmi_timeout=timeout)


def limits(action, task_vars: dict) -> psrunner.Limits:
    host = task_vars.get("inventory_hostname", "")
    values = {}
    for var, key, low in (("mailflow_winrm_max_envelope_kb", "max_envelope_kb", 64),
                          ("mailflow_probes_per_command", "max_probes", 1)):
        raw = host_var(action, task_vars, var, getattr(psrunner.Limits, key))
        try:
            values[key] = int(raw)
            if values[key] < low:
                raise ValueError
        except (TypeError, ValueError):
            raise AnsibleActionFail(f"{host}: {var} must be a whole number of at least {low}, got {raw!r}") from None
    return psrunner.Limits(**values)


def executor(action):
    """execute(command line, stdin) over the action's own connection: what psrunner.run() drives.

    ansible-core's winrm plugin raises "winrm send_input failed" when WinRM refused the stdin (HTTP 413 over
    MaxEnvelopeSizekb); that becomes a RunnerError naming the size and the variable that bounds it."""
    def execute(cmd: str, stdin: bytes) -> dict:
        try:
            return action._low_level_execute_command(cmd, in_data=stdin, sudoable=False)
        except AnsibleError as exc:
            if "send_input failed" not in str(exc):
                raise
            raise psrunner.RunnerError(
                f"WinRM did not take the command's {len(stdin)} bytes of stdin (is the host's MaxEnvelopeSizekb below "
                f"mailflow_winrm_max_envelope_kb?): {str(exc).splitlines()[0]}",
                {"stdout": "", "stderr": str(exc), "rc": -1}) from None
    return execute


def ad_bind(ctx: psrunner.Context) -> str:
    """How LDAP binds, for the snapshot's transport record (never the account's password)."""
    return "explicit" if ctx.ad_username else "process"
