"""The lab's PowerShell: it runs the collection's dispatcher against raw state.

The lab cannot run PowerShell, so it recognises the exact scripts it emulates
by their SHA-256 (pinned below) and carries out each operation the way the
script does on Windows: same row kinds, same field names, same .NET type names
and the same quirks (a DWORD comes back as a signed Int32, WMI answers
'Invalid namespace', a disabled service refuses to start with code 14).
A script it does not know gets an error, never a guess: when the collection's
PowerShell changes, this emulation has to be reviewed and re-pinned
(tests/lab/test_powershell_emulation.py says so).
"""
from __future__ import annotations

import base64
import fnmatch
import hashlib
import os
import re
from datetime import datetime, timezone
from typing import Callable

from ansible_collections.mailflow.exchange.plugins.module_utils import psrunner
from ansible_collections.mailflow.exchange.plugins.module_utils.psrunner import Op, UtcTime, encode_row

from lab import metabase as lab_metabase
from lab.shell import programs
from lab.shell.cmd import environment
from lab.shell.query import QueryError, like, parse_ldap, parse_wql
from lab.state import FleetState, HostState

# sha256 of the exact script texts this module emulates.
EMULATED = {
    "bootstrap": "f137549039915cf29412b651a5ea7b08750712182a0e6f71eef73bf3d6e6d19e",
    "dispatcher": "8188926d68be7e81a7450db4e7e1c964ddbcebe726861c82844eadc98f1502d6",
}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class OpFailed(Exception):
    """What PowerShell's catch block would report as the exception message."""


def _win_time(iso: str) -> UtcTime:
    return UtcTime(iso if iso.endswith("Z") else iso + "Z")


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def expand_env(host: HostState, path: str) -> str:
    """[Environment]::ExpandEnvironmentVariables over the same variables cmd.exe sees."""
    env = environment(host)
    return re.sub(r"%(\w+)%", lambda m: env.get(m[1].upper(), m[0]), path)


def _reg_data_for_dotnet(rtype: str, data):
    """What RegistryKey.GetValue hands PowerShell for a stored value."""
    if rtype == "REG_DWORD":
        data = int(data) & 0xFFFFFFFF
        return data - (1 << 32) if data & 0x80000000 else data
    if rtype == "REG_QWORD":
        data = int(data) & 0xFFFFFFFFFFFFFFFF
        return data - (1 << 64) if data & (1 << 63) else data
    if rtype == "REG_MULTI_SZ":
        return list(data or [])
    if rtype == "REG_BINARY":
        return bytes(data or b"")
    return "" if data is None else str(data)


