"""The kinds of change a fix makes: how each is applied, undone, described, and read back for a rollback.

Change.kind names one of KINDS. Pure: each builds runner operations and reads
their results; nothing here runs anything.
"""
from __future__ import annotations

import hashlib
from typing import Any

from ansible_collections.mailflow.exchange.plugins.module_utils import metabase
from ansible_collections.mailflow.exchange.plugins.module_utils.psrunner import FILE_CHUNK_BYTES, REG_KIND_TO_TYPE, Op, OpResult
from ansible_collections.mailflow.exchange.plugins.module_utils.remediation import (
    _START_MODE_ACTION, PROCESS_WAIT_SECONDS, REG_TYPE_TO_KIND, SERVICE_WAIT_SECONDS, Change, FixError)
# The snapshot's own decoding of a result (DWORDs unsigned, files as text), so a rollback's reading of the
# current value is the same as the reading the fix's `before` and `after` came from.
from ansible_collections.mailflow.exchange.plugins.module_utils.snapshot import _decode as decode_result
from ansible_collections.mailflow.exchange.plugins.module_utils.snapshot import reg_data


def _reg_text(value: dict) -> str:
    """The runner's wire form of registry data: decimal for DWORD/QWORD, NUL-joined multi-strings, hex binary."""
    data = value["data"]
    if value["type"] == "REG_MULTI_SZ":
        return "\0".join(data)
    return str(data)


class _Kind:
    reversible = True

    def name(self, c: Change) -> str:
        raise NotImplementedError

    def show(self, c: Change, value: Any) -> str:
        return str(value)

    def apply(self, c: Change) -> list[Op]:
        raise NotImplementedError

    def restore(self, c: Change) -> list[Op]:
        return self.apply(Change(c.kind, c.target, c.after, c.before))

    def prev(self, c: Change, prev: dict) -> None:
        """Record what the host reported it replaced."""

    # -- for a rollback: read the item's current value, recorded like `before` and `after`, and compare
    def read_ops(self, c: Change, facts: dict) -> list[Op]:
        """What to read to know the item's current value (nothing for a change that cannot be undone)."""
        return []

    def current(self, c: Change, results: list[OpResult]) -> Any:
        """The current value from the results of read_ops, in the form of `before`/`after`; FixError when unread."""
        raise FixError(f"{self.name(c)}: the current value cannot be read")

    def same(self, c: Change, a: Any, b: Any) -> bool:
        return a == b


class RegistryValue(_Kind):
    """target {path, name}; values {"exists", "type", "data"}."""

    def name(self, c):
        return f"{c.target['path']}\\{c.target['name']}"

    def show(self, c, value):
        return f"{value['type']} {value['data']!r}" if value.get("exists", True) and "data" in value else "(absent)"

    def apply(self, c):
        return [Op("reg_write", (c.target["path"], c.target["name"], REG_TYPE_TO_KIND[c.after["type"]], _reg_text(c.after)))]

    def restore(self, c):
        if not c.before.get("exists"):
            ops = [Op("reg_delete", (c.target["path"], c.target["name"]))]
            created = c.before.get("created")
            if created and _holds(created, c.target["path"]):  # the write made this key: take it back while empty
                ops.append(Op("reg_prune", (c.target["path"], created)))
            return ops
        return [Op("reg_write", (c.target["path"], c.target["name"], REG_TYPE_TO_KIND[c.before["type"]], _reg_text(c.before)))]

    def prev(self, c, prev):
        if prev.get("existed") in (1, True):
            rtype = REG_KIND_TO_TYPE.get(prev.get("type"), prev.get("type"))
            # As the snapshot decodes it: a REG_BINARY as hex and a REG_MULTI_SZ as a list, which is what a
            # restore writes back (and JSON can hold).
            c.before = {"exists": True, "type": rtype, "data": reg_data(rtype, prev.get("data"))}
        elif prev.get("created"):
            c.before = {"exists": False, "created": str(prev["created"])}
        else:
            c.before = {"exists": False}

    def read_ops(self, c, facts):
        return [Op("reg_read", (c.target["path"], "0"))]

    def current(self, c, results):
        keys = _decoded(self, c, results[0])
        key = next((e for p, e in (keys or {}).items() if p.lower() == c.target["path"].lower()), None)
        value = next((v for n, v in (key or {}).get("values", {}).items() if n.lower() == c.target["name"].lower()), None)
        return {"exists": True, "type": value["type"], "data": value["data"]} if value else {"exists": False}

    def same(self, c, a, b):
        return _reg_norm(a) == _reg_norm(b)


