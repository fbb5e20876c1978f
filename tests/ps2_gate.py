"""The PowerShell 2.0 gate: parse with tree-sitter-powershell, reject PS3+ constructs.

Windows Server 2003 tops out at PowerShell 2.0 (KB968929). A script that uses
anything newer fails on the target, and the lab cannot tell (it emulates our
scripts, it does not run them), so this gate is the check that matters.
"""
from __future__ import annotations

import tree_sitter
import tree_sitter_powershell

_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))

# Cmdlets that do not exist in PowerShell 2.0.
PS3_CMDLETS = {
    "convertto-json", "convertfrom-json", "invoke-restmethod", "invoke-webrequest", "get-ciminstance",
    "new-cimsession", "invoke-cimmethod", "set-ciminstance", "remove-ciminstance", "get-cimclass",
    "new-ciminstance", "register-cimindicationevent", "get-filehash", "new-temporaryfile",
    "convertfrom-string", "get-clipboard", "set-clipboard", "expand-archive", "compress-archive",
    "new-guid", "format-hex", "get-runspace", "unblock-file", "get-scheduledtask", "resolve-dnsname",
    "test-netconnection", "get-nettcpconnection", "get-netadapter", "get-smbshare",
}
PS3_TYPE_ACCELERATORS = {"[ordered]", "[pscustomobject]"}
PS3_OPERATORS = {"-in", "-notin", "-shl", "-shr"}
PS3_VARIABLES = {"$psitem"}
PS4_METHODS = {"foreach", "where"}  # .ForEach({}) / .Where({}) intrinsic methods


def violations(source: str) -> list[str]:
    """Problems that keep this script from running on PowerShell 2.0 (empty = fine)."""
    found: list[str] = []
    if any(ord(c) > 127 for c in source):
        found.append("non-ASCII characters (the wire and the 2003 console code page are ASCII)")
    tree = _PARSER.parse(source.encode("utf-8"))
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        where = f"line {node.start_point[0] + 1}"
        text = node.text.decode("utf-8", "replace")
        low = text.lower()
        if node.is_error or node.is_missing:
            found.append(f"{where}: syntax error near {text[:40]!r}")
        elif node.type == "command_name" and low in PS3_CMDLETS:
            found.append(f"{where}: {text} is not in PowerShell 2.0")
        elif node.type == "type_literal" and low.replace(" ", "") in PS3_TYPE_ACCELERATORS:
            found.append(f"{where}: {text} is PowerShell 3.0+")
        elif node.type == "comparison_operator" and low in PS3_OPERATORS:
            found.append(f"{where}: operator {text} is PowerShell 3.0+")
        elif node.type == "variable" and (low in PS3_VARIABLES or low.startswith("$using:")):
            found.append(f"{where}: {text} is PowerShell 3.0+")
        elif node.type == "member_name" and low == "new" and node.prev_sibling is not None and node.prev_sibling.type == "::":
            found.append(f"{where}: ::new() is PowerShell 5.0+ (use New-Object)")
        elif node.type == "member_name" and low in PS4_METHODS:
            found.append(f"{where}: .{text}() is PowerShell 4.0+")
        elif node.type in ("class_statement", "enum_statement", "using_statement"):
            found.append(f"{where}: {node.type.replace('_statement', '')} is PowerShell 5.0+")
        stack.extend(node.children)
    return found
