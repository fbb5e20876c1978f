"""The lab's PowerShell: it runs the collection's dispatcher against raw state.

The lab cannot run PowerShell, so it recognises the exact scripts it emulates
by their SHA-256 (pinned below) and carries out each operation the way the
script does on Windows: same row kinds, same field names, same .NET type names
and the same quirks (a DWORD comes back as a signed Int32, WMI answers
'Invalid namespace', a disabled service refuses to start with code 14).
A script it does not know gets an error, never a guess: when the collection's
PowerShell changes, this emulation has to be reviewed and re-pinned
(tests/lab/test_powershell_emulation.py says so).

What a real host limits is modelled where the script meets it: stdin arrives
as PowerShell 2.0 hands it over ($input, one string a line), WinRM 2.0's
MaxMemoryPerShellMB makes an allocation past it fail, an unresponsive WMI
provider times out, a registry key may refuse the account, a queue file may
vanish between listing and reading, a service may take longer to stop than
the script waits, and LDAP without credentials for the second hop is refused
(lab/shell/ps_directory.py). The event log is in lab/shell/ps_eventlog.py.
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

from lab.shell import programs
from lab.shell.cmd import environment
from lab.shell.ps_directory import DirectoryOps
from lab.shell.ps_eventlog import EventLogOps
from lab.shell.query import QueryError, parse_wql
from lab.state import FleetState, HostState
from lab.wsman.shells import Logon

# sha256 of the exact script texts this module emulates (the dispatcher as_received: `python -m lab pin`).
EMULATED = {
    "bootstrap": "048c31642cecdb4f0040a07b4186a5ed7b81679d31deda08a2b108123982d09d",
    "dispatcher": "516e71cb4f471b5df78c7e5da735c204dfcefaabb8dd2c866272d45229162f19",
}


# What the lab assumes of a PowerShell 2.0 process on a 2003 server (no published figure found; see docs/runner.md):
PS_BASELINE_MB = 40  # powershell.exe 2.0's own memory before it reads anything
ROW_MEMORY_FACTOR = 16  # bytes held per byte of a file sent as one row (the byte[], base64 text, StringBuilder, ...)
_REGISTRY_DENIED = "Requested registry access is not allowed."
_OUT_OF_MEMORY = "Exception of type 'System.OutOfMemoryException' was thrown."
_WMI_TIMED_OUT = "An error occurred while enumerating through a collection: Timed out ."
_GUID = re.compile(r"^\{[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}\}$")
_UNINSTALL = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stdin_lines(data: bytes) -> list[str]:
    """stdin as PowerShell 2.0's console host hands it to the command as $input: one string a line."""
    text = data.decode("ascii", "replace")
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def as_received(script: str) -> str:
    """A script after the bootstrap put it back together from $input's lines (joined with LF)."""
    return "\n".join(stdin_lines(script.encode("ascii")))


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


