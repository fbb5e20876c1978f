"""The subset of WQL and LDAP filters the lab answers, evaluated over raw state.

Enough for what an admin's script (and ours) sends to WMI and ADSI:
``SELECT a, b FROM Class WHERE x = 'v' AND y LIKE 'p%'`` and RFC 4515 filters
with &, |, !, equality, presence and substring wildcards.
"""
from __future__ import annotations

import re
from typing import Any, Callable


class QueryError(ValueError):
    pass


# -- WQL

_WQL = re.compile(r"^\s*SELECT\s+(?P<props>.+?)\s+FROM\s+(?P<cls>\w+)(?:\s+WHERE\s+(?P<where>.+?))?\s*$", re.I | re.S)
_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\")|(?P<num>-?\d+)|(?P<op><>|!=|<=|>=|=|<|>)|(?P<par>[()])|(?P<word>[A-Za-z_][\w.]*))")


def parse_wql(query: str) -> tuple[str, list[str] | None, Callable[[dict], bool]]:
    """(class, properties or None for *, predicate over an instance dict)."""
    m = _WQL.match(query)
    if not m:
        raise QueryError(f"Invalid query {query!r}")
    props = None if m["props"].strip() == "*" else [p.strip() for p in m["props"].split(",")]
    where = m["where"]
    pred = _wql_predicate(where) if where else (lambda inst: True)
    return m["cls"], props, pred


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise QueryError(f"Invalid query near {text[pos:pos + 20]!r}")
        kind = m.lastgroup
        out.append((kind, m[kind]))
        pos = m.end()
    return out


def _unquote(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s[1:-1])


def like(value: Any, pattern: str) -> bool:
    """WQL LIKE: % any run, _ one character, [abc] a set; case-insensitive."""
    rx = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "%":
            rx += ".*"
        elif c == "_":
            rx += "."
        elif c == "[":
            j = pattern.find("]", i)
            if j < 0:
                raise QueryError("unterminated [ in LIKE pattern")
            rx += "[" + re.escape(pattern[i + 1:j]) + "]"
            i = j
        else:
            rx += re.escape(c)
        i += 1
    return re.fullmatch(rx, "" if value is None else str(value), re.I | re.S) is not None


def _get(inst: dict, name: str) -> Any:
    for k, v in inst.items():
        if k.lower() == name.lower():
            return v
    return None


def _compare(left: Any, op: str, right: Any) -> bool:
    if isinstance(right, int) and not isinstance(left, int):
        try:
            left = int(left)
        except (TypeError, ValueError):
            return False
    if isinstance(left, str) and isinstance(right, str):
        left, right = left.lower(), right.lower()
    if op == "=":
        return left == right
    if op in ("<>", "!="):
        return left != right
    if left is None:
        return False
    return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]


def _wql_predicate(where: str) -> Callable[[dict], bool]:
    toks = _tokens(where)
    pos = 0

    def peek() -> tuple[str, str] | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        if pos >= len(toks):
            raise QueryError("Invalid query: unexpected end")
        pos += 1
        return toks[pos - 1]

    def value_of(tok: tuple[str, str]) -> Any:
        kind, text = tok
        if kind == "str":
            return _unquote(text)
        if kind == "num":
            return int(text)
        if kind == "word" and text.upper() in ("TRUE", "FALSE"):
            return text.upper() == "TRUE"
        if kind == "word" and text.upper() == "NULL":
            return None
        raise QueryError(f"Invalid query: expected a value, got {text!r}")

    def atom() -> Callable[[dict], bool]:
        tok = take()
        if tok == ("par", "("):
            inner = disj()
            if take() != ("par", ")"):
                raise QueryError("Invalid query: missing )")
            return inner
        if tok[0] == "word" and tok[1].upper() == "NOT":
            inner = atom()
            return lambda inst: not inner(inst)
        if tok[0] != "word":
            raise QueryError(f"Invalid query: expected a property, got {tok[1]!r}")
        prop = tok[1]
        nxt = take()
        if nxt[0] == "word" and nxt[1].upper() == "LIKE":
            pattern = value_of(take())
            return lambda inst: like(_get(inst, prop), pattern)
        if nxt[0] == "word" and nxt[1].upper() == "IS":
            negate = peek() is not None and peek()[1].upper() == "NOT"
            if negate:
                take()
            take()  # NULL
            return lambda inst: (_get(inst, prop) is None) != negate
        if nxt[0] != "op":
            raise QueryError(f"Invalid query: expected an operator after {prop}")
        right = value_of(take())
        return lambda inst: _compare(_get(inst, prop), nxt[1], right)

    def conj() -> Callable[[dict], bool]:
        parts = [atom()]
        while peek() is not None and peek()[0] == "word" and peek()[1].upper() == "AND":
            take()
            parts.append(atom())
        return lambda inst: all(p(inst) for p in parts)

    def disj() -> Callable[[dict], bool]:
        parts = [conj()]
        while peek() is not None and peek()[0] == "word" and peek()[1].upper() == "OR":
            take()
            parts.append(conj())
        return lambda inst: any(p(inst) for p in parts)

    pred = disj()
    if pos != len(toks):
        raise QueryError(f"Invalid query: trailing {toks[pos][1]!r}")
    return pred


# -- LDAP (RFC 4515)


def _ldap_unescape(s: str) -> str:
    return re.sub(r"\\([0-9a-fA-F]{2})", lambda m: chr(int(m[1], 16)), s)


def parse_ldap(text: str) -> Callable[[dict], bool]:
    """Predicate over {attribute: [values]} (attribute names case-insensitive)."""
    pred, rest = _ldap(text.strip())
    if rest.strip():
        raise QueryError(f"bad LDAP filter, trailing {rest!r}")
    return pred


def _values(attrs: dict, name: str) -> list:
    for k, v in attrs.items():
        if k.lower() == name.lower():
            return [str(x) for x in (v if isinstance(v, list) else [v])]
    return []


def _ldap(s: str) -> tuple[Callable[[dict], bool], str]:
    if not s.startswith("("):
        raise QueryError(f"bad LDAP filter at {s[:20]!r}")
    s = s[1:]
    if s[:1] in ("&", "|"):
        op, s, parts = s[0], s[1:], []
        while s.startswith("("):
            p, s = _ldap(s)
            parts.append(p)
        if not s.startswith(")"):
            raise QueryError("bad LDAP filter: missing )")
        combine = all if op == "&" else any
        return (lambda a: combine(p(a) for p in parts)), s[1:]
    if s[:1] == "!":
        p, s = _ldap(s[1:])
        if not s.startswith(")"):
            raise QueryError("bad LDAP filter: missing )")
        return (lambda a: not p(a)), s[1:]
    end = s.find(")")
    if end < 0:
        raise QueryError("bad LDAP filter: missing )")
    item, s = s[:end], s[end + 1:]
    name, eq, value = item.partition("=")
    if not eq:
        raise QueryError(f"bad LDAP filter item {item!r}")
    if value == "*":
        return (lambda a: bool(_values(a, name))), s
    if "*" in value:
        rx = ".*".join(re.escape(_ldap_unescape(p)) for p in value.split("*"))
        return (lambda a: any(re.fullmatch(rx, v, re.I) for v in _values(a, name))), s
    want = _ldap_unescape(value).lower()
    return (lambda a: any(v.lower() == want for v in _values(a, name))), s
