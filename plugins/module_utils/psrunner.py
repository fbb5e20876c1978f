"""Run PowerShell 2.0 operations on a host in one WinRM command, decode in Python.

Wire contract (the lab emulates exactly this; see lab/shell/powershell.py):

* Command line: ``PowerShell -NoProfile -NonInteractive -ExecutionPolicy
  Unrestricted -EncodedCommand <bootstrap>``. ansible-core 2.19's winrm plugin
  passes a line with this prefix through unchanged. The bootstrap is a few
  hundred characters, so the line stays far below cmd.exe's 8191-character cap
  whatever the request holds.
* stdin: one line of base64 request, then the dispatcher script. The request is
  data only: each operation is ``name<TAB>b64(arg)<TAB>...``; list arguments are
  comma-joined base64 items. No value is ever spliced into PowerShell code.
* stdout: ``MAILFLOW/1``, one line per result row, ``MAILFLOW-END``. A row is
  ``index<TAB>kind<TAB>name=<t><value>...`` with t one of n (null), i (integer),
  d (UTC time), s (base64 UTF-8 text), b (base64 bytes), m (comma-joined base64
  texts).
"""
from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

PROTOCOL_HEADER = "MAILFLOW/1"
PROTOCOL_END = "MAILFLOW-END"
POWERSHELL_PREFIX = "PowerShell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand "
CMD_EXE_MAX = 8191

_PS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "powershell")
# Order matters: helpers and operations, the probe loop, then the main loop.
DISPATCHER_PARTS = ("dispatcher.ps1", "probe.ps1", "main.ps1")

# name -> argument kinds, in order: "s" scalar text, "l" list of texts.
OPERATIONS: dict[str, tuple[str, ...]] = {
    "reg_read": ("s", "s"),  # path, depth
    "reg_write": ("s", "s", "s", "s"),  # path, name, .NET RegistryValueKind, data
    "reg_delete": ("s", "s"),  # path, name
    "file_read": ("s", "s"),  # path (env vars expanded on the host), max bytes
    "file_list": ("s", "s", "s", "s"),  # dir, recurse 0/1, pattern, max rows
    "adsi_search": ("s", "s", "l"),  # base DN ('' = configuration NC), LDAP filter, attributes
    "adsi_write": ("s", "s", "l", "s"),  # DN or IIS:// path, attribute, values (empty clears), 'int'|'string'
    "wmi_query": ("s", "s", "l"),  # namespace, WQL, properties
    "eventlog": ("s", "s", "l", "s", "s"),  # log, source, event ids, since (ISO UTC), max rows
    "service_query": ("l",),  # service names
    "service_control": ("s", "s", "s"),  # name, start|stop|restart|auto|manual|disabled, wait seconds
    "msi_features": ("s",),  # WQL LIKE pattern on ProductName
    "tcp_connections": ("s",),  # remote port filter ('' = all)
    "file_copy": ("s", "s", "s"),  # source, destination, keep the replaced file as ('' = do not keep)
    "run_process": ("s", "l", "s", "l"),  # program, arguments (quoted per argv rules), timeout seconds, success exit codes
    "tcp_probe": ("s", "s", "s", "s", "s", "s"),  # target, port, timeout ms, helo, mail from, rcpt to
}

# .NET RegistryValueKind names the dispatcher reports, and the reg.exe names.
REG_KIND_TO_TYPE = {
    "String": "REG_SZ",
    "ExpandString": "REG_EXPAND_SZ",
    "DWord": "REG_DWORD",
    "QWord": "REG_QWORD",
    "MultiString": "REG_MULTI_SZ",
    "Binary": "REG_BINARY",
}
REG_TYPE_TO_KIND = {v: k for k, v in REG_KIND_TO_TYPE.items()}


class RunnerError(Exception):
    """The host's answer could not be decoded; the message says why."""


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


# List items are comma-joined base64; an empty item is "-" (base64 never
# produces it), so [""] and [] stay different on the wire.
def _list_item(text: str) -> str:
    return _b64(text) or "-"


def _unlist(field: str) -> list[str]:
    if not field:
        return []
    return ["" if v == "-" else base64.b64decode(v).decode("utf-8", "replace") for v in field.split(",")]


@dataclass(frozen=True)
class Op:
    name: str
    args: tuple

    def __post_init__(self) -> None:
        kinds = OPERATIONS.get(self.name)
        if kinds is None:
            raise ValueError(f"unknown operation {self.name!r}")
        if len(self.args) != len(kinds):
            raise ValueError(f"{self.name} takes {len(kinds)} arguments, got {len(self.args)}")
        for kind, arg in zip(kinds, self.args):
            if kind == "l" and isinstance(arg, (str, bytes)):
                raise ValueError(f"{self.name}: list argument given as a string: {arg!r}")

    def wire(self) -> str:
        fields = [self.name]
        for kind, arg in zip(OPERATIONS[self.name], self.args):
            if kind == "l":
                fields.append(",".join(_list_item(str(item)) for item in arg))
            else:
                fields.append(_b64("" if arg is None else str(arg)))
        return "\t".join(fields)