class DispatcherEmulation(DirectoryOps, EventLogOps):
    """Runs one decoded request on one host; collects output lines."""

    failed = OpFailed

    def __init__(self, lab, host: HostState, logon: Logon | None = None, context: psrunner.Context | None = None) -> None:
        self.lab = lab
        self.fleet: FleetState = lab.fleet
        self.host = host
        self.logon = logon or Logon()
        self.context = context or psrunner.Context()
        self.out: list[str] = [psrunner.PROTOCOL_HEADER]

    @staticmethod
    def win_time(iso: str) -> UtcTime:
        return _win_time(iso)

    @staticmethod
    def now() -> str:
        return _now_iso()

    def _allocate(self, nbytes: int) -> None:
        """An allocation the shell's job object allows (MaxMemoryPerShellMB), or the OutOfMemoryException."""
        quota = int(self.host.winrm_config.get("MaxMemoryPerShellMB", 150))
        if quota and PS_BASELINE_MB + nbytes * ROW_MEMORY_FACTOR / (1 << 20) > quota:
            raise OpFailed(_OUT_OF_MEMORY)

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
                self.row(index, "done")  # main.ps1: after each operation that returned
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
            elif not self.host.registry_readable(path + "\\" + sub):
                self.row(index, "denied", "key", path, "name", sub,
                         "message", f'Exception calling "OpenSubKey" with "2" argument(s): "{_REGISTRY_DENIED}"')
            else:
                self._walk(index, path + "\\" + sub, depth - 1)

    def _readable(self, path: str) -> None:
        if not self.host.registry_readable(path):
            raise OpFailed(f'Exception calling "OpenSubKey" with "2" argument(s): "{_REGISTRY_DENIED}"')

    def op_reg_read(self, index: int, path: str, depth: str) -> None:
        if not self.host.registry.key_exists(path):
            self.row(index, "missing", "path", path)
            return
        self._readable(path)
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
        self._readable(path)
        created = self._first_missing(path)
        if created:
            self.row(index, "prev", "existed", 0, "created", created)
        else:
            self._reg_prev(index, path, name)
        self.host.registry.set(path, name, rtype, data)
        self.row(index, "ok", "path", path, "name", name)

    def _first_missing(self, path: str) -> str:
        """As RegFirstMissing: the outermost key of the path that does not exist yet, with the hive as written."""
        parts = path.replace("/", "\\").strip("\\").split("\\")
        for i in range(2, len(parts) + 1):
            if not self.host.registry.key_exists("\\".join(parts[:i])):
                return "\\".join(parts[:i])
        return ""

    def op_reg_prune(self, index: int, path: str, top: str) -> None:
        path, top = path.replace("/", "\\").strip("\\"), top.replace("/", "\\").strip("\\")
        if not (path.lower() == top.lower() or path.lower().startswith(top.lower() + "\\")) or "\\" not in top:
            raise OpFailed(f"{top} does not hold {path}")
        reg = self.host.registry
        while len(path) >= len(top) and path.count("\\") >= 2:
            parent = path.rsplit("\\", 1)[0]
            self._readable(path)
            if not reg.key_exists(path):
                self.row(index, "missing", "path", path)
            elif reg.values(path) or reg.subkeys(path):
                self.row(index, "kept", "path", path)
                return
            else:
                reg.delete_key(path)
                self.row(index, "deleted", "path", path)
            path = parent

    def op_reg_delete(self, index: int, path: str, name: str) -> None:
        if not self.host.registry.key_exists(path):
            self.row(index, "missing", "path", path)
            return
        self._readable(path)
        self._reg_prev(index, path, name)
        self.host.registry.delete(path, name)
        self.row(index, "ok", "path", path, "name", name)

    # -- files
    def op_file_read(self, index: int, path: str, max_bytes: str, chunk: str) -> None:
        path = expand_env(self.host, path)
        f = self.host.files.read(path)
        if f is None:
            self.row(index, "missing", "path", path)
            return
        n = min(len(f.data), int(max_bytes))
        self._allocate(min(int(chunk), n))
        self.row(index, "file", "path", path, "size", len(f.data), "mtime", _win_time(f.mtime), "read", n)
        for offset in range(0, n, int(chunk)):
            self.row(index, "chunk", "offset", offset, "data", f.data[offset:min(n, offset + int(chunk))])

    def op_file_list(self, index: int, path: str, recurse: str, pattern: str, limit: str) -> None:
        path = expand_env(self.host, path)
        if not self.host.files.is_dir(path):
            self.row(index, "missing", "path", path)
            return
        found = [(p, f) for p, f in self.host.files.listdir(path, recurse == "1") if fnmatch.fnmatch(p.rsplit("\\", 1)[-1].lower(), pattern.lower())]
        n = 0
        for p, f in found:
            if n >= int(limit):
                self.row(index, "truncated", "total", len(found))
                break
            if f.transient:  # delivered between the listing and this read: FileInfo.Length finds no file
                self.host.files.delete(p)
                self.row(index, "vanished", "path", p, "message", f"Could not find file '{p}'.")
                continue
            n += 1
            self.row(index, "file", "path", p, "size", len(f.data), "mtime", _win_time(f.mtime), "ctime", _win_time(f.mtime))

    # -- files and programs
    def op_file_copy(self, index: int, src: str, dst: str, keep: str, stopped: tuple) -> None:
        src, dst, keep = (expand_env(self.host, p) if p else p for p in (src, dst, keep))
        for name in stopped:
            svc = self.host.service(name)
            state = svc.win32()["State"] if svc is not None else "Stopped"
            if state != "Stopped":
                raise OpFailed(f"not copied: {name} is {state}, not Stopped")
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
        if namespace.lower() in (n.lower() for n in self.host.wmi_unresponsive):
            raise OpFailed(_WMI_TIMED_OUT)  # the provider never answers; EnumerationOptions.Timeout ends the wait
        ns = next((v for k, v in self.host.wmi.items() if k.lower() == namespace.lower()), None)
        if namespace.lower() == "root\\cimv2":
            # Classes every Windows box has (possibly empty), then the scenario's
            # instances, then those Windows computes from other state.
            always = {"Win32_SoftwareFeature": [], "Win32_QuickFixEngineering": []}
            ns = {**always, **(ns or {}), **self.lab.derived_wmi(self.host)}
            if not self.host.component("wmi_installer_provider"):
                # The WMI Windows Installer Provider is an optional component: without it the class does not exist.
                ns = {k: v for k, v in ns.items() if k.lower() != "win32_softwarefeature"}
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
        """WindowsInstaller.Installer for the products the Uninstall keys name by product code. The lab keeps the
        Installer's feature table as Win32_SoftwareFeature objects (scenario `wmi`), whatever the WMI provider."""
        reg = self.host.registry
        self._readable(_UNINSTALL)
        store = self.host.wmi.get("root\\cimv2", {}).get("Win32_SoftwareFeature", [])
        for code in reg.subkeys(_UNINSTALL):
            if not _GUID.match(code):
                continue
            key = _UNINSTALL + "\\" + code
            if not self.host.registry_readable(key):
                self.row(index, "product_error", "product", "", "product_code", code,
                         "message", f'Exception calling "OpenSubKey" with "2" argument(s): "{_REGISTRY_DENIED}"')
                continue
            name, version = (str(getattr(reg.get(key, v), "data", "") or "") for v in ("DisplayName", "DisplayVersion"))
            if not fnmatch.fnmatchcase(name.lower(), pattern.lower()):
                continue
            for f in store:
                if str(f.get("IdentifyingNumber", "")).upper() == code.upper():
                    self.row(index, "feature", "product", name, "product_code", code, "version", version,
                             "name", f.get("Name"), "caption", f.get("Caption") or "", "description", f.get("Description") or "",
                             "state", int(f.get("InstallState", 0)))

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
        slow = action in ("stop", "restart") and svc.state == "running" and svc.stop_seconds
        if idle:
            code = 0
        elif slow:
            # StopService, then the script polls for Stopped until its wait runs out (time computed, not slept).
            code = self.lab.control_service(self.host.name, svc.name, "stop")
            svc = self.host.service(name)
            if not code and float(svc.stop_seconds) > float(wait or 0):
                self.row(index, "failed", "code", -1, "message",
                         f"still {svc.win32()['State']} after {wait} s waiting for Stopped")
                self._svc_row(index, "service", svc)
                return
            svc.stopping_until = 0.0  # the script waited it out
            if not code and action == "restart":
                code = self.lab.control_service(self.host.name, svc.name, "start")
        else:
            code = self.lab.control_service(self.host.name, svc.name, action)
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
        # An empty HELO, or an address ending in '@', is the host's own FQDN / DNS domain (probe.ps1's Probe-Self).
        domain = str(self.host.os.get("domain") or self.host.fqdn.partition(".")[2])
        targets = [{"target": a[0], "port": int(a[1]), "timeout_ms": int(a[2]), "helo": a[3] or self.host.fqdn,
                    "mail_from": a[4] + domain if a[4].endswith("@") else a[4],
                    "rcpt_to": a[5] + domain if a[5].endswith("@") else a[5]}
                   for _, op in probes for a in [op.args]]
        results = self.lab.probe(self.host.name, targets)
        for (index, _), r in zip(probes, results):
            self.row(index, "probe", *[x for k in ("target", "port", "address", "connect", "connect_ms", "banner", "banner_ms",
                                                   "ehlo", "mail", "rcpt", "total_ms", "error") for x in (k, r[k])])

    # -- the self-test's own
    def op_echo(self, index: int, text: str) -> None:
        self.row(index, "echo", "data", text, "length", len(text.encode("utf-16-le")) // 2)

    def op_runtime(self, index: int) -> None:
        os_info = self.host.os
        user = self.logon.user or self.host.username
        if "\\" not in user and "@" not in user:
            user = f"{str(os_info.get('computer_name') or self.host.name).upper()}\\{user}"
        auth = {"kerberos": "Kerberos", "credssp": "Kerberos"}.get(self.logon.mechanism, "NTLM")
        # Lab assumptions: the CLR build of .NET 2.0 SP2 and the working set of an idle powershell.exe 2.0.
        self.row(index, "runtime", "ps_version", "2.0", "clr_version", "2.0.50727.3053",
                 "os_version", f"{os_info.get('version', '5.2.3790')}.{int(os_info.get('service_pack_major', 0) or 0) << 16}",
                 "user", user, "auth_type", auth, "computer", str(os_info.get("computer_name") or self.host.name).upper(),
                 "working_set", PS_BASELINE_MB << 20, "peak_working_set", PS_BASELINE_MB << 20)


def decode_encoded_command(command_line: str) -> str | None:
    """The script of a `PowerShell ... -EncodedCommand X` line, else None."""
    parts = command_line.split()
    if not parts or os.path.basename(parts[0]).lower() not in ("powershell", "powershell.exe"):
        return None
    for i, p in enumerate(parts[:-1]):
        if p.lower() in ("-encodedcommand", "-enc", "-e", "-ec"):
            return base64.b64decode(parts[i + 1]).decode("utf-16-le")
    return None


def run_powershell(lab, host: HostState, script: str, stdin: bytes, logon: Logon | None = None) -> tuple[bytes, bytes, int]:
    if sha256(script) != EMULATED["bootstrap"]:
        return b"", (f"lab: PowerShell script not emulated (sha256 {sha256(script)[:12]})\r\n").encode(), 1
    # bootstrap.ps1: @($input), the request on the first line, the dispatcher joined from the rest with LF.
    lines = stdin_lines(stdin)
    if len(lines) < 2:
        return f"{psrunner.NO_INPUT} {len(lines)}\r\n".encode(), b"", 3
    dispatcher = "\n".join(lines[1:])
    if sha256(dispatcher) != EMULATED["dispatcher"]:
        return b"", (f"lab: dispatcher not emulated (sha256 {sha256(dispatcher)[:12]})\r\n").encode(), 1
    try:
        ops, context = psrunner.decode_request(lines[0].strip())
    except psrunner.RunnerError:
        return f"{psrunner.PROTOCOL_HEADER}\r\nMAILFLOW-BADREQUEST\r\n".encode(), b"", 4  # main.ps1's refusal
    except ValueError as exc:
        # PowerShell would die in the main loop before writing anything useful.
        return f"{psrunner.PROTOCOL_HEADER}\r\n".encode(), f"{exc}\r\n".encode(), 1
    return DispatcherEmulation(lab, host, logon, context).run(ops).encode("ascii"), b"", 0
