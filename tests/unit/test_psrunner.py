"""The runner's wire format: nothing a value holds can become code or break framing."""
import base64
import re

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.mailflow.exchange.plugins.module_utils import psrunner
from ansible_collections.mailflow.exchange.plugins.module_utils.psrunner import Op, UtcTime

# Strings an attacker (or an odd registry value, banner or hostname) could hold.
HOSTILE = st.one_of(
    st.text(),
    st.sampled_from(["'; Remove-Item C:\\ -Recurse; '", '"; exit 1; "', "$(Stop-Computer)", "`n`r", "\t\n\r\x00",
                     "MAILFLOW-END", "0\terr\tmessage=sAA==", "@{}|%{}", "\u202e\ufeff", "a,b,c", "=="]),
)


@settings(max_examples=300, deadline=None)
@given(scalar=HOSTILE, items=st.lists(HOSTILE, max_size=5))
def test_request_round_trips_and_is_pure_base64(scalar, items):
    ops = [Op("reg_read", (scalar, "2")), Op("wmi_query", (scalar, scalar, tuple(items))), Op("service_query", (tuple(items),))]
    payload = psrunner.stdin_payload(ops)
    request_line = payload.split(b"\n", 1)[0].decode("ascii")
    # The only thing the request puts in front of PowerShell is base64 text.
    assert re.fullmatch(r"[A-Za-z0-9+/=]*", request_line)
    decoded = psrunner.decode_request(request_line)
    assert decoded == [Op(o.name, tuple(tuple(a) if isinstance(a, tuple) else a for a in o.args)) for o in ops]
    # The script that follows is the constant dispatcher, whatever the values.
    assert payload.split(b"\n", 1)[1] == psrunner.dispatcher_script().encode("ascii")


@settings(max_examples=300, deadline=None)
@given(text=HOSTILE, items=st.lists(HOSTILE, max_size=4), number=st.integers(-(2**63), 2**64), blob=st.binary())
def test_output_rows_round_trip(text, items, number, blob):
    ops = [Op("reg_read", ("HKLM\\X", "0"))]
    line = psrunner.encode_row(0, "value", [("name", text), ("data", number), ("multi", items), ("raw", blob),
                                            ("none", None), ("time", UtcTime("2026-11-20T10:00:00Z"))])
    assert "\n" not in line and "\r" not in line
    out = "\r\n".join([psrunner.PROTOCOL_HEADER, line, psrunner.PROTOCOL_END]) + "\r\n"
    (res,) = psrunner.decode_output(out.encode("ascii"), ops)
    row = res.first("value")
    assert row == {"name": text.encode("utf-8", "replace").decode("utf-8", "replace") if text else text,
                   "data": number, "multi": items, "raw": blob, "none": None, "time": "2026-11-20T10:00:00Z"}


def test_command_line_is_constant_and_far_under_cmd_exe_limit():
    line = psrunner.command_line()
    assert line.startswith(psrunner.POWERSHELL_PREFIX)
    assert len(line) < 2000 < psrunner.CMD_EXE_MAX
    script = base64.b64decode(line.split()[-1]).decode("utf-16-le")
    assert script == psrunner.bootstrap_script()


def test_ansible_winrm_passes_our_line_through_unencoded():
    # ansible-core 2.19 winrm: a line starting with the shell's own encoded prefix is sent as is.
    from ansible.plugins.loader import shell_loader
    shell = shell_loader.get("powershell")
    prefix = shell._encode_script("", as_list=False, strict_mode=False, preserve_rc=False)
    assert psrunner.command_line().startswith(prefix)


def test_unknown_operation_and_bad_arity_are_rejected():
    with pytest.raises(ValueError, match="unknown operation"):
        Op("format_c", ())
    with pytest.raises(ValueError, match="takes 2 arguments"):
        Op("reg_read", ("HKLM\\X",))
    with pytest.raises(ValueError, match="list argument"):
        Op("service_query", ("SMTPSVC",))


@pytest.mark.parametrize("stdout, message", [
    (b"", "no output"),
    (b"\r\n \r\n", "no output"),
    (b"#< CLIXML\r\n<Objs/>", "no MAILFLOW/1 header"),
    (b"MAILFLOW/1\r\n0\tkey\tpath=sSEtMTQ==\r\n", "ends early"),
    (b"MAILFLOW/1\r\nnot a row\r\nMAILFLOW-END\r\n", "malformed result line"),
    (b"MAILFLOW/1\r\n7\tkey\tpath=n\r\nMAILFLOW-END\r\n", "unknown operation index 7"),
])
def test_bad_output_says_why(stdout, message):
    with pytest.raises(psrunner.RunnerError, match=message):
        psrunner.decode_output(stdout, [Op("reg_read", ("HKLM\\X", "0"))])


def test_error_rows_are_per_operation():
    ops = [Op("wmi_query", ("root\\MicrosoftExchangeV2", "SELECT * FROM Exchange_SMTPLink", ())), Op("service_query", (("SMTPSVC",),))]
    out = "\r\n".join([psrunner.PROTOCOL_HEADER, psrunner.encode_row(0, "err", [("message", "Invalid namespace ")]),
                       psrunner.encode_row(1, "service", [("name", "SMTPSVC"), ("state", "Running")]), psrunner.PROTOCOL_END])
    first, second = psrunner.decode_output(out, ops)
    assert first.error == "Invalid namespace " and first.rows == []
    assert second.error is None and second.first("service") == {"name": "SMTPSVC", "state": "Running"}
