"""What a lab host runs when WinRS hands it a command line.

Like cmd.exe: a PowerShell line runs PowerShell (here: the emulation of the
collection's scripts), a cmd-level command (reg, sc, type, ...) runs the
built-in, anything else is "not recognized". The 8191-character limit is
enforced before this point, by the WinRM layer, where Windows enforces it.
"""
from __future__ import annotations

from lab.shell.cmd import not_recognized, run_builtin
from lab.shell.powershell import decode_encoded_command, run_powershell


def execute(lab, host_name: str, command_line: str, stdin: bytes, logon) -> tuple[bytes, bytes, int]:
    host = lab.fleet.host(host_name)
    script = decode_encoded_command(command_line)
    if script is not None:
        return run_powershell(lab, host, script, stdin, logon)
    with lab.fleet.lock:
        result = run_builtin(lab.fleet, host, command_line)
    if result is not None:
        return result
    return not_recognized(command_line)