class ServiceStartMode(_Kind):
    """target {service}; values "Auto" / "Manual" / "Disabled" (Win32_Service.StartMode)."""

    def name(self, c):
        return f"service {c.target['service']} start mode"

    def apply(self, c):
        return [Op("service_control", (c.target["service"], _START_MODE_ACTION[str(c.after).lower()], SERVICE_WAIT_SECONDS))]

    def prev(self, c, prev):
        c.before = prev.get("start_mode")

    def read_ops(self, c, facts):
        return [Op("service_query", ((c.target["service"],),))]

    def current(self, c, results):
        svc = _service(self, c, results[0])
        return None if svc is None else svc.get("start_mode")

    def same(self, c, a, b):
        def norm(v):
            v = str(v).lower() if v is not None else None
            return "auto" if v == "automatic" else v
        return norm(a) == norm(b)


class ServiceState(_Kind):
    """target {service}; values "Running" / "Stopped"."""

    def name(self, c):
        return f"service {c.target['service']} state"

    def apply(self, c):
        action = "start" if str(c.after).lower() == "running" else "stop"
        return [Op("service_control", (c.target["service"], action, SERVICE_WAIT_SECONDS))]

    def prev(self, c, prev):
        c.before = prev.get("state")

    def read_ops(self, c, facts):
        return [Op("service_query", ((c.target["service"],),))]

    def current(self, c, results):
        svc = _service(self, c, results[0])
        return None if svc is None else svc.get("state")

    def same(self, c, a, b):
        return (str(a).lower() if a is not None else None) == (str(b).lower() if b is not None else None)


class ServiceRestart(_Kind):
    """target {service}; a stop-gap restart (e.g. MSExchangeIMC): nothing to undo."""
    reversible = False

    def name(self, c):
        return f"service {c.target['service']}"

    def apply(self, c):
        return [Op("service_control", (c.target["service"], "restart", SERVICE_WAIT_SECONDS))]

    def restore(self, c):
        return []


class AdsiAttribute(_Kind):
    """target {dn, attribute, syntax: string|int}; values are lists of strings ([] = not set).
    dn is an AD distinguished name or an IIS ADSI path (IIS://localhost/SMTPSVC/1: the metabase)."""

    def name(self, c):
        return f"{c.target['dn']} {c.target['attribute']}"

    def show(self, c, value):
        return "(not set)" if not value else ", ".join(repr(x) for x in value)

    def apply(self, c):
        return [Op("adsi_write", (c.target["dn"], c.target["attribute"], tuple(str(x) for x in c.after),
                                  c.target.get("syntax", "string")))]

    def prev(self, c, prev):
        c.before = [str(v) for v in prev.get("values") or []]

    def read_ops(self, c, facts):
        if _iis(c):  # the IIS provider is not searchable: its properties are read from MetaBase.xml (IIS saves it)
            item = facts["collect"]["metabase"]
            return [Op("file_read", (item["path"], str(item.get("max_bytes", 1 << 20)), str(FILE_CHUNK_BYTES)))]
        # Subtree from the object itself (the only scope the runner's search has); the object is picked by its DN.
        return [Op("adsi_search", (c.target["dn"], "(objectClass=*)", (c.target["attribute"],)))]

    def current(self, c, results):
        found = _decoded(self, c, results[0])
        attr = c.target["attribute"].lower()
        if not _iis(c):
            entry = next((e for e in found or [] if e["dn"].lower() == c.target["dn"].lower()), None)
            if entry is None:
                raise FixError(f"{self.name(c)}: the object was not found")
            return [str(v) for k, vals in entry["attrs"].items() if k.lower() == attr for v in vals or []]
        if found is None or found.get("text") is None:
            raise FixError(f"{self.name(c)}: MetaBase.xml could not be read as text")
        try:
            props = metabase.parse(found["text"]).get("/LM/" + c.target["dn"].split("://", 1)[1].split("/", 1)[1].strip("/"))
        except (metabase.MetabaseError, IndexError) as exc:
            raise FixError(f"{self.name(c)}: {exc}") from None
        if props is None:
            raise FixError(f"{self.name(c)}: no such metabase key")
        # One value: the metabase properties the fixes set (ConnectResponse, SmartHost) are strings.
        return [v for k, v in props.items() if k.lower() == attr][:1]

    def same(self, c, a, b):
        return sorted(str(v) for v in a or []) == sorted(str(v) for v in b or []) if a is not None and b is not None else a == b


