"""The WinRS operations: what one authenticated SOAP request does to the host.

Kept apart from the HTTP side so the rules a Windows host follows (cmd.exe's
command-line limit, when a command starts, how output is paged) read in one
place.
"""
from __future__ import annotations

import base64
import binascii
import threading
import time
from dataclasses import dataclass, field

from lab.runtime import Metrics
from lab.wsman import soap
from lab.wsman.faults import take_command_drop
from lab.wsman.shells import Command, Executor, Logon, Shell, ShellTable, b64, raw_bytes_for_base64

# base64 padding of two separately encoded streams, beyond the measured envelope
_PADDING_SLACK = 8
_WAIT_SLICE = 0.05  # seconds; how often a waiting Receive checks for shutdown


class ServerError(Exception):
    """Answer this request with HTTP 500 and no body, as an overloaded or failing WinRM service does."""


class DropConnection(Exception):
    """Close the client's socket without answering (a host dying mid-change)."""


@dataclass
class RequestContext:
    user: str  # who authenticated
    client_ip: str
    endpoint: str  # the listener's URL, echoed in the Create answer
    machine: str  # the host's FQDN, named in faults as Windows does
    mechanism: str = "ntlm"  # how: basic | ntlm (the lab's two); decides the second hop (shells.Logon)
    max_envelope_kb: int = 150  # the host's MaxEnvelopeSizekb
    max_timeout_ms: int = 60000  # the host's MaxTimeoutms


@dataclass
class WireStats:
    """What crossed the wire on one listener; lets tests prove transport claims."""

    sealed_requests: int = 0  # SOAP bodies that arrived NTLM-encrypted
    plaintext_requests: int = 0
    sealed_responses: int = 0
    receive_responses: int = 0
    largest_envelope: int = 0  # bytes of the biggest SOAP answer, before encryption
    largest_request: int = 0  # bytes of the biggest SOAP request, after decryption
    operation_timeouts: int = 0  # OperationTimeout faults answered to Receive
    oversize_requests: int = 0  # requests refused with 413 (over MaxEnvelopeSizekb)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, counter: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, counter, getattr(self, counter) + n)

    def note_envelope(self, size: int) -> None:
        with self._lock:
            self.largest_envelope = max(self.largest_envelope, size)

    def note_request(self, size: int) -> None:
        with self._lock:
            self.largest_request = max(self.largest_request, size)


