"""wmic.exe, the part verifiers use: `wmic path <class> [where "<WQL condition>"] get <props> /format:list`
and the `qfe` alias (Win32_QuickFixEngineering).

It answers from the same WMI instances the dispatcher's wmi_query reads, so a
test that checks a fix with wmic looks at raw state, not at the collection's
own reading of it. Modelled, not captured from a real box: the list format's
"Name=Value" lines, blank lines around each instance, the CR CR LF line ends
wmic writes when its output is not a console, and "No Instance(s) Available."
on stderr for an empty result.
"""
from __future__ import annotations

from lab.shell.query import QueryError, parse_wql
from lab.state import HostState

_ALIASES = {"qfe": "Win32_QuickFixEngineering", "service": "Win32_Service", "os": "Win32_OperatingSystem"}
_EOL = "\r\r\n"


def run(host: HostState, args: list[str]) -> tuple[bytes, bytes, int] | None:
    words = list(args)
    if not words:
        return None
    if words[0].lower() == "path" and len(words) > 1:
        cls, rest = words[1], words[2:]
    elif words[0].lower() in _ALIASES:
        cls, rest = _ALIASES[words[0].lower()], words[1:]
    else:
        return None
    where, props = "", None
    i = 0
    while i < len(rest):
        w = rest[i].lower()
        if w == "where" and i + 1 < len(rest):
            where, i = rest[i + 1], i + 2
        elif w == "get" and i + 1 < len(rest):
            props, i = [p for p in rest[i + 1].split(",") if p], i + 2
        elif w.startswith("/format"):
            i += 1
        else:
            return b"", f"Invalid GET Expression.{_EOL}".encode("ascii"), 1
    try:
        _, _, pred = parse_wql(f"SELECT * FROM {cls}" + (f" WHERE {where}" if where else ""))
    except QueryError:
        return b"", f"Invalid query{_EOL}".encode("ascii"), 1
    instances = next((v for k, v in host.wmi.get("root\\cimv2", {}).items() if k.lower() == cls.lower()), [])
    found = [inst for inst in instances if pred(inst)]
    if not found:
        return b"", f"No Instance(s) Available.{_EOL}".encode("ascii"), 0
    out = []
    for inst in found:
        names = props or sorted(inst)
        out.append(_EOL * 2 + "".join(f"{n}={_value(inst, n)}{_EOL}" for n in names))
    return ("".join(out) + _EOL).encode("utf-8"), b"", 0


def _value(inst: dict, name: str) -> str:
    value = next((v for k, v in inst.items() if k.lower() == name.lower()), None)
    return "" if value is None else str(value)
