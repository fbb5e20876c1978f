"""WinRS shells and the commands running in them.

A Command collects stdin until it is complete, then runs the lab's executor
on a worker thread, so a slow command never stalls the HTTP server. Output is
handed back in pieces no larger than each Receive's envelope budget allows.
"""
from __future__ import annotations

import base64
import logging
import threading
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Logon:
    """How the shell's user logged on, which decides what its processes can reach beyond the host.

    A Basic logon is a cleartext logon: Windows holds the password and the process can authenticate to a
    domain controller with it (as with CredSSP). An NTLM logon (or Kerberos without delegation) is a network
    logon with no credentials to pass on: LDAP from that process runs as ANONYMOUS LOGON (the "second hop").
    `local` is a console or service logon (the lab's in-process callers)."""

    user: str = ""
    mechanism: str = "local"  # basic | ntlm | kerberos | credssp | local

    @property
    def network_credentials(self) -> bool:
        return self.mechanism in ("basic", "credssp", "local")


# executor(host_name, command_line, stdin, logon) -> (stdout, stderr, exit code)
Executor = Callable[[str, str, bytes, Logon], "tuple[bytes, bytes, int]"]


@dataclass
class OutputChunk:
    stdout: bytes
    stderr: bytes
    exit_code: int | None  # None while more output remains


class Command:
    def __init__(self, host_name: str, command_line: str, runnable: bool, logon: Logon | None = None) -> None:
        self.id = str(uuid.uuid4()).upper()
        self.host_name = host_name
        self.command_line = command_line
        self.logon = logon or Logon()
        # False when cmd.exe would refuse the line: it then "succeeds" silently.
        self.runnable = runnable
        self._stdin = bytearray()
        self.stdin_complete = False
        self.finished = threading.Event()
        self.stdout = b""
        self.stderr = b""
        self.exit_code = 0
        self.drop_output = False  # fault: the command runs, then the connection drops before its output
        self.server_error = False  # fault: the command runs, then its output is answered with HTTP 500
        self.rows_lost = False  # fault: the command runs, its output keeps only its first and last line
        self._stdout_sent = 0
        self._stderr_sent = 0
        self._lock = threading.Lock()

    def add_stdin(self, data: bytes, end: bool, executor: Executor) -> None:
        with self._lock:
            if self.stdin_complete:
                return  # Windows ignores input after End; so do we
            self._stdin += data
            if end:
                self.close_stdin(executor)

    def close_stdin(self, executor: Executor) -> None:
        """Mark stdin complete and start the command (console-mode stdin or End="true")."""
        self.stdin_complete = True
        if not self.runnable:
            self.finished.set()
            return
        worker = threading.Thread(
            target=self._run, args=(executor, bytes(self._stdin)),
            name=f"winrs-{self.host_name}-{self.id[:8]}", daemon=True,
        )
        worker.start()

    def _run(self, executor: Executor, stdin: bytes) -> None:
        try:
            stdout, stderr, exit_code = executor(self.host_name, self.command_line, stdin, self.logon)
        except Exception:  # a broken emulator must not leave the client polling forever
            log.exception("executor failed on %s for %.200r", self.host_name, self.command_line)
            stdout, stderr, exit_code = b"", traceback.format_exc().encode("utf-8"), 1
        if self.rows_lost:
            lines = bytes(stdout).splitlines()
            stdout = b"\r\n".join(lines[:1] + lines[-1:]) + b"\r\n" if len(lines) > 2 else stdout
        self.stdout, self.stderr, self.exit_code = bytes(stdout), bytes(stderr), int(exit_code)
        self.finished.set()

    def next_chunk(self, max_raw_bytes: int) -> OutputChunk:
        """The next slice of output; stdout drains first, then stderr."""
        with self._lock:
            budget = max(max_raw_bytes, 3)
            out = self.stdout[self._stdout_sent:self._stdout_sent + budget]
            self._stdout_sent += len(out)
            err = self.stderr[self._stderr_sent:self._stderr_sent + budget - len(out)]
            self._stderr_sent += len(err)
            drained = self._stdout_sent >= len(self.stdout) and self._stderr_sent >= len(self.stderr)
            return OutputChunk(out, err, self.exit_code if drained else None)


@dataclass
class Shell:
    id: str
    owner: str
    codepage: str
    logon: Logon = field(default_factory=Logon)
    commands: dict[str, Command] = field(default_factory=dict)


class ShellTable:
    """The shells one listener has open; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shells: dict[str, Shell] = {}

    def create(self, owner: str, codepage: str, logon: Logon | None = None) -> Shell:
        shell = Shell(str(uuid.uuid4()).upper(), owner, codepage, logon or Logon(owner))
        with self._lock:
            self._shells[shell.id] = shell
        return shell

    def get(self, shell_id: str | None) -> Shell | None:
        with self._lock:
            return self._shells.get((shell_id or "").upper())

    def delete(self, shell_id: str) -> Shell | None:
        with self._lock:
            return self._shells.pop(shell_id.upper(), None)

    def add_command(self, shell: Shell, command: Command) -> None:
        with self._lock:
            shell.commands[command.id] = command

    def command(self, shell: Shell, command_id: str | None) -> Command | None:
        with self._lock:
            return shell.commands.get((command_id or "").upper())

    def remove_command(self, shell: Shell, command_id: str) -> Command | None:
        with self._lock:
            return shell.commands.pop(command_id.upper(), None)

    def clear(self) -> None:
        with self._lock:
            self._shells.clear()


def raw_bytes_for_base64(encoded_budget: int) -> int:
    """How many raw bytes fit in encoded_budget characters of base64."""
    return max(encoded_budget, 0) // 4 * 3


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
