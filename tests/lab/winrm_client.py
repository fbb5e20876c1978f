"""Run the collection's runner against a lab host with pywinrm, as an independent client."""
from __future__ import annotations

import winrm

from ansible_collections.mailflow.exchange.plugins.module_utils import psrunner


def protocol(lab, host_name: str, scheme: str = "http") -> winrm.protocol.Protocol:
    host = lab.fleet.host(host_name)
    if scheme == "https":
        return winrm.protocol.Protocol(f"https://{host.address}:{host.ports['https']}/wsman", transport="basic",
                                       username=host.username, password=host.password,
                                       server_cert_validation="validate", ca_trust_path=lab.ca.ca_pem_path)
    return winrm.protocol.Protocol(f"http://{host.address}:{host.ports['http']}/wsman", transport="ntlm",
                                   username=host.username, password=host.password)


def run_raw(lab, host_name: str, command_line: str, stdin: bytes | None = None, scheme: str = "http"):
    p = protocol(lab, host_name, scheme)
    shell = p.open_shell(codepage=65001)
    try:
        exe, _, args = command_line.partition(" ")
        cid = p.run_command(shell, exe, args.split(" ") if args else [], console_mode_stdin=stdin is None)
        if stdin is not None:
            p.send_command_input(shell, cid, stdin, end=True)
        out, err, rc = p.get_command_output(shell, cid)
        p.cleanup_command(shell, cid)
        return out, err, rc
    finally:
        p.close_shell(shell)


def run_ops(lab, host_name: str, ops: list, scheme: str = "http", context: psrunner.Context | None = None) -> list[psrunner.OpResult]:
    """The operations in one command over pywinrm: NTLM over HTTP (no credentials for a second hop), or Basic
    over HTTPS (a cleartext logon that has them)."""
    out, err, rc = run_raw(lab, host_name, psrunner.command_line(), psrunner.stdin_payload(ops, context), scheme)
    assert rc == 0, err
    return psrunner.decode_output(out, ops)
