"""An IOS command line over one device dict, with no sockets: lines in, text out.

The device dict is the one in ``FleetState.network["devices"]`` that the
SMTP listeners read (``config``, ``startup_config``); every edit rewrites its
``config`` under the fleet lock, so the next SMTP session sees it.

What cisco.ios (terminal and cliconf plugins, ios_command, ios_config)
relies on is modelled exactly: prompts ``HOST#``, ``HOST(config)#``,
``HOST(config-if)#``; ``% Invalid input detected at '^' marker.`` with the
caret under the bad word; ``show version`` lines its get_device_info parses;
the ``Destination filename [startup-config]?`` question that
``copy running-config startup-config`` asks (ios_config answers it with an
extra ``\\r``). A login lands at privilege 15, as with ``username X
privilege 15`` and ``login local``, so no ``enable`` is needed; after
``disable``, ``enable`` asks for a password (not echoed) as on_become
expects.
"""
from __future__ import annotations

import re
import threading
import time
from typing import Callable, ContextManager

from lab.netdev import ios_show
from lab.netdev.ios_config import INSPECT_APPLY, INSPECT_RULE, IosConfig
from lab.netdev.ios_show import CRLF, INVALID, abbreviates

NVRAM_BYTES = 196600  # a 2811's NVRAM, as `show startup-config` reports it

# Protocols `ip inspect name X <protocol>` takes on 12.4T (Cisco IOS Security Command Reference).
INSPECT_PROTOCOLS = {
    "cuseeme", "dns", "esmtp", "exec", "fragment", "ftp", "ftps", "gtpv0", "gtpv1", "h323", "http", "https", "icmp",
    "imap", "imaps", "ircs", "login", "netshow", "pop3", "pop3s", "realaudio", "router", "rpc", "rtsp", "shell", "sip",
    "skinny", "smtp", "sqlnet", "streamworks", "tcp", "telnet", "tftp", "udp", "vdolive",
}
# An image without the "ESMTP Support for Cisco IOS Firewall" feature (device `features: {esmtp_inspection: false}`)
# has no `esmtp` keyword: its parser refuses the word like any other it does not know.
ESMTP_FEATURE = "esmtp_inspection"
# CBAC keeps SMTP and ESMTP inspection apart: a rule holds one or the other (Cisco "ESMTP Support for Cisco IOS
# Firewall", restrictions). The exact wording of the refusal could not be confirmed; this one starts with
# "%Error" so that cisco.ios's terminal plugin (terminal_stderr_re) treats it as the error it is.
SMTP_ESMTP_CONFLICT = "%Error: {new} inspection cannot be configured together with {old} inspection in rule {rule}"

# Interface types by the prefixes IOS accepts, most specific first; physical ones cannot be created.
_INTERFACE_TYPES = (
    ("FastEthernet", True), ("GigabitEthernet", True), ("Ethernet", True), ("Serial", True),
    ("Loopback", False), ("Tunnel", False), ("Vlan", False), ("Dialer", False), ("Virtual-Template", False),
    ("Port-channel", False), ("BVI", False), ("Multilink", False),
)
# Sub-modes other than interface: the block's first words -> prompt suffix.
_SUB_MODES = (
    ("line ", "config-line"), ("router ", "config-router"), ("ip access-list extended ", "config-ext-nacl"),
    ("ip access-list standard ", "config-std-nacl"), ("class-map ", "config-cmap"), ("policy-map ", "config-pmap"),
    ("crypto isakmp policy ", "config-isakmp"), ("control-plane", "config-cp"),
)
# Lines that only exist at top level: typed in a sub-mode, IOS leaves the sub-mode and runs them globally.
_GLOBAL_ONLY = re.compile(
    r"^(no )?(interface|hostname|ip inspect name|ip inspect (audit|alert|one-minute|max|tcp|udp|dns)|access-list|"
    r"ip route|line|router|ip access-list|username|banner|service|logging|ntp|snmp-server|enable|ip domain|"
    r"ip name-server|ip cef|ip http|clock|boot|aaa|version)\b")

