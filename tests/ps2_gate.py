"""The PowerShell 2.0 gate: parse with tree-sitter-powershell, reject the traps a PowerShell 2.0 on .NET 2.0 host
falls into that the syntax tree shows.

Windows Server 2003 tops out at PowerShell 2.0 (KB968929) on .NET 2.0. A script that uses anything newer, or a
construct 2.0 runs differently, fails on the target, and the lab cannot tell (it emulates our scripts, it does not
run them), so this gate is the check that matters. Each trap has an id, the reason and a source; docs/runner.md lists
the catalogue (tests/unit/test_powershell_gate.py checks that every id is there, with a failing and a passing snippet).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import tree_sitter
import tree_sitter_powershell

_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


@dataclass(frozen=True)
class Trap:
    id: str
    reason: str
    source: str


TRAPS = {t.id: t for t in (
    Trap("console-in", "[Console]::In finds stdin drained: PowerShell 2.0's console host reads redirected stdin itself and "
         "hands it to the command as $input", "StackStorm/st2#1695, rackspace-monitoring-agent#403, ansible bootstrap_wrapper.ps1"),
    Trap("erroraction-ignore", "-ErrorAction Ignore (and the Ignore preference) is PowerShell 3.0+; 2.0 refuses the value",
         "about_CommonParameters (PowerShell 3.0 added Ignore)"),
    Trap("ps3-parameter", "a parameter its cmdlet only has from PowerShell 3.0 (Get-Content -Raw, Get-ChildItem -File/-Directory, "
         "-NoNewline on files)", "Get-Content / Get-ChildItem help, 3.0 'What's new'"),
    Trap("simplified-syntax", "Where-Object/ForEach-Object with a property name instead of a script block is 3.0's simplified "
         "syntax", "about_Simplified_Syntax (PowerShell 3.0)"),
    Trap("ps3-type", "[ordered] and [pscustomobject] are 3.0 type accelerators", "about_Hash_Tables, about_Object_Creation (3.0)"),
    Trap("ps3-cmdlet", "a cmdlet PowerShell 2.0 does not have", "each cmdlet's help: 'introduced in Windows PowerShell 3.0' or later"),
    Trap("ps3-operator", "-in, -notin, -shl, -shr are 3.0 operators", "about_Comparison_Operators, about_Arithmetic_Operators"),
    Trap("ps3-variable", "$PSItem, $using:, $PSCommandPath are 3.0; $PSScriptRoot outside a module too", "about_Automatic_Variables"),
    Trap("ps5-syntax", "::new(), class, enum and using are PowerShell 5.0", "about_Classes (5.0)"),
    Trap("intrinsic-method", ".ForEach()/.Where() are PowerShell 4.0 intrinsic methods", "about_Arrays (4.0)"),
    Trap("count-on-scalar", ".Count/.Length of what a command returned: one object is not an array in 2.0, and 2.0 gives "
         "scalars no .Count (3.0 added it); wrap the command in @()", "PowerShell/PowerShell#5674 (mklement0), 3.0 release notes"),
    Trap("unrolled-return", "return of a method call that gives an array (GetValue, GetFiles, Split, ...) without the comma: "
         "PowerShell unrolls it, a one-item string[] becomes a string and a byte[] numbers; use return ,$x", "about_Return"),
    Trap("dotnet4-api", "a .NET 4 API (String.IsNullOrWhiteSpace, Enum.HasFlag, Stream.CopyTo, Directory.Enumerate*, "
         "File.ReadLines, Environment.Is64Bit*, TryParse of Guid/Enum/Version, Path.Combine of 3+ parts); "
         "PowerShell 2.0 runs on .NET 2.0", "MSDN 'Version Information' of each member; winbench/bench#29"),
    Trap("dotnet2sp-overload", "WaitHandle.WaitOne(int) came with a .NET 2.0 service pack; use WaitOne(int, $false)",
         "amibar/SmartThreadPool#6, BloodHoundAD/SharpHound2#74"),
    Trap("wmi-without-timeout", "Get-WmiObject has no timeout: a wedged provider hangs the whole command; use "
         "ManagementObjectSearcher with EnumerationOptions.Timeout", "MSDN EnumerationOptions.Timeout"),
    Trap("whole-event-log", "Get-EventLog reads the whole log and fails when an entry is overwritten during the read; read "
         "EventLog.Entries newest first and stop early", "MSDN EventLogEntryCollection"),
    Trap("read-before-wait", "StandardOutput.ReadToEnd() before WaitForExit(ms) waits as long as the program runs: the timeout "
         "never applies", "MSDN Process.StandardOutput (deadlock remarks)"),
    Trap("msi-wmi", "Win32_Product/Win32_SoftwareFeature need the optional WMI Windows Installer Provider and enumerate every "
         "MSI product", "MSDN Win32_SoftwareFeature; KB 974524 (Win32_Product)"),
    Trap("non-ascii", "non-ASCII characters: the wire and the 2003 console code page are ASCII", "docs/runner.md (wire contract)"),
    Trap("syntax", "the script does not parse", "tree-sitter-powershell"),
)}

PS3_CMDLETS = {
    "convertto-json", "convertfrom-json", "invoke-restmethod", "invoke-webrequest", "get-ciminstance",
    "new-cimsession", "invoke-cimmethod", "set-ciminstance", "remove-ciminstance", "get-cimclass",
    "new-ciminstance", "register-cimindicationevent", "get-filehash", "new-temporaryfile",
    "convertfrom-string", "get-clipboard", "set-clipboard", "expand-archive", "compress-archive",
    "new-guid", "format-hex", "get-runspace", "unblock-file", "get-scheduledtask", "resolve-dnsname",
    "test-netconnection", "get-nettcpconnection", "get-netadapter", "get-smbshare", "register-scheduledjob",
    "get-scheduledjob", "invoke-asworkflow", "show-command", "get-typedata", "update-list", "disable-psremoting",
    "new-psworkflowsession", "get-volume", "get-disk", "get-partition", "get-windowsfeature",
}
PS3_PARAMETERS = {("get-content", "-raw"), ("gc", "-raw"), ("cat", "-raw"), ("type", "-raw"),
                  ("get-childitem", "-file"), ("get-childitem", "-directory"), ("gci", "-file"), ("gci", "-directory"),
                  ("dir", "-file"), ("dir", "-directory"), ("ls", "-file"), ("ls", "-directory"),
                  ("set-content", "-nonewline"), ("add-content", "-nonewline"), ("out-file", "-nonewline")}
WHERE_FOREACH = {"where-object", "where", "?", "foreach-object", "foreach", "%"}
PS3_TYPE_ACCELERATORS = {"[ordered]", "[pscustomobject]"}
PS3_OPERATORS = {"-in", "-notin", "-shl", "-shr"}
PS3_VARIABLES = {"$psitem", "$pscommandpath", "$psscriptroot"}
PS4_METHODS = {"foreach", "where"}
# Methods whose result is an array (or may be): returned bare, PowerShell unrolls them.
ARRAY_METHODS = {"getvalue", "getvaluenames", "getsubkeynames", "getfiles", "getdirectories", "getfilesystementries",
                 "split", "tochararray", "getbytes", "frombase64string", "readallbytes", "readalllines",
                 "gethostaddresses", "toarray", "getactivetcpconnections", "getactivetcplisteners", "getlogicaldrives"}
DOTNET4_MEMBERS = {"isnullorwhitespace", "hasflag", "enumeratefiles", "enumeratedirectories",
                   "enumeratefilesystementries", "readlines", "is64bitoperatingsystem", "is64bitprocess"}
DOTNET4_STATIC = {("guid", "tryparse"), ("system.guid", "tryparse"), ("enum", "tryparse"), ("system.enum", "tryparse"),
                  ("version", "tryparse"), ("system.version", "tryparse")}
WMI_CMDLETS = {"get-wmiobject", "gwmi"}
EVENTLOG_CMDLETS = {"get-eventlog"}


def _walk(node) -> Iterator:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def _text(node) -> str:
    return node.text.decode("utf-8", "replace")


def _static_member(member) -> tuple[str, str] | None:
    """('console', 'in') for the member_name of [Console]::In."""
    prev = member.prev_sibling
    if prev is None or prev.type != "::" or prev.prev_sibling is None or prev.prev_sibling.type != "type_literal":
        return None
    return _text(prev.prev_sibling).strip("[]").replace(" ", "").lower(), _text(member).lower()


def _arguments(invocation) -> int:
    args = next((c for c in invocation.children if c.type == "argument_list"), None)
    inner = next((c for c in args.children if c.type == "argument_expression_list"), None) if args else None
    return 0 if inner is None else sum(1 for c in inner.children if c.type != ",")


def _innermost(node):
    """The node an expression wrapper of one child stands for."""
    while node.child_count == 1 and node.type.endswith("expression") and node.type != "script_block_expression":
        node = node.children[0]
    return node


def _command_parts(command) -> tuple[str, list]:
    name = next((c for c in command.children if c.type == "command_name"), None)
    elements = next((c for c in command.children if c.type == "command_elements"), None)
    parts = [c for c in (elements.children if elements else []) if c.type != "command_argument_sep"]
    return (_text(name).lower() if name else ""), parts


def _assigned_from_command(root) -> set[str]:
    """Variables assigned straight from a command's output (not wrapped in @()): one object or many."""
    out = set()
    for n in _walk(root):
        if n.type == "assignment_expression":
            left = next((c for c in n.children if c.type == "left_assignment_expression"), None)
            right = n.children[-1]
            if left is None:
                continue
            top = right
            while top.type in ("pipeline", "pipeline_chain") and top.child_count >= 1:
                # New-Object writes its object whole (a byte[] stays one byte[]); any other command may give one or many.
                if any(c.type == "command" and _command_parts(c)[0] != "new-object" for c in top.children):
                    out.add(_text(left).lower())
                    break
                top = top.children[0]
    return out