class MsiFeature(_Kind):
    """target {product_code, product, feature, caption, reboot: bool}; values are InstallState (2 Absent, 3 Local).
    msiexec /i {code} REMOVE=<feature> /qn: maintenance mode removes just that feature; REBOOT=ReallySuppress
    unless reboots are allowed. Exit 3010 is success with a reboot pending."""

    def name(self, c):
        return f"{c.target['product']} feature {c.target['feature']} ({c.target.get('caption', '')})"

    def show(self, c, value):
        return {1: "advertised", 2: "absent", 3: "local", 4: "source"}.get(value, str(value))

    def apply(self, c):
        prop = "REMOVE" if c.after == 2 else "ADDLOCAL"
        argv = ["/i", c.target["product_code"], f"{prop}={c.target['feature']}", "/qn"]
        if not c.target.get("reboot"):
            argv.append("REBOOT=ReallySuppress")
        return [Op("run_process", ("msiexec.exe", tuple(argv), PROCESS_WAIT_SECONDS, ("0", "3010")))]

    def read_ops(self, c, facts):
        # A -like wildcard of the exact product name: its own wildcard characters taken literally.
        pattern = "".join(f"[{ch}]" if ch in "*?[" else ch for ch in c.target.get("product") or "") or "*"
        return [Op("msi_features", (pattern,))]

    def current(self, c, results):
        rows = _decoded(self, c, results[0]) or []
        row = next((r for r in rows if str(r.get("product_code") or "").upper() == str(c.target["product_code"]).upper()
                    and r.get("name") == c.target["feature"]), None)
        return None if row is None else row.get("state")  # None: the product (or feature) is gone