class DispatcherEmulation:
    """Runs one decoded request on one host; collects output lines."""

    def __init__(self, lab, host: HostState) -> None:
        self.lab = lab
        self.fleet: FleetState = lab.fleet
        self.host = host
        self.out: list[str] = [psrunner.PROTOCOL_HEADER]

    def row(self, index: int, kind: str, *pairs) -> None:
        it = iter(pairs)
        self.out.append(encode_row(index, kind, zip(it, it)))

    def run(self, ops: list[Op]) -> str:
        probes = []
        for index, op in enumerate(ops):
            if op.name == "tcp_probe":
                probes.append((index, op))
                continue
            handler: Callable = getattr(self, "op_" + op.name)
            try:
                with self.fleet.lock:
                    handler(index, *op.args)
            except (OpFailed, QueryError) as exc:
                self.row(index, "err", "message", str(exc))
        if probes:
            self.run_probes(probes)
        self.out.append(psrunner.PROTOCOL_END)
        return "\r\n".join(self.out) + "\r\n"

    # -- registry
    def _walk(self, index: int, path: str, depth: int) -> None:
        reg = self.host.registry
        self.row(index, "key", "path", path)
        for name, val in reg.values(path) or []:
            kind = psrunner.REG_TYPE_TO_KIND[val.type]
            self.row(index, "value", "key", path, "name", name, "type", kind, "data", _reg_data_for_dotnet(val.type, val.data))
        for sub in reg.subkeys(path):
            if depth <= 0:
                self.row(index, "subkey", "key", path, "name", sub)
            else:
                self._walk(index, path + "\\" + sub, depth - 1)

    def op_reg_read(self, index: int, path: str, depth: str) -> None:
        if not self.host.registry.key_exists(path):
            self.row(index, "missing", "path", path)
            return
        self._walk(index, path, int(depth or 0))

    def _reg_prev(self, index: int, path: str, name: str) -> None:
        val = self.host.registry.get(path, name)
        if val is None:
            self.row(index, "prev", "existed", 0)
        else:
            kind = psrunner.REG_TYPE_TO_KIND[val.type]
            self.row(index, "prev", "existed", 1, "type", kind, "data", _reg_data_for_dotnet(val.type, val.data))

    def op_reg_write(self, index: int, path: str, name: str, kind: str, raw: str) -> None:
        rtype = psrunner.REG_KIND_TO_TYPE.get(kind)
        if rtype is None:
            raise OpFailed(f"unsupported registry type {kind}")
        if rtype in ("REG_DWORD", "REG_QWORD"):
            limit = 1 << (32 if rtype == "REG_DWORD" else 64)
            if not raw.strip().isdigit() or int(raw) >= limit:
                raise OpFailed(f'Cannot convert value "{raw}" to type "System.UInt{32 if limit == 1 << 32 else 64}".')
            data = int(raw)
        elif rtype == "REG_MULTI_SZ":
            data = raw.split("\0")
        elif rtype == "REG_BINARY":
            data = bytes.fromhex(raw)
        else:
            data = raw
        self._reg_prev(index, path, name)
        self.host.registry.set(path, name, rtype, data)
        self.row(index, "ok", "path", path, "name", name)

    def op_reg_delete(self, index: int, path: str, name: str) -> None:
        if not self.host.registry.key_exists(path):
            self.row(index, "missing", "path", path)
            return
        self._reg_prev(index, path, name)
        self.host.registry.delete(path, name)
        self.row(index, "ok", "path", path, "name", name)

    # -- files
    def op_file_read(self, index: int, path: str, max_bytes: str) -> None:
        path = expand_env(self.host, path)
        f = self.host.files.read(path)
        if f is None:
            self.row(index, "missing", "path", path)
            return
        self.row(index, "file", "path", path, "size", len(f.data), "mtime", _win_time(f.mtime), "data", f.data[: int(max_bytes)])

    def op_file_list(self, index: int, path: str, recurse: str, pattern: str, limit: str) -> None:
        path = expand_env(self.host, path)
        if not self.host.files.is_dir(path):
            self.row(index, "missing", "path", path)
            return
        found = [(p, f) for p, f in self.host.files.listdir(path, recurse == "1") if fnmatch.fnmatch(p.rsplit("\\", 1)[-1].lower(), pattern.lower())]
        for n, (p, f) in enumerate(found):
            if n >= int(limit):
                self.row(index, "truncated", "total", len(found))
                break
            self.row(index, "file", "path", p, "size", len(f.data), "mtime", _win_time(f.mtime), "ctime", _win_time(f.mtime))

    # -- Active Directory
    def _config_nc(self) -> str:
        for dn in self.fleet.ad.to_plain():
            m = re.search(r"(CN=Configuration,DC=.*)$", dn, re.I)
            if m:
                return m[1]
        raise OpFailed("The specified domain either does not exist or could not be contacted.")

    def op_adsi_search(self, index: int, base: str, ldap_filter: str, attrs: tuple) -> None:
        base = base or self._config_nc()
        pred = parse_ldap(ldap_filter)
        for dn, values in self.fleet.ad.search(base):
            if not pred(values):
                continue
            pairs = ["dn", dn]
            for attr in attrs:
                found = next((v for k, v in values.items() if k.lower() == attr.lower()), [])
                pairs += ["a:" + attr, [str(v) for v in found]]
            self.row(index, "entry", *pairs)

    def op_adsi_write(self, index: int, dn: str, attr: str, values: tuple, kind: str) -> None:
        if dn.lower().startswith("iis://"):
            self._metabase_write(index, dn, attr, values)
            return
        if self.fleet.ad.get(dn) is None:
            raise OpFailed("There is no such object on the server.")
        if kind == "int":
            try:
                new = [int(v) for v in values]
            except ValueError as exc:
                raise OpFailed(f'Cannot convert value to type "System.Int32". {exc}') from exc
        else:
            new = list(values)
        prev = self.fleet.ad.set_attr(dn, attr, new or None)
        self.row(index, "prev", "values", [str(v) for v in (prev or [])])
        self.row(index, "ok", "dn", dn, "attr", attr)

    def _metabase_write(self, index: int, path: str, prop: str, values: tuple) -> None:
        """IIS://localhost/SMTPSVC/1 -> /LM/SMTPSVC/1 in MetaBase.xml (SaveData flushes it, as the script asks)."""
        iisadmin = self.host.service("IISADMIN")
        if iisadmin is None or iisadmin.state != "running":
            raise OpFailed("The RPC server is unavailable. (Exception from HRESULT: 0x800706BA)")
        rest = path.split("://", 1)[1].split("/", 1)
        if rest[0].lower() != "localhost" or len(rest) < 2:
            raise OpFailed("The system cannot find the path specified.")
        location = "/LM/" + rest[1].strip("/")
        current = self.host.files.read(self.host.metabase_path)
        text = current.data.decode("utf-8", "replace") if current else ""
        nodes = {v["_location"].lower(): v for v in lab_metabase.parse(text).values()}
        node = nodes.get(location.lower())
        if node is None:
            raise OpFailed("The system cannot find the path specified.")
        prev = next((v for k, v in node.items() if k.lower() == prop.lower()), None)
        self.row(index, "prev", "values", [] if prev is None else [prev])
        new = lab_metabase.set_property(text, location, prop, values[0] if values else None)
        self.host.files.write(self.host.metabase_path, new, _now_iso())
        self.row(index, "ok", "dn", path, "attr", prop)

    # -- files and programs
    def op_file_copy(self, index: int, src: str, dst: str, keep: str) -> None:
        src, dst, keep = (expand_env(self.host, p) if p else p for p in (src, dst, keep))
        source = self.host.files.read(src)
        if source is None:
            raise OpFailed(f"Could not find file {src}")
        old = self.host.files.read(dst)
        if old is None:
            self.row(index, "prev", "existed", 0)
        else:
            self.row(index, "prev", "existed", 1, "size", len(old.data), "mtime", _win_time(old.mtime), "kept_as", keep)
            if keep:
                self.host.files.write(keep, old.data, old.mtime)
        self.host.files.write(dst, source.data, source.mtime)
        self.row(index, "ok", "path", dst)

    def op_run_process(self, index: int, exe: str, argv: tuple, wait: str, ok_codes: tuple) -> None:
        try:
            code, output = programs.run(self.lab, self.host, expand_env(self.host, exe), list(argv))
        except programs.ProgramNotFound:
            raise OpFailed('Exception calling "Start" with "1" argument(s): "The system cannot find the file specified"')
        self.row(index, "exit", "code", code, "output", output)
        if str(code) not in ok_codes:
            self.row(index, "failed", "code", code)

    # -- WMI
    def _wmi_instances(self, namespace: str, cls: str) -> list[dict]:
        ns = next((v for k, v in self.host.wmi.items() if k.lower() == namespace.lower()), None)
        if namespace.lower() == "root\\cimv2":
            # Classes every Windows box has (possibly empty), then the scenario's
            # instances, then those Windows computes from other state.
            always = {"Win32_SoftwareFeature": [], "Win32_QuickFixEngineering": []}
            ns = {**always, **(ns or {}), **self.lab.derived_wmi(self.host)}
        if ns is None:
            raise OpFailed("Invalid namespace ")
        instances = next((v for k, v in ns.items() if k.lower() == cls.lower()), None)
        if instances is None:
            raise OpFailed("Invalid class ")
        return instances

    def op_wmi_query(self, index: int, namespace: str, query: str, props: tuple) -> None:
        cls, _, pred = parse_wql(query)
        for inst in self._wmi_instances(namespace, cls):
            if pred(inst):
                pairs = []
                for p in props:
                    pairs += [p, next((v for k, v in inst.items() if k.lower() == p.lower()), None)]
                self.row(index, "object", *pairs)

    def op_msi_features(self, index: int, pattern: str) -> None:
        for f in self._wmi_instances("root\\cimv2", "Win32_SoftwareFeature"):
            if like(f.get("ProductName"), pattern):
                self.row(index, "feature", "product", f.get("ProductName"), "product_code", f.get("IdentifyingNumber"),
                         "version", f.get("Version"), "name", f.get("Name"), "caption", f.get("Caption"),
                         "description", f.get("Description"), "state", f.get("InstallState"))

    # -- event log
    def op_eventlog(self, index: int, log: str, source: str, ids: tuple, since: str, max_rows: str) -> None:
        since = since.replace("Z", "")
        found = [e for e in self.host.events
                 if e.get("log", "Application").lower() == log.lower()
                 and (not source or e.get("source") == source)
                 and (not ids or str(e.get("event_id")) in ids)
                 and e.get("time", "").replace("Z", "") > since]
        found.sort(key=lambda e: e["time"], reverse=True)  # Get-EventLog returns newest first
        for n, e in enumerate(found):
            if n >= int(max_rows):
                self.row(index, "truncated", "max", int(max_rows))
                break
            self.row(index, "event", "time", _win_time(e["time"]), "id", int(e["event_id"]), "source", e.get("source"),
                     "type", e.get("type", "Warning"), "category", e.get("category", ""), "message", e.get("message", ""))

    # -- services
    def _svc_row(self, index: int, kind: str, svc) -> None:
        w = svc.win32()
        self.row(index, kind, "name", w["Name"], "display_name", w["DisplayName"], "state", w["State"], "start_mode", w["StartMode"])

    def op_service_query(self, index: int, names: tuple) -> None:
        for name in names:
            svc = self.host.service(name)
            if svc is None:
                self.row(index, "missing", "name", name)
            else:
                self._svc_row(index, "service", svc)

    def op_service_control(self, index: int, name: str, action: str, wait: str) -> None:
        svc = self.host.service(name)
        if svc is None:
            self.row(index, "missing", "name", name)
            return
        self._svc_row(index, "prev", svc)
        # dispatcher.ps1 calls StopService only when the service is not Stopped and StartService only when it is
        # not Running, so stopping a stopped service (a restore undoing a start that failed) is a success there.
        idle = (action == "stop" and svc.state != "running") or (action == "start" and svc.state == "running")
        code = 0 if idle else self.lab.control_service(self.host.name, svc.name, action)
        if code:
            self.row(index, "failed", "code", code)
        self._svc_row(index, "service", self.host.service(name))

    # -- network
    # netstat's names (the scenario's) -> System.Net.NetworkInformation.TcpState.ToString()
    _TCP_STATE = {"ESTABLISHED": "Established", "SYN_SENT": "SynSent", "SYN_RECEIVED": "SynReceived",
                  "FIN_WAIT_1": "FinWait1", "FIN_WAIT_2": "FinWait2", "TIME_WAIT": "TimeWait", "CLOSE_WAIT": "CloseWait",
                  "LAST_ACK": "LastAck", "CLOSING": "Closing", "LISTENING": "Listen"}

    def op_tcp_connections(self, index: int, port: str) -> None:
        for c in self.host.tcp_connections:
            if port and c["remote"].rsplit(":", 1)[-1] != port:
                continue
            state = c.get("state", "ESTABLISHED")
            self.row(index, "conn", "local", c["local"], "remote", c["remote"], "state", self._TCP_STATE.get(state, state))

    def run_probes(self, probes: list[tuple[int, Op]]) -> None:
        targets = [{"target": a[0], "port": int(a[1]), "timeout_ms": int(a[2]), "helo": a[3], "mail_from": a[4], "rcpt_to": a[5]}
                   for _, op in probes for a in [op.args]]
        results = self.lab.probe(self.host.name, targets)
        for (index, _), r in zip(probes, results):
            self.row(index, "probe", *[x for k in ("target", "port", "address", "connect", "connect_ms", "banner", "banner_ms",
                                                   "ehlo", "mail", "rcpt", "total_ms", "error") for x in (k, r[k])])


