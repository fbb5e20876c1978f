"""An IOS configuration as IOS keeps it: top-level lines, each with its sub-mode lines.

``IosConfig.parse(text)`` reads a running or startup config (what ``show
running-config`` prints after its header); ``render()`` writes it back the
way IOS would print it after an edit: the original order and ``!``
separators kept, new lines placed beside their kind (``ip inspect name``
lines together, ``access-list`` lines together, a new interface after the
last one), and ``end`` last. Nothing here knows about modes or sessions; the
CLI (lab.netdev.ios) decides what a command means and calls these edits.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

SEPARATOR = "!"
_HEADER = re.compile(r"^(Building configuration\.\.\.|Current configuration : \d+ bytes|Using \d+ out of \d+ bytes)$")
INSPECT_RULE = re.compile(r"^ip inspect name (\S+) (\S+)(?:\s+(.*))?$")
INSPECT_APPLY = re.compile(r"^ip inspect (\S+) (in|out)$")

# Where IOS prints an interface's lines, roughly: a new line goes before the first existing line ranked after it.
_INTERFACE_ORDER = (
    "description", "bandwidth", "ip vrf", "ip address", "ip access-group", "ip verify", "ip inspect", "ip nat",
    "ip virtual-reassembly", "ip route-cache", "ip ospf", "shutdown", "duplex", "speed",
)
# Interface lines that hold one value: entering one replaces the one there ("ip address" keeps secondaries).
_SINGLE_VALUED = ("description", "bandwidth", "duplex", "speed", "ip vrf forwarding")
# Global lines that hold one value.
_GLOBAL_SINGLE_VALUED = ("hostname", "ip domain name", "ip domain-name", "enable secret", "clock timezone")


@dataclass
class Entry:
    """A top-level line (or a ``!`` separator) and the lines of its sub-mode, one space of indent removed."""

    text: str
    children: list[str] = field(default_factory=list)

    @property
    def is_separator(self) -> bool:
        return self.text == SEPARATOR


def _rank(line: str) -> int:
    for i, prefix in enumerate(_INTERFACE_ORDER):
        if line == prefix or line.startswith(prefix + " "):
            return i
    return len(_INTERFACE_ORDER)


def _same_key(line: str, other: str, keys: tuple[str, ...]) -> bool:
    return any(line.startswith(k + " ") and other.startswith(k + " ") for k in keys)


class IosConfig:
    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries

    # -- reading and writing
    @classmethod
    def parse(cls, text: str) -> "IosConfig":
        entries: list[Entry] = []
        for raw in text.replace("\r", "").split("\n"):
            line = raw.rstrip()
            if not line.strip() or _HEADER.match(line):
                continue
            if raw[:1].isspace():
                if entries:
                    entries[-1].children.append(line[1:] if line.startswith(" ") else line.lstrip())
                continue
            if line == "end":
                break
            entries.append(Entry(line))
        return cls(entries)

    def render(self) -> str:
        out = []
        for entry in self.entries:
            out.append(entry.text)
            out.extend(" " + child for child in entry.children)
        return "\n".join(out + ["end"]) + "\n"

    # -- looking things up
    def hostname(self) -> str | None:
        for entry in self.entries:
            if entry.text.startswith("hostname "):
                return entry.text.split(None, 1)[1]
        return None

    def find(self, text: str) -> Entry | None:
        for entry in self.entries:
            if entry.text.lower() == text.lower():
                return entry
        return None

    def inspect_rules(self) -> dict[str, list[tuple[str, str]]]:
        """rule name -> [(protocol, full line)], in config order."""
        rules: dict[str, list[tuple[str, str]]] = {}
        for entry in self.entries:
            m = INSPECT_RULE.match(entry.text)
            if m:
                rules.setdefault(m.group(1), []).append((m.group(2).lower(), entry.text))
        return rules

    # -- global lines
    def set_global(self, line: str) -> None:
        """Add a top-level line, or replace the one it supersedes."""
        m = INSPECT_RULE.match(line)
        if m:  # before find(), which ignores case: rule names are case-sensitive (Mail and MAIL are two rules)
            return self._set_inspect(m.group(1), m.group(2).lower(), line)
        if self.find(line):
            return
        negated = self.find("no " + line)
        if negated is not None:  # e.g. `ip http server` over a printed `no ip http server`
            negated.text = line
            return
        for entry in self.entries:
            if _same_key(line, entry.text, _GLOBAL_SINGLE_VALUED):
                entry.text = line
                return
        self._insert_beside(line, " ".join(line.split()[:2]))

    def remove_global(self, line: str) -> bool:
        """`no LINE`: drop the top-level lines (and blocks) LINE names. False when there were none."""
        low = line.lower()
        if line.startswith("ip inspect name "):
            parts = line.split()
            doomed = [e for e in self.entries if INSPECT_RULE.match(e.text)
                      and e.text.split()[3] == parts[3] and (len(parts) < 5 or e.text.split()[4].lower() == parts[4].lower())]
        else:
            doomed = [e for e in self.entries if not e.is_separator
                      and (e.text.lower() == low or e.text.lower().startswith(low + " "))]
        for entry in doomed:
            self._remove(self.entries.index(entry))
        return bool(doomed)

    def _set_inspect(self, rule: str, protocol: str, line: str) -> None:
        rules = self.inspect_rules()
        for entry in self.entries:
            m = INSPECT_RULE.match(entry.text)
            if m and m.group(1) == rule and m.group(2).lower() == protocol:
                entry.text = line  # new options for a protocol the rule already has
                return
        anchor = [i for i, e in enumerate(self.entries) if INSPECT_RULE.match(e.text)
                  and (rule not in rules or e.text.split()[3] == rule)]
        if anchor:
            self.entries.insert(anchor[-1] + 1, Entry(line))
        else:
            self._insert_group(self._index_before_interfaces(), line)

    def _insert_beside(self, line: str, key: str) -> None:
        same = [i for i, e in enumerate(self.entries) if e.text.startswith(key + " ") or e.text == key]
        if same:
            self.entries.insert(same[-1] + 1, Entry(line))
            return
        lines = [i for i, e in enumerate(self.entries) if e.text.startswith("line ")]
        self._insert_group(lines[0] if lines else len(self.entries), line)

    def _insert_group(self, index: int, line: str, children: list[str] | None = None) -> Entry:
        """A line (or block) on its own between separators, at index."""
        entry = Entry(line, list(children or []))
        new = [entry]
        if index > 0 and not self.entries[index - 1].is_separator:
            new.insert(0, Entry(SEPARATOR))
        if index >= len(self.entries) or not self.entries[index].is_separator:
            new.append(Entry(SEPARATOR))
        self.entries[index:index] = new
        return entry

    def _index_before_interfaces(self) -> int:
        for i, entry in enumerate(self.entries):
            if entry.text.startswith(("interface ", "line ", "username ")):
                while i > 0 and self.entries[i - 1].is_separator:
                    i -= 1
                return i
        return len(self.entries)

    def _remove(self, index: int) -> None:
        del self.entries[index]
        # Two separators left side by side by the removal become one.
        if 0 < index < len(self.entries) and self.entries[index].is_separator and self.entries[index - 1].is_separator:
            del self.entries[index]

    # -- blocks (interface, line, router, ...)
    def block(self, text: str, create: bool = True) -> Entry | None:
        entry = self.find(text)
        if entry is not None or not create:
            return entry
        keyword = text.split()[0]
        same = [i for i, e in enumerate(self.entries) if e.text.split()[0] == keyword]
        if same:
            index = same[-1] + 1
            entry = Entry(text)
            self.entries[index:index] = [Entry(SEPARATOR), entry]
            return entry
        return self._insert_group(len(self.entries) if keyword == "line" else self._after_globals(), text)

    def _after_globals(self) -> int:
        for i, entry in enumerate(self.entries):
            if entry.text.startswith(("line ", "control-plane")):
                while i > 0 and self.entries[i - 1].is_separator:
                    i -= 1
                return i
        return len(self.entries)

    @staticmethod
    def set_child(entry: Entry, line: str) -> None:
        if line in entry.children:
            return
        children = entry.children
        if line == "no shutdown":
            if "shutdown" in children:
                children.remove("shutdown")
            return
        m = INSPECT_APPLY.match(line)
        for i, child in enumerate(children):
            other = INSPECT_APPLY.match(child)
            replaces = (
                (m and other and m.group(2) == other.group(2))  # one inspection rule per direction
                or _same_key(line, child, _SINGLE_VALUED)
                or (line.startswith("ip address ") and child.startswith("ip address ")
                    and not line.endswith(" secondary") and not child.endswith(" secondary"))
                or (line.startswith("ip access-group ") and child.startswith("ip access-group ")
                    and line.split()[-1] == child.split()[-1])
                or child == "no " + line
            )
            if replaces:
                children[i] = line
                return
        rank = _rank(line)
        index = next((i for i, child in enumerate(children) if _rank(child) > rank), len(children))
        children.insert(index, line)

    @staticmethod
    def remove_child(entry: Entry, line: str) -> bool:
        low = line.lower()
        if low == "shutdown":
            before = len(entry.children)
            entry.children[:] = [c for c in entry.children if c != "shutdown"]
            return len(entry.children) != before
        keep = [c for c in entry.children if not (c.lower() == low or c.lower().startswith(low + " "))]
        removed = len(keep) != len(entry.children)
        entry.children[:] = keep
        return removed
