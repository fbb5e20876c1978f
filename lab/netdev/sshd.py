"""A network device's SSH server on its own loopback address: password login, then the IOS CLI.

paramiko serves the protocol; lab.netdev.ios decides what each line means.
Like a Cisco vty: the server announces itself as ``SSH-2.0-Cisco-1.25``,
``pty-req`` + ``shell`` give an interactive session that echoes what is
typed and ends lines with CRLF, and an ``exec`` request (``ssh fw show
version``) runs one command and closes. network_cli sends each command
followed by ``\\r``; a ``\\n`` after it is not a second, empty line.
"""
from __future__ import annotations

import logging
import socket
import threading
import time

import paramiko

from lab.netdev.ios import IosCli
from lab.runtime import Metrics
from lab.state import FleetState

ACCEPT_BACKLOG = 16
SERVER_VERSION = "SSH-2.0-Cisco-1.25"  # what IOS 12.4 sends
_POLL = 0.5  # seconds: how often blocked waits notice stop()
_REQUEST_WAIT = 10.0  # seconds a client has, after opening a channel, to ask for a shell or a command

log = logging.getLogger(__name__)


class _Server(paramiko.ServerInterface):
    """One SSH connection's authentication and channel requests."""

    def __init__(self, listener: "SshListener") -> None:
        self.listener = listener
        self.user: str | None = None
        self.requests: dict[int, tuple[str, str]] = {}  # channel id -> ("shell", "") | ("exec", command)
        self.requested = threading.Condition()

    def get_allowed_auths(self, username: str) -> str:
        return "password"

    def check_auth_password(self, username: str, password: str) -> int:
        with self.listener.fleet.lock:
            device = self.listener.device
            ok = (username, password) == (device.get("username"), device.get("password"))
        if not ok:
            self.listener.metrics.bump_device(self.listener.device_name, "ssh_auth_failures")
            return paramiko.AUTH_FAILED
        self.user = username
        self.listener.metrics.bump_device(self.listener.device_name, "ssh_logins")
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_pty_request(self, channel, term, width, height, pixelwidth, pixelheight, modes) -> bool:
        return True

    def check_channel_window_change_request(self, channel, width, height, pixelwidth, pixelheight) -> bool:
        return True

    def check_channel_shell_request(self, channel) -> bool:
        return self._request(channel, "shell", "")

    def check_channel_exec_request(self, channel, command) -> bool:
        return self._request(channel, "exec", command.decode("utf-8", "replace"))

    def _request(self, channel, kind: str, command: str) -> bool:
        with self.requested:
            self.requests[channel.get_id()] = (kind, command)
            self.requested.notify_all()
        return True

    def wait_request(self, channel) -> tuple[str, str] | None:
        with self.requested:
            self.requested.wait_for(lambda: channel.get_id() in self.requests, timeout=_REQUEST_WAIT)
            return self.requests.get(channel.get_id())