# Exec commands typed in config mode without `do`: IOS refuses them there.
_EXEC_ONLY = re.compile(r"^(sh(ow?)?|wr(ite?)?|copy|conf(igure)?|term(inal)?|ping|traceroute|reload|clear|debug|undebug)\b", re.I)


def _word_start(line: str, index: int) -> int:
    """Where the index-th word of line starts (for the caret under it)."""
    return [m.start() for m in re.finditer(r"\S+", line)][index]


def canonical_interface(name: str) -> tuple[str, bool] | None:
    """('FastEthernet0/0', physical) for 'fa0/0', 'FastEthernet 0/0', ...; None when IOS would not know it."""
    m = re.match(r"^([A-Za-z-]+)\s*(\d[\d/.:]*)$", name.strip())
    if not m:
        return None
    for full, physical in _INTERFACE_TYPES:
        if full.lower().startswith(m.group(1).lower()):
            return full + m.group(2), physical and "." not in m.group(2)  # subinterfaces can be created
    return None


class IosCli:
    """One CLI session (a vty line) on a device."""

    def __init__(self, device: dict, lock: ContextManager | None = None, user: str = "admin",
                 booted_at: float | None = None, on_config_command: Callable[[], None] | None = None) -> None:
        self.device = device
        self.lock = lock if lock is not None else threading.RLock()
        self.user = user
        self.booted_at = booted_at or time.time()
        self.on_config_command = on_config_command or (lambda: None)
        self.privilege = 15
        self.mode = "exec"  # exec | config | sub
        self.block: str | None = None  # the sub-mode's top-level line
        self.sub_prompt = ""
        self.question: Callable[[str], str] | None = None  # answers a pending prompt like "Destination filename"
        self.question_text = ""
        self.question_secret = False  # a password: typed blind
        self.closed = False

    # -- what the user sees
    @property
    def hostname(self) -> str:
        with self.lock:
            return IosConfig.parse(self.device.get("config") or "").hostname() or "Router"

    @property
    def echo(self) -> bool:
        """Whether what is typed now is echoed (not while a password is asked for)."""
        return not (self.question is not None and self.question_secret)

    @property
    def prompt(self) -> str:
        if self.question is not None:
            return self.question_text
        if self.mode == "exec":
            return self.hostname + ("#" if self.privilege == 15 else ">")
        return f"{self.hostname}({'config' if self.mode == 'config' else self.sub_prompt})#"

    def login_text(self) -> str:
        """What a new vty session shows before the first command."""
        with self.lock:
            config = self.device.get("config") or ""
        m = re.search(r"^banner (?:motd|exec) (\^C|\S)(.*?)\1", config, re.M | re.S)
        banner = (m.group(2).strip("\n").replace("\n", CRLF) + CRLF) if m else ""
        return CRLF + banner + CRLF + self.prompt

    def handle(self, line: str) -> str:
        """One line typed at the prompt: everything the device writes back after echoing it, prompt included."""
        line = line.rstrip("\r\n")
        if self.question is not None:
            answer, self.question, self.question_secret = self.question, None, False
            out = answer(line)
        else:
            prompt_len = len(self.prompt)
            out = self._command(line.strip(), prompt_len + len(line) - len(line.lstrip()))
        if self.closed:
            return CRLF + out if out else ""
        return CRLF + (out + CRLF if out else "") + self.prompt

    def run_exec(self, command: str) -> str:
        """An `ssh device COMMAND` request: the output alone."""
        return self._exec(command.strip(), 0)

    # -- dispatch
    def _command(self, line: str, column: int) -> str:
        if not line or line.startswith("!"):
            return ""
        if self.mode == "exec":
            return self._exec(line, column)
        words = line.split()
        if abbreviates(words[0], "do", 2) and len(words) > 1:
            rest = line.split(None, 1)[1]
            return self._exec(rest, column + len(line) - len(rest))
        if line == "end" or line == "\x1a":
            self.mode, self.block = "exec", None
            return ""
        if line == "exit":
            self.mode, self.block = ("exec", None) if self.mode == "config" else ("config", None)
            return ""
        if _EXEC_ONLY.match(line):
            return self._invalid(column)
        self.on_config_command()
        if self.mode == "sub" and not _GLOBAL_ONLY.match(line):
            return self._sub_line(line, column)
        self.mode, self.block = "config", None
        return self._global_line(line, column)

    # -- exec mode
    def _exec(self, line: str, column: int) -> str:
        words = line.split()
        head, rest = words[0], words[1:]
        if abbreviates(head, "show", 2):
            return self._show(line, rest, column + len(line) - len(line[len(head):].lstrip()))
        if abbreviates(head, "terminal", 3):
            return ""
        if abbreviates(head, "enable", 2):
            if self.privilege < 15:
                self._ask("Password: ", self._enable_password, secret=True)
            return ""
        if abbreviates(head, "disable", 4):
            self.privilege = 1
            return ""
        if head in ("exit", "logout", "quit") and self.mode == "exec":
            self.closed = True
            return ""
        if self.privilege < 15:  # what follows changes or reveals the config: not at user level
            return self._invalid(column)
        if abbreviates(head, "configure", 4):
            if rest and not abbreviates(rest[0], "terminal", 1):
                return self._invalid(column + line.index(rest[0], len(head)))
            if self.mode != "exec":
                return self._invalid(column)
            self.mode = "config"
            return "Enter configuration commands, one per line.  End with CNTL/Z."
        if abbreviates(head, "write", 2) and (not rest or abbreviates(rest[0], "memory", 1)):
            return self._save()
        if abbreviates(head, "copy", 2) and len(rest) == 2 and abbreviates(rest[0], "running-config", 3) \
                and abbreviates(rest[1], "startup-config", 3):
            self._ask("Destination filename [startup-config]? ", self._copy_destination)
            return ""
        return self._invalid(column)

    def _ask(self, text: str, answer: Callable[[str], str], secret: bool = False) -> None:
        self.question_text, self.question, self.question_secret = text, answer, secret

    def _enable_password(self, answer: str) -> str:
        # Lab assumption: the enable secret is the login password (the config holds only its hash).
        with self.lock:
            ok = answer == self.device.get("password")
        if ok:
            self.privilege = 15
            return ""
        return "% Bad secrets"

    def _show(self, line: str, args: list[str], column: int) -> str:
        if not args:
            return "% Incomplete command."
        command, _, pipe = line.partition("|")
        what = command.split()[1:]
        if not what:
            return "% Incomplete command."
        if abbreviates(what[0], "version", 1):
            with self.lock:
                config = self.device.get("config") or ""
            return ios_show.version(self.hostname, config, self.booted_at)
        if self.privilege < 15 and not abbreviates(what[0], "version", 1) and not abbreviates(what[0], "privilege", 3):
            return self._invalid(column)
        if abbreviates(what[0], "running-config", 3):
            with self.lock:
                text = self.device.get("config") or ""
            header = ["Building configuration...", "", f"Current configuration : {len(text.encode())} bytes"]
            return ios_show.filtered(header, text, pipe.strip())
        if abbreviates(what[0], "startup-config", 3):
            with self.lock:
                text = self.device.get("startup_config") or ""
            if not text:
                return "startup-config is not present"
            return ios_show.filtered([f"Using {len(text.encode())} out of {NVRAM_BYTES} bytes"], text, pipe.strip())
        if abbreviates(what[0], "privilege", 3):
            return f"Current privilege level is {self.privilege}"
        return self._invalid(column)

    def _save(self) -> str:
        with self.lock:
            config = IosConfig.parse(self.device.get("config") or "")
            self._stamp(config, "NVRAM config last updated")
            self.device["config"] = self.device["startup_config"] = config.render()
        return "Building configuration..." + CRLF + "[OK]"

    def _copy_destination(self, answer: str) -> str:
        if answer.strip() not in ("", "startup-config"):
            return "%Error opening nvram:/" + answer.strip() + " (Invalid argument)"
        return self._save()

    def _invalid(self, column: int) -> str:
        return " " * column + "^" + CRLF + INVALID + CRLF

    # -- config mode
    def _edit(self, change: Callable[[IosConfig], object]) -> str:
        """Apply one change to the running config under the fleet lock. A str the change returns is an
        error IOS prints, and the config stays as it was; anything else is ignored."""
        with self.lock:
            config = IosConfig.parse(self.device.get("config") or "")
            before = config.render()
            error = change(config)
            if isinstance(error, str) and error:
                return error
            if config.render() != before:
                self._stamp(config, "Last configuration change")
                self.device["config"] = config.render()
        return ""

    def _stamp(self, config: IosConfig, what: str) -> None:
        """IOS notes at the top of the config who last changed (or saved) it, and when."""
        now = time.strftime("%H:%M:%S UTC %a %b %d %Y", time.gmtime())
        for entry in config.entries:
            if entry.text.startswith(f"! {what} at "):
                entry.text = f"! {what} at {now} by {self.user}"

    def _global_line(self, line: str, column: int) -> str:
        negated = line.startswith("no ")
        body = line[3:].strip() if negated else line
        words = body.split()
        if abbreviates(words[0], "interface", 3) and len(words) > 1:
            found = canonical_interface(body.split(None, 1)[1])
            if found is None:
                return self._invalid(column + line.index(words[1]))
            name, physical = found
            if negated:
                return self._edit(lambda c: None if physical else c.remove_global("interface " + name))
            with self.lock:
                exists = IosConfig.parse(self.device.get("config") or "").find("interface " + name) is not None
            if not exists and physical:
                return self._invalid(column + line.index(words[1]))
            self._edit(lambda c: c.block("interface " + name))
            self.mode, self.block, self.sub_prompt = "sub", "interface " + name, "config-if"
            return ""
        if words[0] == "ip" and len(words) > 2 and abbreviates(words[1], "inspect", 4) and abbreviates(words[2], "name", 1):
            return self._inspect_rule(line, negated, words, column)
        for prefix, prompt in _SUB_MODES:
            if (body + " ").startswith(prefix) and not negated:
                self._edit(lambda c: c.block(body))
                self.mode, self.block, self.sub_prompt = "sub", body, prompt
                return ""
        if negated:
            return self._edit(lambda c: c.remove_global(body))  # `no` of a missing line: silently nothing
        return self._edit(lambda c: c.set_global(body))

    def _inspect_protocols(self) -> set[str]:
        """The protocols this device's image knows after `ip inspect name X`."""
        with self.lock:
            features = self.device.get("features") or {}
        return INSPECT_PROTOCOLS if features.get(ESMTP_FEATURE, True) else INSPECT_PROTOCOLS - {"esmtp"}

    def _inspect_rule(self, line: str, negated: bool, words: list[str], column: int) -> str:
        if len(words) < 4:
            return "% Incomplete command."
        rule = words[3]
        if len(words) > 4 and words[4].lower() not in self._inspect_protocols():  # the parser's keywords: `no` too
            return self._invalid(column + _word_start(line, 5 if negated else 4))
        if negated:
            canonical = " ".join(["ip inspect name", rule] + [w.lower() for w in words[4:5]])
            return self._edit(lambda c: c.remove_global(canonical))
        if len(words) < 5:
            return "% Incomplete command."
        protocol = words[4].lower()
        text = " ".join(["ip inspect name", rule, protocol] + words[5:])
        assert INSPECT_RULE.match(text)

        def change(config: IosConfig) -> str | None:
            other = {"smtp": "esmtp", "esmtp": "smtp"}.get(protocol)
            if other and any(p == other for p, _ in config.inspect_rules().get(rule, [])):
                return SMTP_ESMTP_CONFLICT.format(new=protocol, old=other, rule=rule)
            return config.set_global(text)
        return self._edit(change)

    def _sub_line(self, line: str, column: int) -> str:
        negated = line.startswith("no ")
        body = line[3:].strip() if negated else line
        words = body.split()
        if self.block.startswith("interface ") and words[0] == "ip" and len(words) >= 2 \
                and abbreviates(words[1], "inspect", 4):
            if len(words) != 4 or words[3].lower() not in ("in", "out"):
                return self._invalid(column + line.index(words[-1], len(line) - len(body)))
            body = f"ip inspect {words[2]} {words[3].lower()}"
            assert INSPECT_APPLY.match(body)
        block = self.block

        def change(config: IosConfig) -> None:
            entry = config.block(block)
            if negated:
                config.remove_child(entry, body)
            else:
                config.set_child(entry, body)
        return self._edit(change)

