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
@given(scalar=HOSTILE, items=st.lists(HOSTILE, max_size=5), user=HOSTILE, password=HOSTILE)
def test_request_round_trips_and_is_pure_base64(scalar, items, user, password):
    ops = [Op("reg_read", (scalar, "2")), Op("wmi_query", (scalar, scalar, tuple(items))), Op("service_query", (tuple(items),))]
    context = psrunner.Context(user, password, 7)
    payload = psrunner.stdin_payload(ops, context)
    request_line = payload.split(b"\n", 1)[0].decode("ascii")
    # The only thing the request puts in front of PowerShell is base64 text.
    assert re.fullmatch(r"[A-Za-z0-9+/=]*", request_line)
    decoded, got_context = psrunner.decode_request(request_line)
    assert decoded == [Op(o.name, tuple(tuple(a) if isinstance(a, tuple) else a for a in o.args)) for o in ops]
    assert got_context == context
    # The script that follows is the constant dispatcher, whatever the values.
    assert payload.split(b"\n", 1)[1] == psrunner.dispatcher_script().encode("ascii")


@settings(max_examples=300, deadline=None)
@given(text=HOSTILE, items=st.lists(HOSTILE, max_size=4), number=st.integers(-(2**63), 2**64), blob=st.binary())
def test_output_rows_round_trip(text, items, number, blob):
    ops = [Op("reg_read", ("HKLM\\X", "0"))]
    line = psrunner.encode_row(0, "value", [("name", text), ("data", number), ("multi", items), ("raw", blob),
                                            ("none", None), ("time", UtcTime("2026-11-20T10:00:00Z"))])
    assert "\n" not in line and "\r" not in line
    done = psrunner.encode_row(0, "done", [])
    out = "\r\n".join([psrunner.PROTOCOL_HEADER, line, done, psrunner.PROTOCOL_END]) + "\r\n"
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
                       psrunner.encode_row(1, "service", [("name", "SMTPSVC"), ("state", "Running")]),
                       psrunner.encode_row(1, "done", []), psrunner.PROTOCOL_END])
    first, second = psrunner.decode_output(out, ops)
    assert first.error == "Invalid namespace" and first.rows == []  # one line, outer spaces gone
    assert second.error is None and second.first("service") == {"name": "SMTPSVC", "state": "Running"}


def test_the_context_keeps_the_password_out_of_reprs_and_the_command_line():
    context = psrunner.Context("CORP\\svc-mailflow", "S3cret!pass", 30)
    assert "S3cret" not in repr(context) and "S3cret" not in psrunner.command_line()
    payload = psrunner.stdin_payload([Op("runtime", ())], context)
    assert b"S3cret" not in payload  # base64 inside base64, never the text itself
    assert psrunner.decode_request(payload.split(b"\n", 1)[0].decode())[1].ad_password == "S3cret!pass"


def test_a_request_without_a_context_line_is_refused():
    with pytest.raises(psrunner.RunnerError, match="context line"):
        psrunner.decode_request(psrunner._b64("reg_read\t\t"))


def probe(n: int) -> Op:
    return Op("tcp_probe", (f"host{n:04d}.corp.example", "25", "5000", "", "postmaster@", "postmaster@"))


def test_one_command_when_everything_fits():
    ops = [Op("reg_read", ("HKLM\\X", "0"))] + [probe(n) for n in range(50)]
    (only,) = psrunner.batches(ops)
    assert only == ops


