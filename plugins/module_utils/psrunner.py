"""Run PowerShell 2.0 operations on a host in as few WinRM commands as fit, decode in Python.

Wire contract (the lab emulates exactly this; see lab/shell/powershell.py and docs/runner.md):

* Command line: ``PowerShell -NoProfile -NonInteractive -ExecutionPolicy
  Unrestricted -EncodedCommand <bootstrap>``. ansible-core 2.19's winrm plugin
  passes a line with this prefix through unchanged. The bootstrap is a few
  hundred characters, so the line stays far below cmd.exe's 8191-character cap
  whatever the request holds.
* stdin: one line of base64 request, then the dispatcher script. PowerShell 2.0's
  console host reads redirected stdin itself and hands it to the command as
  ``$input`` (one string per line), which is how the bootstrap reads it. The
  request is data only: its first line is the context (``mailflow-request/2``,
  the AD credentials and the WMI timeout, each base64), then one line per
  operation, ``name<TAB>b64(arg)<TAB>...``; list arguments are comma-joined
  base64 items. No value is ever spliced into PowerShell code, and the context
  never leaves the host in any answer.
* stdout: ``MAILFLOW/1``, one line per result row, ``MAILFLOW-END``. A row is
  ``index<TAB>kind<TAB>name=<t><value>...`` with t one of n (null), i (integer),
  d (UTC time), s (base64 UTF-8 text), b (base64 bytes), m (comma-joined base64
  texts). A file travels as one ``file`` row and ``chunk`` rows of at most
  FILE_CHUNK_BYTES each (file_data() puts them back together).
* Size: the whole stdin of one command stays under what WinRM 2.0 accepts in
  the one Send ansible-core's winrm plugin makes of it (Limits); operations that
  do not fit, or more probes than one command drives, go in further commands
  (batches()). run() does all of it over any execute(command, stdin) callable.
"""
from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

PROTOCOL_HEADER = "MAILFLOW/1"
PROTOCOL_END = "MAILFLOW-END"
REQUEST_VERSION = "mailflow-request/2"
NO_INPUT = "MAILFLOW-NOINPUT"  # the bootstrap's answer when $input brought no request
POWERSHELL_PREFIX = "PowerShell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand "
CMD_EXE_MAX = 8191
FILE_CHUNK_BYTES = 65536  # one chunk row: what PowerShell holds of a file at a time (about 16x this in memory)
DEFAULT_WMI_TIMEOUT = 30  # seconds; EnumerationOptions.Timeout of every WMI query

_PS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "powershell")
# Order matters: helpers and operations, the probe loop, then the main loop.
DISPATCHER_PARTS = ("dispatcher.ps1", "probe.ps1", "main.ps1")