@dataclass
class OpResult:
    index: int
    op: Op
    rows: list[tuple[str, dict]] = field(default_factory=list)
    error: str | None = None

    def of_kind(self, kind: str) -> list[dict]:
        return [r for k, r in self.rows if k == kind]

    def first(self, kind: str) -> dict | None:
        found = self.of_kind(kind)
        return found[0] if found else None


def read_script(name: str) -> str:
    with open(os.path.join(_PS_DIR, name), encoding="ascii") as fh:
        return fh.read()


def bootstrap_script() -> str:
    return read_script("bootstrap.ps1")


def dispatcher_script() -> str:
    return "\r\n".join(read_script(p) for p in DISPATCHER_PARTS)


def encode_powershell(script: str) -> str:
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


def command_line() -> str:
    """The whole cmd.exe line: constant, whatever the request holds."""
    line = POWERSHELL_PREFIX + encode_powershell(bootstrap_script())
    if len(line) > CMD_EXE_MAX:  # guarded by a test too; never ship a line cmd.exe drops
        raise RunnerError(f"command line is {len(line)} characters, over cmd.exe's {CMD_EXE_MAX}")
    return line


def encode_request(ops: Sequence[Op]) -> str:
    return _b64("\n".join(op.wire() for op in ops))


def stdin_payload(ops: Sequence[Op]) -> bytes:
    return (encode_request(ops) + "\n" + dispatcher_script()).encode("ascii")


def decode_request(request_b64: str) -> list[Op]:
    """Inverse of encode_request (the lab uses it; tests round-trip through it)."""
    text = base64.b64decode(request_b64).decode("utf-8")
    ops = []
    for line in text.split("\n"):
        fields = line.split("\t")
        name, raw = fields[0], fields[1:]
        kinds = OPERATIONS.get(name)
        if kinds is None or len(raw) != len(kinds):
            raise RunnerError(f"malformed request line for {name!r}")
        args = []
        for kind, value in zip(kinds, raw):
            if kind == "l":
                args.append(tuple(_unlist(value)))
            else:
                args.append(base64.b64decode(value).decode("utf-8"))
        ops.append(Op(name, tuple(args)))
    return ops


# -- output


def encode_value(value: Any) -> str:
    """Python twin of the dispatcher's Val (used by the lab and by tests)."""
    if value is None:
        return "n"
    if isinstance(value, bool):
        return "i1" if value else "i0"
    if isinstance(value, int):
        return "i" + str(value)
    if isinstance(value, (bytes, bytearray)):
        return "b" + base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (list, tuple)):
        return "m" + ",".join(_list_item(str(v)) for v in value)
    if isinstance(value, UtcTime):
        return "d" + value.iso
    return "s" + _b64(str(value))


@dataclass(frozen=True)
class UtcTime:
    """A time the dispatcher reported (yyyy-MM-ddTHH:mm:ssZ)."""

    iso: str


def encode_row(index: int, kind: str, fields: Iterable[tuple[str, Any]]) -> str:
    return "\t".join([str(index), kind] + [f"{name}={encode_value(value)}" for name, value in fields])


def _decode_value(token: str) -> Any:
    tag, body = token[:1], token[1:]
    if tag == "n":
        return None
    if tag == "i":
        return int(body)
    if tag == "d":
        return body
    if tag == "s":
        return base64.b64decode(body).decode("utf-8", "replace")
    if tag == "b":
        return base64.b64decode(body)
    if tag == "m":
        return _unlist(body)
    raise ValueError(f"unknown value tag {tag!r}")


def decode_output(stdout: bytes | str, ops: Sequence[Op]) -> list[OpResult]:
    text = stdout.decode("ascii", "replace") if isinstance(stdout, bytes) else stdout
    lines = [ln.strip("\r") for ln in text.split("\n")]
    meaningful = [ln for ln in lines if ln.strip()]
    if not meaningful:
        raise RunnerError(
            "the host returned no output: PowerShell did not run the script "
            "(a command line over cmd.exe's limit, or PowerShell 2.0 missing, does this)"
        )
    if PROTOCOL_HEADER not in meaningful:
        raise RunnerError(f"unexpected output from the host (no {PROTOCOL_HEADER} header): {meaningful[0][:200]!r}")
    start = meaningful.index(PROTOCOL_HEADER)
    if PROTOCOL_END not in meaningful[start:]:
        raise RunnerError("the host's output ends early (no end marker): the connection or the script broke off")
    end = meaningful.index(PROTOCOL_END, start)
    results = [OpResult(i, op) for i, op in enumerate(ops)]
    for line in meaningful[start + 1:end]:
        parts = line.split("\t")
        try:
            index, kind = int(parts[0]), parts[1]
            fields = {}
            for token in parts[2:]:
                name, _unused, value = token.partition("=")
                fields[name] = _decode_value(value)
        except (ValueError, IndexError) as exc:
            raise RunnerError(f"malformed result line {line[:120]!r}: {exc}") from exc
        if not 0 <= index < len(results):
            raise RunnerError(f"result for unknown operation index {index}")
        if kind == "err":
            results[index].error = fields.get("message") or "unknown error"
        else:
            results[index].rows.append((kind, fields))
    return results