class FirewallPort(_Kind):
    """target {port, protocol, name, scope[, profile]}; values {"exists", "scope", "enabled"} for the Windows Firewall
    (Server 2003 SP1) port opening, changed with netsh firewall (the supported interface). profile (DOMAIN,
    STANDARD) names the firewall profile the opening belongs to; without it netsh changes the current one."""

    def name(self, c):
        where = f" ({c.target['profile'].lower()} profile)" if c.target.get("profile") else ""
        return f"Windows Firewall port {c.target['port']}/{c.target['protocol']}{where}"

    def show(self, c, value):
        if not value.get("exists"):
            return "(not open)"
        return f"{'enabled' if value.get('enabled', True) else 'disabled'}, scope {value.get('scope', '*')}"

    def apply(self, c):
        return self._set(c, c.after, c.before)

    def read_ops(self, c, facts):
        # netsh keeps an opening as "<port>:<protocol>" = "<port>:<protocol>:<scope>:Enabled|Disabled:<name>" under
        # FirewallPolicy\<profile>\GloballyOpenPorts\List, the value port25_blocked's plan reads.
        profile = _FIREWALL_PROFILE_KEY.get(str(c.target.get("profile") or "").upper())
        if profile is None:
            return []  # netsh's CURRENT profile: which key that is cannot be told from here
        return [Op("reg_read", (f"{facts['collect']['firewall_policy']['path']}\\{profile}\\GloballyOpenPorts\\List", "0"))]

    def current(self, c, results):
        if not results:
            raise FixError(f"{self.name(c)}: the change names no firewall profile, so its opening cannot be read")
        keys = _decoded(self, c, results[0]) or {}
        wanted = f"{c.target['port']}:{c.target['protocol']}".upper()
        value = next((v for e in keys.values() for n, v in e["values"].items() if n.upper() == wanted), None)
        if value is None:
            return {"exists": False}
        fields = str(value["data"]).split(":", 4)
        return {"exists": True, "scope": fields[2] if len(fields) > 2 else "*",
                "enabled": len(fields) > 3 and fields[3].lower() == "enabled", "name": fields[4] if len(fields) > 4 else ""}

    def same(self, c, a, b):
        def norm(v):
            if not (v or {}).get("exists"):
                return {"exists": False}
            return {"exists": True, "scope": str(v.get("scope", "*")).replace(" ", "").lower(),
                    "enabled": bool(v.get("enabled", True)), "name": str(v.get("name") or c.target.get("name") or "").lower()}
        return norm(a) == norm(b)

    def restore(self, c):
        return self._set(c, c.before, c.after)

    @staticmethod
    def _set(c, want, have):
        t = c.target
        head = ["firewall"]
        where = [f"protocol={t['protocol']}", f"port={t['port']}"]
        if not want.get("exists"):
            argv = head + ["delete", "portopening"] + where
        else:
            scope = want.get("scope", "*")
            scope_args = ["scope=ALL"] if scope == "*" else ["scope=SUBNET"] if scope.lower() == "localsubnet" \
                else ["scope=CUSTOM", f"addresses={scope}"]
            argv = head + ["set" if have.get("exists") else "add", "portopening"] + where + \
                [f"name={want.get('name') or t['name']}", f"mode={'ENABLE' if want.get('enabled', True) else 'DISABLE'}"] + scope_args
        if t.get("profile"):
            argv.append(f"profile={t['profile']}")
        return [Op("run_process", ("netsh.exe", tuple(argv), PROCESS_WAIT_SECONDS, ("0",)))]


class FileReplace(_Kind):
    """target {path, source, keep_as, stop: [services, dependents first], start: [services, in order]};
    values {"sha256", "size"}. The services are stopped around the copy (IIS Admin around MetaBase.xml);
    the replaced file is kept on the host as keep_as, which is what a restore copies back."""

    def name(self, c):
        return c.target["path"]

    def show(self, c, value):
        return f"{value.get('size')} bytes sha256 {str(value.get('sha256', ''))[:12]}" if value else "(absent)"

    def apply(self, c):
        return self._around(c, self._copy(c, c.target["source"], c.target["keep_as"]))

    def restore(self, c):
        return self._around(c, self._copy(c, c.target["keep_as"], ""))

    @staticmethod
    def _copy(c, source: str, keep_as: str) -> Op:
        # The copy checks on the host that every service stopped around it is Stopped: a stop whose wait
        # expired leaves IIS Admin running, and the copy then refuses instead of racing it.
        return Op("file_copy", (source, c.target["path"], keep_as, tuple(c.target.get("stop") or ())))

    def read_ops(self, c, facts):
        # The only file replaced is the metabase's, read whole as the fix read it (knowledge collect.metabase).
        return [Op("file_read", (c.target["path"], str(facts["collect"]["metabase"].get("max_bytes", 1 << 20)),
                                 str(FILE_CHUNK_BYTES)))]

    def current(self, c, results):
        if results[0].error is not None:
            raise FixError(f"{self.name(c)}: {results[0].error}")
        return file_value(decode_result(results[0]))

    def same(self, c, a, b):
        return bool(a) == bool(b) and (not a or (a.get("sha256"), a.get("size")) == (b.get("sha256"), b.get("size")))

    @staticmethod
    def _around(c, copy: Op) -> list[Op]:
        stops = [Op("service_control", (s, "stop", SERVICE_WAIT_SECONDS)) for s in c.target.get("stop") or []]
        starts = [Op("service_control", (s, "start", SERVICE_WAIT_SECONDS)) for s in c.target.get("start") or []]
        return stops + [copy] + starts