class SshListener:
    def __init__(self, fleet: FleetState, metrics: Metrics, device_name: str, host_key: paramiko.PKey,
                 booted_at: float | None = None) -> None:
        self.fleet, self.metrics, self.device_name, self.host_key = fleet, metrics, device_name, host_key
        self.booted_at = booted_at or time.time()
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._transports: set[paramiko.Transport] = set()
        self._lock = threading.Lock()

    @property
    def device(self) -> dict:
        """The fleet's own dict (looked up each time, so credential and config changes apply at once)."""
        for dev in self.fleet.network.get("devices", []):
            if dev["name"].lower() == self.device_name.lower():
                return dev
        raise KeyError(self.device_name)

    @property
    def endpoint(self) -> tuple[str, int]:
        with self.fleet.lock:
            device = self.device
            return device["address"], int((device.get("ports") or {}).get("ssh", 22))

    # -- lifecycle
    def start(self) -> "SshListener":
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(self.endpoint)
            server.listen(ACCEPT_BACKLOG)
        except OSError:
            server.close()
            raise
        self._stopping.clear()
        self._server = server
        self._thread = threading.Thread(target=self._accept_loop, args=(server,), name=f"ssh-{self.device_name}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            try:
                self._server.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            self._server.close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        with self._lock:
            transports, self._transports = self._transports, set()
        for transport in transports:
            transport.close()

    # -- serving
    def _accept_loop(self, server: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve_connection, args=(conn,), name=f"ssh-{self.device_name}-conn",
                             daemon=True).start()

    def _serve_connection(self, conn: socket.socket) -> None:
        transport = paramiko.Transport(conn)
        transport.local_version = SERVER_VERSION
        transport.add_server_key(self.host_key)
        server = _Server(self)
        with self._lock:
            if self._stopping.is_set():
                transport.close()
                return
            self._transports.add(transport)
        try:
            transport.start_server(server=server)
            while transport.is_active() and not self._stopping.is_set():
                channel = transport.accept(timeout=_POLL)
                if channel is not None:
                    threading.Thread(target=self._serve_channel, args=(channel, server),
                                     name=f"ssh-{self.device_name}-chan", daemon=True).start()
        except (paramiko.SSHException, EOFError, OSError) as exc:
            log.debug("ssh %s: connection ended: %s", self.device_name, exc)
        finally:
            with self._lock:
                self._transports.discard(transport)
            transport.close()

    def _cli(self, server: _Server) -> IosCli:
        device = self.device
        return IosCli(device, lock=self.fleet.lock, user=server.user or "", booted_at=self.booted_at,
                      on_config_command=lambda: self.metrics.bump_device(self.device_name, "config_commands"))

    def _serve_channel(self, channel: paramiko.Channel, server: _Server) -> None:
        try:
            request = server.wait_request(channel)
            if request is None:
                return
            kind, command = request
            cli = self._cli(server)
            if kind == "exec":
                self.metrics.bump_device(self.device_name, "cli_commands")
                channel.sendall(cli.run_exec(command).encode("utf-8") + b"\r\n")
                channel.send_exit_status(0)
            else:
                self._shell(channel, cli)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            log.debug("ssh %s: channel ended: %s", self.device_name, exc)
        finally:
            try:
                channel.close()
            except (OSError, EOFError, paramiko.SSHException):
                pass  # the client went first

    def _shell(self, channel: paramiko.Channel, cli: IosCli) -> None:
        channel.settimeout(_POLL)
        channel.sendall(cli.login_text().encode("utf-8"))
        line, after_cr = "", False
        while not cli.closed and not self._stopping.is_set():
            try:
                data = channel.recv(4096)
            except socket.timeout:
                continue
            if not data:
                return
            out = []  # echo and replies for this chunk, sent at once so a reader sees echo, output, prompt together
            for ch in data.decode("utf-8", "replace"):
                if ch == "\n" and after_cr:
                    after_cr = False
                    continue
                after_cr = ch == "\r"
                if ch in "\r\n":
                    self.metrics.bump_device(self.device_name, "cli_commands")
                    out.append(cli.handle(line))
                    line = ""
                    if cli.closed:
                        break
                elif ch in "\x7f\x08":
                    if line:
                        line = line[:-1]
                        out.append("\b \b" if cli.echo else "")
                elif ch == "\x03":  # Ctrl-C drops the line
                    line = ""
                    out.append("^C" + "\r\n" + cli.prompt)
                elif ch == "\x1a":  # Ctrl-Z: end, from any config mode; nothing in exec mode
                    out.append("^Z" + (cli.handle("end") if cli.mode != "exec" else "\r\n" + cli.prompt))
                    line = ""
                elif ch >= " " or ch == "\t":
                    line += ch
                    if cli.echo:
                        out.append(ch)
            if out:
                channel.sendall("".join(out).encode("utf-8"))