# name -> argument kinds, in order: "s" scalar text, "l" list of texts.
OPERATIONS: dict[str, tuple[str, ...]] = {
    "reg_read": ("s", "s"),  # path, depth
    "reg_write": ("s", "s", "s", "s"),  # path, name, .NET RegistryValueKind, data
    "reg_delete": ("s", "s"),  # path, name
    "reg_prune": ("s", "s"),  # path, the outermost key a reg_write created (reg_write's prev row names it)
    "file_read": ("s", "s", "s"),  # path (env vars expanded on the host), max bytes, bytes per chunk row
    "file_list": ("s", "s", "s", "s"),  # dir, recurse 0/1, pattern, max rows
    "adsi_search": ("s", "s", "l"),  # base DN ('' = configuration NC), LDAP filter, attributes
    "adsi_read": ("s", "l"),  # DN or IIS:// path, attributes
    "adsi_write": ("s", "s", "l", "s"),  # DN or IIS:// path, attribute, values (empty clears), 'int'|'string'
    "wmi_query": ("s", "s", "l"),  # namespace, WQL, properties
    "eventlog": ("s", "s", "l", "s", "s"),  # log, source, event ids, since (ISO UTC), max rows
    "service_query": ("l",),  # service names
    "service_control": ("s", "s", "s"),  # name, start|stop|restart|auto|manual|disabled, wait seconds
    "msi_features": ("s",),  # PowerShell -like wildcard on the product's DisplayName (Uninstall key)
    "tcp_connections": ("s",),  # remote port filter ('' = all)
    "file_copy": ("s", "s", "s", "l"),  # source, destination, keep the replaced file as ('' = do not keep),
    #                                     services that must be Stopped for the copy to go ahead
    "run_process": ("s", "l", "s", "l"),  # program, arguments (quoted per argv rules), timeout seconds, success exit codes
    "tcp_probe": ("s", "s", "s", "s", "s", "s"),  # target, port, timeout ms, helo, mail from, rcpt to
    #                                     ('' helo: the host's own FQDN; a mail address ending in '@': the host's domain)
    "echo": ("s",),  # text sent back as it arrived (the self-test's stdin round trip)
    "runtime": (),  # what runs the script: PowerShell, CLR, account, memory
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
    """The host's answer could not be decoded (or a request cannot be sent); the message says why.
    `response` is the raw {stdout, stderr, rc} when there was one."""

    def __init__(self, message: str, response: dict | None = None, silent: Sequence[Op] = ()) -> None:
        super().__init__(message)
        self.response = response
        self.silent = list(silent)  # the operations that did not answer, when the answer was cut short


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


# List items are comma-joined base64; an empty item is "-" (base64 never
# produces it), so [""] and [] stay different on the wire.
def _list_item(text: str) -> str:
    return _b64(text) or "-"


def _unlist(field_: str) -> list[str]:
    if not field_:
        return []
    return ["" if v == "-" else base64.b64decode(v).decode("utf-8", "replace") for v in field_.split(",")]


@dataclass(frozen=True)
class Context:
    """What every operation of one request may use, carried in the encoded request and nowhere else: the AD
    credentials of the explicit-credential LDAP bind ('' = the process's own, which over NTLM has none for the
    second hop) and the WMI timeout. The password never appears in a repr, a result or an error."""

    ad_username: str = ""
    ad_password: str = field(default="", repr=False)
    wmi_timeout: int = DEFAULT_WMI_TIMEOUT

    def wire(self) -> str:
        return "\t".join([REQUEST_VERSION, _b64(self.ad_username), _b64(self.ad_password), _b64(str(int(self.wmi_timeout)))])


@dataclass(frozen=True)
class Limits:
    """What one command may carry. ansible-core's winrm plugin sends stdin in Sends of up to 200000 bytes, each
    base64 in one SOAP envelope, and WinRM 2.0 refuses an envelope over MaxEnvelopeSizekb (default 150); so a
    command's whole stdin must fit one envelope. max_probes bounds the sockets one PowerShell drives at once."""

    max_envelope_kb: int = 150
    max_probes: int = 250

    # A Send envelope without its stream text is about 1 KB (pywinrm's header); twice that and then some.
    SEND_OVERHEAD = 4096

    @property
    def max_stdin(self) -> int:
        return max(0, (self.max_envelope_kb * 1024 - self.SEND_OVERHEAD) * 3 // 4)


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
    done: bool = False  # the host said the operation returned (its 'done' row)

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


def encode_request(ops: Sequence[Op], context: Context | None = None) -> str:
    return _b64("\n".join([(context or Context()).wire()] + [op.wire() for op in ops]))


def stdin_payload(ops: Sequence[Op], context: Context | None = None) -> bytes:
    return (encode_request(ops, context) + "\n" + dispatcher_script()).encode("ascii")


def decode_request(request_b64: str) -> tuple[list[Op], Context]:
    """Inverse of encode_request (the lab uses it; tests round-trip through it)."""
    lines = base64.b64decode(request_b64).decode("utf-8").split("\n")
    head = lines[0].split("\t")
    if head[0] != REQUEST_VERSION or len(head) != 4:
        raise RunnerError(f"the request does not start with a {REQUEST_VERSION} context line")
    user, password, timeout = (base64.b64decode(v).decode("utf-8") for v in head[1:])
    context = Context(user, password, int(timeout or DEFAULT_WMI_TIMEOUT))
    ops = []
    for line in lines[1:]:
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
    return ops, context


# -- how many commands


def batches(ops: Sequence[Op], context: Context | None = None, limits: Limits | None = None) -> list[list[Op]]:
    """The operations in order, cut into as few commands as fit: each command's stdin within limits.max_stdin
    and at most limits.max_probes probes. One command whenever everything fits (the usual case); a single
    operation that cannot fit even alone is refused, naming it."""
    limits = limits or Limits()
    fixed = len(dispatcher_script()) + 1
    head = len((context or Context()).wire())

    def size(text_len: int) -> int:  # bytes of stdin for a request text of text_len bytes
        return fixed + 4 * ((text_len + 2) // 3)

    out: list[list[Op]] = []
    current: list[Op] = []
    text_len, probes = head, 0
    for op in ops:
        line = len(op.wire().encode("utf-8")) + 1
        is_probe = op.name == "tcp_probe"
        if size(head + line) > limits.max_stdin:
            raise RunnerError(f"{op.name} {str(op.args[:1])[:80]} needs a request of {size(head + line)} bytes, more than "
                              f"one command carries ({limits.max_stdin} bytes for MaxEnvelopeSizekb {limits.max_envelope_kb})")
        if current and (size(text_len + line) > limits.max_stdin or (is_probe and probes >= limits.max_probes)):
            out.append(current)
            current, text_len, probes = [], head, 0
        current.append(op)
        text_len += line
        probes += is_probe
    if current or not out:
        out.append(current)
    return out


def run(execute: Callable[[str, bytes], dict], ops: Sequence[Op], context: Context | None = None,
        limits: Limits | None = None) -> list[OpResult]:
    """Every operation, in order, in as few commands as batches() allows; execute(command line, stdin) returns
    ansible's {stdout, stderr, rc}. Results are indexed over all of `ops`. A command whose answer cannot be
    decoded raises RunnerError carrying that answer (`response`); nothing after it runs."""
    results: list[OpResult] = []
    for batch in batches(ops, context, limits):
        response = execute(command_line(), stdin_payload(batch, context))
        try:
            decoded = decode_output(response.get("stdout", ""), batch)
        except RunnerError as exc:
            raise RunnerError(str(exc), response, exc.silent) from None
        for res in decoded:
            res.index += len(results)
        results.extend(decoded)
    return results


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
            "(a command line over cmd.exe's limit, a request WinRM refused, or PowerShell 2.0 missing, does this)"
        )
    if any(ln.startswith(NO_INPUT) for ln in meaningful):
        raise RunnerError("PowerShell ran but the request did not reach it on stdin ($input held "
                          f"{meaningful[0].split()[-1]} line(s)): the host's PowerShell reads stdin another way; see docs/runner.md")
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
            # One line: .NET messages end in CRLF, and PowerShell quotes them inside its own ("... "text\r\n"").
            results[index].error = " ".join(str(fields.get("message") or "unknown error").split())
        elif kind == "done":
            results[index].done = True
        else:
            results[index].rows.append((kind, fields))
    # Every operation answers: a 'done' (or, for a probe, its 'probe' row) or an 'err'. Framing alone proves nothing:
    # a header and an end marker around too few rows must never pass for a host that has none of those things.
    silent = [r for r in results if r.error is None and not r.done and not (r.op.name == "tcp_probe" and r.rows)]
    if silent:
        names = ", ".join(f"{r.index}:{r.op.name}" for r in silent[:8]) + (" ..." if len(silent) > 8 else "")
        raise RunnerError(f"the host's answer lacks {len(silent)} of {len(results)} operation(s) ({names}): it was cut short",
                          silent=[r.op for r in silent])
    return results


def file_data(res: OpResult) -> tuple[dict, bytes] | None:
    """A file_read's `file` row and its bytes, put back together from its chunk rows; None when the file was
    missing. RunnerError when a chunk is missing or out of place (the answer was cut)."""
    meta = res.first("file")
    if meta is None:
        return None
    data = bytearray()
    for chunk in res.of_kind("chunk"):
        if chunk.get("offset") != len(data) or not isinstance(chunk.get("data"), bytes):
            raise RunnerError(f"file_read {meta.get('path')}: chunk at {chunk.get('offset')} where {len(data)} was due")
        data += chunk["data"]
    expected = meta.get("read")
    if isinstance(expected, int) and expected != len(data) and res.error is None:
        raise RunnerError(f"file_read {meta.get('path')}: {len(data)} of {expected} bytes arrived")
    return meta, bytes(data)