def _check(node, ctx: dict) -> list[tuple[str, str]]:
    """[(trap id, what)] for one node."""
    t, low = node.type, _text(node).lower()
    found: list[tuple[str, str]] = []
    if node.is_error and low.rstrip().endswith((".foreach", ".where")):
        # tree-sitter-powershell reads "foreach" as the keyword: .ForEach( does not parse, and 2.0 has no such method.
        found.append(("intrinsic-method", _text(node).rsplit(".", 1)[-1] + "()"))
    elif node.is_error or node.is_missing:
        found.append(("syntax", f"syntax error near {_text(node)[:40]!r}"))
    elif t == "command":
        name, parts = _command_parts(node)
        if name in PS3_CMDLETS:
            found.append(("ps3-cmdlet", f"{name} is not in PowerShell 2.0"))
        if name in WMI_CMDLETS:
            found.append(("wmi-without-timeout", name))
        if name in EVENTLOG_CMDLETS:
            found.append(("whole-event-log", name))
        for i, p in enumerate(parts):
            ptext = _text(p).lower()
            if p.type == "command_parameter":
                if (name, ptext) in PS3_PARAMETERS:
                    found.append(("ps3-parameter", f"{name} {ptext}"))
                nxt = parts[i + 1] if i + 1 < len(parts) else None
                if ptext.rstrip(":") in ("-erroraction", "-ea", "-warningaction", "-wa") and nxt is not None \
                        and _text(nxt).strip("'\"").lower() == "ignore":
                    found.append(("erroraction-ignore", f"{ptext} Ignore"))
                if ptext.lower().endswith(":ignore"):
                    found.append(("erroraction-ignore", ptext))
        first = _innermost(parts[0]) if parts else None
        if name in WHERE_FOREACH and first is not None and first.type != "script_block_expression" \
                and not (first.type == "command_parameter" and _text(first).lower() in ("-process", "-filterscript",
                                                                                         "-begin", "-end", "-inputobject")):
            found.append(("simplified-syntax", f"{name} {_text(first)}"))
    elif t == "assignment_expression":
        left = _text(node.children[0]).lower()
        if left in ("$erroractionpreference", "$warningpreference") and "ignore" in _text(node.children[-1]).lower():
            found.append(("erroraction-ignore", _text(node)))
    elif t == "type_literal" and low.replace(" ", "") in PS3_TYPE_ACCELERATORS:
        found.append(("ps3-type", _text(node)))
    elif t == "comparison_operator" and low in PS3_OPERATORS:
        found.append(("ps3-operator", _text(node)))
    elif t == "variable" and (low in PS3_VARIABLES or low.startswith("$using:")):
        found.append(("ps3-variable", _text(node)))
    elif t in ("class_statement", "enum_statement", "using_statement"):
        found.append(("ps5-syntax", t.replace("_statement", "")))
    elif t == "member_name":
        static = _static_member(node)
        parent = node.parent
        if static and static[1] == "new":
            found.append(("ps5-syntax", "::new()"))
        if static and static[0] in ("console", "system.console") and static[1] in ("in", "openstandardinput"):
            found.append(("console-in", f"[Console]::{_text(node)}"))
        if low in PS4_METHODS and node.prev_sibling is not None and node.prev_sibling.type == ".":
            found.append(("intrinsic-method", f".{_text(node)}()"))
        if low in DOTNET4_MEMBERS or (static is not None and static in DOTNET4_STATIC):
            found.append(("dotnet4-api", _text(node)))
        if parent is not None and parent.type == "invokation_expression":
            if low == "copyto" and _arguments(parent) == 1:
                found.append(("dotnet4-api", "Stream.CopyTo(destination)"))
            if static is not None and static[0] in ("io.path", "system.io.path") and low == "combine" and _arguments(parent) > 2:
                found.append(("dotnet4-api", "Path.Combine of more than two parts"))
            if low == "waitone" and _arguments(parent) == 1:
                found.append(("dotnet2sp-overload", "WaitOne(timeout)"))
            if low == "readtoend" and "standardoutput" in _text(parent).lower() + _text(parent.parent or parent).lower():
                found.append(("read-before-wait", _text(parent)))
        if low in ("count", "length") and parent is not None and parent.type == "member_access":
            target = parent.children[0]
            if target.type == "parenthesized_expression" and any(c.type == "command" for c in _walk(target)):
                found.append(("count-on-scalar", _text(parent)))
            elif target.type == "variable" and _text(target).lower() in ctx["from_command"]:
                found.append(("count-on-scalar", _text(parent)))
    elif t == "flow_control_statement" and node.children and node.children[0].type == "return":
        value = node.children[1] if node.child_count > 1 else None
        while value is not None and value.type in ("pipeline", "pipeline_chain") and value.child_count == 1:
            value = value.children[0]
        while value is not None and value.child_count == 1 and value.type.endswith("expression") \
                and value.type != "invokation_expression":
            value = value.children[0]
        if value is not None and value.type == "invokation_expression":
            member = next((c for c in value.children if c.type == "member_name"), None)
            if member is not None and _text(member).lower() in ARRAY_METHODS:
                found.append(("unrolled-return", f"return {_text(value)[:60]}"))
    elif t == "string_literal" and ("win32_product" in low or "win32_softwarefeature" in low):
        found.append(("msi-wmi", _text(node)[:60]))
    return found


def findings(source: str) -> list[tuple[int, str, str]]:
    """[(line, trap id, what)] for one script."""
    out: list[tuple[int, str, str]] = []
    if any(ord(c) > 127 for c in source):
        line = next(i for i, text in enumerate(source.splitlines(), 1) if any(ord(c) > 127 for c in text))
        out.append((line, "non-ascii", "non-ASCII characters"))
    tree = _PARSER.parse(source.encode("utf-8"))
    ctx = {"from_command": _assigned_from_command(tree.root_node)}
    for node in _walk(tree.root_node):
        for trap, what in _check(node, ctx):
            out.append((node.start_point[0] + 1, trap, what))
    return out


def violations(source: str) -> list[str]:
    """Problems that keep this script from running right on PowerShell 2.0 (empty = fine), each with its reason."""
    return [f"line {line}: {trap}: {what} -- {TRAPS[trap].reason}" for line, trap, what in findings(source)]
