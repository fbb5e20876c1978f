"""Inventory names as file names: every file the collection writes for a host is named after it.

An inventory name is the user's text; a name like `../../x`, an absolute path or a 300-character name would
write a host's backup or snapshot outside its folder (where a rollback never finds it) or fail half-way. So a
host's name must already be a safe file name, checked before any host is contacted: letters, digits, '.', '_',
'-' (IP addresses and FQDNs are), not starting with a dot, at most 128 characters.
"""
from __future__ import annotations

import re

SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")


class UnsafeName(ValueError):
    pass


def host_file_name(host) -> str:
    """The host's name when it can name its files; UnsafeName (naming it) otherwise."""
    if not isinstance(host, str) or not SAFE_NAME.fullmatch(host):
        raise UnsafeName(f"inventory host {str(host)[:80]!r} cannot name its backup, snapshot and report files: use 1-128 "
                         "letters, digits, '.', '_' or '-', not starting with '.' (set ansible_host for its address)")
    return host


def unsafe_hosts(hosts) -> list[str]:
    """The messages for every host whose name cannot name its files."""
    out = []
    for h in hosts:
        try:
            host_file_name(h)
        except UnsafeName as exc:
            out.append(str(exc))
    return out


_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def dns_name_problem(name) -> str | None:
    """Why `name` is not a DNS host name (RFC 1123: labels of letters, digits and '-', at most 253 characters),
    or None. It becomes the probes' EHLO name and their envelope domain, so a control character in it would
    carry SMTP commands."""
    if not isinstance(name, str) or not name:
        return "not a name"
    text = name[:-1] if name.endswith(".") else name
    if len(text) > 253:
        return "longer than 253 characters"
    if any(ord(c) < 0x21 or ord(c) > 0x7e for c in text):
        return "contains a space or a control character"
    if not all(_LABEL.fullmatch(label) for label in text.split(".")):
        return "not letters, digits and '-' in dot-separated labels of 1-63 characters"
    return None


def inventory_problems(groups: dict, hostvars: dict, server_groups=("mailflow_servers",),
                       other_groups=("mailflow_unmanaged", "firewalls")) -> list[str]:
    """Everything in the inventory that would reach a file name or the wire unchecked, one message each, before any
    host is contacted. No server at all is a problem too: a run that matches nothing must not pass."""
    servers = [h for g in server_groups for h in groups.get(g) or []]
    out = []
    if not servers:
        out.append(f"no hosts in {', '.join(server_groups)}: check the inventory (-i) and --limit")
    names = servers + [h for g in other_groups for h in groups.get(g) or []]
    out += unsafe_hosts(dict.fromkeys(names))
    for host in dict.fromkeys(names):
        fqdn = (hostvars.get(host) or {}).get("mailflow_fqdn")
        if fqdn is not None:
            why = dns_name_problem(fqdn)
            if why:
                out.append(f"{str(host)[:80]}: mailflow_fqdn {str(fqdn)[:80]!r} is {why}")
    return out