class WinRSService:
    def __init__(self, host_name: str, metrics: Metrics, executor: Executor, stopping: threading.Event) -> None:
        self.host_name = host_name
        self.metrics = metrics
        self.executor = executor
        self.stopping = stopping
        self.shells = ShellTable()
        self.stats = WireStats()

    def handle(self, xml: bytes, context: RequestContext) -> tuple[int, bytes]:
        """(HTTP status, SOAP answer) for one request; faults answer 500.

        Raises DropConnection when a fault says the host dies right now.
        """
        message_id = ""
        self.stats.note_request(len(xml))
        if len(xml) > context.max_envelope_kb * 1024:
            # Over MaxEnvelopeSizekb: WinRM answers HTTP 413 without a SOAP body (ansible.windows #391 and #620,
            # "Bad HTTP response returned from server. Code 413"), whatever the request was.
            self.stats.add("oversize_requests")
            return 413, b""
        try:
            request = soap.parse_request(xml)
            message_id = request.message_id
            answer = self._dispatch(request, context)
        except soap.WSManFault as fault:
            return 500, soap.fault_response(fault, message_id, context.machine)
        self.stats.note_envelope(len(answer))
        return 200, answer

    def _dispatch(self, request: soap.WSManRequest, context: RequestContext) -> bytes:
        if request.resource_uri and request.resource_uri.lower() != soap.CMD_SHELL_URI:
            raise soap.not_supported_fault(f"Only {soap.CMD_SHELL_URI} is served, not {request.resource_uri}.")
        operations = {
            soap.ACTION_CREATE: self._create,
            soap.ACTION_COMMAND: self._command,
            soap.ACTION_SEND: self._send,
            soap.ACTION_RECEIVE: self._receive,
            soap.ACTION_SIGNAL: self._signal,
            soap.ACTION_DELETE: self._delete,
        }
        operation = operations.get(request.action)
        if operation is None:
            raise soap.not_supported_fault(f"Unknown action {request.action!r}.")
        return operation(request, context)

    def _create(self, request: soap.WSManRequest, context: RequestContext) -> bytes:
        shell = self.shells.create(context.user, request.options.get("WINRS_CODEPAGE", "437"),
                                   Logon(context.user, context.mechanism))
        self.metrics.bump(self.host_name, "shells_opened")
        return soap.create_response(request, shell.id, context.endpoint, context.user, context.client_ip)

    def _shell(self, request: soap.WSManRequest) -> Shell:
        shell = self.shells.get(request.shell_id)
        if shell is None:
            raise soap.shell_not_found_fault(request.shell_id or "")
        return shell

    def _command_of(
        self, request: soap.WSManRequest, element: str, attribute_holder: str | None = None
    ) -> tuple[Shell, Command]:
        """The shell and command a request names (CommandId on element or its child)."""
        shell = self._shell(request)
        holder = request.body_child(element)
        if attribute_holder:
            holder = holder.find(f"{{{soap.NS_SHELL}}}{attribute_holder}")
        command_id = holder.get("CommandId") if holder is not None else None
        command = self.shells.command(shell, command_id)
        if command is None:
            raise soap.invalid_parameter_fault(f"No command with CommandId {command_id} in shell {shell.id}.")
        return shell, command

    def _command(self, request: soap.WSManRequest, context: RequestContext) -> bytes:
        shell = self._shell(request)
        line = request.body_child("CommandLine")
        program = (line.findtext(f"{{{soap.NS_SHELL}}}Command") or "").strip()
        arguments = [(arg.text or "") for arg in line.iterfind(f"{{{soap.NS_SHELL}}}Arguments")]
        command_line = " ".join([program, *arguments]) if arguments else program
        if take_command_drop(self.metrics, self.host_name):
            raise DropConnection()
        # WinRS hands the line to cmd.exe, which silently runs nothing past
        # 8191 characters and still reports success: empty output, exit 0.
        runnable = self.metrics.record_command_line(self.host_name, len(command_line))
        command = Command(self.host_name, command_line, runnable, shell.logon)
        # A host that dies after doing the work: the command runs, its output never arrives.
        command.drop_output = take_command_drop(self.metrics, self.host_name, "drop_output_after_commands")
        # Or one whose service fails while answering: the work is done, the client gets a 500 (pywinrm's
        # WinRMTransportError, which ansible-core's winrm plugin does not turn into a lost connection).
        command.server_error = take_command_drop(self.metrics, self.host_name, "http_500_after_commands")
        # Or one whose answer arrives whole in form but without its rows (a console host that lost its output
        # between the header it wrote first and the end marker it wrote last).
        command.rows_lost = take_command_drop(self.metrics, self.host_name, "rows_lost_after_commands")
        # Without console-mode stdin the client will Send input, so the
        # command starts only when that input ends. A missing option means
        # nothing is coming (pywinrm and Ansible always send it). A refused
        # line is "finished" at once, whatever input follows.
        if request.option_is_true("WINRS_CONSOLEMODE_STDIN", default=True) or not runnable:
            command.close_stdin(self.executor)
        self.shells.add_command(shell, command)
        return soap.command_response(request, command.id)

    def _send(self, request: soap.WSManRequest, context: RequestContext) -> bytes:
        _, command = self._command_of(request, "Send", "Stream")
        for stream in request.body_child("Send").iterfind(f"{{{soap.NS_SHELL}}}Stream"):
            if stream.get("Name", "stdin") != "stdin":
                continue
            data = _decode_stream(stream.text)
            command.add_stdin(data, (stream.get("End") or "").lower() == "true", self.executor)
        return soap.send_response(request)

    def _receive(self, request: soap.WSManRequest, context: RequestContext) -> bytes:
        _, command = self._command_of(request, "Receive", "DesiredStream")
        # MS-WSMAN 3.1.4.1.9/3.1.4.1.x: an OperationTimeout or MaxEnvelopeSize above the host's MaxTimeoutms /
        # MaxEnvelopeSizekb is not refused; the server uses its own maximum instead.
        timeout = min(request.operation_timeout, context.max_timeout_ms / 1000.0)
        if not command.stdin_complete or not self._wait_finished(command, timeout):
            self.stats.add("operation_timeouts")
            raise soap.operation_timeout_fault()
        if command.drop_output:
            raise DropConnection()
        if command.server_error:
            raise ServerError()
        envelope = min(request.max_envelope_size, context.max_envelope_kb * 1024)
        budget = envelope - soap.receive_envelope_overhead(request, command.id) - _PADDING_SLACK
        chunk = command.next_chunk(raw_bytes_for_base64(budget))
        self.stats.add("receive_responses")
        return soap.receive_response(request, command.id, b64(chunk.stdout), b64(chunk.stderr), chunk.exit_code)

    def _wait_finished(self, command: Command, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not command.finished.wait(_WAIT_SLICE):
            if self.stopping.is_set() or time.monotonic() >= deadline:
                return False
        return True

    def _signal(self, request: soap.WSManRequest, context: RequestContext) -> bytes:
        shell, command = self._command_of(request, "Signal")
        # terminate (and ctrl_c/ctrl_break) end the command; a command still
        # running finishes on its worker thread and is simply forgotten.
        self.shells.remove_command(shell, command.id)
        return soap.signal_response(request)

    def _delete(self, request: soap.WSManRequest, context: RequestContext) -> bytes:
        shell = self._shell(request)
        self.shells.delete(shell.id)
        return soap.delete_response(request)


def _decode_stream(text: str | None) -> bytes:
    try:
        return base64.b64decode((text or "").strip(), validate=True)
    except (binascii.Error, ValueError):
        raise soap.invalid_parameter_fault("The stdin stream is not valid base64.")
