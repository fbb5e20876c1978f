# Copyright: mailflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fix one cause on one host (see plugins/modules/fix.py): arguments in, the fix lifecycle, result out."""
from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.mailflow.exchange.plugins.module_utils import causes, hostlock, knowledge, remediation
from ansible_collections.mailflow.exchange.plugins.plugin_utils.fix_lifecycle import FixOptions, FixRun
from ansible_collections.mailflow.exchange.plugins.plugin_utils.host_session import HostLost, HostSession

COMMON_ARGS = dict(
    allow_service_restart=dict(type="bool", default=False),
    change_id=dict(type="str"),
    backup_dir=dict(type="path", default="backups"),
    knowledge=dict(type="dict", default={}),
    lock_wait=dict(type="int", default=0),
)
UNMANAGED_GROUP = "mailflow_unmanaged"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True
    _supports_check_mode = True
    _supports_diff = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=dict(
            cause=dict(type="str", required=True, choices=list(causes.fixable("server"))),
            params=dict(type="dict", default={}),
            validate_only=dict(type="bool", default=False),
            **COMMON_ARGS,
        ))
        host = task_vars.get("inventory_hostname", "")
        cause = causes.module(args["cause"])
        try:
            params, facts = self._params(host, cause, args)
        except remediation.NeedsInput as exc:
            # Not an error until the fix has to run here: then it changes nothing and says what to set.
            result.update(changed=False, cause=args["cause"], needs_input=[exc.variable], msg=str(exc))
            if not args["validate_only"]:
                result["warnings"] = [f"{host}: {args['cause']}: needs input, nothing changed: {exc}"]
            return result
        if args["validate_only"]:  # playbooks check every host's inputs this way before any is contacted
            result.update(changed=False, cause=args["cause"], validated=True)
            return result
        if UNMANAGED_GROUP in (task_vars.get("group_names") or []):
            return self._unmanaged(result, host, cause, params)
        if not self._task.check_mode:
            # One run at a time changes a host: a second would take the first one's new values for the originals.
            try:
                hostlock.hold(args["backup_dir"], host, wait=args["lock_wait"], what=f"fix {args['cause']}")
            except hostlock.HostBusy as exc:
                raise AnsibleActionFail(f"{host}: {args['cause']}: not changed: {exc}") from exc
        opts = FixOptions(host=host, cause=args["cause"], backup_dir=args["backup_dir"], change_id=args["change_id"],
                          allow_service_restart=args["allow_service_restart"], check_mode=bool(self._task.check_mode),
                          diff=bool(self._play_context.diff))
        try:
            result.update(FixRun(cause, HostSession(self, host, task_vars), facts, params, opts).run())
        except HostLost as exc:
            # Lost before anything was changed. A failure, not "unreachable": playbooks stop this host's remaining
            # fixes on a failure, and an unreachable task would let them run on.
            result.update(failed=True, lost=True, changed=False, cause=args["cause"],
                          msg=f"{host}: {args['cause']}: no complete answer from the host before anything was changed ({exc})")
        return result

    def _params(self, host, cause, args):
        """The cause's own arguments (its declared spec, then its fix_params), and the knowledge it decides with."""
        spec = cause.CAUSE.fix.args
        checked = ArgumentSpecValidator(spec).validate(dict(args["params"]))
        if checked.error_messages:
            raise AnsibleActionFail(f"{host}: {args['cause']}: " + "; ".join(checked.error_messages))
        own = dict(checked.validated_parameters)
        try:
            overrides = cause.knowledge_from_args(own) if hasattr(cause, "knowledge_from_args") else {}
            user = args["knowledge"]
            facts = knowledge.load(knowledge.merge(overrides, user) if overrides else user)
            return cause.fix_params({**args, **own}, facts), facts
        except remediation.NeedsInput:
            raise
        except (remediation.FixError, knowledge.KnowledgeError) as exc:
            raise AnsibleActionFail(f"{host}: {exc}") from exc

    @staticmethod
    def _unmanaged(result, host, cause, params):
        """A host with no WinRM (mailflow_unmanaged) is never contacted: only what to do there by hand."""
        advice = cause.advice_unmanaged(host, params) if hasattr(cause, "advice_unmanaged") else [
            f"{host} is not managed (mailflow_unmanaged): nothing was read or changed there"]
        result.update(changed=False, cause=cause.CAUSE.id, changes=[], advice=advice, unmanaged=True,
                      warnings=[f"{host}: {cause.CAUSE.id}: {a}" for a in advice])
        return result
