"""The lab's SMTP prober: what the collection's PowerShell probe does on a host.

From the source host's own loopback address, every target gets a real TCP
connection and SMTP conversation, all targets at once: banner, EHLO, MAIL,
RCPT, RSET, QUIT (never DATA), every wait bounded by what is left of the
target's timeout. The result holds raw observations only; classifying them
is the controller's job.

The lab's network is applied here: names resolve through the fleet (the
lab's DNS, as slow for a name as `network.dns_delays` says, counted against
that target's own timeout only, as the PowerShell's asynchronous lookups
are), and a pair of hosts the network drops is sent to a Blackhole so the
connect really times out. A target that throws (a reset connection) ends with
an error of its own; the other targets go on. Port 25 means "the SMTP port" and maps to the
target host's configured listener port.
"""
from __future__ import annotations

import ipaddress
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from lab.smtp.blackhole import Blackhole
from lab.state import FleetState

SMTP_PORT = 25
DEFAULT_TIMEOUT_MS = 5000


class ReplyTimeout(Exception):
    pass


class ReplyClosed(Exception):
    pass


@dataclass
class Route:
    address: str  # what the name resolved to ('' if unresolved)
    connect_to: tuple[str, int] | None  # where the socket goes; None if unresolved
    dropped: bool = False  # the simulated network drops this pair of hosts
    dns_delay_ms: int = 0  # how long the lookup takes


class ReplyReader:
    """Reads complete SMTP replies (multi-line aware) before a deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _line(self, deadline: float) -> str:
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ReplyTimeout
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                raise ReplyTimeout from None
            if not data:
                raise ReplyClosed
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.rstrip(b"\r").decode("latin-1")

    def reply(self, deadline: float) -> str:
        """One reply: '250-a', '250-b', '250 c' joined with newlines."""
        lines = []
        while True:
            line = self._line(deadline)
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return "\n".join(lines)


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def _resolve(fleet: FleetState, src_name: str, spec: dict) -> Route:
    target = str(spec["target"])
    port = int(spec.get("port", SMTP_PORT))
    delay = next((int(ms) for name, ms in (fleet.network.get("dns_delays") or {}).items()
                  if name.lower() == target.strip("[]").lower()), 0)
    host = fleet.host_by_name_or_fqdn(target)
    if host is None:
        literal = target.strip("[]")
        try:
            ipaddress.ip_address(literal)
        except ValueError:
            return Route("", None, dns_delay_ms=delay)
        return Route(literal, (literal, port))  # an address outside the fleet
    actual_port = int(host.ports.get("smtp", SMTP_PORT)) if port == SMTP_PORT else port
    return Route(host.address, (host.address, actual_port), dropped=fleet.is_blocked(src_name, host.name),
                 dns_delay_ms=delay)


def _converse(sock: socket.socket, spec: dict, deadline: float, connected: float, result: dict) -> None:
    """Banner, EHLO, MAIL, RCPT, RSET, QUIT; fills result as replies arrive."""
    reader = ReplyReader(sock)
    step = "banner"

    def ask(command: str | None, name: str) -> str:
        nonlocal step
        step = name
        if command is not None:
            sock.sendall(f"{command}\r\n".encode("latin-1", "replace"))
        return reader.reply(deadline)

    try:
        result["banner"] = ask(None, "banner")
        result["banner_ms"] = _ms(time.monotonic() - connected)
        if not result["banner"].startswith("220"):
            return
        result["ehlo"] = ask(f"EHLO {spec.get('helo', '')}", "EHLO reply")
        if result["ehlo"].startswith("250"):
            result["mail"] = ask(f"MAIL FROM:<{spec.get('mail_from', '')}>", "MAIL reply")
            if result["mail"].startswith("2"):
                result["rcpt"] = ask(f"RCPT TO:<{spec.get('rcpt_to', '')}>", "RCPT reply")
            ask("RSET", "RSET reply")
        ask("QUIT", "QUIT reply")
    except ReplyTimeout:
        result["error"] = f"timeout waiting for {step}"
    except ReplyClosed:
        result["error"] = f"connection closed while waiting for {step}"
    except ConnectionResetError:  # what .NET's NetworkStream says of a reset (WSAECONNRESET 10054)
        result["error"] = (f"{step}: Unable to read data from the transport connection: An existing connection was "
                           f"forcibly closed by the remote host. (0x00002746)")
    except OSError as exc:
        result["error"] = f"{step}: {exc}"


def probe_one(src_address: str, spec: dict, route: Route) -> dict:
    """One target's raw observations; banner_ms counts from the end of the connect."""
    timeout_s = int(spec.get("timeout_ms", DEFAULT_TIMEOUT_MS)) / 1000
    started = time.monotonic()
    deadline = started + timeout_s
    result = {
        "target": spec["target"], "port": int(spec.get("port", SMTP_PORT)), "address": route.address,
        "connect": "unresolved", "connect_ms": 0, "banner": "", "banner_ms": -1,
        "ehlo": "", "mail": "", "rcpt": "", "total_ms": 0, "error": "",
    }
    if route.dns_delay_ms:
        if route.dns_delay_ms >= timeout_s * 1000:
            time.sleep(timeout_s)
            result["error"], result["total_ms"] = f"timeout resolving {spec['target']}", _ms(time.monotonic() - started)
            return result
        time.sleep(route.dns_delay_ms / 1000)
    if route.connect_to is None:
        result["error"] = f"cannot resolve {spec['target']}"
        return result
    resolved = time.monotonic()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((src_address, 0))
        sock.settimeout(max(0.001, deadline - resolved))
        try:
            sock.connect(route.connect_to)
            result["connect"] = "ok"
        except ConnectionRefusedError:
            result["connect"], result["error"] = "refused", "connection refused"
        except socket.timeout:
            result["connect"], result["error"] = "timeout", "timeout waiting for connect"
        except OSError as exc:
            result["connect"], result["error"] = "error", str(exc)
        connected = time.monotonic()
        result["connect_ms"] = _ms(connected - resolved)
        if result["connect"] == "ok":
            _converse(sock, spec, deadline, connected, result)
    except OSError as exc:  # e.g. the source address cannot be bound
        result["connect"], result["error"] = "error", str(exc)
    finally:
        sock.close()
        result["total_ms"] = _ms(time.monotonic() - started)
    return result


def probe_many(fleet: FleetState, src_host_name: str, targets: list[dict],
               blackhole: Blackhole | None = None) -> list[dict]:
    """Probe every target concurrently from src_host_name; results in input order."""
    if not targets:
        return []
    with fleet.lock:
        src = fleet.host(src_host_name)
        src_address = src.address
        routes = [_resolve(fleet, src.name, spec) for spec in targets]
    own_blackhole = None
    if blackhole is None and any(route.dropped for route in routes):
        blackhole = own_blackhole = Blackhole("127.0.0.1").start()
    for route in routes:
        if route.dropped:
            route.connect_to = (blackhole.address, blackhole.port)
    try:
        with ThreadPoolExecutor(max_workers=len(targets), thread_name_prefix=f"probe-{src_host_name}") as pool:
            return list(pool.map(lambda pair: probe_one(src_address, *pair), zip(targets, routes)))
    finally:
        if own_blackhole is not None:
            own_blackhole.stop()