class Package(_Kind):
    """target {path, args, kb[, exe]}; values "missing" / "installed". A hotfix is not removed by a restore (its
    own uninstaller is for an admin to run); a failed install is rolled back by the installer itself.
    `exe` runs the package when it is not a program itself (msiexec.exe for an .msp patch, with the path in args)."""
    reversible = False

    def name(self, c):
        return f"{c.target['kb']} from {c.target['path']}"

    def apply(self, c):
        return [Op("run_process", (c.target.get("exe") or c.target["path"], tuple(c.target.get("args") or ()),
                                   PROCESS_WAIT_SECONDS, ("0", "3010")))]

    def restore(self, c):
        return []


KINDS: dict[str, _Kind] = {
    "registry_value": RegistryValue(), "service_start_mode": ServiceStartMode(), "service_state": ServiceState(),
    "service_restart": ServiceRestart(), "adsi_attribute": AdsiAttribute(), "msi_feature": MsiFeature(),
    "firewall_port": FirewallPort(), "file_replace": FileReplace(), "package": Package(),
}


_FIREWALL_PROFILE_KEY = {"DOMAIN": "DomainProfile", "STANDARD": "StandardProfile"}


def file_value(item: dict | None) -> dict:
    """FileReplace's value: size and the SHA-256 of the file's text as the snapshot decodes it ({} when there is no
    file). metabase_corrupt's plan records `before` and `after` this way."""
    if not item:
        return {}
    content = str(item.get("text") or item.get("base64") or "")
    return {"size": item.get("size"), "sha256": hashlib.sha256(content.encode("utf-8")).hexdigest()}


def _decoded(kind: _Kind, c: Change, res: OpResult) -> Any:
    if res.error is not None:
        raise FixError(f"{kind.name(c)}: {res.error}")
    return decode_result(res)


def _service(kind: _Kind, c: Change, res: OpResult) -> dict | None:
    found = _decoded(kind, c, res) or {}
    return next((s for n, s in found.items() if n.lower() == c.target["service"].lower()), None)


def _iis(c: Change) -> bool:
    return str(c.target["dn"]).lower().startswith("iis://")


def _holds(key: str, path: str) -> bool:
    """Is `path` the registry key `key` or one under it? (Below the hive: a prune never reaches a hive's own keys.)"""
    key, path = key.replace("/", "\\").strip("\\").lower(), path.replace("/", "\\").strip("\\").lower()
    return "\\" in key and (path == key or path.startswith(key + "\\"))


def _reg_norm(v: Any) -> Any:
    """A registry value for comparing: DWORD/QWORD unsigned, binary as lower-case hex, absent as absent."""
    if not isinstance(v, dict) or not v.get("exists", "data" in v):
        return {"exists": False}
    rtype, data = v.get("type"), v.get("data")
    if rtype in ("REG_DWORD", "REG_QWORD") and str(data).lstrip("-").isdigit():
        data = int(data) & (0xFFFFFFFF if rtype == "REG_DWORD" else 0xFFFFFFFFFFFFFFFF)
    elif rtype == "REG_MULTI_SZ":
        data = [str(x) for x in data or []]
    elif rtype == "REG_BINARY":
        data = data.hex() if isinstance(data, (bytes, bytearray)) else str(data or "").lower()
    return {"exists": True, "type": rtype, "data": data}