def decode_encoded_command(command_line: str) -> str | None:
    """The script of a `PowerShell ... -EncodedCommand X` line, else None."""
    parts = command_line.split()
    if not parts or os.path.basename(parts[0]).lower() not in ("powershell", "powershell.exe"):
        return None
    for i, p in enumerate(parts[:-1]):
        if p.lower() in ("-encodedcommand", "-enc", "-e", "-ec"):
            return base64.b64decode(parts[i + 1]).decode("utf-16-le")
    return None


def run_powershell(lab, host: HostState, script: str, stdin: bytes) -> tuple[bytes, bytes, int]:
    if sha256(script) != EMULATED["bootstrap"]:
        return b"", (f"lab: PowerShell script not emulated (sha256 {sha256(script)[:12]})\r\n").encode(), 1
    text = stdin.decode("ascii", "replace")
    request, _, dispatcher = text.partition("\n")
    if sha256(dispatcher) != EMULATED["dispatcher"]:
        return b"", (f"lab: dispatcher not emulated (sha256 {sha256(dispatcher)[:12]})\r\n").encode(), 1
    try:
        ops = psrunner.decode_request(request.strip())
    except (psrunner.RunnerError, ValueError) as exc:
        # PowerShell would die in the main loop before writing anything useful.
        return b"MAILFLOW/1\r\n", f"{exc}\r\n".encode(), 1
    return DispatcherEmulation(lab, host).run(ops).encode("ascii"), b"", 0