@pytest.mark.parametrize("envelope_kb, probes, peers", [(150, 250, 600), (150, 100, 300), (64, 250, 400)])
def test_many_peers_are_cut_into_commands_within_the_quotas(envelope_kb, probes, peers):
    limits = psrunner.Limits(max_envelope_kb=envelope_kb, max_probes=probes)
    context = psrunner.Context("CORP\\svc", "pw")
    ops = [Op("reg_read", ("HKLM\\X", "0")), Op("file_read", ("C:\\m.xml", "8388608", "65536"))] + [probe(n) for n in range(peers)]
    commands = psrunner.batches(ops, context, limits)
    assert [op for c in commands for op in c] == ops  # in order, none lost
    assert len(commands) > 1
    for c in commands:
        stdin = psrunner.stdin_payload(c, context)
        # What ansible-core's winrm plugin makes of it: one Send, base64 in an envelope of about 1 KB more.
        assert len(stdin) <= limits.max_stdin and 4 * -(-len(stdin) // 3) + 1500 < envelope_kb * 1024
        assert sum(op.name == "tcp_probe" for op in c) <= probes


def test_an_operation_that_cannot_fit_any_command_is_refused_by_name():
    huge = Op("reg_write", ("HKLM\\X", "Big", "String", "x" * 200_000))
    with pytest.raises(psrunner.RunnerError, match="reg_write .* more than one command carries"):
        psrunner.batches([huge])


def test_run_indexes_results_over_every_command():
    """A fake host: answers each echo with its own text, in whatever commands run() sends."""
    sent = []

    def execute(cmd, stdin):
        assert cmd == psrunner.command_line()
        request = stdin.split(b"\n", 1)[0].decode()
        ops, _ = psrunner.decode_request(request)
        sent.append(len(ops))
        rows = [row for i, op in enumerate(ops)
                for row in (psrunner.encode_row(i, "echo", [("data", op.args[0])]), psrunner.encode_row(i, "done", []))]
        return {"stdout": "\r\n".join([psrunner.PROTOCOL_HEADER, *rows, psrunner.PROTOCOL_END]), "rc": 0}

    ops = [Op("echo", (f"{n:05d}" + "x" * 3000,)) for n in range(60)]
    results = psrunner.run(execute, ops, limits=psrunner.Limits(max_envelope_kb=100))
    assert len(sent) > 1 and sum(sent) == 60
    assert [r.index for r in results] == list(range(60))
    assert [r.first("echo")["data"][:5] for r in results] == [f"{n:05d}" for n in range(60)]


def test_run_carries_the_answer_it_could_not_decode():
    with pytest.raises(psrunner.RunnerError) as info:
        psrunner.run(lambda cmd, stdin: {"stdout": "", "stderr": "boom", "rc": 1}, [Op("runtime", ())])
    assert info.value.response == {"stdout": "", "stderr": "boom", "rc": 1}


def test_stdin_that_never_reached_powershell_is_named():
    with pytest.raises(psrunner.RunnerError, match="did not reach it on stdin"):
        psrunner.decode_output(b"MAILFLOW-NOINPUT 0\r\n", [])


def _file_result(*rows) -> psrunner.OpResult:
    res = psrunner.OpResult(0, Op("file_read", ("C:\\f", "100", "4")))
    res.rows = list(rows)
    return res


def test_file_chunks_are_put_back_together_and_gaps_are_refused():
    meta = ("file", {"path": "C:\\f", "size": 10, "mtime": None, "read": 10})
    chunks = [("chunk", {"offset": 0, "data": b"0123"}), ("chunk", {"offset": 4, "data": b"4567"}), ("chunk", {"offset": 8, "data": b"89"})]
    assert psrunner.file_data(_file_result(meta, *chunks)) == (meta[1], b"0123456789")
    assert psrunner.file_data(_file_result(("missing", {"path": "C:\\f"}))) is None
    with pytest.raises(psrunner.RunnerError, match="chunk at 8 where 4 was due"):
        psrunner.file_data(_file_result(meta, chunks[0], chunks[2]))
    with pytest.raises(psrunner.RunnerError, match="8 of 10 bytes arrived"):
        psrunner.file_data(_file_result(meta, *chunks[:2]))


def test_a_framed_answer_that_lacks_an_operation_is_refused_not_taken_as_empty():
    """A header and an end marker around too few rows (a cut answer, a wedged host): never a complete snapshot in which
    the host has no services and no registry."""
    ops = [Op("service_query", (("SMTPSVC",),)), Op("reg_read", ("HKLM\\X", "0")), probe(1)]
    framed = [psrunner.PROTOCOL_HEADER, psrunner.PROTOCOL_END]
    with pytest.raises(psrunner.RunnerError, match=r"lacks 3 of 3 operation\(s\) \(0:service_query, 1:reg_read, 2:tcp_probe\)"):
        psrunner.decode_output("\r\n".join(framed), ops)
    some = [psrunner.PROTOCOL_HEADER, psrunner.encode_row(0, "missing", [("name", "SMTPSVC")]), psrunner.encode_row(0, "done", []),
            psrunner.encode_row(1, "err", [("message", "Access is denied")]), psrunner.PROTOCOL_END]
    with pytest.raises(psrunner.RunnerError, match=r"lacks 1 of 3 operation\(s\) \(2:tcp_probe\)"):
        psrunner.decode_output("\r\n".join(some), ops)
    whole = some[:-1] + [psrunner.encode_row(2, "probe", [("target", "x")]), psrunner.PROTOCOL_END]
    got = psrunner.decode_output("\r\n".join(whole), ops)
    assert got[0].done and got[0].first("missing") and got[1].error == "Access is denied" and got[2].first("probe")
